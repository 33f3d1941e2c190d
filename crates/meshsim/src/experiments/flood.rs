//! `meshsim flood`: flood messages over a random regular overlay.
//!
//! Reports reliability (share of live nodes that delivered, averaged over messages, and the worst
//! message), RMR, the hop count of the last delivery, delivery latency percentiles, traffic per node, and
//! the engine's speed and memory.

use std::time::Duration;

use clap::{Args as ClapArgs, ValueEnum};
use meshwork_sim::flood::{Flood, FloodCommand, FloodEvent};
use meshwork_sim::metrics::{DeliveryLog, Summary, rmr_total};
use meshwork_sim::{Latency, LinkConfig, NodeId, RegionMatrix, Sim, SimConfig, Stop, topology};
use meshwork_wire::Instant;
use rand::Rng;

use crate::cli::Common;
use crate::clock::{Progress, cpu_time, memory, wall_now};
use crate::plot::Panel;
use crate::report::Report;

/// How link latency is modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LatencyModel {
    /// `--latency-ms` for every message.
    Constant,
    /// Uniform between half and one and a half times `--latency-ms`.
    Uniform,
    /// Six public-cloud regions, one-way delays from measured inter-region RTTs.
    Regions,
}

/// Options of `meshsim flood`.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Neighbours per node in the random regular overlay.
    #[arg(long, default_value_t = 8)]
    degree: usize,
    /// Messages to flood, each from a random origin.
    #[arg(long, default_value_t = 10)]
    messages: u64,
    /// Virtual time between two publications, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 64)]
    payload_bytes: usize,
    /// Latency model.
    #[arg(long, value_enum, default_value_t = LatencyModel::Constant)]
    latency: LatencyModel,
    /// Base one-way latency in milliseconds (constant and uniform models).
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Extra random delay per message, up to this many milliseconds.
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// Probability that a message is lost.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Upload bandwidth per node in kilobytes per second (unlimited if absent).
    #[arg(long)]
    upload_kbps: Option<u64>,
}

fn link(args: &Args) -> LinkConfig {
    let base = Duration::from_millis(args.latency_ms);
    let latency = match args.latency {
        LatencyModel::Constant => Latency::Constant(base),
        LatencyModel::Uniform => Latency::Uniform {
            min: base / 2,
            max: base * 3 / 2,
        },
        LatencyModel::Regions => Latency::Regions(RegionMatrix::cloud6()),
    };
    let mut link = LinkConfig {
        latency,
        ..LinkConfig::default()
    }
    .with_jitter(Duration::from_millis(args.jitter_ms))
    .with_loss(args.loss);
    if let Some(kbps) = args.upload_kbps {
        link = link.with_upload(kbps * 1000);
    }
    link
}

