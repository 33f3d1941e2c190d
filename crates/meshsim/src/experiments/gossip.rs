//! `meshsim gossip`: HyParView + Plumtree against flood, on the same number of nodes and the same seed.
//!
//! Nodes join one by one through a few contacts, the overlay settles, a warm-up of broadcasts lets the
//! Plumtree form, then `--messages` broadcasts are measured: reliability, RMR (full copies received per
//! delivering node, minus one), last-delivery hop, latency, bytes per node. With `--fail F`, a share `F` of
//! the nodes crashes and `--messages` more broadcasts report reliability among live nodes one by one.
//! Flood runs on a random regular overlay of degree 5 (the active view size) with the same link model.

use std::time::Duration;

use clap::Args as ClapArgs;
use meshwork_gossip::{Command, Config, Event, Gossip, MessageId, TopicId, TopicOptions};
use meshwork_sim::flood::{Flood, FloodCommand, FloodEvent};
use meshwork_sim::metrics::Summary;
use meshwork_sim::{Control, LinkConfig, NodeId, Sim, SimConfig, topology};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::cli::Common;
use crate::clock::{memory, wall_now};
use crate::report::Report;

/// Options of `meshsim gossip`.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Measured broadcasts (and as many again after the crash, with `--fail`).
    #[arg(long, default_value_t = 10)]
    messages: u64,
    /// Broadcasts before measuring, while the tree forms.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Share of nodes that crash after the measured broadcasts (0 for none).
    #[arg(long, default_value_t = 0.0)]
    fail: f64,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 64)]
    payload_bytes: usize,
    /// One-way link latency in milliseconds (plus up to `--jitter-ms`).
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Extra random delay per message, up to this many milliseconds.
    #[arg(long, default_value_t = 10)]
    jitter_ms: u64,
    /// Virtual time between two broadcasts, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    interval_ms: u64,
}

fn link(args: &Args) -> LinkConfig {
    LinkConfig::constant(Duration::from_millis(args.latency_ms))
        .with_jitter(Duration::from_millis(args.jitter_ms))
}

/// Figures of one broadcast.
struct Broadcast {
    delivered: usize,
    live: usize,
    copies: u64,
    max_hops: u32,
    latencies_ms: Vec<f64>,
}

fn topic() -> TopicId {
    TopicId::from_name("meshsim")
}

fn gossip_broadcast(sim: &mut Sim<Gossip>, args: &Args) -> Broadcast {
    let live: Vec<NodeId> = sim.live_nodes().collect();
    let origin = live[sim.rng().gen_range(0..live.len())];
    let received = |sim: &Sim<Gossip>| -> u64 {
        sim.live_nodes()
            .filter_map(|n| sim.state(n))
            .map(|s| s.stats().tree.gossip_received)
            .sum()
    };
    let before = received(sim);
    let published = sim.now();
    let _ = sim.command(origin, Command::Publish(topic(), vec![0xab; args.payload_bytes]));
    let mut id: Option<MessageId> = None;
    let mut out = Broadcast {
        delivered: 0,
        live: live.len(),
        copies: 0,
        max_hops: 0,
        latencies_ms: Vec::new(),
    };
    sim.advance(
        Duration::from_millis(args.interval_ms),
        |at, _, event| match event {
            Event::Published { id: new, .. } => id = Some(new),
            Event::Delivered { id: got, hops, .. } if Some(got) == id => {
                out.delivered += 1;
                out.max_hops = out.max_hops.max(u32::from(hops));
                if hops > 0 {
                    out.latencies_ms.push((at - published).as_secs_f64() * 1000.0);
                }
            }
            _ => {}
        },
    );
    out.copies = received(sim) - before;
    out
}

fn build_gossip(args: &Args) -> Result<Sim<Gossip>, String> {
    let n = args.common.nodes;
    let mut sim = Sim::new(SimConfig::new(args.common.seed).with_link(link(args)));
    let nodes = sim
        .add_nodes(n, |init| {
            Gossip::new(init.keypair.clone(), Config::default(), init.rng_seed)
        })
        .map_err(|e| e.to_string())?;
    for &node in &nodes {
        sim.command(node, Command::Subscribe(topic(), TopicOptions::default()))
            .map_err(|e| e.to_string())?;
    }
    for (i, &node) in nodes.iter().enumerate().skip(1) {
        // A contact drawn from the nodes already in (as a bootstrap list or a DHT would give). With a handful of
        // fixed contacts the sequential joins chain the overlay (see the crate report).
        let contact = NodeId(u32::try_from(sim.rng().gen_range(0..i)).unwrap_or(0));
        let Some(contact) = sim.peer_id(contact) else {
            continue;
        };
        sim.command(node, Command::Join(vec![contact]))
            .map_err(|e| e.to_string())?;
        sim.advance(Duration::from_millis(2), |_, _, _| {});
    }
    // Settle: a few shuffle rounds fill the passive views.
    sim.advance(Duration::from_secs(30), |_, _, _| {});
    Ok(sim)
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
    let copies: u64 = runs.iter().map(|b| b.copies).sum();
    let receivers: u64 = runs.iter().map(|b| b.delivered.saturating_sub(1) as u64).sum();
    let latency = Summary::of(runs.iter().flat_map(|b| b.latencies_ms.iter().copied()).collect());
    report
        .add(keys[0], reliability.mean)
        .add(keys[1], reliability.min)
        .add(keys[2], copies as f64 / receivers.max(1) as f64 - 1.0)
        .add(keys[3], runs.iter().map(|b| b.max_hops).max().unwrap_or(0))
        .add(keys[4], latency.p50)
        .add(keys[5], latency.p99)
        .add(keys[6], bytes as f64 / nodes.max(1) as f64);
}

