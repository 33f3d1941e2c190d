//! `meshsim coin`'s report: what the run left (the payments, the blocks, the relay counters) turned
//! into figures, beside the flood baseline on the overlay the network ended with.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use meshwork_consensus::sync::RelayStats;
use meshwork_ledger::TxId;
use meshwork_sim::flood::{Flood, FloodCommand, FloodEvent};
use meshwork_sim::metrics::{DeliveryLog, Summary};
use meshwork_sim::{Sim, SimConfig};

use super::coin::{Args, best_node};
use super::coin_net::{CoinNet, censored};
use super::pow_net::secs_since;
use crate::plot::Panel;
use crate::report::Report;

/// Flood over the gossip overlay the coin network ended with: the p99 of its delivery latency to honest
/// relays, for messages of the workload's size from the workload's origins at its offsets.
fn flood_baseline(
    args: &Args,
    net: &CoinNet,
    workload: &[(TxId, usize, f64)],
    size: usize,
) -> Result<f64, String> {
    let n = net.nodes.len();
    let mut sim = Sim::new(SimConfig::new(args.common.seed).with_link(args.net.link()));
    let nodes = sim.add_nodes(n, |_| Flood::new()).map_err(|e| e.to_string())?;
    let mut edges = BTreeSet::new();
    for (i, &node) in nodes.iter().enumerate() {
        if let Some(region) = net.sim.region(net.nodes[i]) {
            sim.set_region(node, region).map_err(|e| e.to_string())?;
        }
        let Some(app) = net.app(i) else { continue };
        for peer in app.gossip().active_view() {
            if let Some(j) = net.sim.node_of(peer) {
                edges.insert((i.min(j.index()), i.max(j.index())));
            }
        }
    }
    for (a, b) in edges {
        sim.connect(nodes[a], nodes[b]).map_err(|e| e.to_string())?;
    }
    let mut log = DeliveryLog::new();
    let first = workload.first().map_or(0.0, |w| w.2);
    for (id, (_, origin, at)) in workload.iter().enumerate() {
        let at = meshwork_wire::Instant::from_duration(Duration::from_secs_f64(1.0 + at - first));
        let publish = FloodCommand::publish(id as u64, vec![0xab; size]).map_err(|e| e.to_string())?;
        sim.schedule_command(at, nodes[*origin], publish)
            .map_err(|e| e.to_string())?;
        log.publish(id as u64, at);
    }
    let measured = &net.records.measured;
    sim.run_for(
        args.common.max_events,
        |at, node, FloodEvent::Delivered { id, hops, .. }| {
            if measured[node.index()] {
                log.deliver(id, node, at, hops);
            }
        },
    );
    Ok(Summary::of(log.latencies_ms()).p99)
}

/// What the run left for the report, besides the network.
pub(super) struct Outcome {
    /// (txid, submitting node, submission in virtual seconds) of every payment.
    pub(super) workload: Vec<(TxId, usize, f64)>,
    /// Payments seen `CONFIRMATIONS` deep on a sampled node at some point.
    pub(super) deep: HashSet<TxId>,
    /// When mining stopped, in virtual seconds.
    pub(super) mining_stopped: f64,
    /// The nodes that crashed and restarted.
    pub(super) crashed: Vec<usize>,
    /// The largest payment's encoded size (the flood baseline's message size).
    pub(super) tx_size: usize,
    /// Wall time of the run so far.
    pub(super) wall_ms: f64,
}

/// `num / den`, 0 when `den` is 0.
fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 { 0.0 } else { num as f64 / den as f64 }
}

/// What relaying new blocks cost the honest nodes up now, summed.
fn block_relay(net: &CoinNet) -> RelayStats {
    let mut sum = RelayStats::default();
    for i in (0..net.nodes.len()).filter(|&i| net.roles.honest(i)) {
        let Some(app) = net.app(i) else {
            continue;
        };
        sum += app.sync().relay_stats();
    }
    sum
}

