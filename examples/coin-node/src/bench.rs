//! `coin-node bench`: throughput, sync speed and idle memory of the coin node, measured in one run.
//!
//! 1. **Confirmed transactions per second.** A devnet of `nodes` in-process nodes on 127.0.0.1 over real
//!    QUIC ([`devnet`]'s machinery), `miners` of them mining with ASERT aiming at
//!    `block_time`. The genesis faucet splits its coin among the wallets; then every wallet submits
//!    transactions to its own node as fast as the mempool takes them (each spends one coin, chained
//!    spends of unconfirmed outputs included, and splits it in two) for `duration` seconds, at most
//!    `tx_rate` a second in all: gossip's per-peer rate limit (200 broadcast messages a second) bans a
//!    peer that relays more, and every transaction crosses every link. Counted: the
//!    transfers in the blocks of the chain every node agrees on at the end, above the tip at the start,
//!    over the seconds from the start until every node agrees. The bound is `max_block_bytes` (and
//!    `MAX_BLOCK_TXS`) per block interval.
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
    /// Transactions per second the wallets submit together, at most (gossip bans a peer that relays more
    /// than `rate_per_sec` messages a second, 200 by default).
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
    /// The cap on submissions (all wallets together).
    pub tx_offered_per_sec: f64,
    /// Gossip's per-peer rate limit (broadcast messages a second; a peer over it is penalised, then
    /// banned): every transaction crosses every link, so this bounds the network's rate.
    pub gossip_rate_limit_per_sec: f64,
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

/// Builds `blocks` blocks of `per_block` transfers on a redb chain at `db` and returns them.
fn build_chain(
    params: NetworkParams,
    db: &Path,
    blocks: u64,
    per_block: usize,
) -> Result<Vec<Block>, BenchError> {
    let config = params.chain_config();
    let now = unix_now();
    let mut chain = Chain::open(RedbStore::open(db)?, config.clone(), genesis_block(&config), now)?;
    let key = genesis_key();
    let mut coins = VecDeque::from([genesis_coin(params)]);
    let mut built = Vec::new();
    for height in 1..=blocks {
        let mut added = 0;
        while added < per_block {
            let Some(coin) = coins.pop_front() else { break };
            let Some((tx, outputs)) = split(&key, coin) else {
                continue;
            };
            chain.submit_tx(tx, now)?;
            coins.extend(outputs);
            added += 1;
        }
        // Twice the target interval per block: behind schedule, so the target stays at the limit.
        let time = params.genesis_time + 2 * height * params.target_block_time;
        let template = chain.block_template(key.peer_id(), time)?;
        if template.txs.len() != added + 1 {
            return Err(BenchError::Failed(format!(
                "block {height}: template holds {} transactions, expected {}",
                template.txs.len(),
                added + 1
            )));
        }
        let header = mine(template.header, 1, u64::MAX)
            .ok_or_else(|| BenchError::Failed("no nonce found at the easiest target".into()))?;
        let block = Block { header, ..template };
        let outcome = chain.submit_block(block.clone(), now)?;
        if outcome.tip.height != height {
            return Err(BenchError::Failed(format!(
                "generated block {height} not connected: {:?}",
                outcome.status
            )));
        }
        built.push(block);
    }
    drop(chain.into_store());
    Ok(built)
}

/// Connects `blocks` into a fresh chain on redb at `db`; returns the seconds it took.
fn connect_chain(params: NetworkParams, db: &Path, blocks: &[Block]) -> Result<f64, BenchError> {
    let config = params.chain_config();
    let now = unix_now();
    let mut chain = Chain::open(RedbStore::open(db)?, config.clone(), genesis_block(&config), now)?;
    let started = Instant::now();
    for block in blocks {
        chain.submit_block(block.clone(), now)?;
    }
    let seconds = secs(started);
    let expected = blocks.len() as u64;
    if chain.tip().height != expected {
        return Err(BenchError::Failed(format!(
            "connected chain at height {}, expected {expected}",
            chain.tip().height
        )));
    }
    drop(chain.into_store());
    Ok(seconds)
}

