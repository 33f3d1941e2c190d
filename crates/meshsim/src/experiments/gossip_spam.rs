//! `meshsim gossip-spam`: a share of the peers floods invalid messages while honest peers broadcast.
//!
//! The overlay joins and settles as [`super::gossip_net`] describes, every node validating messages with
//! the application of [`super::gossip_spam_node`]. Then a share `--spammers` of the nodes starts sending
//! invalid messages (`--spam-kind`: bad signatures, payloads the application rejects, or both) to all
//! their neighbours, `--spam-rate` per second each, and relays nothing; meanwhile `--publishers` honest
//! nodes broadcast `--messages` messages in turn, `--interval-ms` apart.
//!
//! `--spam-kind valid-burst` is the "ban your neighbours" attack (issue #14): the spammers send *valid*
//! messages, in bursts and each twice, so honest relays forward bursts of first-seen messages to their
//! honest neighbours and duplicates cross prunes between honest nodes. Accepted first-seen messages cost
//! nobody, so `honest_bans_of_honest` must stay 0; the spammers' own duplicates on pruned links are waste
//! and cost them. (`spam_delivered_to_honest` counts invalid spam only; valid spam is delivered.)
//!
//! `--spam-kind hop-lie` sends no spam: the "spammers" announce every message they hold at one hop
//! from its origin (those they would push too) and push no copy, not even in answer to a graft, so
//! that their neighbours make them their parent on each tree (Plumtree's §3.8) and wait for copies
//! that never come. `honest_shortcut_strikes` counts the strikes against such claims
//! (`plumtree/trials.rs` in the gossip crate). With `--messages 100 --interval-ms 500` (seeds 1 to
//! 3, 100 liars among 1,000 nodes), the share of honest nodes reached within the 500 ms before the
//! next broadcast is 0.98 on average (the first broadcast of each publisher after the liars turn is
//! the worst, 0.68 to 0.70: that is their relaying nothing); without the probation (build dfb06e8,
//! this liar backported) it was 0.83, every publisher's tree losing 15 to 30% of the nodes to the
//! liars for the whole run.
//!
//! Reported: honest delivery (share of live honest nodes that delivered each honest message; must stay
//! 1.0), spam delivered to honest nodes (must stay 0), honest peers banned by mistake (must stay 0), and
//! how peer scoring removes the spammers: the share banned, the share **disconnected** at the end (no
//! honest node keeps them in its active view), their honest links at the start and the end, and the
//! **time to disconnect** of each spammer (from the start of the spam to the last time an honest node
//! dropped it from its active view, for the spammers disconnected at the end).

use std::collections::{BTreeMap, HashMap, HashSet};

use clap::Args as ClapArgs;
use meshwork_gossip::{Config, Event, TopicOptions};
use meshwork_sim::metrics::Summary;
use meshwork_sim::{NodeId, Sim};
use meshwork_wire::{Instant, PeerId};
use rand::seq::SliceRandom;

use super::gossip_net::{Broadcast, GossipNode, NetArgs, broadcast, build, overlay};
use super::gossip_spam_node::{BAD, NodeCommand, SpamKind, SpamNode};
use crate::cli::Common;
use crate::clock::wall_now;
use crate::plot::Panel;
use crate::report::Report;

/// Options of `meshsim gossip-spam`.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    net: NetArgs,
    /// Share of the nodes that spam.
    #[arg(long, default_value_t = 0.1)]
    spammers: f64,
    /// Invalid messages per second each spammer sends to each of its neighbours.
    #[arg(long, default_value_t = 50.0)]
    spam_rate: f64,
    /// What the spammers send.
    #[arg(long, value_enum, default_value_t = SpamKind::Mixed)]
    spam_kind: SpamKind,
    /// Honest broadcasts during the spam.
    #[arg(long, default_value_t = 10)]
    messages: u64,
    /// Honest nodes that publish, in turn.
    #[arg(long, default_value_t = 5)]
    publishers: usize,
}