pub(super) fn report(args: &Args, net: &CoinNet, outcome: &Outcome) -> Result<Report, String> {
    let Outcome {
        workload,
        deep,
        crashed,
        ..
    } = outcome;
    let (mining_stopped, tx_size, wall_ms) = (outcome.mining_stopped, outcome.tx_size, outcome.wall_ms);
    let n = net.nodes.len();
    let tips = net.honest_tips();
    let (best, best_height) = best_node(net).ok_or("no honest node is up")?;
    let best_tip = net.app(best).ok_or("best node down")?.chain().tip().id;
    let on_best = tips.iter().filter(|(_, id, ..)| *id == best_tip).count();
    let honest = (0..n).filter(|&i| net.roles.honest(i)).count();
    let chain = net.app(best).ok_or("best node down")?.chain();
    let in_chain = net.txids_between(best, 1, best_height);
    let workload_ids: HashSet<TxId> = workload.iter().map(|w| w.0).collect();
    let confirmed = workload_ids.intersection(&in_chain).count();
    let reversed = deep
        .iter()
        .filter(|id| workload_ids.contains(id) && !in_chain.contains(id))
        .count();
    let blocks = &net.records.blocks;
    let stale = blocks
        .order
        .iter()
        .filter(|id| !chain.engine().is_active(id))
        .count();

    // Confirmation: submission to the mining of the best-chain block that holds the transaction.
    let mut confirmation_ms = Vec::new();
    for id in &blocks.order {
        let Some(mined) = blocks.mined.get(id) else {
            continue;
        };
        if !chain.engine().is_active(id) {
            continue;
        }
        for txid in &mined.txids {
            if let Some((submitted, _)) = net.records.txs.get(txid) {
                confirmation_ms.push((mined.at - *submitted).as_secs_f64() * 1000.0);
            }
        }
    }
    let propagation = Summary::of(net.records.propagation_ms.clone());
    let confirmation_samples = confirmation_ms.clone();
    let confirmation = Summary::of(confirmation_ms);
    let flood_p99 = flood_baseline(args, net, workload, tx_size)?;
    let stats = net.sim.stats();
    let per = |bytes: u64, count: usize| bytes as f64 / n as f64 / count.max(1) as f64;
    let censored_txs = workload.iter().filter(|(txid, ..)| censored(txid)).count();
    let relay = block_relay(net);

    let mut report = Report::new();
    report
        .plot(Panel::Cdf {
            title: format!("Payment confirmation, {n} nodes: submission to the block that holds it"),
            x_label: "ms".into(),
            series: vec![("payments".into(), confirmation_samples)],
        })
        .plot(Panel::Cdf {
            title: "Block propagation: mined to connected at each node".into(),
            x_label: "ms".into(),
            series: vec![("blocks".into(), net.records.propagation_ms.clone())],
        });
    report
        .add("experiment", "coin")
        .add("seed", args.common.seed)
        .add("nodes", n)
        .add("miners", args.miners)
        .add("block_time_secs", args.block_time)
        .add("censors", net.roles.censor.iter().filter(|c| **c).count())
        .add("censored_txs", censored_txs)
        .add("sybils", n - honest)
        .add("crashed", crashed.len())
        .add("partition_secs", args.partition_secs)
        .add("txs_submitted", workload.len())
        .add("tx_confirmed", confirmed)
        .add(
            "tx_confirmed_share",
            confirmed as f64 / workload.len().max(1) as f64,
        )
        .add("confirmed_then_reversed", reversed)
        .add("honest_on_best_tip", on_best as f64 / honest.max(1) as f64)
        .add("final_height", best_height)
        .add("blocks_mined", blocks.order.len())
        .add("stale_blocks", stale)
        .add("stale_rate", stale as f64 / blocks.order.len().max(1) as f64)
        .add("reorgs", blocks.reorgs.len())
        .add("tx_propagation_samples", propagation.count)
        .add("tx_propagation_ms_p50", propagation.p50)
        .add("tx_propagation_ms_p99", propagation.p99)
        .add("flood_tx_propagation_ms_p99", flood_p99)
        .add(
            "tx_propagation_p99_over_flood",
            propagation.p99 / flood_p99.max(1e-9),
        )
        .add("confirmation_ms_p50", confirmation.p50)
        .add("confirmation_ms_p99", confirmation.p99)
        .add(
            "gossip_bytes_per_node_per_tx",
            per(stats.bytes_by_channel[0], workload.len()),
        )
        .add(
            "sync_bytes_per_node_per_block",
            per(stats.bytes_by_channel[1], blocks.order.len()),
        )
        .add("kad_bytes_per_node", per(stats.bytes_by_channel[2], 1))
        .add("compact_blocks", !args.full_blocks)
        .add(
            "block_relay_bytes_over_block_bytes",
            relay.bytes_over_block_bytes(),
        )
        .add(
            "block_relay_announce_bytes_over_block_bytes",
            ratio(relay.announce_bytes, relay.block_bytes),
        )
        .add("blocks_relayed", relay.blocks)
        .add("blocks_rebuilt_share", ratio(relay.rebuilt, relay.blocks))
        .add("blocks_rebuilt_with_fetch", relay.rebuilt_with_fetch)
        .add("block_txs_fetched", relay.txs_fetched)
        .add("compact_fallbacks", relay.fallbacks)
        .add("mining_stopped_secs", mining_stopped)
        .add("virtual_secs", secs_since(net.sim.now(), net.start))
        .footer(stats.events, wall_ms, net.sim.trace_hash());
    Ok(report)
}
