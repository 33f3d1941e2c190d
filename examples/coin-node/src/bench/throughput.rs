//! Part 1 of `coin-node bench`: confirmed transactions per second on an in-process devnet.

use super::*;
use crate::node::App;
use meshwork_wire::Protocol;

/// Submits splits of `coins` through `api` until `until`, at most `per_sec` a second (0: as fast as the
/// node answers); returns how many the mempool took, and the CPU time spent building and signing them.
async fn submitter(
    api: NodeApi,
    mut coins: VecDeque<(OutPoint, Amount)>,
    per_sec: f64,
    until: Instant,
) -> (u64, Duration) {
    let (mut sent, mut cpu) = (0, Duration::ZERO);
    let mut pace = (per_sec > 0.0).then(|| {
        let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sec.max(0.1)));
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        pace
    });
    // A transaction the node asked to have again once its links drain (`ApiError::LinksFull`).
    let mut held = None;
    while Instant::now() < until {
        let (coin, tx, outputs) = match held.take() {
            Some(again) => again,
            None => {
                if let Some(pace) = pace.as_mut() {
                    pace.tick().await;
                }
                let Some(coin) = coins.pop_front() else {
                    break;
                };
                // No await inside: the task stays on one thread while its clock runs.
                let start = meshwork_node::thread_cpu_time().unwrap_or_default();
                let made = split(api.wallet(), coin);
                cpu += meshwork_node::thread_cpu_time()
                    .unwrap_or_default()
                    .saturating_sub(start);
                let Some((tx, outputs)) = made else {
                    continue;
                };
                (coin, tx, outputs)
            }
        };
        match api.submit_tx(tx.clone()).await {
            Ok(_) => {
                sent += 1;
                coins.extend(outputs);
            }
            Err(ApiError::Rejected(_)) => {
                // Full or stale: try this coin again later.
                coins.push_back(coin);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(ApiError::LinksFull { .. }) => {
                held = Some((coin, tx, outputs));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => break,
        }
    }
    (sent, cpu)
}

pub(super) async fn tx_throughput(
    options: &BenchOptions,
    report: &mut BenchReport,
) -> Result<(), BenchError> {
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
        nodes.push(
            devnet::start(
                dir.path(),
                i,
                (params, &crate::config::ConsensusParams::Pow),
                &seeds,
                i < miners,
                None,
            )
            .await?,
        );
    }
    let result = measure_tx(options, params, &nodes, report).await;
    for node in nodes {
        node.shutdown().await;
    }
    let (work, wallets) = result?;
    // The unit costs, measured with the nodes gone so that nothing else runs on the machine's cores.
    let header = genesis_block(&params.chain_config()).header;
    let gossip_bytes = report.avg_tx_bytes as usize + GOSSIP_CONTENT_OVERHEAD;
    let costs = tokio::task::spawn_blocking(move || cpu::measure_costs(header, n, gossip_bytes))
        .await
        .map_err(|e| BenchError::Failed(format!("measuring unit costs: {e}")))?;
    report.cpu = CpuReport::new(work, wallets, costs);
    Ok(())
}

/// Bytes a gossip message's signature covers beyond its payload: origin, topic and sequence number.
const GOSSIP_CONTENT_OVERHEAD: usize = 32 + 32 + 8;

async fn measure_tx(
    options: &BenchOptions,
    params: NetworkParams,
    nodes: &[CoinNode],
    report: &mut BenchReport,
) -> Result<(cpu::Work, Duration), BenchError> {
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

    let before = cpu::Work::read(nodes).await?;
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
    let mut wallets = Duration::ZERO;
    for task in tasks {
        let (sent, cpu) = task.await.unwrap_or_default();
        report.tx_submitted += sent;
        wallets += cpu;
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
    let work = cpu::Work::read(nodes).await?.since(before);
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
    let mut relay = meshwork_consensus::sync::RelayStats::default();
    report_bans(nodes).await?;
    for node in nodes {
        let (stats, gossip, app) = node
            .api()
            .app()
            .with(|s| (s.sync().relay_stats(), s.gossip().stats(), s.relay_stats()))
            .await
            .map_err(ApiError::from)?;
        relay += stats;
        report.tx_relayed_accepted += app.accepted;
        report.tx_relay_batches += app.batches;
        report.tx_batch_verified += app.batch_verified;
        report.tx_refused_links_full += app.refused_links_full;
        report.gossip_bans += gossip.bans;
        report.gossip_broken_promises += gossip.tree.broken_promises;
        report.gossip_flood_penalties += gossip.rate_limited - gossip.in_flight_excused;
        report.gossip_declines += gossip.tree.declines_sent;
        report.gossip_grafts += gossip.tree.grafts_sent;
        report.gossip_duplicates += gossip.tree.duplicates;
        let metrics = node.api().node().metrics();
        // Drops are counted per channel (gossip, sync, Kademlia...), each under its own id.
        report.send_queue_drops += <App as Protocol>::channels()
            .iter()
            .map(|channel| metrics.queue_drops(channel.id.as_str()))
            .sum::<u64>();
        report.mempool_left += node.api().status().await?.mempool as u64;
    }
    report.block_relay_bytes_over_block_bytes = relay.bytes_over_block_bytes();
    report.blocks_relayed = relay.blocks;
    report.blocks_rebuilt = relay.rebuilt;
    report.block_txs_fetched = relay.txs_fetched;
    let config = params.chain_config();
    report.tx_confirmed = count;
    report.tx_offered_per_sec = options.tx_rate;
    report.tx_accepted_per_sec = rate(report.tx_submitted as f64, options.duration as f64);
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
    Ok((work, wallets))
}

/// Says on stderr which node banned which from gossip, and for what: every ban on the devnet is of
/// an honest peer.
async fn report_bans(nodes: &[CoinNode]) -> Result<(), BenchError> {
    let ids: Vec<_> = nodes.iter().map(|node| node.api().node().peer_id()).collect();
    for (i, node) in nodes.iter().enumerate() {
        let peers = ids.clone();
        let (bans, tree) = node
            .api()
            .app()
            .with(move |s| {
                let gossip = s.gossip();
                let bans: Vec<_> = peers
                    .iter()
                    .enumerate()
                    .filter_map(|(j, peer)| gossip.ban_of(peer).map(|ban| (j, ban)))
                    .collect();
                (bans, gossip.stats().tree)
            })
            .await
            .map_err(ApiError::from)?;
        for (j, ban) in bans {
            eprintln!(
                "bench: node{i} banned node{j} from gossip for {:?} (node{i}: {} broken promises, {} declines received)",
                ban.penalty, tree.broken_promises, tree.declines_received
            );
        }
    }
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