/// What the run watches in the events of honest nodes.
#[derive(Default)]
struct Watch {
    spammers: HashSet<PeerId>,
    /// (honest node, spammer) pairs where the node holds the spammer in its active view, since when (the
    /// start of the spam for the links that existed then).
    held: HashMap<(NodeId, PeerId), Instant>,
    /// How long each such link lasted, in milliseconds.
    exposures_ms: Vec<f64>,
    /// Per spammer: honest views holding it, first and last time that fell to none, readmissions after.
    spammer: HashMap<PeerId, Held>,
    spammers_banned: HashSet<PeerId>,
    bans_of_spammers: u64,
    bans_of_honest: u64,
    spam_delivered: u64,
}

#[derive(Default)]
struct Held {
    count: usize,
    first_out: Option<Instant>,
    last_out: Option<Instant>,
    readmissions: u64,
}

impl Watch {
    fn new(sim: &Sim<SpamNode>, spammers: HashSet<PeerId>, start: Instant) -> Self {
        let mut watch = Self {
            spammer: spammers.iter().map(|p| (*p, Held::default())).collect(),
            spammers,
            ..Self::default()
        };
        for node in sim.live_nodes() {
            let Some(state) = sim.state(node).filter(|s| !s.is_spammer()) else {
                continue;
            };
            for peer in state.gossip().active_view() {
                watch.link(start, node, *peer, true);
            }
        }
        for held in watch.spammer.values_mut() {
            if held.count == 0 {
                (held.first_out, held.last_out) = (Some(start), Some(start));
            }
        }
        watch
    }

    /// An honest node's active view gained or lost `peer`.
    fn link(&mut self, at: Instant, node: NodeId, peer: PeerId, up: bool) {
        let Some(held) = self.spammer.get_mut(&peer) else {
            return;
        };
        if up && !self.held.contains_key(&(node, peer)) {
            self.held.insert((node, peer), at);
            held.count += 1;
            if held.first_out.is_some() {
                held.readmissions += 1;
            }
        } else if let Some(since) = self.held.remove(&(node, peer)).filter(|_| !up) {
            self.exposures_ms.push((at - since).as_secs_f64() * 1000.0);
            held.count -= 1;
            if held.count == 0 {
                held.first_out.get_or_insert(at);
                held.last_out = Some(at);
            }
        }
    }

    fn event(&mut self, at: Instant, node: NodeId, honest: bool, event: &Event) {
        if !honest {
            return;
        }
        match event {
            Event::NeighborUp(peer) => self.link(at, node, *peer, true),
            Event::NeighborDown(peer) => self.link(at, node, *peer, false),
            Event::PeerBanned(peer) if self.spammers.contains(peer) => {
                self.bans_of_spammers += 1;
                self.spammers_banned.insert(*peer);
            }
            Event::PeerBanned(_) => self.bans_of_honest += 1,
            Event::Delivered { message, .. } if message.payload.starts_with(BAD) => self.spam_delivered += 1,
            _ => {}
        }
    }
}

/// Honest active views holding each spammer, and the number of components of the honest overlay.
fn census(sim: &Sim<SpamNode>, spammers: &HashSet<PeerId>) -> (Vec<(PeerId, i64)>, usize) {
    let mut held: Vec<(PeerId, i64)> = spammers.iter().map(|p| (*p, 0)).collect();
    held.sort();
    for node in sim.live_nodes() {
        let Some(state) = sim.state(node).filter(|s| !s.is_spammer()) else {
            continue;
        };
        for peer in state.gossip().active_view() {
            if let Ok(at) = held.binary_search_by_key(peer, |(p, _)| *p) {
                held[at].1 += 1;
            }
        }
    }
    // Components of the overlay among honest nodes only: spammers do not relay.
    let honest = |n: &NodeId| sim.state(*n).is_some_and(|s| !s.is_spammer());
    let (edges, _) = overlay(sim);
    let mut parent: Vec<usize> = (0..sim.len()).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for (a, b) in edges.iter().filter(|(a, b)| honest(a) && honest(b)) {
        let (ra, rb) = (root(&mut parent, a.0 as usize), root(&mut parent, b.0 as usize));
        parent[ra] = rb;
    }
    let mut roots: Vec<usize> = sim
        .live_nodes()
        .filter(honest)
        .map(|n| root(&mut parent, n.0 as usize))
        .collect();
    roots.sort_unstable();
    roots.dedup();
    (held, roots.len())
}