async fn chain_parts(options: &BenchOptions, report: &mut BenchReport) -> Result<(), BenchError> {
    let dir = tempfile::tempdir()?;
    let blocks = options.blocks.max(1);
    let step = 2 * NetworkParams::test(0).target_block_time;
    let params = NetworkParams::test(unix_now().saturating_sub(step * (blocks + 1) + 60));
    let seed_dirs: Vec<PathBuf> = (0..SYNC_PEERS)
        .map(|i| dir.path().join(format!("seed{i}")))
        .collect();
    for path in &seed_dirs {
        std::fs::create_dir_all(path)?;
    }
    eprintln!(
        "bench: building {blocks} blocks of {} transfers each",
        options.txs_per_block
    );
    let chain = {
        let db = DataDir::new(&seed_dirs[0]).chain_db();
        let per_block = options.txs_per_block;
        tokio::task::spawn_blocking(move || build_chain(params, &db, blocks, per_block))
            .await
            .map_err(|e| BenchError::Failed(e.to_string()))??
    };
    report.chain_blocks = blocks;
    report.chain_txs = chain.iter().map(|b| b.txs.len() as u64 - 1).sum();
    report.chain_bytes = chain.iter().map(|b| b.encoded_len() as u64).sum();

    eprintln!("bench: connecting them into a fresh chain on redb (in-process)");
    let connect_db = DataDir::new(&seed_dirs[1]).chain_db();
    report.connect_secs = tokio::task::spawn_blocking(move || connect_chain(params, &connect_db, &chain))
        .await
        .map_err(|e| BenchError::Failed(e.to_string()))??;
    report.connect_blocks_per_sec = rate(blocks as f64, report.connect_secs);
    for path in &seed_dirs[2..] {
        std::fs::copy(
            DataDir::new(&seed_dirs[1]).chain_db(),
            DataDir::new(path).chain_db(),
        )?;
    }

    let mut seeds: Vec<CoinNode> = Vec::new();
    for (i, path) in seed_dirs.iter().enumerate() {
        let contacts: Vec<&CoinNode> = seeds.iter().take(1).collect();
        seeds.push(CoinNode::start(node_options(path, params, &contacts, i as u64 + 1)).await?);
    }
    let result = sync_and_idle(options, dir.path(), params, &seeds, report).await;
    for node in seeds {
        node.shutdown().await;
    }
    result
}

