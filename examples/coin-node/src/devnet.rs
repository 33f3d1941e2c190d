//! `coin-node devnet`: a local network in one process over real QUIC on 127.0.0.1.
//!
//! Nodes start in temporary data dirs; under proof of work the first two mine (ASERT tunes difficulty to
//! this machine's CPU), under BFT the first four are the validators (`--consensus bft`). The genesis
//! faucet funds every wallet, then wallets pay each other at random; one node starts late and catches
//! up through headers-first sync (under BFT, towards the validators' finality certificates). Progress is
//! printed every few seconds, a summary at the end: under BFT a payment counts as confirmed once its
//! block is final.
// The devnet is driven by the wall clock (its duration, its status lines); no app logic lives here.
#![allow(clippy::disallowed_methods)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use meshwork_consensus::genesis_key;
use meshwork_ledger::{Amount, TxId, TxOut};
use tokio::time::Instant;

use crate::api::NodeApi;
use crate::config::{ConsensusParams, DataDir, NetworkParams, unix_now};
use crate::node::{CoinNode, NodeOptions, StartError};
use crate::wallet;

/// What `devnet` runs.
#[derive(Clone, Copy, Debug)]
pub struct DevnetOptions {
    /// Nodes in all (the last one starts late). At least 2.
    pub nodes: usize,
    /// Seconds to run; 0: until Ctrl-C.
    pub duration: u64,
    /// How many of the nodes mine (one thread each).
    pub miners: usize,
    /// Seconds between progress lines.
    pub report_every: u64,
    /// Serve the first node's block explorer here (off: `None`).
    pub explorer: Option<SocketAddr>,
    /// Proof of work or BFT.
    pub consensus: DevnetConsensus,
}

/// The devnet's consensus.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DevnetConsensus {
    /// `miners` nodes mine.
    #[default]
    Pow,
    /// The first four nodes (three of a four-node devnet) are Simplex validators; nobody mines.
    Bft,
}

/// A tiny deterministic RNG for the demo's choices (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1) as u64) as usize
    }
}

/// Figures of a finished devnet.
#[derive(Debug, Default)]
pub struct Summary {
    /// Tip height of each node.
    pub heights: Vec<u64>,
    /// Whether every node has the same tip.
    pub tips_agree: bool,
    /// Payments sent.
    pub sent: usize,
    /// Payments confirmed on the first node (under BFT: in a final block).
    pub confirmed: usize,
    /// Seconds run.
    pub seconds: f64,
    /// Under BFT, the final height on each node.
    pub final_heights: Vec<Option<u64>>,
    /// The consensus run.
    pub consensus: DevnetConsensus,
}

impl Summary {
    /// The summary line `coin-node devnet` prints.
    pub fn line(&self) -> String {
        let finals = match self.consensus {
            DevnetConsensus::Pow => String::new(),
            DevnetConsensus::Bft => format!(", final heights {:?}", self.final_heights),
        };
        format!(
            "devnet summary: {:.0}s, heights {:?}{finals}, tips agree: {}, payments sent {}, confirmed {}",
            self.seconds, self.heights, self.tips_agree, self.sent, self.confirmed
        )
    }
}

pub(crate) async fn start(
    dir: &std::path::Path,
    i: usize,
    (params, consensus): (NetworkParams, &ConsensusParams),
    bootstrap: &[NodeApi],
    mine: bool,
    explorer: Option<SocketAddr>,
) -> Result<CoinNode, StartError> {
    let mut options = NodeOptions::new(DataDir::new(dir.join(format!("node{i}"))), params);
    options.consensus = consensus.clone();
    options.bootstrap = bootstrap
        .iter()
        .map(|api| (api.node().peer_id(), api.node().local_addr()))
        .collect();
    options.mine_threads = usize::from(mine);
    options.seed = i as u64 + 1;
    options.loopback_devnet = true;
    options.explorer = explorer;
    CoinNode::start(options).await
}

