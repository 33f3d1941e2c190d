//! `coin-node bench`: throughput, sync speed and idle memory of the coin node, measured in one run.
//!
//! 1. **Confirmed transactions per second.** A devnet of `nodes` in-process nodes on 127.0.0.1 over real
//!    QUIC ([`devnet`]'s machinery), `miners` of them mining with ASERT aiming at
//!    `block_time`. The genesis faucet splits its coin among the wallets; then every wallet submits
//!    transactions to its own node as fast as the mempool takes them (each spends one coin, chained
//!    spends of unconfirmed outputs included, and splits it in two) for `duration` seconds, with no
//!    cap unless `tx_rate` sets one: gossip charges only wasted messages to a peer, never valid relay,
//!    so nothing bans a relay for its rate. Counted: the
//!    transfers in the blocks of the chain every node agrees on at the end, above the tip at the start,
//!    over the seconds from the start until every node agrees. The bound is `max_block_bytes` (and
//!    `MAX_BLOCK_TXS`) per block interval.
//!
//!    Where that window's CPU time went is [`CpuReport`]: measured by CPU clocks where the code may read
//!    one, counted in the pure cores and costed on this machine where it may not.
//! 2. **Sync against the ledger's own connect rate.** A chain of `blocks` blocks with `txs_per_block`
//!    transfers each is built in-process at the easiest target (timestamps behind schedule, so ASERT
//!    stays at the limit). (b) The same blocks are connected directly into a fresh `Chain` on redb
//!    (`Chain::submit_block`, no network): the ledger's own rate. (a) Three nodes holding that chain serve
//!    a fresh node, which syncs headers-first over QUIC; timed from its start to the tip.
//! 3. **Idle memory.** A `coin-node run` child process syncs the chain from those nodes, then stays quiet
//!    (no mining) for a few seconds; its `VmRSS` is read from `/proc/<pid>/status`.
// A benchmark measures wall time: the real clock is its subject (README.md, "Principles").
#![allow(clippy::disallowed_methods)]

use std::collections::VecDeque;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use meshwork_consensus::pow::mine;
use meshwork_consensus::{Chain, ChainError, genesis_block, genesis_key};
use meshwork_identity::Keypair;
use meshwork_ledger::{
    Amount, Block, MAX_BLOCK_TXS, MempoolError, OutPoint, RedbStore, StoreError, Transfer, TxOut,
};
use serde::Serialize;
use tokio::time::Instant;

use crate::api::{ApiError, NodeApi, txid_of};
use crate::client::RpcClient;
use crate::config::{ConfigError, DataDir, FileConfig, NetworkParams, unix_now};
use crate::devnet;
use crate::node::{CoinNode, NodeOptions, StartError};

mod cpu;
mod sync;
mod throughput;

pub use cpu::CpuReport;

use sync::chain_parts;
use throughput::tx_throughput;

/// The fee of every benchmark transaction, in units.
const FEE_UNITS: u64 = 1_000;

/// Nodes serving the chain to the syncing node.
const SYNC_PEERS: usize = 3;

/// Seconds the idle node stays quiet before its memory is read.
const QUIET_SECS: u64 = 5;

/// What `bench` runs.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Nodes of the throughput devnet (at least 2).
    pub nodes: usize,
    /// Of which mine (one thread each; at least 1).
    pub miners: usize,
    /// Seconds wallets submit transactions.
    pub duration: u64,
    /// The block interval ASERT aims at on the throughput devnet, in seconds.
    pub block_time: u64,
    /// Transactions per second the wallets submit together, at most (0: no cap, each wallet submits
    /// as fast as its node's mempool answers).
    pub tx_rate: f64,
    /// Blocks of the chain that is synced and connected.
    pub blocks: u64,
    /// Transfers in each of those blocks.
    pub txs_per_block: usize,
    /// The `coin-node` executable for the idle-memory child (`None`: skip that figure).
    pub exe: Option<PathBuf>,
}

