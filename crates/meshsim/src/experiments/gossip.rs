//! `meshsim gossip`: HyParView + Plumtree against flood on the same overlay, in the same run.
//!
//! The overlay joins and settles as [`super::gossip_net`] describes. Then `--messages` broadcasts are
//! measured, published on the schedule of [`super::gossip_load`]: one every `--interval-ms`, or at each
//! network-wide `--rate` of a sweep (broadcasts overlap), from `--publishers` origins in turn (`all`: every
//! node, so nearly every measured message comes from an origin that has not published before). Each
//! workload reports reliability, RMR (full copies received per delivering node, minus one), wire bytes
//! per delivered payload byte (all traffic), last-delivery hop, latency and each message's last delivery.
//! Gossip's wire bytes are also given for its control messages alone
//! (`gossip_control_wire_bytes_per_payload_byte`: membership, grafts, prunes, declines), since at low
//! rates membership's shuffles, which run whatever is broadcast, are most of them; and per node and
//! second (`gossip_control_bytes_per_node_per_sec`), at low rates mostly what membership costs an
//! idle node.
//!
//! With a few publishers, `--warmup` rounds run first while their trees form (each origin has its own
//! Plumtree tree, formed by its first message, which floods); the first round is reported apart
//! (`gossip_first_*`), as the price of forming a tree. With `all` there is no warm-up.
//!
//! Flood runs on the overlay the active views form when the measurement starts (same links, same link
//! model, same seed, same schedule), so every gossip figure has its reference from the same run.
//!
//! With `--fail F`, a share `F` of the nodes crashes and `--messages` more broadcasts (from the live
//! publishers; new ones if all crashed) report reliability among live nodes one by one, their RMR, and
//! their last deliveries (`after_crash_last_delivery_ms_p99`, `_max`: what the repair's waits cost).
//! `after_crash_publishers_surviving` tells the two cases apart: the surviving publishers' trees only
//! mend (a neighbour that replaces a crashed one joins a formed tree lazily, so the repair costs a few
//! duplicates), while new publishers first run the `--warmup` rounds that form their trees, as the
//! first publishers did, reported apart (`after_crash_warmup_rounds`, `after_crash_warmup_rmr`,
//! `after_crash_warmup_reliability_min`: they run while the overlay mends).

use std::str::FromStr;
use std::time::Duration;

use clap::Args as ClapArgs;
use meshwork_gossip::{Config, Gossip, TopicOptions, Trees};
use meshwork_sim::flood::Flood;
use meshwork_sim::metrics::Summary;
use meshwork_sim::{ChaCha8Rng, Control, NodeId, Sim, SimConfig};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::json;

use super::gossip_load::{self, CSV_HEADER, FLOOD, GOSSIP, Outcome, Schedule};
use super::gossip_net::{NetArgs, build, overlay};
use crate::cli::Common;
use crate::clock::wall_now;
use crate::plot::Panel;
use crate::report::Report;

/// Who publishes: a number of nodes, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Publishers {
    /// Every node.
    All,
    /// This many nodes, chosen at random.
    Count(usize),
}

impl FromStr for Publishers {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "all" {
            return Ok(Self::All);
        }
        text.parse()
            .map(Self::Count)
            .map_err(|_| format!("`{text}` is neither a number of nodes nor `all`"))
    }
}