async fn progress(started: Instant, nodes: &[CoinNode]) -> String {
    let mut heights = Vec::new();
    let mut peers = Vec::new();
    let mut pools = Vec::new();
    let mut balances = Vec::new();
    let mut skipped = Vec::new();
    let first = &nodes[0];
    for node in nodes {
        match node.api().status().await {
            Ok(status) => {
                heights.push(status.height.to_string());
                peers.push(status.peers.to_string());
                pools.push(status.mempool.to_string());
                if let Some(view) = status.view {
                    skipped.push(view.saturating_sub(status.height + 1).to_string());
                }
            }
            Err(_) => heights.push("-".into()),
        }
        let balance = first
            .api()
            .balance(node.api().wallet().peer_id())
            .await
            .unwrap_or_default();
        balances.push(format!("{:.2}", balance.units() as f64 / Amount::COIN as f64));
    }
    let skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!(" | skipped views {}", skipped.join(" "))
    };
    format!(
        "[{:>4.0}s] heights {} | peers {} | mempool {} | balances {}{skipped}",
        started.elapsed().as_secs_f64(),
        heights.join(" "),
        peers.join(" "),
        pools.join(" "),
        balances.join(" ")
    )
}

/// Runs the devnet and returns its summary.
pub async fn run(options: DevnetOptions) -> Result<Summary, StartError> {
    let n = options.nodes.max(2);
    let dir = tempfile::tempdir().map_err(|source| crate::config::ConfigError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let params = NetworkParams::devnet(unix_now());
    let started = Instant::now();
    let consensus = match options.consensus {
        DevnetConsensus::Pow => ConsensusParams::Pow,
        DevnetConsensus::Bft => ConsensusParams::Bft {
            validators: (0..4.min(n - 1))
                .map(|i| DataDir::new(dir.path().join(format!("node{i}"))).node_id())
                .collect::<Result<_, _>>()?,
        },
    };
    let miners = if consensus == ConsensusParams::Pow {
        options.miners.min(n - 1)
    } else {
        0
    };
    match consensus.validators() {
        Some(validators) => eprintln!(
            "devnet: {n} nodes on 127.0.0.1 (QUIC), Simplex BFT with {} validators, data in {}",
            validators.len(),
            dir.path().display()
        ),
        None => eprintln!(
            "devnet: {n} nodes on 127.0.0.1 (QUIC), {miners} mining, data in {}",
            dir.path().display()
        ),
    }
    let net = (params, &consensus);
    let mut nodes: Vec<CoinNode> = Vec::new();
    for i in 0..n - 1 {
        let seeds: Vec<NodeApi> = nodes.iter().take(2).map(|n| n.api().clone()).collect();
        let explorer = options.explorer.filter(|_| i == 0);
        nodes.push(start(dir.path(), i, net, &seeds, i < miners, explorer).await?);
    }
    for (i, node) in nodes.iter().enumerate() {
        eprintln!(
            "  node{i} {} at {}",
            node.api().node().peer_id().short(),
            node.api().node().local_addr()
        );
    }
    if let Some(addr) = nodes[0].explorer_addr() {
        eprintln!("  explorer (node0): http://{addr}/");
    }
    let late_at = if options.duration == 0 {
        30
    } else {
        (options.duration / 3).max(10)
    };
    let faucet = genesis_key();
    let mut rng = Rng(unix_now() | 1);
    let mut funded = false;
    let mut sent: Vec<TxId> = Vec::new();
    let mut confirmed: HashSet<TxId> = HashSet::new();
    let mut last_report = Instant::now();
    let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
    loop {
        let elapsed = started.elapsed().as_secs();
        if options.duration > 0 && elapsed >= options.duration {
            break;
        }
        if nodes.len() < n && elapsed >= late_at {
            let seeds: Vec<NodeApi> = nodes.iter().skip(1).take(1).map(|n| n.api().clone()).collect();
            let node = start(dir.path(), n - 1, net, &seeds, false, None).await?;
            eprintln!(
                "  node{} {} joins late at height 0",
                n - 1,
                node.api().node().peer_id().short()
            );
            nodes.push(node);
        }
        // Fund every wallet from the genesis faucet once it is spendable; then random payments.
        let api = nodes[0].api();
        if !funded {
            let coins = api.spendable(faucet.peer_id()).await.unwrap_or_default();
            if !coins.is_empty() {
                let payments = (0..n)
                    .map(|i| TxOut {
                        amount: Amount::from_coins(5),
                        owner: wallet_of(dir.path(), i),
                    })
                    .collect();
                if let Ok(tx) = wallet::pay_many(&faucet, coins, payments, Amount::from_units(10_000)) {
                    if let Ok(txid) = api.submit_tx(tx).await {
                        eprintln!(
                            "  faucet funds {n} wallets with 5 coins each (tx {})",
                            short(&txid)
                        );
                        funded = true;
                    }
                }
            }
        } else {
            let from = rng.below(nodes.len());
            let to = wallet_of(dir.path(), rng.below(n));
            let payer = nodes[from].api();
            let coins = payer
                .spendable(payer.wallet().peer_id())
                .await
                .unwrap_or_default();
            let amount = Amount::from_units(Amount::COIN / 10 * (1 + rng.below(10) as u64));
            if let Ok(tx) = wallet::pay(payer.wallet(), coins, to, amount, Amount::from_units(1_000)) {
                if let Ok(txid) = payer.submit_tx(tx).await {
                    sent.push(txid);
                }
            }
        }
        if last_report.elapsed() >= Duration::from_secs(options.report_every) {
            last_report = Instant::now();
            eprintln!("{}", progress(started, &nodes).await);
            // Checked as the run goes: a payment is looked up among the last blocks only
            // (`TX_SCAN_DEPTH`), and BFT makes many a second.
            note_confirmed(nodes[0].api(), options.consensus, &sent, &mut confirmed).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(700)) => {}
            _ = &mut ctrl_c => break,
        }
    }
    eprintln!("{}", progress(started, &nodes).await);
    let mut summary = Summary {
        sent: sent.len(),
        seconds: started.elapsed().as_secs_f64(),
        consensus: options.consensus,
        ..Summary::default()
    };
    // Let the last blocks reach everyone before comparing tips. Under BFT blocks come faster than the
    // tips can be read, so the nodes agree if they hold the same block at the lowest tip.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut tips = Vec::new();
        for node in &nodes {
            tips.push(node.api().tip().await.ok());
        }
        summary.heights = tips.iter().map(|t| t.map_or(0, |t| t.0)).collect();
        summary.tips_agree = match options.consensus {
            DevnetConsensus::Pow => tips.windows(2).all(|w| w[0] == w[1]),
            DevnetConsensus::Bft => same_block_at_lowest_tip(&nodes, &summary.heights).await,
        };
        if summary.tips_agree || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for node in &nodes {
        let status = node.api().status().await.ok();
        summary.final_heights.push(status.and_then(|s| s.final_height));
    }
    note_confirmed(nodes[0].api(), options.consensus, &sent, &mut confirmed).await;
    summary.confirmed = confirmed.len();
    for node in nodes {
        node.shutdown().await;
    }
    Ok(summary)
}