/// Why the benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A node did not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// A data directory.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The chain.
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    /// The chain database.
    #[error("chain database: {0}")]
    Store(#[from] StoreError),
    /// The mempool refused a generated transaction.
    #[error("mempool: {0}")]
    Mempool(#[from] MempoolError),
    /// A node's API.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Files or the child process.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Something did not happen in time, or came out wrong.
    #[error("{0}")]
    Failed(String),
}

/// The figures, with units in the names.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BenchReport {
    /// Transfers confirmed on every node per second of the measured window.
    pub tx_confirmed_per_sec: f64,
    /// The cap on submissions (all wallets together; 0: none).
    pub tx_offered_per_sec: f64,
    /// Transfers the mempools accepted from the wallets per second of submission.
    pub tx_accepted_per_sec: f64,
    /// Peers the devnet's nodes banned from gossip during the run (all of them honest: 0 is right).
    pub gossip_bans: u64,
    /// Grafts the devnet's nodes sent that their announcers neither answered nor declined in time
    /// (each a point off an honest peer's gossip score: 0 is right).
    pub gossip_broken_promises: u64,
    /// Wasted gossip messages (duplicates on pruned links) beyond a peer's allowance that were
    /// charged, each a [`Penalty::Flood`](meshwork_gossip::Penalty::Flood) on an honest peer (0 is
    /// right; copies pushed before the peer heard of our `Prune` are dropped without charge).
    pub gossip_flood_penalties: u64,
    /// Grafts the devnet's nodes declined (their answer over the grafter's budget or dropped by a full
    /// send queue): the grafter asked another announcer at once, and blamed no one.
    pub gossip_declines: u64,
    /// Local transactions the nodes refused (to be submitted again) because the send queues to most of
    /// their gossip neighbours were full (`AppConfig::links_full_hold`): the back-pressure that paces
    /// the wallets to what the links carry.
    pub tx_refused_links_full: u64,
    /// Grafts the devnet's nodes sent: messages they heard announced but had not received in time
    /// from their parent on the message's tree, and asked an announcer for.
    pub gossip_grafts: u64,
    /// Full gossip copies the devnet's nodes received that they already held.
    pub gossip_duplicates: u64,
    /// Coin-protocol messages (gossip, sync, Kademlia) the devnet's nodes dropped because a peer's send
    /// queue or byte budget was full: the peer read slower than they sent.
    pub send_queue_drops: u64,
    /// Transactions left in each node's mempool when the window closed, summed: accepted, not yet
    /// confirmed.
    pub mempool_left: u64,
    /// Where the window's CPU time went ([`CpuReport`]; its keys are at this level in the JSON).
    #[serde(flatten)]
    pub cpu: CpuReport,
    /// Relayed transactions the devnet's nodes accepted into their mempools.
    pub tx_relayed_accepted: u64,
    /// Batches the nodes judged relayed transactions in (`AppConfig::validation_batch`).
    pub tx_relay_batches: u64,
    /// Relayed transactions whose signatures such a batch verified: over `tx_relayed_accepted`, the
    /// share of relayed signatures checked in batches rather than one at a time.
    pub tx_batch_verified: u64,
    /// Transfers the wallets had accepted by their nodes' mempools.
    pub tx_submitted: u64,
    /// Transfers in the agreed chain's blocks mined during the window.
    pub tx_confirmed: u64,
    /// The measured window: start of submission until every node agrees on the tip.
    pub tx_window_secs: f64,
    /// Nodes of the throughput devnet.
    pub tx_nodes: usize,
    /// Mining nodes (one thread each).
    pub tx_miners: usize,
    /// Blocks mined in the window.
    pub tx_window_blocks: u64,
    /// The block interval ASERT aims at.
    pub block_time_target_secs: u64,
    /// The window divided by its blocks.
    pub block_interval_observed_secs: f64,
    /// The consensus limit on an encoded block.
    pub max_block_bytes: usize,
    /// The consensus limit on transactions per block (coinbase included).
    pub max_block_txs: usize,
    /// Mean encoded size of the confirmed transfers.
    pub avg_tx_bytes: f64,
    /// What full blocks at the target interval would confirm: `min(max_block_bytes / avg_tx_bytes,
    /// max_block_txs - 1) / block_time_target_secs`.
    pub tx_bound_per_sec: f64,
    /// Sync bytes each relayed block cost its receiver (announcements, compact block, missing
    /// transactions, or the whole block) over the block's size, summed over the devnet's nodes for the
    /// whole run (funding included).
    pub block_relay_bytes_over_block_bytes: f64,
    /// Blocks received by relay, counted once per receiving node.
    pub blocks_relayed: u64,
    /// Of those, blocks rebuilt from a compact block and the mempool.
    pub blocks_rebuilt: u64,
    /// Transactions the rebuilds had to fetch because the mempool lacked them.
    pub block_txs_fetched: u64,
    /// Blocks of the synced chain.
    pub chain_blocks: u64,
    /// Transfers in it.
    pub chain_txs: u64,
    /// Its size encoded.
    pub chain_bytes: u64,
    /// Nodes the fresh node synced from.
    pub sync_peers: usize,
    /// From the fresh node's start to its tip at `chain_blocks`.
    pub sync_secs: f64,
    /// Blocks per second received and connected by the syncing node.
    pub sync_blocks_per_sec: f64,
    /// Connecting the same blocks into a fresh `Chain` on redb in-process.
    pub connect_secs: f64,
    /// The ledger's own connect rate.
    pub connect_blocks_per_sec: f64,
    /// `sync_blocks_per_sec / connect_blocks_per_sec`.
    pub sync_over_connect: f64,
    /// Resident memory of an idle, synced node.
    pub idle_rss_bytes: u64,
    /// Peak resident memory of that process (`VmHWM`).
    pub idle_peak_rss_bytes: u64,
    /// Where `idle_rss_bytes` comes from.
    pub idle_rss_source: String,
}

