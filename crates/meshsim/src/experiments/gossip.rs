//! `meshsim gossip`: HyParView + Plumtree against flood on the same overlay, in the same run.
//!
//! The overlay joins and settles as [`super::gossip_net`] describes. `--publishers` nodes then publish in
//! turn: `--warmup` rounds while their trees form (each origin has its own Plumtree tree, formed by its
//! first message, which floods), then `--messages` measured broadcasts: reliability, RMR (full copies
//! received per delivering node, minus one), last-delivery hop, latency, bytes per node. The first
//! broadcast of each publisher is reported apart (`gossip_first_*`), as the price of forming a tree.
//!
//! Flood runs on the overlay the active views form when the measurement starts (same links, same link
//! model, same seed), so `last_hop_over_flood` compares paths on the same graph.
//!
//! With `--fail F`, a share `F` of the nodes crashes and `--messages` more broadcasts (from the live
//! publishers; new ones if all crashed) report reliability among live nodes one by one.

use clap::Args as ClapArgs;
use meshwork_gossip::{Config, Gossip, TopicOptions};
use meshwork_sim::flood::{Flood, FloodCommand, FloodEvent};
use meshwork_sim::metrics::Summary;
use meshwork_sim::{Control, NodeId, Sim, SimConfig};
use rand::seq::SliceRandom;

use super::gossip_net::{Broadcast, NetArgs, broadcast, build, overlay};
use crate::cli::Common;
use crate::clock::{Progress, memory, wall_now};
use crate::plot::Panel;
use crate::report::Report;

/// Options of `meshsim gossip`.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    net: NetArgs,
    /// Measured broadcasts (and as many again after the crash, with `--fail`).
    #[arg(long, default_value_t = 10)]
    messages: u64,
    /// Nodes that publish, in turn.
    #[arg(long, default_value_t = 5)]
    publishers: usize,
    /// Rounds (one broadcast per publisher) before measuring, while the trees form.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Share of nodes that crash after the measured broadcasts (0 for none).
    #[arg(long, default_value_t = 0.0)]
    fail: f64,
}

const GOSSIP_KEYS: [&str; 7] = [
    "gossip_reliability",
    "gossip_reliability_min",
    "gossip_rmr",
    "gossip_last_delivery_hop",
    "gossip_latency_ms_p50",
    "gossip_latency_ms_p99",
    "gossip_bytes_per_node",
];
const FLOOD_KEYS: [&str; 7] = [
    "flood_reliability",
    "flood_reliability_min",
    "flood_rmr",
    "flood_last_delivery_hop",
    "flood_latency_ms_p50",
    "flood_latency_ms_p99",
    "flood_bytes_per_node",
];