/// Runs the experiment.
pub(crate) fn run(args: &Args) -> Result<Report, String> {
    let common = &args.common;
    let started = wall_now();
    let mut sim = Sim::new(SimConfig::new(common.seed).with_link(link(args)));
    sim.add_nodes(common.nodes, |_| Flood::new())
        .map_err(|e| e.to_string())?;
    topology::connect_random_regular(&mut sim, args.degree).map_err(|e| e.to_string())?;

    let mut log = DeliveryLog::new();
    let n = sim.len();
    for id in 0..args.messages {
        let at = Instant::from_duration(Duration::from_millis(id * args.interval_ms));
        let origin = NodeId(u32::try_from(sim.rng().gen_range(0..n.max(1))).unwrap_or(0));
        let command = FloodCommand::publish(id, vec![0xab; args.payload_bytes]).map_err(|e| e.to_string())?;
        sim.schedule_command(at, origin, command)
            .map_err(|e| e.to_string())?;
        log.publish(id, at);
    }
    let setup_ms = started.elapsed().as_secs_f64() * 1000.0;

    let run_started = wall_now();
    let cpu_started = cpu_time();
    let mut progress = Progress::new();
    let mut budget = common.max_events;
    loop {
        let outcome = sim.run_for(
            budget.min(1_000_000),
            |at, node, FloodEvent::Delivered { id, hops, .. }| {
                log.deliver(id, node, at, hops);
            },
        );
        budget -= outcome.events;
        if outcome.stop == Stop::Idle || budget == 0 {
            break;
        }
        progress.tick(|| {
            format!(
                "virtual {:.1}s, {} events, {} deliveries",
                sim.now().as_duration().as_secs_f64(),
                sim.stats().events,
                log.deliveries().len()
            )
        });
    }
    let run_secs = run_started.elapsed().as_secs_f64();
    let run_cpu_secs = cpu_time()
        .zip(cpu_started)
        .map(|(end, start)| end.saturating_sub(start).as_secs_f64());
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;

    let stats = sim.stats();
    let live = sim.live_nodes().count();
    let mut per_message = vec![0u64; usize::try_from(args.messages).unwrap_or(0)];
    for delivery in log.deliveries() {
        if let Some(count) = per_message.get_mut(usize::try_from(delivery.tag).unwrap_or(usize::MAX)) {
            *count += 1;
        }
    }
    let shares: Vec<f64> = per_message
        .iter()
        .map(|&c| meshwork_sim::metrics::reliability(usize::try_from(c).unwrap_or(0), live))
        .collect();
    let reliability = Summary::of(shares);
    let receivers_minus_one: u64 = per_message.iter().map(|c| c.saturating_sub(1)).sum();
    let latency = Summary::of(log.latencies_ms());
    let hops = Summary::of(log.deliveries().iter().map(|d| f64::from(d.hops)).collect());
    let nodes = n.max(1) as f64;

    let mut report = Report::new();
    if common.csv.is_some() {
        report.csv_rows("message_id,node,hops,delivered_ms,latency_ms", csv_rows(&log));
    }
    report
        .plot(Panel::Cdf {
            title: format!("Flood delivery latency, {} nodes", common.nodes),
            x_label: "ms after publication".into(),
            series: vec![("flood".into(), log.latencies_ms())],
        })
        .plot(Panel::Histogram {
            title: "Hops of each delivery".into(),
            x_label: "hops".into(),
            series: vec![(
                "flood".into(),
                log.deliveries().iter().map(|d| u64::from(d.hops)).collect(),
            )],
        });
    report
        .add("experiment", "flood")
        .add("seed", common.seed)
        .add("nodes", n)
        .add("degree", args.degree)
        .add(
            "links",
            sim.live_nodes()
                .map(|node| sim.links(node).count())
                .sum::<usize>()
                / 2,
        )
        .add("messages", args.messages)
        .add("payload_bytes", args.payload_bytes)
        .add("latency_model", format!("{:?}", args.latency).to_lowercase())
        .add("loss", args.loss)
        .add("reliability", reliability.mean)
        .add("reliability_min", reliability.min)
        .add(
            "rmr",
            rmr_total(stats.messages_sent, receivers_minus_one).unwrap_or(f64::NAN),
        )
        .add("last_delivery_hop", log.max_hops())
        .add("hops_mean", hops.mean)
        .add("latency_ms_p50", latency.p50)
        .add("latency_ms_p90", latency.p90)
        .add("latency_ms_p99", latency.p99)
        .add("latency_ms_max", latency.max)
        .add("messages_sent", stats.messages_sent)
        .add("bytes_sent", stats.bytes_sent)
        .add("messages_per_node", stats.messages_sent as f64 / nodes)
        .add("bytes_per_node", stats.bytes_sent as f64 / nodes)
        .add("dropped_loss", stats.dropped_loss)
        .add("virtual_ms", sim.now().as_duration().as_secs_f64() * 1000.0)
        .add("setup_ms", setup_ms)
        .add("run_ms", run_secs * 1000.0)
        .add("run_events_per_sec", stats.events as f64 / run_secs.max(1e-9));
    // The broadcast alone, without building the overlay (the footer's rates count the whole process).
    if let Some(cpu) = run_cpu_secs {
        report
            .add("run_cpu_ms", cpu * 1000.0)
            .add("run_events_per_cpu_sec", stats.events as f64 / cpu.max(1e-9));
    }
    if let Some((_, hwm)) = memory() {
        report.add("peak_rss_bytes_per_node", hwm as f64 / nodes);
    }
    report.footer(stats.events, wall_ms, sim.trace_hash());
    Ok(report)
}

/// `--csv`: a row per delivery.
fn csv_rows(log: &DeliveryLog) -> impl Iterator<Item = String> + '_ {
    log.deliveries().iter().map(|d| {
        let published = log.published_at(d.tag).unwrap_or(Instant::ZERO);
        format!(
            "{},{},{},{:.3},{:.3}",
            d.tag,
            d.node.0,
            d.hops,
            d.at.as_duration().as_secs_f64() * 1000.0,
            (d.at - published).as_secs_f64() * 1000.0
        )
    })
}