/// Runs every part and returns the figures.
pub async fn run(options: BenchOptions) -> Result<BenchReport, BenchError> {
    let mut report = BenchReport::default();
    chain_parts(&options, &mut report).await?;
    tx_throughput(&options, &mut report).await?;
    Ok(report)
}

fn secs(from: Instant) -> f64 {
    from.elapsed().as_secs_f64()
}

fn rate(count: f64, seconds: f64) -> f64 {
    if seconds > 0.0 { count / seconds } else { 0.0 }
}

/// Polls `check` every 20 ms until it returns `Some`; fails with `what` after `limit`.
async fn poll<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> Result<T, BenchError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() > deadline {
            return Err(BenchError::Failed(format!(
                "timed out after {}s waiting for {what}",
                limit.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn node_options(dir: &Path, params: NetworkParams, seeds: &[&CoinNode], seed: u64) -> NodeOptions {
    let mut options = NodeOptions::new(DataDir::new(dir), params);
    options.bootstrap = seeds
        .iter()
        .map(|n| (n.api().node().peer_id(), n.api().node().local_addr()))
        .collect();
    options.seed = seed;
    options.loopback_devnet = true;
    options
}

/// Splits `coin` (owned by `key`) in two halves paid back to `key`, less the fee.
fn split(key: &Keypair, coin: (OutPoint, Amount)) -> Option<(Transfer, [(OutPoint, Amount); 2])> {
    let rest = coin.1.units().checked_sub(FEE_UNITS)?;
    if rest < 4 * FEE_UNITS {
        return None;
    }
    let half = rest / 2;
    let amounts = [Amount::from_units(half), Amount::from_units(rest - half)];
    let outputs = amounts
        .iter()
        .map(|amount| TxOut {
            amount: *amount,
            owner: key.peer_id(),
        })
        .collect();
    let tx = Transfer::signed(&[(coin.0, coin.1, key)], outputs);
    let txid = txid_of(&tx);
    let out = |index: u32| OutPoint { txid, index };
    Some((tx, [(out(0), amounts[0]), (out(1), amounts[1])]))
}

/// The genesis coin of `params`' chain.
fn genesis_coin(params: NetworkParams) -> (OutPoint, Amount) {
    let config = params.chain_config();
    let genesis = genesis_block(&config);
    (
        OutPoint {
            txid: genesis.txs[0].txid(),
            index: 0,
        },
        config.ledger.subsidy(0),
    )
}

/// The report as an aligned table.
pub fn table(report: &BenchReport) -> String {
    let value = serde_json::to_value(report).unwrap_or_default();
    let mut out = String::new();
    if let Some(map) = value.as_object() {
        let width = map.keys().map(String::len).max().unwrap_or(0);
        for (key, value) in map {
            let text = match value {
                serde_json::Value::Number(n) if n.is_f64() => {
                    format!("{:.3}", n.as_f64().unwrap_or_default())
                }
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push_str(&format!("{key:<width$}  {text}\n"));
        }
    }
    out
}