/// Adds to `confirmed` the payments of `sent` that `api`'s node holds confirmed: in a block of the best
/// chain under proof of work, in a final block under BFT.
async fn note_confirmed(
    api: &NodeApi,
    consensus: DevnetConsensus,
    sent: &[TxId],
    confirmed: &mut HashSet<TxId>,
) {
    let waiting: Vec<TxId> = sent
        .iter()
        .filter(|txid| !confirmed.contains(*txid))
        .copied()
        .collect();
    for txid in waiting {
        if let Ok(Some(view)) = api.transaction(txid).await {
            let done = match consensus {
                DevnetConsensus::Pow => view.status == crate::api::TxStatus::Confirmed,
                DevnetConsensus::Bft => view.is_final,
            };
            if done {
                confirmed.insert(txid);
            }
        }
    }
}

/// Whether every node holds the same block at the lowest of their tips.
async fn same_block_at_lowest_tip(nodes: &[CoinNode], heights: &[u64]) -> bool {
    let Some(low) = heights.iter().min().copied() else {
        return true;
    };
    let mut ids = Vec::new();
    for node in nodes {
        ids.push(
            node.api()
                .block_at(low)
                .await
                .ok()
                .flatten()
                .map(|block| block.id),
        );
    }
    ids[0].is_some() && ids.windows(2).all(|w| w[0] == w[1])
}

fn short(txid: &TxId) -> String {
    txid.to_string().chars().take(12).collect()
}

/// The wallet address of devnet node `i` (its key is created at node start; created here if earlier).
fn wallet_of(dir: &std::path::Path, i: usize) -> meshwork_identity::PeerId {
    let data = DataDir::new(dir.join(format!("node{i}")));
    let path = data.wallet_key();
    if !path.exists() {
        let _ = std::fs::create_dir_all(data.path());
        let _ = meshwork_identity::Keypair::generate(&mut rand_core::OsRng).save(&path);
    }
    meshwork_identity::Keypair::load(&path).map_or_else(|_| genesis_key().peer_id(), |key| key.peer_id())
}
