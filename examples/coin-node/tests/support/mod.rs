//! Shared helpers: start in-process networks over QUIC on 127.0.0.1, bounded waits.
#![allow(dead_code, clippy::unwrap_used, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use coin_node::app::RelayFilter;
use coin_node::config::{ConsensusParams, unix_now};
use coin_node::{CoinNode, DataDir, NetworkParams, NodeOptions};
use tempfile::TempDir;

/// Several tests at once would share two cores: they take turns.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Test network parameters with a genesis at the current time.
pub fn params() -> NetworkParams {
    NetworkParams::test(unix_now())
}

/// The data directory of node `i` in `dir`.
pub fn data_dir(dir: &TempDir, i: usize) -> DataDir {
    DataDir::new(dir.path().join(format!("n{i}")))
}

/// Starts node `i` in `dir`, bootstrapping from `seeds`.
pub async fn start(
    dir: &TempDir,
    i: usize,
    params: NetworkParams,
    seeds: &[&CoinNode],
    mine: bool,
    filter: Option<RelayFilter>,
) -> CoinNode {
    start_with(dir, i, params, ConsensusParams::Pow, seeds, mine, filter).await
}

/// Starts node `i` in `dir` under `consensus`, bootstrapping from `seeds`.
pub async fn start_with(
    dir: &TempDir,
    i: usize,
    params: NetworkParams,
    consensus: ConsensusParams,
    seeds: &[&CoinNode],
    mine: bool,
    filter: Option<RelayFilter>,
) -> CoinNode {
    let mut options = NodeOptions::new(data_dir(dir, i), params);
    options.consensus = consensus;
    options.bootstrap = seeds
        .iter()
        .map(|n| (n.api().node().peer_id(), n.api().node().local_addr()))
        .collect();
    options.mine_threads = usize::from(mine);
    options.seed = i as u64 + 1;
    options.loopback_devnet = true;
    if let Some(filter) = filter {
        options.relay_filter = filter;
    }
    CoinNode::start(options).await.unwrap()
}

/// The genesis faucet's coin (spendable with `meshwork_consensus::genesis_key`).
pub fn faucet_coin(params: NetworkParams) -> (meshwork_ledger::OutPoint, meshwork_ledger::Amount) {
    let config = params.chain_config();
    let genesis = meshwork_consensus::genesis_block(&config);
    let outpoint = meshwork_ledger::OutPoint {
        txid: genesis.txs[0].txid(),
        index: 0,
    };
    (outpoint, config.ledger.subsidy(0))
}

/// Polls `check` every 200 ms until it is true; panics with `what` after `secs` seconds.
pub async fn wait_for<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let result = tokio::time::timeout(Duration::from_secs(secs), async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(result.is_ok(), "timed out after {secs}s waiting for {what}");
}

/// Whether every node has the same tip.
pub async fn same_tip(nodes: &[&CoinNode]) -> bool {
    let mut tips = Vec::new();
    for node in nodes {
        tips.push(node.api().tip().await.ok());
    }
    tips.windows(2).all(|w| w[0] == w[1])
}

/// Whether `txid` is confirmed on every node.
pub async fn confirmed_everywhere(nodes: &[&CoinNode], txid: meshwork_ledger::TxId) -> bool {
    for node in nodes {
        match node.api().transaction(txid).await {
            Ok(Some(view)) if view.status == coin_node::api::TxStatus::Confirmed => {}
            _ => return false,
        }
    }
    true
}
