//! Parts 2 and 3 of `coin-node bench`: syncing a built chain over QUIC against the ledger's own
//! connect rate, and the idle memory of a `coin-node run` process.

use super::*;
use crate::rpc::CoinRpcClient;

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

pub(super) async fn chain_parts(options: &BenchOptions, report: &mut BenchReport) -> Result<(), BenchError> {
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
        consensus: crate::config::ConsensusParams::Pow,
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
        let tip = client.tip().await.ok()?;
        (tip.height >= blocks).then_some(())
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