async fn sync_and_idle(
    options: &BenchOptions,
    dir: &Path,
    params: NetworkParams,
    seeds: &[CoinNode],
    report: &mut BenchReport,
) -> Result<(), BenchError> {
    let blocks = report.chain_blocks;
    let limit = Duration::from_secs(120 + blocks / 5);
    eprintln!(
        "bench: a fresh node syncs them from {} peers over QUIC",
        seeds.len()
    );
    let contacts: Vec<&CoinNode> = seeds.iter().collect();
    let started = Instant::now();
    let fresh = CoinNode::start(node_options(&dir.join("fresh"), params, &contacts, 100)).await?;
    let synced = poll(limit, "the fresh node to sync", || async {
        let (height, _) = fresh.api().tip().await.ok()?;
        (height >= blocks).then_some(())
    })
    .await;
    report.sync_secs = secs(started);
    fresh.shutdown().await;
    synced?;
    report.sync_peers = seeds.len();
    report.sync_blocks_per_sec = rate(blocks as f64, report.sync_secs);
    report.sync_over_connect = rate(report.sync_blocks_per_sec, report.connect_blocks_per_sec);

    let Some(exe) = &options.exe else {
        report.idle_rss_source = "skipped (no executable)".into();
        return Ok(());
    };
    eprintln!("bench: a `coin-node run` process syncs, then idles {QUIET_SECS}s");
    let data = DataDir::new(dir.join("idle"));
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    data.init(&FileConfig {
        network: params,
        listen: loopback,
        rpc: loopback,
    })?;
    let bootstrap = seeds
        .iter()
        .map(|n| format!("{}@{}", n.api().node().peer_id(), n.api().node().local_addr()));
    let mut command = Command::new(exe);
    command.arg("run").arg("--data-dir").arg(data.path());
    for peer in bootstrap {
        command.arg("--bootstrap").arg(peer);
    }
    let mut child = ChildGuard(command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?);
    let pid = child.0.id();
    let stdout = child
        .0
        .stdout
        .take()
        .ok_or_else(|| BenchError::Failed("no stdout from the child".into()))?;
    let line = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        }),
    )
    .await
    .map_err(|_| BenchError::Failed("the child printed nothing".into()))?
    .map_err(|e| BenchError::Failed(e.to_string()))??;
    let rpc: SocketAddr = line
        .split("rpc on ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|addr| addr.trim().parse().ok())
        .ok_or_else(|| BenchError::Failed(format!("unexpected first line from the child: {line}")))?;
    let client =
        RpcClient::new(rpc, Some(&data.read_cookie()?)).map_err(|e| BenchError::Failed(e.to_string()))?;
    poll(limit, "the child to sync", || async {
        let tip = client.call("tip", Vec::new()).await.ok()?;
        (tip["height"].as_u64()? >= blocks).then_some(())
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(QUIET_SECS)).await;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    report.idle_rss_bytes = proc_kib(&status, "VmRSS:") * 1024;
    report.idle_peak_rss_bytes = proc_kib(&status, "VmHWM:") * 1024;
    report.idle_rss_source = format!(
        "VmRSS of one `coin-node run` child process (/proc/{pid}/status), synced to {blocks} blocks from {} \
         peers, no mining, read after {QUIET_SECS}s quiet",
        seeds.len()
    );
    drop(child);
    Ok(())
}

/// A child process killed when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value of a `Name:   1234 kB` line of `/proc/<pid>/status`, in KiB.
fn proc_kib(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_default()
}

/// Submits splits of `coins` through `api`, at most `per_sec` a second, until `until`; returns how many
/// the mempool took.
async fn submitter(
    api: NodeApi,
    mut coins: VecDeque<(OutPoint, Amount)>,
    per_sec: f64,
    until: Instant,
) -> u64 {
    let mut sent = 0;
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sec.max(0.1)));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < until {
        pace.tick().await;
        let Some(coin) = coins.pop_front() else {
            break;
        };
        let Some((tx, outputs)) = split(api.wallet(), coin) else {
            continue;
        };
        match api.submit_tx(tx).await {
            Ok(_) => {
                sent += 1;
                coins.extend(outputs);
            }
            Err(ApiError::Rejected(_)) => {
                // Full or stale: try this coin again later.
                coins.push_back(coin);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => break,
        }
    }
    sent
}

async fn tx_throughput(options: &BenchOptions, report: &mut BenchReport) -> Result<(), BenchError> {
    let dir = tempfile::tempdir()?;
    let n = options.nodes.max(2);
    let miners = options.miners.clamp(1, n);
    let mut params = NetworkParams::devnet(unix_now());
    params.target_block_time = options.block_time.max(1);
    eprintln!(
        "bench: devnet of {n} nodes ({miners} mining, {}s blocks), wallets submit for {}s",
        params.target_block_time, options.duration
    );
    let mut nodes: Vec<CoinNode> = Vec::new();
    for i in 0..n {
        let seeds: Vec<NodeApi> = nodes.iter().take(2).map(|n| n.api().clone()).collect();
        nodes.push(devnet::start(dir.path(), i, params, &seeds, i < miners).await?);
    }
    let result = measure_tx(options, params, &nodes, report).await;
    for node in nodes {
        node.shutdown().await;
    }
    result
}