fn run_flood(args: &Args) -> Result<(Vec<Broadcast>, u64), String> {
    let mut sim = Sim::new(SimConfig::new(args.common.seed).with_link(link(args)));
    sim.add_nodes(args.common.nodes, |_| Flood::new())
        .map_err(|e| e.to_string())?;
    topology::connect_random_regular(&mut sim, 5).map_err(|e| e.to_string())?;
    let mut runs = Vec::new();
    let bytes_before = sim.stats().bytes_sent;
    for id in 0..args.messages {
        let before = sim.stats().messages_sent;
        let len = sim.len();
        let origin = NodeId(u32::try_from(sim.rng().gen_range(0..len)).unwrap_or(0));
        let published = sim.now();
        let command = FloodCommand::publish(id, vec![0xab; args.payload_bytes]).map_err(|e| e.to_string())?;
        sim.command(origin, command).map_err(|e| e.to_string())?;
        let mut run = Broadcast {
            delivered: 0,
            live: sim.len(),
            copies: 0,
            max_hops: 0,
            latencies_ms: Vec::new(),
        };
        sim.advance(
            Duration::from_millis(args.interval_ms),
            |at, _, FloodEvent::Delivered { hops, .. }| {
                run.delivered += 1;
                run.max_hops = run.max_hops.max(hops);
                if hops > 0 {
                    run.latencies_ms.push((at - published).as_secs_f64() * 1000.0);
                }
            },
        );
        run.copies = sim.stats().messages_sent - before;
        runs.push(run);
    }
    Ok((runs, sim.stats().bytes_sent - bytes_before))
}

/// Runs the experiment.
pub(crate) fn run(args: &Args) -> Result<Report, String> {
    let started = wall_now();
    let n = args.common.nodes;
    if n < 2 {
        return Err("gossip needs at least 2 nodes".into());
    }
    let mut sim = build_gossip(args)?;
    eprintln!(
        "meshsim gossip: {n} nodes joined at virtual {:?}",
        sim.now().as_duration()
    );
    for i in 0..args.warmup {
        let b = gossip_broadcast(&mut sim, args);
        eprintln!(
            "meshsim gossip: warm-up {i}: {}/{} delivered, last hop {}, {} copies",
            b.delivered, b.live, b.max_hops, b.copies
        );
    }
    let bytes_before = sim.stats().bytes_sent;
    let stable: Vec<Broadcast> = (0..args.messages)
        .map(|_| gossip_broadcast(&mut sim, args))
        .collect();
    let stable_bytes = sim.stats().bytes_sent - bytes_before;

    let mut report = Report::new();
    report
        .add("experiment", "gossip")
        .add("seed", args.common.seed)
        .add("nodes", n)
        .add("messages", args.messages)
        .add("warmup", args.warmup)
        .add("payload_bytes", args.payload_bytes);
    summarise(&mut report, GOSSIP_KEYS, &stable, stable_bytes, n);
    let active: Vec<usize> = sim
        .live_nodes()
        .filter_map(|n| sim.state(n))
        .map(|s| s.active_view().len())
        .collect();
    report.add(
        "gossip_active_view_mean",
        active.iter().sum::<usize>() as f64 / active.len().max(1) as f64,
    );

    if args.fail > 0.0 {
        let mut nodes: Vec<NodeId> = sim.live_nodes().collect();
        nodes.shuffle(sim.rng());
        let crash = ((n as f64) * args.fail.clamp(0.0, 1.0)).round() as usize;
        for &node in nodes.iter().take(crash) {
            sim.apply_control(Control::Crash(node))
                .map_err(|e| e.to_string())?;
        }
        let after: Vec<Broadcast> = (0..args.messages)
            .map(|_| gossip_broadcast(&mut sim, args))
            .collect();
        let per_broadcast: Vec<String> = after
            .iter()
            .map(|b| format!("{:.4}", b.delivered as f64 / b.live.max(1) as f64))
            .collect();
        let full_from = after
            .iter()
            .position(|b| b.delivered == b.live)
            .map_or(-1, |i| i as i64 + 1);
        report
            .add("fail", args.fail)
            .add("crashed", crash)
            .add("after_crash_reliability_per_broadcast", per_broadcast.join(" "))
            .add("after_crash_first_full_broadcast", full_from);
    }
    let grafts: u64 = sim
        .live_nodes()
        .filter_map(|n| sim.state(n))
        .map(|s| s.stats().tree.grafts_sent)
        .sum();
    let prunes: u64 = sim
        .live_nodes()
        .filter_map(|n| sim.state(n))
        .map(|s| s.stats().tree.prunes_sent)
        .sum();
    report
        .add("gossip_grafts_total", grafts)
        .add("gossip_prunes_total", prunes);
    report.add("gossip_trace_hash", sim.trace_hash().to_string());

    let (flood, flood_bytes) = run_flood(args)?;
    summarise(&mut report, FLOOD_KEYS, &flood, flood_bytes, n);
    report.add("wall_ms", started.elapsed().as_secs_f64() * 1000.0);
    if let Some((_, hwm)) = memory() {
        report.add("peak_rss_bytes", hwm);
    }
    Ok(report)
}
