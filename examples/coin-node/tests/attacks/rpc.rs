//! The JSON-RPC server under abuse: huge batches, many connections, slow headers.

use std::time::Duration;

use coin_node::rpc::{CoinRpcClient, ErrorCode, SubmitStatus};

use crate::support::{ONE_AT_A_TIME, params};

/// Sends `request` on a fresh connection to `addr` and returns everything the server answers until it
/// closes the connection (bounded by `secs`).
async fn http_exchange(addr: std::net::SocketAddr, request: &[u8], secs: u64) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(secs), socket.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// Whether the server closes a connection on which we send `request` within `secs` seconds.
async fn closed_within(mut socket: tokio::net::TcpStream, request: &[u8], secs: u64) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    socket.write_all(request).await.unwrap();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    });
    read.await.is_ok()
}

/// The red team's RPC attacks: a batch of 2,000 calls (13 s of node time before), connections held
/// open without limit, headers sent slowly. The batch is refused whole, connections past the cap are
/// closed at once, a slow-headers client is cut at the header deadline, and an honest call still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_refuses_huge_batches_and_bounds_connections_and_slow_headers() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let data = coin_node::DataDir::new(dir.path().join("n"));
    let mut options = coin_node::NodeOptions::new(data.clone(), params());
    options.rpc = Some("127.0.0.1:0".parse().unwrap());
    let node = coin_node::CoinNode::start(options).await.unwrap();
    let rpc = node.rpc_addr().unwrap();
    let cookie = data.read_cookie().unwrap();
    let post = |body: String| {
        format!(
            "POST / HTTP/1.1\r\nHost: node\r\nAuthorization: Bearer {cookie}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let address = node.api().wallet().peer_id().to_string();
    let call =
        |id: usize| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"balance","params":["{address}"]}}"#);

    // 2,000 calls in one batch: one error, no results.
    let batch = format!("[{}]", (0..2000).map(call).collect::<Vec<_>>().join(","));
    let answer = http_exchange(rpc, &post(batch), 30).await;
    assert!(answer.contains("\"error\""), "{answer}");
    assert_eq!(
        answer.matches("\"result\"").count(),
        0,
        "the batch was executed: {answer:.300}"
    );
    // A batch within the limit is answered call by call.
    let small = format!("[{}]", (0..4).map(call).collect::<Vec<_>>().join(","));
    let answer = http_exchange(rpc, &post(small), 30).await;
    assert_eq!(answer.matches("\"result\"").count(), 4, "{answer}");

    // 40 idle connections: those past the cap of 32 are closed at once.
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(tokio::net::TcpStream::connect(rpc).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut closed = 0;
    for socket in idle.drain(32..) {
        if closed_within(socket, b"", 5).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 8, "connections past the cap must be refused");
    drop(idle);

    // Headers that never finish: cut at the header deadline (10 s).
    let slow = tokio::net::TcpStream::connect(rpc).await.unwrap();
    assert!(
        closed_within(slow, b"POST / HTTP/1.1\r\nHost: node\r\n", 20).await,
        "a slow-headers client kept its connection"
    );
    // And the node still answers an honest call.
    let answer = http_exchange(rpc, &post(call(1)), 30).await;
    assert!(answer.contains("\"result\""), "{answer}");
    node.shutdown().await;
}

/// `submit_transaction` says what became of a transaction: `accepted` into the mempool, `orphan` (its
/// parent unknown: held, not yet checked against it), or an error with the reason. It used to answer
/// success for an unverified orphan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_transaction_tells_accepted_from_orphan_from_rejected() {
    use coin_node::wallet;
    use meshwork_ledger::{Amount, OutPoint};

    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let data = coin_node::DataDir::new(dir.path().join("n"));
    let params = params();
    let mut options = coin_node::NodeOptions::new(data.clone(), params);
    options.rpc = Some("127.0.0.1:0".parse().unwrap());
    let node = coin_node::CoinNode::start(options).await.unwrap();
    let rpc = coin_node::client::RpcClient::new(node.rpc_addr().unwrap(), Some(&data.read_cookie().unwrap()))
        .unwrap();
    let submit = |tx: &meshwork_ledger::Transfer| {
        let raw = hex::encode(meshwork_wire::encode(tx).unwrap());
        let rpc = &rpc;
        async move { rpc.submit_transaction(raw).await }
    };
    let to = meshwork_identity::Keypair::from_seed([9; 32]).peer_id();
    let genesis = meshwork_consensus::genesis_key();
    let paid = |coin| {
        wallet::pay(
            &genesis,
            vec![coin],
            to,
            Amount::from_coins(1),
            Amount::from_units(10_000),
        )
        .unwrap()
    };

    let accepted = submit(&paid(crate::support::faucet_coin(params))).await.unwrap();
    assert_eq!(accepted.status, SubmitStatus::Accepted, "{accepted:?}");
    let unknown = OutPoint {
        txid: meshwork_identity::Hash::digest(b"a parent nobody has"),
        index: 0,
    };
    let orphan = submit(&paid((unknown, Amount::from_coins(2)))).await.unwrap();
    assert_eq!(orphan.status, SubmitStatus::Orphan, "{orphan:?}");
    // The faucet coin again, with a fee too small to replace the first spend: refused, with a reason.
    let conflict = wallet::pay(
        &genesis,
        vec![crate::support::faucet_coin(params)],
        to,
        Amount::from_coins(2),
        Amount::from_units(10_001),
    )
    .unwrap();
    let refused = submit(&conflict).await.unwrap_err();
    assert_eq!(ErrorCode::of(&refused), Some(ErrorCode::Rejected), "{refused}");
    node.shutdown().await;
}