async fn measure_tx(
    options: &BenchOptions,
    params: NetworkParams,
    nodes: &[CoinNode],
    report: &mut BenchReport,
) -> Result<(), BenchError> {
    let n = nodes.len();
    let first = nodes[0].api();
    let faucet = genesis_key();
    let limit = Duration::from_secs(120);
    // The faucet's coin matures; split it among the wallets (as many coins each as fit one transaction).
    let coins = poll(limit, "the faucet coin to mature", || async {
        let coins = first.spendable(faucet.peer_id()).await.ok()?;
        (!coins.is_empty()).then_some(coins)
    })
    .await?;
    let per_wallet = (1000 / n).min(64);
    let total: u64 = coins.iter().map(|(_, a)| a.units()).sum();
    let each = Amount::from_units(total.saturating_sub(FEE_UNITS) / (n * per_wallet + 1) as u64);
    let mut payments = Vec::new();
    for node in nodes {
        for _ in 0..per_wallet {
            payments.push(TxOut {
                amount: each,
                owner: node.api().wallet().peer_id(),
            });
        }
    }
    let fund = crate::wallet::pay_many(&faucet, coins, payments, Amount::from_units(FEE_UNITS))
        .map_err(|e| BenchError::Failed(e.to_string()))?;
    let fund_id = first.submit_tx(fund).await?;
    for node in nodes {
        poll(limit, "the funding transaction to reach every node", || async {
            node.api().transaction(fund_id).await.ok()?.map(|_| ())
        })
        .await?;
    }

    let started = Instant::now();
    let start_height = first.tip().await?.0;
    let until = started + Duration::from_secs(options.duration);
    let mut tasks = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let coins = (0..per_wallet)
            .map(|k| {
                let index = u32::try_from(i * per_wallet + k).unwrap_or_default();
                (OutPoint { txid: fund_id, index }, each)
            })
            .collect();
        let per_sec = options.tx_rate / n as f64;
        tasks.push(tokio::spawn(submitter(node.api().clone(), coins, per_sec, until)));
    }
    for task in tasks {
        report.tx_submitted += task.await.unwrap_or_default();
    }
    tokio::time::sleep_until(until).await;
    // The window closes when every node holds the chain up to the tip the first node had at the end.
    let end_height = first.tip().await?.0;
    let common = poll(
        Duration::from_secs(60),
        "every node to hold the blocks mined in the window",
        || async {
            let height = common_height(nodes, start_height).await?;
            (height >= end_height).then_some(height)
        },
    )
    .await;
    let common = match common {
        Ok(height) => height,
        Err(error) => {
            for (i, node) in nodes.iter().enumerate() {
                if let Ok(status) = node.api().status().await {
                    eprintln!(
                        "  node{i}: height {}, peers {}, mempool {}",
                        status.height, status.peers, status.mempool
                    );
                }
            }
            return Err(error);
        }
    };
    report.tx_window_secs = secs(started);
    let (count, bytes) = first
        .app()
        .with(move |s| -> Result<(u64, u64), ChainError> {
            let chain = s.chain();
            let (mut count, mut bytes) = (0, 0);
            for height in start_height + 1..=common {
                let Some(id) = chain.block_id_at_height(height) else {
                    continue;
                };
                if let Some(block) = chain.block(&id)? {
                    for tx in block.txs.iter().skip(1) {
                        count += 1;
                        bytes += tx.encoded_len() as u64;
                    }
                }
            }
            Ok((count, bytes))
        })
        .await
        .map_err(ApiError::from)??;
    let config = params.chain_config();
    report.tx_confirmed = count;
    report.tx_offered_per_sec = options.tx_rate;
    report.gossip_rate_limit_per_sec = meshwork_gossip::ScoreConfig::default().rate_per_sec;
    report.tx_confirmed_per_sec = rate(count as f64, report.tx_window_secs);
    report.tx_nodes = n;
    report.tx_miners = options.miners.clamp(1, n);
    report.tx_window_blocks = common.saturating_sub(start_height);
    report.block_time_target_secs = params.target_block_time;
    report.block_interval_observed_secs = rate(report.tx_window_secs, report.tx_window_blocks as f64);
    report.max_block_bytes = config.ledger.max_block_bytes;
    report.max_block_txs = MAX_BLOCK_TXS;
    report.avg_tx_bytes = rate(bytes as f64, count as f64);
    let per_block = rate(report.max_block_bytes as f64, report.avg_tx_bytes).min((MAX_BLOCK_TXS - 1) as f64);
    report.tx_bound_per_sec = rate(per_block, params.target_block_time as f64);
    Ok(())
}

/// The highest height (at least `floor`) at which every node's best chain has the same block.
async fn common_height(nodes: &[CoinNode], floor: u64) -> Option<u64> {
    let mut lowest = u64::MAX;
    for node in nodes {
        lowest = lowest.min(node.api().tip().await.ok()?.0);
    }
    let mut height = lowest;
    while height > floor {
        let mut ids = Vec::new();
        for node in nodes {
            ids.push(
                node.api()
                    .app()
                    .with(move |s| s.chain().block_id_at_height(height))
                    .await
                    .ok()?,
            );
        }
        if ids.windows(2).all(|w| w[0] == w[1]) {
            return Some(height);
        }
        height -= 1;
    }
    Some(floor)
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