/// Options of `meshsim gossip`.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    net: NetArgs,
    /// Measured broadcasts, at each rate (and as many again after the crash, with `--fail`).
    #[arg(long, default_value_t = 10)]
    messages: u64,
    /// Nodes that publish, in turn: a number, or `all` (every node; no warm-up).
    #[arg(long, default_value = "5")]
    publishers: Publishers,
    /// Network-wide publication rates to measure, in messages per second, comma-separated (a sweep:
    /// `--messages` broadcasts at each, gossip then flood). Without it, one broadcast per `--interval-ms`.
    #[arg(long, value_delimiter = ',')]
    rate: Vec<f64>,
    /// Rounds (one broadcast per publisher) before measuring, while the trees form: 2 by default with a
    /// number of publishers, 0 with `all` (a round of `all` is a broadcast from every node; it runs at
    /// the first `--rate`).
    #[arg(long)]
    warmup: Option<u64>,
    /// What a message of an origin without a tree of its own follows: `per-origin` (its first message
    /// floods and forms its tree), `shared` (one tree shared by all origins, no flood) or `borrow` (the
    /// tree of a node up to `--lender-hops` links away that published, for up to 8 messages; without
    /// one, it floods).
    #[arg(long, value_enum, default_value_t = TreesArg::PerOrigin)]
    trees: TreesArg,
    /// With `--trees borrow`: how many links away a lender may be (1: neighbours only).
    #[arg(long, default_value_t = Config::default().lender_hops)]
    lender_hops: u16,
    /// With `--publishers all`: a share of the nodes (the last in the publishing order) publishes once
    /// before the measurement, so their trees form; the measured messages still come from new origins,
    /// but some of their neighbours have published (with `--trees borrow` they borrow those trees).
    #[arg(long, default_value_t = 0.0)]
    warm_share: f64,
    /// Share of nodes that crash after the measured broadcasts (0 for none).
    #[arg(long, default_value_t = 0.0)]
    fail: f64,
}

/// `--trees`: [`Trees`] on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TreesArg {
    /// [`Trees::PerOrigin`].
    PerOrigin,
    /// [`Trees::Shared`].
    Shared,
    /// [`Trees::Borrow`].
    Borrow,
}

impl From<TreesArg> for Trees {
    fn from(arg: TreesArg) -> Self {
        match arg {
            TreesArg::PerOrigin => Self::PerOrigin,
            TreesArg::Shared => Self::Shared,
            TreesArg::Borrow => Self::Borrow,
        }
    }
}

impl Args {
    /// One broadcast per `--interval-ms`: the rate when `--rate` is not given.
    fn sequential_rate(&self) -> f64 {
        1000.0 / self.net.interval_ms.max(1) as f64
    }

    /// Every message gets `--interval-ms` to spread after the last publication.
    fn drain(&self) -> Duration {
        Duration::from_millis(self.net.interval_ms)
    }
}

/// Flood over the given links: the reference for reach, hops, latency and bytes on the same graph.
fn flood_on(args: &Args, links: &[(NodeId, NodeId)]) -> Result<Sim<Flood>, String> {
    let mut sim = Sim::new(SimConfig::new(args.common.seed).with_link(args.net.link()));
    sim.add_nodes(args.common.nodes, |_| Flood::new())
        .map_err(|e| e.to_string())?;
    for &(a, b) in links {
        sim.connect(a, b).map_err(|e| e.to_string())?;
    }
    sim.advance(Duration::from_millis(1), |_, _, _| {});
    Ok(sim)
}

/// A figure of every live node, summed.
fn total(sim: &Sim<Gossip>, figure: fn(&Gossip) -> u64) -> u64 {
    sim.live_nodes().filter_map(|n| sim.state(n)).map(figure).sum()
}

/// Messages published on borrowed trees so far ([`Trees::Borrow`]).
fn published_borrowed(node: &Gossip) -> u64 {
    node.stats().tree.published_borrowed
}

/// The figures of one rate of a sweep.
struct Point {
    rate: f64,
    gossip: Outcome,
    flood: Outcome,
}