fn summarise(report: &mut Report, keys: [&'static str; 7], runs: &[Broadcast], bytes: u64, nodes: usize) {
    let reliability = Summary::of(
        runs.iter()
            .map(|b| b.delivered as f64 / b.live.max(1) as f64)
            .collect(),
    );
    let latency = Summary::of(runs.iter().flat_map(|b| b.latencies_ms.iter().copied()).collect());
    report
        .add(keys[0], reliability.mean)
        .add(keys[1], reliability.min)
        .add(keys[2], rmr(runs))
        .add(keys[3], last_hop(runs))
        .add(keys[4], latency.p50)
        .add(keys[5], latency.p99)
        .add(keys[6], bytes as f64 / nodes.max(1) as f64);
}

/// Full copies received per delivering node (the origin excluded), minus one.
fn rmr(runs: &[Broadcast]) -> f64 {
    let copies: u64 = runs.iter().map(|b| b.copies).sum();
    let receivers: u64 = runs.iter().map(|b| b.delivered.saturating_sub(1) as u64).sum();
    copies as f64 / receivers.max(1) as f64 - 1.0
}

fn last_hop(runs: &[Broadcast]) -> u32 {
    runs.iter().map(|b| b.max_hops).max().unwrap_or(0)
}

/// Flood over the given links: the reference for reach, hops and latency on the same graph.
fn run_flood(args: &Args, links: &[(NodeId, NodeId)]) -> Result<(Vec<Broadcast>, u64, String), String> {
    let mut sim = Sim::new(SimConfig::new(args.common.seed).with_link(args.net.link()));
    sim.add_nodes(args.common.nodes, |_| Flood::new())
        .map_err(|e| e.to_string())?;
    for &(a, b) in links {
        sim.connect(a, b).map_err(|e| e.to_string())?;
    }
    sim.advance(std::time::Duration::from_millis(1), |_, _, _| {});
    let mut runs = Vec::new();
    let bytes_before = sim.stats().bytes_sent;
    let mut nodes: Vec<NodeId> = sim.live_nodes().collect();
    nodes.shuffle(sim.rng());
    let mut progress = Progress::new();
    for id in 0..args.messages {
        progress.tick(|| format!("flood baseline: message {id} of {}", args.messages));
        let before = sim.stats().messages_sent;
        let origin = nodes[usize::try_from(id).unwrap_or(0) % nodes.len()];
        let published = sim.now();
        let command =
            FloodCommand::publish(id, vec![0xab; args.net.payload_bytes]).map_err(|e| e.to_string())?;
        sim.command(origin, command).map_err(|e| e.to_string())?;
        let mut run = Broadcast {
            live: sim.len(),
            ..Broadcast::default()
        };
        let wait = std::time::Duration::from_millis(args.net.interval_ms);
        sim.advance(wait, |at, _, FloodEvent::Delivered { hops, .. }| {
            run.delivered += 1;
            run.max_hops = run.max_hops.max(hops);
            if hops > 0 {
                run.latencies_ms.push((at - published).as_secs_f64() * 1000.0);
            }
        });
        run.copies = sim.stats().messages_sent - before;
        runs.push(run);
    }
    let trace = sim.trace_hash().to_string();
    Ok((runs, sim.stats().bytes_sent - bytes_before, trace))
}

/// One broadcast by every live publisher in turn, `count` in all.
fn rounds(sim: &mut Sim<Gossip>, args: &Args, publishers: &mut Vec<NodeId>, count: u64) -> Vec<Broadcast> {
    let mut runs = Vec::new();
    let mut progress = Progress::new();
    for i in 0..count {
        progress.tick(|| format!("gossip: message {i} of {count}"));
        publishers.retain(|p| sim.is_up(*p));
        if publishers.is_empty() {
            let mut live: Vec<NodeId> = sim.live_nodes().collect();
            live.shuffle(sim.rng());
            publishers.extend(live.into_iter().take(args.publishers.max(1)));
        }
        let origin = publishers[usize::try_from(i).unwrap_or(0) % publishers.len()];
        let payload = vec![0xab; args.net.payload_bytes];
        runs.push(broadcast(
            sim,
            origin,
            &args.net,
            payload,
            &|_| true,
            &mut |_, _, _| {},
        ));
    }
    runs
}

/// Runs the experiment.
pub(crate) fn run(args: &Args) -> Result<Report, String> {
    let started = wall_now();
    let n = args.common.nodes;
    if n < 2 {
        return Err("gossip needs at least 2 nodes".into());
    }
    let make = |init: &meshwork_sim::NodeInit<'_>| {
        Gossip::new(init.keypair.clone(), Config::default(), init.rng_seed)
    };
    let mut sim = build(n, args.common.seed, &args.net, TopicOptions::default(), make)?;
    eprintln!(
        "meshsim gossip: {n} nodes joined at virtual {:?}",
        sim.now().as_duration()
    );
    let mut publishers: Vec<NodeId> = sim.live_nodes().collect();
    publishers.shuffle(sim.rng());
    publishers.truncate(args.publishers.clamp(1, n));
    let per_round = publishers.len() as u64;
    let mut warmup = Vec::new();
    for round in 0..args.warmup {
        let runs = rounds(&mut sim, args, &mut publishers, per_round);
        for b in &runs {
            eprintln!(
                "meshsim gossip: warm-up round {round}: {}/{} delivered, last hop {}, {} copies",
                b.delivered, b.live, b.max_hops, b.copies
            );
        }
        warmup.push(runs);
    }
    let (links, components) = overlay(&sim);
    let bytes_before = sim.stats().bytes_sent;
    let stable = rounds(&mut sim, args, &mut publishers, args.messages);
    let stable_bytes = sim.stats().bytes_sent - bytes_before;

    let mut report = Report::new();
    report
        .add("experiment", "gossip")
        .add("seed", args.common.seed)
        .add("nodes", n)
        .add("publishers", per_round)
        .add("messages", args.messages)
        .add("warmup_rounds", args.warmup)
        .add("payload_bytes", args.net.payload_bytes)
        .add("overlay_components", components)
        .add("overlay_links", links.len());
    let views: Vec<f64> = sim
        .live_nodes()
        .filter_map(|n| sim.state(n))
        .map(|s| s.active_view().len() as f64)
        .collect();
    let views = Summary::of(views);
    report
        .add("active_view_mean", views.mean)
        .add("active_view_min", views.min);
    if let Some(first) = warmup.first() {
        report
            .add("gossip_first_reliability_min", min_reliability(first))
            .add("gossip_first_rmr", rmr(first))
            .add("gossip_first_last_delivery_hop", last_hop(first));
    }
    summarise(&mut report, GOSSIP_KEYS, &stable, stable_bytes, n);

    let (flood, flood_bytes, flood_trace) = run_flood(args, &links)?;
    summarise(&mut report, FLOOD_KEYS, &flood, flood_bytes, n);
    report.add(
        "last_hop_over_flood",
        i64::from(last_hop(&stable)) - i64::from(last_hop(&flood)),
    );

    let latencies = |runs: &[Broadcast]| runs.iter().flat_map(|b| b.latencies_ms.clone()).collect();
    let hops = |runs: &[Broadcast]| runs.iter().map(|b| u64::from(b.max_hops)).collect();
    report
        .plot(Panel::Cdf {
            title: format!("Delivery latency, {n} nodes, {} messages", args.messages),
            x_label: "ms after publication".into(),
            series: vec![
                ("gossip (Plumtree)".into(), latencies(&stable)),
                ("flood, same overlay".into(), latencies(&flood)),
            ],
        })
        .plot(Panel::Histogram {
            title: "Hops of each message's last delivery".into(),
            x_label: "hops".into(),
            series: vec![
                ("gossip (Plumtree)".into(), hops(&stable)),
                ("flood".into(), hops(&flood)),
            ],
        });

    if args.fail > 0.0 {
        crash(&mut sim, args, &mut publishers, &mut report)?;
    }
    let total = |f: fn(&Gossip) -> u64| -> u64 { sim.live_nodes().filter_map(|n| sim.state(n)).map(f).sum() };
    report
        .add("gossip_grafts_total", total(|s| s.stats().tree.grafts_sent))
        .add("gossip_prunes_total", total(|s| s.stats().tree.prunes_sent))
        .add("gossip_shortcuts_total", total(|s| s.stats().tree.shortcuts_sent))
        .add(
            "trees_per_node_mean",
            total(|s| s.tree_count() as u64) as f64 / sim.live_nodes().count().max(1) as f64,
        )
        .add("events", sim.stats().events)
        .add("trace_hash", sim.trace_hash().to_string())
        .add("flood_trace_hash", flood_trace)
        .add("wall_ms", started.elapsed().as_secs_f64() * 1000.0);
    if let Some((_, hwm)) = memory() {
        report.add("peak_rss_bytes", hwm);
    }
    Ok(report)
}

