//! The binary as a process (SIGKILL and restart from the data dir) and the RPC server's refusals.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use coin_node::client::{ClientError, RpcClient};
use coin_node::rpc::{BlockRef, CoinRpcClient, ErrorCode, Tip};
use coin_node::{CoinNode, DataDir, NodeOptions};
use serde_json::json;
use support::{ONE_AT_A_TIME, params, wait_for};

/// Starts `coin-node run --mine` on `dir` (RPC at its config's address) and returns the process and its RPC
/// address (from its first line).
fn spawn(dir: &std::path::Path) -> (Running, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coin-node"))
        .args(["run", "--mine", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let rpc = line
        .split("rpc on ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("unexpected first line: {line}"));
    (Running(child), rpc.trim().parse().unwrap())
}

/// A node process, killed (SIGKILL) when dropped: a failed assertion must not leave it mining.
struct Running(Child);

impl Running {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn height(client: &RpcClient) -> Option<u64> {
    Some(client.tip().await.ok()?.height)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_restarts_from_its_data_dir_without_loss() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    // A fixed RPC port (free a moment ago), since the CLI finds the node at the address in its config.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let status = Command::new(env!("CARGO_BIN_EXE_coin-node"))
        .args(["init", "--listen", "127.0.0.1:0", "--rpc"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&data)
        .status()
        .unwrap();
    assert!(status.success());
    let (mut child, rpc) = spawn(&data);
    let cookie = DataDir::new(&data).read_cookie().unwrap();
    let client = RpcClient::new(rpc, Some(&cookie)).unwrap();
    wait_for(90, "height 5", || async {
        height(&client).await.is_some_and(|h| h >= 5)
    })
    .await;
    let Tip { height: before, id } = client.tip().await.unwrap();
    // The CLI speaks the same typed API: `status` and `wallet balance` print its answers as JSON.
    let cli = |command: &str, sub: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_coin-node"))
            .args([command, "--data-dir"])
            .arg(&data)
            .args(sub)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let status = cli("status", &[]);
    assert!(status["height"].as_u64().unwrap() >= before, "{status}");
    let balance = cli("wallet", &["balance"]);
    assert_eq!(balance["address"], status["wallet"], "{balance}");
    assert!(
        balance["units"].as_u64().unwrap() > 0,
        "the miner's coinbases pay its wallet: {balance}"
    );
    child.kill(); // SIGKILL on Unix.

    let (mut child, rpc) = spawn(&data);
    let cookie = DataDir::new(&data).read_cookie().unwrap();
    let client = RpcClient::new(rpc, Some(&cookie)).unwrap();
    wait_for(30, "the restarted node's RPC", || async {
        height(&client).await.is_some()
    })
    .await;
    let after = height(&client).await.unwrap();
    assert!(after >= before, "height went from {before} to {after}");
    let client = &client;
    let block = |h| async move { client.block(BlockRef::Height(h)).await.unwrap().unwrap() };
    assert_eq!(
        block(before).await.id,
        id,
        "the block at the old tip height changed"
    );
    // Intact: every block links to the one below it.
    let mut parent = block(0).await.id;
    for h in 1..=before {
        let at = block(h).await;
        assert_eq!(at.parent, parent, "broken link at height {h}");
        parent = at.id;
    }
    child.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_refuses_requests_without_the_cookie_and_answers_bad_ones_with_errors() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("n"));
    let mut options = NodeOptions::new(data.clone(), params());
    options.rpc = Some("127.0.0.1:0".parse().unwrap());
    let node = CoinNode::start(options).await.unwrap();
    let rpc = node.rpc_addr().unwrap();

    let anonymous = RpcClient::new(rpc, None).unwrap();
    let refused = anonymous.status().await.unwrap_err();
    assert!(refused.to_string().contains("401"), "{refused}");
    assert_eq!(ErrorCode::of(&refused), None, "refused before any JSON-RPC");
    let wrong = RpcClient::new(rpc, Some("00")).unwrap();
    assert!(wrong.status().await.is_err());

    let client = RpcClient::new(rpc, Some(&data.read_cookie().unwrap())).unwrap();
    let status = client.status().await.unwrap();
    assert_eq!((status.height, status.peer_id), (0, node.api().node().peer_id()));
    // The keys on the wire are an interface scripts rely on: ids are strings, as `Display` prints them.
    let raw = client.call("tip", vec![]).await.unwrap();
    assert_eq!(raw["height"], 0);
    assert_eq!(raw["id"].as_str(), Some(status.tip.to_string().as_str()), "{raw}");
    let code = |e: ClientError| e.code().unwrap_or_else(|| panic!("not a JSON-RPC error: {e}"));
    let untyped = |method: &'static str, params: Vec<serde_json::Value>| {
        let client = &client;
        async move { code(client.call(method, params).await.unwrap_err()) }
    };
    assert_eq!(untyped("no_such_method", vec![]).await, ErrorCode::MethodNotFound);
    assert_eq!(
        untyped("block", vec![json!("not a hash")]).await,
        ErrorCode::InvalidParams
    );
    assert_eq!(untyped("balance", vec![]).await, ErrorCode::InvalidParams);
    let typed = |raw: &str| {
        let (client, raw) = (&client, raw.to_string());
        async move { ErrorCode::of(&client.send_raw_transaction(raw).await.unwrap_err()) }
    };
    assert_eq!(typed("zz").await, Some(ErrorCode::InvalidParams), "not hex");
    assert_eq!(
        typed("00").await,
        Some(ErrorCode::InvalidParams),
        "not a transaction"
    );
    let huge = "00".repeat(2 * 1024 * 1024);
    assert!(
        client.send_raw_transaction(huge).await.is_err(),
        "oversized body accepted"
    );
    // Still serving.
    assert_eq!(client.tip().await.unwrap().height, 0);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_prints_every_figure_as_json() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_coin-node"))
        .args([
            "bench",
            "--nodes",
            "3",
            "--duration",
            "5",
            "--block-time",
            "1",
            "--blocks",
            "50",
            "--txs-per-block",
            "5",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(std::time::Duration::from_secs(300), child.wait_with_output())
        .await
        .expect("bench finished within 300 s")
        .unwrap();
    assert!(output.status.success(), "bench failed");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for key in [
        "tx_confirmed_per_sec",
        "tx_confirmed",
        "tx_window_secs",
        "tx_bound_per_sec",
        "max_block_bytes",
        "sync_blocks_per_sec",
        "connect_blocks_per_sec",
        "sync_over_connect",
        "idle_rss_bytes",
        "block_relay_bytes_over_block_bytes",
        "blocks_relayed",
        "blocks_rebuilt",
        "tx_accepted_per_sec",
    ] {
        let value = report[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing in {report}"));
        assert!(value > 0.0, "{key} = {value} in {report}");
    }
    assert_eq!(report["chain_blocks"], 50);
    assert!(report["idle_rss_source"].as_str().unwrap().contains("/proc/"));
}