/// Runs the experiment.
pub(crate) fn run(args: &Args) -> Result<Report, String> {
    let started = wall_now();
    let n = args.common.nodes;
    if n < 2 || !(0.0..1.0).contains(&args.spammers) {
        return Err("gossip-spam needs at least 2 nodes and --spammers in [0, 1)".into());
    }
    let options = TopicOptions::default().with_validation();
    let make = |init: &meshwork_sim::NodeInit<'_>| SpamNode::new(init, Config::default());
    let mut sim = build(n, args.common.seed, &args.net, options, make)?;
    let mut nodes: Vec<NodeId> = sim.live_nodes().collect();
    nodes.shuffle(sim.rng());
    let count = ((n as f64) * args.spammers).round() as usize;
    let (bad, good) = nodes.split_at(count);
    let spammers: HashSet<PeerId> = bad.iter().filter_map(|&node| sim.peer_id(node)).collect();
    let mut publishers: Vec<NodeId> = good.to_vec();
    publishers.truncate(args.publishers.clamp(1, good.len().max(1)));

    let start = sim.now();
    for &node in bad {
        let command = NodeCommand::StartSpam {
            rate: args.spam_rate,
            kind: args.spam_kind,
        };
        sim.command(node, command).map_err(|e| e.to_string())?;
    }
    let (held_start, _) = census(&sim, &spammers);
    let mut watch = Watch::new(&sim, spammers, start);
    let bad: HashSet<NodeId> = bad.iter().copied().collect();
    let honest = |node: NodeId| !bad.contains(&node);
    let mut runs: Vec<Broadcast> = Vec::new();
    for i in 0..args.messages {
        let origin = publishers[usize::try_from(i).unwrap_or(0) % publishers.len()];
        let payload = vec![0xab; args.net.payload_bytes];
        let mut on_event =
            |at: Instant, node: NodeId, event: &Event| watch.event(at, node, honest(node), event);
        let run = broadcast(&mut sim, origin, &args.net, payload, &honest, &mut on_event);
        eprintln!(
            "meshsim gossip-spam: broadcast {i}: {}/{} honest nodes delivered, {} spammers banned",
            run.delivered,
            run.live,
            watch.spammers_banned.len()
        );
        runs.push(run);
    }

    let (held_end, honest_components) = census(&sim, &watch.spammers);
    // Held by no honest active view at the end (the census reads the views themselves).
    let disconnected: Vec<&PeerId> = held_end.iter().filter(|(_, c)| *c == 0).map(|(p, _)| p).collect();
    let since = |at: Option<Instant>| at.map(|at| (at - start).as_secs_f64() * 1000.0);
    let first_out = Summary::of(
        watch
            .spammer
            .values()
            .filter_map(|h| since(h.first_out))
            .collect(),
    );
    let ever_out = watch.spammer.values().filter(|h| h.first_out.is_some()).count();
    let last_out = Summary::of(
        disconnected
            .iter()
            .filter_map(|p| watch.spammer.get(*p).and_then(|h| since(h.last_out)))
            .collect(),
    );
    let readmissions: u64 = watch.spammer.values().map(|h| h.readmissions).sum();
    let exposure = Summary::of(std::mem::take(&mut watch.exposures_ms));
    let reliability = Summary::of(
        runs.iter()
            .map(|b| b.delivered as f64 / b.live.max(1) as f64)
            .collect(),
    );
    let latency = Summary::of(runs.iter().flat_map(|b| b.latencies_ms.iter().copied()).collect());
    let share = |k: usize| k as f64 / count.max(1) as f64;
    let spam_sent: u64 = bad
        .iter()
        .filter_map(|&n| sim.state(n))
        .map(|s| s.spam_sent)
        .sum();
    let honest_total = |counter: fn(&meshwork_gossip::GossipStats) -> u64| -> u64 {
        sim.live_nodes()
            .filter(|n| honest(*n))
            .filter_map(|n| sim.state(n))
            .map(|s| counter(&s.gossip().stats()))
            .sum()
    };
    let bad_signatures = honest_total(|s| s.bad_signatures);
    let shortcuts_failed = honest_total(|s| s.tree.shortcuts_failed);

    // Bans of honest peers still in force at the end, by the penalty that caused them.
    let honest_peers: HashSet<PeerId> = sim
        .live_nodes()
        .filter(|n| honest(*n))
        .filter_map(|n| sim.peer_id(n))
        .collect();
    let mut ban_penalties: BTreeMap<String, u64> = BTreeMap::new();
    for state in sim
        .live_nodes()
        .filter(|n| honest(*n))
        .filter_map(|n| sim.state(n))
    {
        for ban in honest_peers.iter().filter_map(|p| state.gossip().ban_of(p)) {
            *ban_penalties
                .entry(format!("{:?}", ban.penalty).to_lowercase())
                .or_default() += 1;
        }
    }

    let mut report = Report::new();
    report
        .plot(Panel::Cdf {
            title: "Delivery latency of honest messages under spam".into(),
            x_label: "ms after publication".into(),
            series: vec![(
                "honest messages".into(),
                runs.iter().flat_map(|b| b.latencies_ms.iter().copied()).collect(),
            )],
        })
        .plot(Panel::Lines {
            title: "Reliability of each honest broadcast".into(),
            x_label: "broadcast".into(),
            y_label: "share of honest nodes reached".into(),
            series: vec![("honest messages".into(), super::gossip_net::per_broadcast(&runs))],
        });
    report
        .add("experiment", "gossip-spam")
        .add("seed", args.common.seed)
        .add("nodes", n)
        .add("spammers", count)
        .add("spam_kind", format!("{:?}", args.spam_kind).to_lowercase())
        .add("spam_rate_per_sec", args.spam_rate)
        .add("messages", args.messages)
        .add("publishers", publishers.len())
        .add("honest_reliability", reliability.mean)
        .add("honest_reliability_min", reliability.min)
        .add(
            "honest_last_delivery_hop",
            runs.iter().map(|b| b.max_hops).max().unwrap_or(0),
        )
        .add("honest_latency_ms_p50", latency.p50)
        .add("honest_latency_ms_p99", latency.p99)
        .add("honest_overlay_components", honest_components)
        .add("spam_sent", spam_sent)
        .add("spam_delivered_to_honest", watch.spam_delivered)
        .add("bad_signatures_dropped", bad_signatures)
        .add("honest_bans_of_spammers", watch.bans_of_spammers)
        .add("honest_bans_of_honest", watch.bans_of_honest)
        .add("honest_shortcut_strikes", shortcuts_failed)
        .add(
            "honest_bans_of_honest_by_penalty",
            serde_json::json!(ban_penalties),
        )
        .add("spammers_banned", share(watch.spammers_banned.len()))
        .add("spammers_isolated_once", share(ever_out))
        .add("spammers_disconnected_end", share(disconnected.len()))
        .add(
            "spammer_honest_links_start",
            held_start.iter().map(|(_, c)| c).sum::<i64>(),
        )
        .add(
            "spammer_honest_links_end",
            held_end.iter().map(|(_, c)| c).sum::<i64>(),
        )
        .add("spammer_readmissions", readmissions)
        .add("time_to_disconnect_ms_p50", exposure.p50)
        .add("time_to_disconnect_ms_p99", exposure.p99)
        .add("time_to_disconnect_ms_max", exposure.max)
        .add("time_to_isolate_ms_p50", first_out.p50)
        .add("time_to_isolate_ms_max", first_out.max)
        .add("time_to_last_disconnect_ms_p50", last_out.p50)
        .add("time_to_last_disconnect_ms_max", last_out.max)
        .footer(
            sim.stats().events,
            started.elapsed().as_secs_f64() * 1000.0,
            sim.trace_hash(),
        );
    Ok(report)
}