/// Runs the experiment.
pub(crate) fn run(args: &Args) -> Result<Report, String> {
    let started = wall_now();
    let n = args.common.nodes;
    if n < 2 {
        return Err("gossip needs at least 2 nodes".into());
    }
    let payload = args.net.payload_bytes;
    let config = Config {
        trees: args.trees.into(),
        lender_hops: args.lender_hops,
        ..Config::default()
    };
    let make =
        |init: &meshwork_sim::NodeInit<'_>| Gossip::new(init.keypair.clone(), config.clone(), init.rng_seed);
    let mut sim = build(n, args.common.seed, &args.net, TopicOptions::default(), make)?;
    let mut publishers: Vec<NodeId> = sim.live_nodes().collect();
    publishers.shuffle(sim.rng());
    let warmup = match args.publishers {
        Publishers::All => args.warmup.unwrap_or(0),
        Publishers::Count(k) => {
            publishers.truncate(k.clamp(1, n));
            args.warmup.unwrap_or(2)
        }
    };
    let per_round = publishers.len() as u64;
    let warmup_rate = args.rate.first().copied().unwrap_or(args.sequential_rate());
    let first = (warmup > 0).then(|| {
        let round = Schedule::at_rate(&publishers, 0, per_round, warmup_rate, args.drain());
        gossip_load::gossip(&mut sim, &round, payload)
    });
    let warm = match args.publishers {
        Publishers::All => (args.warm_share.clamp(0.0, 1.0) * n as f64) as usize,
        Publishers::Count(_) => 0,
    };
    if warm > 0 {
        let tail = &publishers[n - warm..];
        let round = Schedule::at_rate(tail, 0, warm as u64, warmup_rate, args.drain());
        gossip_load::gossip(&mut sim, &round, payload);
    }
    if warmup > 1 {
        let rest = Schedule::at_rate(
            &publishers,
            0,
            per_round * (warmup - 1),
            warmup_rate,
            args.drain(),
        );
        gossip_load::gossip(&mut sim, &rest, payload);
    }
    let (links, components) = overlay(&sim);
    let mut flood = flood_on(args, &links)?;
    let rates = if args.rate.is_empty() {
        vec![args.sequential_rate()]
    } else {
        args.rate.clone()
    };
    let borrowed_before = total(&sim, published_borrowed);
    let mut points = Vec::new();
    for (i, &rate) in rates.iter().enumerate() {
        // With every node publishing, each rate starts with origins that have not published yet.
        let first = match args.publishers {
            Publishers::All => i * usize::try_from(args.messages).unwrap_or(usize::MAX),
            Publishers::Count(_) => 0,
        };
        let schedule = Schedule::at_rate(&publishers, first, args.messages, rate, args.drain());
        let gossip = gossip_load::gossip(&mut sim, &schedule, payload);
        let flood = gossip_load::flood(&mut flood, &schedule, payload, i as u64 * args.messages);
        points.push(Point { rate, gossip, flood });
    }
    // Counted now: the crash below removes nodes from the live ones the count sums over.
    let borrowed = total(&sim, published_borrowed).saturating_sub(borrowed_before);

    let mut report = Report::new();
    report
        .add("experiment", "gossip")
        .add("seed", args.common.seed)
        .add("nodes", n)
        .add("publishers", per_round)
        .add("messages", args.messages)
        .add("warmup_rounds", warmup)
        .add("warm_publishers", warm)
        .add("payload_bytes", payload)
        .add("trees", format!("{:?}", args.trees))
        .add("lender_hops", args.lender_hops)
        .add("round_trips", !args.net.no_round_trips)
        .add("rate", rates[0])
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
    if let Some(first) = &first {
        report
            .add("gossip_first_reliability_min", first.reliability_min())
            .add("gossip_first_rmr", first.rmr())
            .add("gossip_first_last_delivery_hop", first.last_hop());
    }
    if args.common.csv.is_some() {
        for point in &points {
            report.csv_rows(CSV_HEADER, point.gossip.csv_rows("gossip", point.rate));
            report.csv_rows(CSV_HEADER, point.flood.csv_rows("flood", point.rate));
        }
    }
    let measured = &points[0];
    measured.gossip.report(&mut report, &GOSSIP, n);
    report.add(
        "gossip_control_wire_bytes_per_payload_byte",
        measured.gossip.control_bytes_per_payload_byte(),
    );
    report.add(
        "gossip_control_bytes_per_node_per_sec",
        measured.gossip.control_bytes_per_node_per_sec(n),
    );
    measured.flood.report(&mut report, &FLOOD, n);
    report.add(
        "last_hop_over_flood",
        i64::from(measured.gossip.last_hop()) - i64::from(measured.flood.last_hop()),
    );
    if points.len() > 1 {
        sweep(&mut report, &points);
    }
    plot(&mut report, args, measured);

    if args.fail > 0.0 {
        crash(&mut sim, args, &mut publishers, warmup, &mut report)?;
    }
    let total = |figure: fn(&Gossip) -> u64| total(&sim, figure);
    report
        .add("gossip_grafts_total", total(|s| s.stats().tree.grafts_sent))
        .add(
            "gossip_grafts_deferred_total",
            total(|s| s.stats().tree.grafts_deferred),
        )
        .add("gossip_ihave_total", total(|s| s.stats().tree.ihave_sent))
        .add(
            "gossip_announcements_spared_total",
            total(|s| s.stats().tree.announcements_spared),
        )
        .add("gossip_published_borrowed", borrowed)
        .add("gossip_prunes_total", total(|s| s.stats().tree.prunes_sent))
        .add("gossip_shortcuts_total", total(|s| s.stats().tree.shortcuts_sent))
        .add(
            "gossip_shortcut_strikes_total",
            total(|s| s.stats().tree.shortcuts_failed),
        )
        .add(
            "gossip_shortcuts_undone_total",
            total(|s| s.stats().tree.shortcuts_undone),
        )
        .add(
            "trees_per_node_mean",
            total(|s| s.tree_count() as u64) as f64 / sim.live_nodes().count().max(1) as f64,
        )
        .add("flood_trace_hash", flood.trace_hash().to_string());
    let events = sim.stats().events + flood.stats().events;
    report.footer(events, started.elapsed().as_secs_f64() * 1000.0, sim.trace_hash());
    Ok(report)
}

