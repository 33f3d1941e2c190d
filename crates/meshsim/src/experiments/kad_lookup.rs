//! `meshsim kad-lookup` and `meshsim kad-adversarial`: Kademlia lookups among N nodes.
//!
//! The network joins and settles as [`super::kad_net`] describes. Then `--lookups`
//! [`Command::FindNode`] lookups for the key of a random node start from random nodes, one every
//! `--lookup-interval-ms`. Once their phase is over, `--peer-lookups` [`Command::FindPeer`] lookups
//! of a random node follow on the same schedule, until they have all ended: each ends once the
//! searcher's connection to that node comes up, and succeeds if it returns the node at its own
//! address. Their figures are the `find_peer_` keys (none if there are none), the others' the
//! unprefixed ones, which the lookups of peers, coming after, leave as they were; so are the
//! anchors, connections and anchor pings, read before them. The run's totals (`messages_sent`,
//! `bytes_sent`, `connections_closed_idle`, `virtual_ms`, `events` and what follows from them)
//! cover both. `find_peer_messages_per_lookup` counts every request a lookup of a peer sent or
//! queued on a dial, and an answer to each that had not failed when the lookup ended (an upper
//! bound: one may fail later), where `messages_per_lookup` counts the requests and answers of a
//! lookup of a key until it ended. A lookup of a peer the searcher held a connection to ends at
//! once, with hops and latency 0. How each phase is scheduled and summed up is
//! [`super::kad_measure`]'s.
//!
//! A lookup succeeds if its target is among the peers it returns. Its *accuracy* is the share of the
//! returned peers that are among the `k` nodes truly closest to the target (known here from every
//! node's id): `closest_accuracy` is the mean over the lookups that ended, a check on how lookups end
//! ([`meshwork_kad::query::Finish`]). Hops are the depth of the request
//! chain that reached the target (see [`super::kad_node`]): 1 if the target was in the searcher's own
//! table. Messages per lookup count the lookup's requests and the answers it got. Latency runs from the
//! command to the result, dials included; `round_trips_p50` is that latency in link round trips (two
//! `--latency-ms` link delays, jitter not counted). Each node keeps `--anchors` warm connections, one
//! in each of its farthest buckets (Kademlia's `Config::anchors`), pinged when quiet: their pings are
//! background traffic that `join_messages_per_node` and `network_messages_per_lookup` include, and
//! `join_anchor_pings_per_node` and `anchor_pings_per_node` count apart (a ping and its answer are two
//! messages). The join's requests are counted by kind too, per node: all of them
//! (`join_requests_per_node`, each of which is a request and its answer in `join_messages_per_node`),
//! liveness pings of full buckets (`join_liveness_pings_per_node`) and dials (`join_dials_per_node`);
//! `join_interval_ms` is the schedule the network joined on. With `--malicious F` (kad-adversarial),
//! a share `F` of the
//! nodes turns malicious after the settling phase and answers lookups with each other only; searchers
//! and targets are then honest nodes.
//!
//! [`Command::FindNode`]: meshwork_kad::Command::FindNode
//! [`Command::FindPeer`]: meshwork_kad::Command::FindPeer

use std::collections::HashMap;
use std::rc::Rc;

use clap::Args as ClapArgs;
use meshwork_kad::{Address, KadTotals, Key, PeerInfo, QueryId};
use meshwork_sim::NodeId;
use meshwork_sim::metrics::Summary;
use meshwork_wire::PeerId;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::kad_measure::{Figures, Lookup, Plan};
use super::kad_net::{NetArgs, Network};
use crate::cli::Common;
use crate::clock::wall_now;
use crate::plot::Panel;
use crate::report::Report;

/// Options of `meshsim kad-lookup` and `meshsim kad-adversarial`.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) net: NetArgs,
    /// Measured lookups of keys (Kademlia's `FindNode`), each from a random node for the key of
    /// another random node.
    #[arg(long, default_value_t = 1000)]
    pub(crate) lookups: u64,
    /// Measured lookups of peers (Kademlia's `FindPeer`), each from a random node for another
    /// random node, after the others [default: as many as `--lookups`].
    #[arg(long)]
    pub(crate) peer_lookups: Option<u64>,
    /// Share of nodes that answer lookups with each other only (0 for none).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) malicious: f64,
    /// Virtual time between two measured lookups, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub(crate) lookup_interval_ms: u64,
}

/// Malicious nodes as Sybils (`meshsim sybil-kad`): chosen before the joins, they join from few prefixes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sybils {
    /// The /24 prefixes the malicious nodes share (round robin).
    pub(crate) prefixes: usize,
    /// Lift Kademlia's per-prefix limits on every node (the "before" of the defence).
    pub(crate) lift_limits: bool,
}

