//! `meshsim kad-churn`: records stored in a settled network, then nodes leave and new ones join; the share
//! of records still retrievable after each wave, against the Kademlia estimate `1 − C^k`.
//!
//! The network joins and settles as [`super::kad_net`] describes. `--records` records are stored
//! ([`Command::PutValue`]) from random nodes at the `k` closest peers of their keys. Then `--steps` waves
//! of departures follow: in each, a share `--leave-per-step` of the original nodes crashes (for good: no
//! node returns, so `C`, the share of nodes gone, only grows), spread over ten seconds, and thirty
//! seconds later every record is looked up ([`Command::GetValue`]) from a random live node. In the same
//! wave a share `--join-per-step` of brand-new nodes (fresh identities) joins through random live nodes,
//! so the network keeps its size while its membership turns over; newcomers hold no records, and may be
//! closer to a key than its holders, which is what makes joins hard for retrieval. A record survives if
//! at least one of its `k` holders is alive, so Kademlia's estimate of the share retrievable is `1 − C^k`
//! with `C` the share of the original nodes gone (departures are uniform and independent of the keys);
//! the measured share also counts the lookups that miss a surviving holder among the newcomers.
//! `get_requests_mean` and `get_ms_p50` are what a lookup that found its record cost, over every wave:
//! a lookup counts its answers until it converges rather than ending on the first record.

use clap::Args as ClapArgs;
use meshwork_kad::{Command, Event, Key};
use meshwork_sim::Control;
use meshwork_sim::metrics::Summary;
use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use super::kad_net::{NetArgs, Network, at_ms};
use super::kad_node::{KadNode, NodeEvent, info};
use crate::cli::Common;
use crate::clock::wall_now;
use crate::plot::Panel;
use crate::report::Report;

/// Options of `meshsim kad-churn`.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) net: NetArgs,
    /// Records stored before the departures.
    #[arg(long, default_value_t = 100)]
    records: u64,
    /// Waves of departures (a retrieval round follows each, and one precedes the first).
    #[arg(long, default_value_t = 5)]
    steps: u32,
    /// Share of the original nodes that leaves in each wave.
    #[arg(long, default_value_t = 0.15)]
    leave_per_step: f64,
    /// New nodes joining in each wave, as a share of the original size (the default keeps the size).
    #[arg(long, default_value_t = 0.15)]
    join_per_step: f64,
}

/// Looks every record up from a random live node; returns the share found. Each lookup that finds its
/// record adds its requests and its duration in milliseconds to `costs`.
fn retrieve(
    net: &mut Network,
    keys: &[Key],
    live: &[usize],
    costs: &mut Vec<(f64, f64)>,
) -> Result<f64, String> {
    let start = net.sim.now().as_duration().as_millis() as u64 + 100;
    for (r, key) in keys.iter().enumerate() {
        let from = live[net.sim.rng().gen_range(0..live.len())];
        let query = net.query();
        let at = at_ms(start + r as u64 * 20);
        net.sim
            .schedule_command(at, net.nodes[from], Command::GetValue { query, key: *key })
            .map_err(|e| e.to_string())?;
    }
    let timeout = net.config.request_timeout.as_millis() as u64;
    let end = start + keys.len() as u64 * 20 + 20 * timeout;
    let mut found = 0u64;
    net.run_phase(at_ms(end), "retrieving", |_, _, event| {
        if let NodeEvent::Kad(Event::GetValue {
            record: Some(_),
            stats,
            ..
        }) = event
        {
            found += 1;
            costs.push((f64::from(stats.requests), stats.duration.as_secs_f64() * 1000.0));
        }
    });
    Ok(found as f64 / keys.len().max(1) as f64)
}

/// Adds `count` brand-new nodes that bootstrap, spread over ten seconds from `now_ms`, each through three
/// random nodes of `live` (indices into `net.nodes`). Returns how many joined.
fn join(net: &mut Network, live: &[usize], now_ms: u64, count: usize) -> Result<usize, String> {
    if live.is_empty() {
        return Ok(0);
    }
    for j in 0..count {
        let config = net.config.clone();
        let node = net
            .sim
            .add_node(|init| KadNode::new(init, config))
            .map_err(|e| e.to_string())?;
        let peer = net.sim.peer_id(node).ok_or("a new node has no peer id")?;
        net.nodes.push(node);
        net.peers.push(peer);
        let contacts = (0..3)
            .map(|_| info(net.peers[live[net.sim.rng().gen_range(0..live.len())]]))
            .collect();
        let query = net.query();
        let at = at_ms(now_ms + 10_000 * j as u64 / count.max(1) as u64);
        net.sim
            .schedule_command(
                at,
                node,
                Command::Bootstrap {
                    query,
                    peers: contacts,
                },
            )
            .map_err(|e| e.to_string())?;
    }
    Ok(count)
}

