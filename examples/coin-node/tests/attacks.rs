//! Attacks on a running coin node over real QUIC on 127.0.0.1, each staged by a hostile client built
//! from the crates (a `QuicTransport` speaking the node's sync channel). The node must stay up, hold
//! a bounded amount of memory, keep its honest peer in step and keep growing its chain.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use meshwork_consensus::{ChainSync, Message, genesis_block};
use meshwork_identity::Keypair;
use meshwork_ledger::RedbStore;
use meshwork_transport::{Config, Connection, ProtocolSpec, QuicTransport, Transport};
use meshwork_wire::{BoundedVec, Protocol};
use support::{ONE_AT_A_TIME, params, same_tip, start, wait_for};

/// The memory the attack may add to the process, over its idle resident size.
const RSS_BOUND: u64 = 64 * 1024 * 1024;

/// This process's resident set size, from `/proc/self/status`.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// A hostile client speaking the node's sync channel, with tiny receive windows: it never reads what
/// the node sends, and buffers almost none of it itself.
async fn hostile(n: u8) -> QuicTransport {
    let sync = ProtocolSpec::of::<ChainSync<RedbStore>>();
    let mut config = Config::new([sync]);
    config.limits.max_queued_bytes_per_peer = 64 * 1024;
    config.limits.max_queued_bytes_per_stream = 16 * 1024;
    let key = Keypair::from_seed([n; 32]);
    QuicTransport::bind(&key, "127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

/// The red team's memory amplification: 16 connections that never read the node's streams keep asking
/// for headers. Before the byte budgets, 123 KB of `GetHeaders` grew a node by 248 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_requests_from_peers_that_never_read_cost_bounded_memory() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let params = params();
    let miner = start(&dir, 0, params, &[], true, None).await;
    wait_for(90, "a chain of 30 blocks", || async {
        miner.api().tip().await.unwrap().0 >= 30
    })
    .await;
    let honest = start(&dir, 1, params, &[&miner], false, None).await;
    let both = [&miner, &honest];
    wait_for(60, "the honest peer in step", || same_tip(&both)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_bytes();

    let genesis = genesis_block(&params.chain_config()).id();
    let ask = Message::GetHeaders {
        locator: BoundedVec::try_from(vec![genesis]).unwrap(),
        stop: None,
    };
    let frame = meshwork_wire::encode(&ask).unwrap();
    let (id, addr) = (miner.api().node().peer_id(), miner.api().node().local_addr());
    let mut attackers = tokio::task::JoinSet::new();
    for n in 0..16u8 {
        let frame = frame.clone();
        attackers.spawn(async move {
            let transport = hostile(100 + n).await;
            let Ok(conn) = transport.dial(id, addr).await else {
                return (0u64, transport);
            };
            let Ok(mut stream) = conn.open(<ChainSync<RedbStore> as Protocol>::ID).await else {
                return (0, transport);
            };
            let mut sent = 0u64;
            // Bounded: the node answers or pushes back; either way this ends.
            for _ in 0..20_000 {
                match tokio::time::timeout(Duration::from_secs(2), stream.send_frame(&frame)).await {
                    Ok(Ok(())) => sent += frame.len() as u64,
                    _ => break,
                }
            }
            (sent, transport)
        });
    }
    // Sample the resident size while the attack runs.
    let mut peak = idle;
    let sampling = async {
        loop {
            peak = peak.max(rss_bytes());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let results = tokio::select! {
        results = attackers.join_all() => results,
        () = sampling => unreachable!(),
    };
    let sent: u64 = results.iter().map(|(sent, _)| sent).sum();
    // The requests now wait in the node's receive windows and inbox; keep measuring while it works
    // through them (the hostile connections stay open and still read nothing).
    for _ in 0..100 {
        peak = peak.max(rss_bytes());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = miner.api().node().metrics().render();
    let drops: f64 = metrics
        .lines()
        .filter(|line| line.starts_with("meshwork_queue_drops_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    eprintln!(
        "attack: {sent} bytes of GetHeaders sent; RSS idle {} MiB, peak {} MiB (+{} MiB); {drops} sends dropped",
        idle >> 20,
        peak >> 20,
        peak.saturating_sub(idle) >> 20
    );
    assert!(sent > 0, "the attack never reached the node");
    assert!(
        peak.saturating_sub(idle) < RSS_BOUND,
        "the node grew by {} MiB",
        peak.saturating_sub(idle) >> 20
    );
    assert!(
        drops > 0.0,
        "the node never refused to queue for a peer that does not read"
    );

    // The node is still up and useful: its chain grows and the honest peer follows.
    let height = miner.api().tip().await.unwrap().0;
    wait_for(90, "the chain to grow and the honest peer to follow", || async {
        let tip = miner.api().tip().await.unwrap();
        tip.0 > height + 2 && honest.api().tip().await.unwrap() == tip
    })
    .await;
    drop(results);
    honest.shutdown().await;
    miner.shutdown().await;
}

/// The red team's buffering attack: streams that each announce a 4 MiB frame and never finish it.
/// Before the frame budgets, 8 such streams held 32 MiB of one connection with no deadline (64 streams:
/// 256 MiB). Now a peer's frames in flight hold at most its budget (8 MiB), and the body must arrive
/// within the frame deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_frames_that_never_arrive_hold_at_most_the_budget() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let params = params();
    let node = start(&dir, 0, params, &[], true, None).await;
    wait_for(60, "a few blocks", || async {
        node.api().tip().await.unwrap().0 >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_bytes();
    let (id, addr) = (node.api().node().peer_id(), node.api().node().local_addr());
    let mut held = Vec::new();
    // A frame header announcing 4 MiB (less a little), and then nothing.
    let header = u32::try_from(4 * 1024 * 1024 - 64).unwrap().to_be_bytes();
    let mut conns = Vec::new();
    for n in 0..4u8 {
        let transport = hostile(200 + n).await;
        let conn = transport.dial(id, addr).await.unwrap();
        conns.push(conn.clone());
        for _ in 0..8 {
            let mut stream = conn.open(<ChainSync<RedbStore> as Protocol>::ID).await.unwrap();
            stream.send_raw(&header).await.unwrap();
            held.push(tokio::spawn(async move {
                let _keep = stream;
                std::future::pending::<()>().await;
            }));
        }
        held.push(tokio::spawn(async move {
            let _keep = (transport, conn);
            std::future::pending::<()>().await;
        }));
    }
    let mut peak = idle;
    for _ in 0..50 {
        peak = peak.max(rss_bytes());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "attack: 32 streams announcing 4 MiB; RSS idle {} MiB, peak {} MiB (+{} MiB)",
        idle >> 20,
        peak >> 20,
        peak.saturating_sub(idle) >> 20
    );
    assert!(
        peak.saturating_sub(idle) < RSS_BOUND,
        "grew by {} MiB",
        peak.saturating_sub(idle) >> 20
    );
    // The frames never complete: past the frame deadline (30 s) the node drops each trickling peer.
    wait_for(60, "the node to drop the trickling peers", || async {
        conns.iter().all(|c| c.close_reason().is_some())
    })
    .await;
    for conn in &conns {
        assert_eq!(
            conn.close_reason(),
            Some(meshwork_transport::CloseReason::Application(
                meshwork_node::CLOSE_STALLED
            )),
        );
    }
    let height = node.api().tip().await.unwrap().0;
    wait_for(60, "the chain to grow", || async {
        node.api().tip().await.unwrap().0 > height
    })
    .await;
    for task in held {
        task.abort();
    }
    node.shutdown().await;
}

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

/// "Ban your neighbours": an honest relay forwarding a burst of 700 valid transactions (the red team's
/// node banned such a relay after 0.24 s, 512 accepted, and the ban closed sync and Kademlia too). Valid
/// relay costs nothing now: every transaction arrives, nobody is banned, and the peers stay connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_700_valid_transactions_gets_no_relay_banned() {
    use coin_node::api::txid_of;
    use coin_node::wallet;
    use meshwork_ledger::{Amount, OutPoint, TxOut};

    const BURST: u32 = 700;
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let params = params();
    let miner = start(&dir, 0, params, &[], true, None).await;
    let relay = start(&dir, 1, params, &[&miner], false, None).await;
    let both = [&miner, &relay];
    wait_for(60, "the relay in step", || same_tip(&both)).await;

    // Fund 700 independent coins, confirmed, so the burst is 700 unrelated valid payments.
    let owner = Keypair::from_seed([7; 32]);
    let outputs = (0..BURST)
        .map(|_| TxOut {
            amount: Amount::from_units(1_000_000),
            owner: owner.peer_id(),
        })
        .collect();
    let split = wallet::pay_many(
        &meshwork_consensus::genesis_key(),
        vec![support::faucet_coin(params)],
        outputs,
        Amount::from_units(100_000),
    )
    .unwrap();
    let split_id = txid_of(&split);
    relay.api().submit_tx(split).await.unwrap();
    wait_for(90, "the funding confirmed on both", || {
        support::confirmed_everywhere(&both, split_id)
    })
    .await;

    let to = Keypair::from_seed([8; 32]).peer_id();
    let burst: Vec<_> = (0..BURST)
        .map(|index| {
            let coin = (
                OutPoint {
                    txid: split_id,
                    index,
                },
                Amount::from_units(1_000_000),
            );
            wallet::pay(
                &owner,
                vec![coin],
                to,
                Amount::from_units(500_000),
                Amount::from_units(1_000),
            )
            .unwrap()
        })
        .collect();
    let txids: Vec<_> = burst.iter().map(txid_of).collect();
    for tx in burst {
        relay.api().submit_tx(tx).await.unwrap();
    }
    // Every payment reaches the miner, in its mempool or already in a block.
    wait_for(120, "the whole burst at the miner", || async {
        for txid in &txids {
            if miner.api().transaction(*txid).await.ok().flatten().is_none() {
                return false;
            }
        }
        true
    })
    .await;
    let stats = miner.api().app().with(|app| app.gossip().stats()).await.unwrap();
    assert_eq!(stats.bans, 0, "the miner banned its relay: {stats:?}");
    assert_eq!(stats.rate_limited, 0, "valid relay was rate limited: {stats:?}");
    let relayed = miner.api().app().with(|app| app.relay_stats()).await.unwrap();
    assert_eq!(relayed.rejected, 0);
    // The relay does not mine, so every payment came by gossip (the funding too).
    assert!(relayed.accepted >= u64::from(BURST), "{relayed:?}");
    let peers = miner.api().node().peers().await.unwrap();
    assert!(
        peers.iter().any(|(id, _)| *id == relay.api().node().peer_id()),
        "the relay was dropped"
    );
    relay.shutdown().await;
    miner.shutdown().await;
}