/// The address of the `j`-th Sybil: `172.16.x.y`, one of `prefixes` /24s (outside the honest `10.0.0.0/8`).
fn sybil_address(j: usize, prefixes: usize) -> Address {
    let p = j % prefixes.max(1);
    let host = (j / prefixes.max(1)) % 254 + 1;
    Address::V4 {
        ip: [172, 16 + (p >> 8) as u8, (p & 0xff) as u8, host as u8],
        port: 4001,
    }
}

/// Runs the experiment (`name` is the subcommand, echoed in the report).
pub(crate) fn run(args: &Args, name: &'static str) -> Result<Report, String> {
    run_with(args, name, None)
}

/// Runs the experiment, the malicious nodes being `sybils` if given (see [`Sybils`]).
pub(crate) fn run_with(args: &Args, name: &'static str, sybils: Option<Sybils>) -> Result<Report, String> {
    let common = &args.common;
    let started = wall_now();
    let n = common.nodes;
    if !(0.0..1.0).contains(&args.malicious) {
        return Err("--malicious must be in [0, 1)".into());
    }
    let bad_count = ((n as f64) * args.malicious).floor() as usize;
    // Sybils are chosen before the joins (never a bootstrap contact) and join from their prefixes.
    let mut chosen: Vec<usize> = (args.net.bootstraps.max(1).min(n)..n).collect();
    chosen.shuffle(&mut StdRng::seed_from_u64(common.seed ^ 0x5b11));
    chosen.truncate(bad_count);
    let mut net = match sybils {
        None => Network::build(n, common.seed, &args.net, common.max_events)?,
        Some(plan) => Network::build_with(
            n,
            common.seed,
            &args.net,
            common.max_events,
            |config| {
                if plan.lift_limits {
                    config.max_per_prefix_in_bucket = usize::MAX;
                    config.max_per_prefix_in_table = usize::MAX;
                }
            },
            |peers| {
                let addr = |(j, &i): (usize, &usize)| (peers[i], sybil_address(j, plan.prefixes));
                chosen.iter().enumerate().map(addr).collect()
            },
        )?,
    };
    let table_sizes: Vec<f64> = net
        .nodes
        .iter()
        .filter_map(|&node| net.sim.state(node))
        .map(|state| state.kad().routing_table().len() as f64)
        .collect();
    let joined = totals(&net);
    let (nodes, peers) = (net.nodes.clone(), net.peers.clone());

    // Adversaries (for kad-adversarial, drawn now, after the joins).
    let order: Vec<usize> = if sybils.is_some() {
        chosen
    } else {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(net.sim.rng());
        order.truncate(bad_count);
        order
    };
    let mut malicious = vec![false; n];
    for &i in &order {
        malicious[i] = true;
    }
    let liars: Rc<Vec<PeerInfo>> = Rc::new(order.iter().map(|&i| net.info(peers[i])).collect());
    let sybil_share = sybil_table_share(&net, &malicious);
    for &i in &order {
        if let Some(state) = net.sim.state_mut(nodes[i]) {
            state.set_malicious(liars.clone());
        }
    }
    let honest: Vec<usize> = (0..n).filter(|&i| !malicious[i]).collect();
    if honest.len() < 2 {
        return Err("fewer than 2 honest nodes".into());
    }

    // Measured lookups: of keys, then of peers once those have all ended.
    let messages_before = net.sim.stats().messages_sent;
    let keys: Vec<(Key, PeerId)> = peers.iter().map(|p| (Key::from_peer(p), *p)).collect();
    let mut lookups: HashMap<(NodeId, QueryId), Lookup> = HashMap::new();
    let peer_lookups = args.peer_lookups.unwrap_or(args.lookups);
    let plan = Plan {
        args,
        honest: &honest,
        keys: &keys,
    };
    let lookup_start = net.ready_ms + 1000;
    let ended = plan.measure(&mut net, &mut lookups, false, args.lookups, lookup_start)?;
    let lookup_messages = net.sim.stats().messages_sent - messages_before;
    // The state the lookups of keys left, before the lookups of peers open connections of their own.
    let anchor_pings = totals(&net).anchor_pings;
    let anchors = net
        .nodes
        .iter()
        .filter_map(|&node| net.sim.state(node))
        .map(|state| state.kad().anchors().count())
        .sum::<usize>();
    let connections = net
        .sim
        .live_nodes()
        .map(|node| net.sim.links(node).count())
        .sum::<usize>();
    if peer_lookups > 0 {
        plan.measure(&mut net, &mut lookups, true, peer_lookups, ended)?;
    }
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;

    // A round trip is two link delays: the unit of the goal "(hops + 2) round trips".
    let round_trip_ms = 2.0 * args.net.latency_ms as f64;
    let of_nodes = Figures::of(&lookups, false, args.lookups, round_trip_ms);
    let of_peers = Figures::of(&lookups, true, peer_lookups, round_trip_ms);
    let (finished, found) = (&of_nodes.finished, &of_nodes.found);
    let (hops, messages, latency, round_trips) = (
        &of_nodes.hops,
        &of_nodes.messages,
        &of_nodes.latency,
        &of_nodes.round_trips,
    );
    let tables = Summary::of(table_sizes);
    let stats = net.sim.stats();

    let mut report = Report::new();
    report
        .plot(Panel::Cdf {
            title: format!("Lookup latency, {n} nodes, {} ms links", args.net.latency_ms),
            x_label: "ms from the command to the answer".into(),
            series: vec![(
                "lookups that ended".into(),
                finished.iter().map(|o| o.latency_ms).collect(),
            )],
        })
        .plot(Panel::Histogram {
            title: "Hops of the lookups that found their target".into(),
            x_label: "hops".into(),
            series: vec![(
                "lookups".into(),
                found.iter().map(|o| u64::from(o.hops)).collect(),
            )],
        });
    report
        .add("experiment", name)
        .add("seed", common.seed)
        .add("nodes", n)
        .add("k", args.net.k)
        .add("join_interval_ms", args.net.join_interval(n))
        .add("alpha", args.net.alpha)
        .add("paths", args.net.paths)
        .add("anchors", args.net.anchors)
        .add("malicious", args.malicious)
        .add("malicious_nodes", bad_count)
        .add("sybil_prefixes", sybils.map_or(0, |s| s.prefixes))
        .add("prefix_limits", sybils.is_none_or(|s| !s.lift_limits))
        .add("puzzle_difficulty", net.config.puzzle_difficulty)
        .add("honest_table_malicious_share", sybil_share)
        .add("latency_ms", args.net.latency_ms)
        .add("loss", args.net.loss)
        .add("bootstrapped", net.bootstrapped)
        .add("table_size_mean", tables.mean)
        .add("table_size_min", tables.min)
        .add("lookups", args.lookups)
        .add("lookups_finished", finished.len())
        .add("success", of_nodes.success)
        .add(
            "closest_accuracy",
            Summary::of(finished.iter().map(|o| o.accuracy).collect()).mean,
        )
        .add("hops_p50", hops.p50)
        .add("hops_p90", hops.p90)
        .add("hops_max", hops.max)
        .add("hops_mean", hops.mean)
        .add("messages_per_lookup", messages.mean)
        .add("messages_per_lookup_p90", messages.p90)
        .add(
            "network_messages_per_lookup",
            lookup_messages as f64 / args.lookups.max(1) as f64,
        )
        .add("latency_ms_p50", latency.p50)
        .add("latency_ms_p90", latency.p90)
        .add("latency_ms_p99", latency.p99)
        .add("latency_ms_max", latency.max)
        .add("round_trips_p50", round_trips.p50)
        .add("round_trips_p90", round_trips.p90);
    if peer_lookups > 0 {
        of_peers.report(&mut report, peer_lookups);
    }
    report
        .add("join_messages_per_node", net.join_messages as f64 / n as f64)
        .add("join_requests_per_node", joined.requests as f64 / n as f64)
        .add(
            "join_liveness_pings_per_node",
            joined.liveness_pings as f64 / n as f64,
        )
        .add(
            "join_anchor_pings_per_node",
            joined.anchor_pings as f64 / n as f64,
        )
        .add("join_dials_per_node", joined.dials as f64 / n as f64)
        .add("anchor_pings_per_node", anchor_pings as f64 / n as f64)
        .add("anchors_per_node", anchors as f64 / n as f64)
        .add("idle_timeout_secs", args.net.idle_timeout_secs)
        .add("connections_per_node", connections as f64 / n as f64)
        .add("connections_closed_idle", stats.idle_closed)
        .add("messages_sent", stats.messages_sent)
        .add("bytes_sent", stats.bytes_sent)
        .add("virtual_ms", net.sim.now().as_duration().as_secs_f64() * 1000.0)
        .footer(stats.events, wall_ms, net.sim.trace_hash());
    Ok(report)
}

/// What every node's Kademlia sent so far, summed (a ping and its answer are two messages).
fn totals(net: &Network) -> KadTotals {
    net.nodes
        .iter()
        .filter_map(|&node| net.sim.state(node))
        .map(|state| state.kad().totals())
        .sum()
}

/// The share of malicious entries in the honest nodes' routing tables, all tables together.
fn sybil_table_share(net: &Network, malicious: &[bool]) -> f64 {
    let bad: std::collections::HashSet<PeerId> = (0..net.peers.len())
        .filter(|&i| malicious[i])
        .map(|i| net.peers[i])
        .collect();
    let (mut entries, mut sybil) = (0usize, 0usize);
    for i in (0..net.nodes.len()).filter(|&i| !malicious[i]) {
        let Some(state) = net.sim.state(net.nodes[i]) else {
            continue;
        };
        for entry in state.kad().routing_table().iter() {
            entries += 1;
            sybil += usize::from(bad.contains(&entry.peer));
        }
    }
    sybil as f64 / entries.max(1) as f64
}