/// Runs the experiment.
pub(crate) fn run(args: &Args) -> Result<Report, String> {
    let common = &args.common;
    let started = wall_now();
    let n = common.nodes;
    if !(0.0..=1.0).contains(&args.leave_per_step) {
        return Err("--leave-per-step must be in [0, 1]".into());
    }
    if !(0.0..=10.0).contains(&args.join_per_step) {
        return Err("--join-per-step must be in [0, 10]".into());
    }
    let mut net = Network::build(n, common.seed, &args.net, common.max_events)?;

    // Store the records.
    let keys: Vec<Key> = (0..args.records)
        .map(|r| Key::for_name(format!("meshsim-record-{r}").as_bytes()))
        .collect();
    let start = net.ready_ms + 1000;
    for (r, key) in keys.iter().enumerate() {
        let from = net.sim.rng().gen_range(0..n);
        let query = net.query();
        let command = Command::PutValue {
            query,
            key: *key,
            value: vec![0xab; 32],
        };
        net.sim
            .schedule_command(at_ms(start + r as u64 * 20), net.nodes[from], command)
            .map_err(|e| e.to_string())?;
    }
    let mut stored_at = Vec::new();
    let stored_by = start + args.records * 20 + 60_000;
    net.run_phase(at_ms(stored_by), "storing", |_, _, event| {
        if let NodeEvent::Kad(Event::PutValue { stored_at: s, .. }) = event {
            stored_at.push(s as f64);
        }
    });
    let stored = Summary::of(stored_at);

    // Waves of departures.
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(net.sim.rng());
    let per_step = ((n as f64) * args.leave_per_step).round() as usize;
    let mut gone = 0usize;
    let per_step_join = ((n as f64) * args.join_per_step).round() as usize;
    let mut joined = 0usize;
    let k = i32::try_from(args.net.k).unwrap_or(i32::MAX);
    let mut timeline: Vec<Value> = Vec::new();
    let mut costs: Vec<(f64, f64)> = Vec::new();
    let (mut measured, mut estimated) = (Vec::new(), Vec::new());
    let mut last = (0.0, 1.0, 1.0);
    for step in 0..=args.steps {
        if step > 0 {
            let now = net.sim.now().as_duration().as_millis() as u64;
            let leaving = per_step.min(n.saturating_sub(gone + 1));
            for (j, &i) in order[gone..gone + leaving].iter().enumerate() {
                let at = at_ms(now + 10_000 * j as u64 / leaving.max(1) as u64);
                net.sim
                    .schedule_control(at, Control::Crash(net.nodes[i]))
                    .map_err(|e| e.to_string())?;
            }
            gone += leaving;
            joined += join(&mut net, &order[gone..], now, per_step_join)?;
            net.run_phase(at_ms(now + 40_000), "departures and joins", |_, _, _| {});
        }
        // The surviving original nodes, and every newcomer (all newcomers stay).
        let live: Vec<usize> = order[gone..].iter().copied().chain(n..n + joined).collect();
        let share_gone = gone as f64 / n as f64;
        let estimate = 1.0 - share_gone.powi(k);
        let retrievable = retrieve(&mut net, &keys, &live, &mut costs)?;
        measured.push((share_gone, retrievable));
        estimated.push((share_gone, estimate));
        timeline.push(json!({
            "gone": share_gone,
            "retrievable": retrievable,
            "estimate": estimate,
        }));
        last = (share_gone, retrievable, estimate);
    }
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let stats = net.sim.stats();

    let mut report = Report::new();
    report.plot(Panel::Lines {
        title: "Records still retrievable as nodes leave".into(),
        x_label: "share of the original nodes gone".into(),
        y_label: "share of records retrievable".into(),
        series: vec![
            ("measured".into(), measured),
            ("estimate 1 - gone^k".into(), estimated),
        ],
    });
    report
        .add("experiment", "kad-churn")
        .add("seed", common.seed)
        .add("nodes", n)
        .add("k", args.net.k)
        .add("alpha", args.net.alpha)
        .add("paths", args.net.paths)
        .add("records", args.records)
        .add("stored_at_mean", stored.mean)
        .add("stored_at_min", stored.min)
        .add("steps", args.steps)
        .add("leave_per_step", args.leave_per_step)
        .add("join_per_step", args.join_per_step)
        .add("joined", joined)
        .add("gone_final", last.0)
        .add("retrievable_final", last.1)
        .add("estimate_final", last.2)
        .add(
            "get_requests_mean",
            Summary::of(costs.iter().map(|c| c.0).collect()).mean,
        )
        .add("get_ms_p50", Summary::of(costs.iter().map(|c| c.1).collect()).p50)
        .add("timeline", Value::Array(timeline))
        .add("messages_sent", stats.messages_sent)
        .add("virtual_ms", net.sim.now().as_duration().as_secs_f64() * 1000.0)
        .footer(stats.events, wall_ms, net.sim.trace_hash());
    Ok(report)
}