/// The sweep's figures, one object per rate, and reliability against rate for `--plot`.
fn sweep(report: &mut Report, points: &[Point]) {
    let rows: Vec<serde_json::Value> = points
        .iter()
        .map(|p| {
            json!({
                "rate": p.rate,
                "gossip_reliability_min": p.gossip.reliability_min(),
                "flood_reliability_min": p.flood.reliability_min(),
                "gossip_rmr": p.gossip.rmr(),
                "gossip_wire_bytes_per_payload_byte": p.gossip.wire_bytes_per_payload_byte(),
                "flood_wire_bytes_per_payload_byte": p.flood.wire_bytes_per_payload_byte(),
                "gossip_last_delivery_ms_p99": Summary::of(p.gossip.last_delivery_ms()).p99,
                "flood_last_delivery_ms_p99": Summary::of(p.flood.last_delivery_ms()).p99,
            })
        })
        .collect();
    let line = |f: fn(&Point) -> f64| points.iter().map(|p| (p.rate, f(p))).collect();
    report.add("rate_sweep", rows).plot(Panel::Lines {
        title: "Worst message's reliability against the network-wide rate".into(),
        x_label: "messages per second".into(),
        y_label: "share of live nodes reached".into(),
        series: vec![
            ("gossip (Plumtree)".into(), line(|p| p.gossip.reliability_min())),
            ("flood, same overlay".into(), line(|p| p.flood.reliability_min())),
        ],
    });
}

/// Latency CDFs and last-hop histograms of the first rate, against flood.
fn plot(report: &mut Report, args: &Args, measured: &Point) {
    let hops = |o: &Outcome| o.runs.iter().map(|b| u64::from(b.max_hops)).collect();
    report
        .plot(Panel::Cdf {
            title: format!(
                "Delivery latency, {} nodes, {} messages",
                args.common.nodes, args.messages
            ),
            x_label: "ms after publication".into(),
            series: vec![
                ("gossip (Plumtree)".into(), measured.gossip.latencies_ms()),
                ("flood, same overlay".into(), measured.flood.latencies_ms()),
            ],
        })
        .plot(Panel::Histogram {
            title: "Hops of each message's last delivery".into(),
            x_label: "hops".into(),
            series: vec![
                ("gossip (Plumtree)".into(), hops(&measured.gossip)),
                ("flood".into(), hops(&measured.flood)),
            ],
        });
}