fn min_reliability(runs: &[Broadcast]) -> f64 {
    runs.iter()
        .map(|b| b.delivered as f64 / b.live.max(1) as f64)
        .fold(1.0, f64::min)
}

/// Crashes a share of the nodes, then reports how broadcasts recover, one by one.
fn crash(
    sim: &mut Sim<Gossip>,
    args: &Args,
    publishers: &mut Vec<NodeId>,
    report: &mut Report,
) -> Result<(), String> {
    let n = args.common.nodes;
    let mut nodes: Vec<NodeId> = sim.live_nodes().collect();
    nodes.shuffle(sim.rng());
    let crashed = ((n as f64) * args.fail.clamp(0.0, 1.0)).round() as usize;
    for &node in nodes.iter().take(crashed) {
        sim.apply_control(Control::Crash(node))
            .map_err(|e| e.to_string())?;
    }
    let after = rounds(sim, args, publishers, args.messages);
    let shares: Vec<String> = after
        .iter()
        .map(|b| format!("{:.4}", b.delivered as f64 / b.live.max(1) as f64))
        .collect();
    let full = |b: &Broadcast| b.delivered == b.live;
    let first_full = after.iter().position(full).map_or(-1, |i| i as i64 + 1);
    // From which broadcast on every later one reached every live node (-1: the last one did not).
    let full_from = match after.iter().rposition(|b| !full(b)) {
        None => 1,
        Some(i) if i + 1 < after.len() => i as i64 + 2,
        Some(_) => -1,
    };
    let (_, components) = overlay(sim);
    let reliability = super::gossip_net::per_broadcast(&after);
    report.plot(Panel::Lines {
        title: format!("Reliability after {crashed} of {n} nodes crash"),
        x_label: "broadcast after the crash".into(),
        y_label: "share of live nodes reached".into(),
        series: vec![("gossip (Plumtree)".into(), reliability)],
    });
    report
        .add("fail", args.fail)
        .add("crashed", crashed)
        .add("after_crash_reliability_per_broadcast", shares.join(" "))
        .add("after_crash_first_full_broadcast", first_full)
        .add("after_crash_full_from_broadcast", full_from)
        .add("after_crash_rmr", rmr(&after))
        .add("after_crash_last_delivery_hop", last_hop(&after))
        .add("after_crash_overlay_components", components);
    Ok(())
}