/// Crashes a share of the nodes, then reports how broadcasts recover, one by one.
fn crash(
    sim: &mut Sim<Gossip>,
    args: &Args,
    publishers: &mut Vec<NodeId>,
    warmup: u64,
    report: &mut Report,
) -> Result<(), String> {
    let n = args.common.nodes;
    // The crash is drawn from its own stream, not the simulator's (which the link model draws from
    // too): a protocol change then meets the same crash, and runs of two builds compare seed by seed.
    let mut choices = ChaCha8Rng::seed_from_u64(args.common.seed ^ 0x0063_7261_7368);
    let mut nodes: Vec<NodeId> = sim.live_nodes().collect();
    nodes.shuffle(&mut choices);
    let crashed = ((n as f64) * args.fail.clamp(0.0, 1.0)).round() as usize;
    for &node in nodes.iter().take(crashed) {
        sim.apply_control(Control::Crash(node))
            .map_err(|e| e.to_string())?;
    }
    publishers.retain(|p| sim.is_up(*p));
    let surviving = publishers.len();
    if publishers.is_empty() {
        let mut live: Vec<NodeId> = sim.live_nodes().collect();
        live.shuffle(&mut choices);
        let keep = match args.publishers {
            Publishers::All => live.len(),
            Publishers::Count(k) => k.max(1),
        };
        publishers.extend(live.into_iter().take(keep));
    }
    // New publishers have no trees yet: their first rounds form them, as the first publishers' did
    // before the measurement (the same `--warmup` rounds, reported apart), so what follows is the
    // steady state of the network that survived.
    let warmup = if surviving == 0 { warmup } else { 0 };
    let warmed = (warmup > 0).then(|| {
        let per_round = publishers.len() as u64;
        let rate = args.rate.first().copied().unwrap_or(args.sequential_rate());
        let rounds = Schedule::at_rate(publishers, 0, per_round * warmup, rate, args.drain());
        gossip_load::gossip(sim, &rounds, args.net.payload_bytes)
    });
    // The warm-up runs while the overlay mends: what it delivered is reported too, as the first
    // broadcasts after the crash are when a publisher survived.
    let warmup_rmr = warmed.as_ref().map(|outcome| outcome.rmr());
    let warmup_reliability_min = warmed.as_ref().map(|outcome| {
        let reliability = outcome.runs.iter().map(|b| b.reliability());
        reliability.fold(1.0, f64::min)
    });
    let schedule = Schedule::at_rate(publishers, 0, args.messages, args.sequential_rate(), args.drain());
    let outcome = gossip_load::gossip(sim, &schedule, args.net.payload_bytes);
    if args.common.csv.is_some() {
        report.csv_rows(
            CSV_HEADER,
            outcome.csv_rows("gossip_after_crash", args.sequential_rate()),
        );
    }
    let after = &outcome.runs;
    let shares: Vec<String> = after.iter().map(|b| format!("{:.4}", b.reliability())).collect();
    let full = |b: &super::gossip_net::Broadcast| b.delivered == b.live;
    let first_full = after.iter().position(full).map_or(-1, |i| i as i64 + 1);
    // From which broadcast on every later one reached every live node (-1: the last one did not).
    let full_from = match after.iter().rposition(|b| !full(b)) {
        None => 1,
        Some(i) if i + 1 < after.len() => i as i64 + 2,
        Some(_) => -1,
    };
    let (_, components) = overlay(sim);
    let reliability = super::gossip_net::per_broadcast(after);
    // What the repair costs in time: a longer graft wait saves duplicates and delays the messages it
    // repairs.
    let last_delivery = Summary::of(outcome.last_delivery_ms());
    report.plot(Panel::Lines {
        title: format!("Reliability after {crashed} of {n} nodes crash"),
        x_label: "broadcast after the crash".into(),
        y_label: "share of live nodes reached".into(),
        series: vec![("gossip (Plumtree)".into(), reliability)],
    });
    report
        .add("fail", args.fail)
        .add("crashed", crashed)
        .add("after_crash_publishers_surviving", surviving)
        .add("after_crash_warmup_rounds", warmup)
        .add("after_crash_warmup_rmr", warmup_rmr)
        .add("after_crash_warmup_reliability_min", warmup_reliability_min)
        .add("after_crash_reliability_per_broadcast", shares.join(" "))
        .add("after_crash_first_full_broadcast", first_full)
        .add("after_crash_full_from_broadcast", full_from)
        .add("after_crash_rmr", outcome.rmr())
        .add("after_crash_last_delivery_hop", outcome.last_hop())
        .add("after_crash_last_delivery_ms_p99", last_delivery.p99)
        .add("after_crash_last_delivery_ms_max", last_delivery.max)
        .add("after_crash_overlay_components", components);
    Ok(())
}
