//! `meshsim kad-lookup` and `meshsim kad-adversarial`: Kademlia lookups among N nodes.
//!
//! The network joins and settles as [`super::kad_net`] describes. Then `--lookups`
//! [`Command::FindNode`] lookups for the key of a random node start from random nodes, one every
//! `--lookup-interval-ms`.
//!
//! A lookup succeeds if its target is among the peers it returns. Hops are the depth of the request
//! chain that reached the target (see [`super::kad_node`]): 1 if the target was in the searcher's own
//! table. Messages per lookup count the lookup's requests and the answers it got. Latency runs from the
//! command to the result, dials included. With `--malicious F` (kad-adversarial), a share `F` of the
//! nodes turns malicious after the settling phase and answers lookups with each other only; searchers
//! and targets are then honest nodes.

use std::collections::HashMap;
use std::rc::Rc;

use clap::Args as ClapArgs;
use meshwork_kad::{Command, Key, PeerInfo, QueryId};
use meshwork_sim::NodeId;
use meshwork_sim::metrics::Summary;
use meshwork_wire::{Instant, PeerId};
use rand::Rng;
use rand::seq::SliceRandom;

use super::kad_net::{NetArgs, Network, at_ms};
use super::kad_node::{NodeEvent, info};
use crate::cli::Common;
use crate::clock::wall_now;
use crate::report::Report;

/// Options of `meshsim kad-lookup` and `meshsim kad-adversarial`.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) net: NetArgs,
    /// Measured lookups, each from a random node for the key of another random node.
    #[arg(long, default_value_t = 1000)]
    lookups: u64,
    /// Share of nodes that answer lookups with each other only (0 for none).
    #[arg(long, default_value_t = 0.0)]
    malicious: f64,
    /// Virtual time between two measured lookups, in milliseconds.
    #[arg(long, default_value_t = 50)]
    lookup_interval_ms: u64,
}

/// One measured lookup.
struct Lookup {
    target: PeerId,
    started: Instant,
    done: Option<Outcome>,
}

struct Outcome {
    found: bool,
    hops: u32,
    messages: u64,
    latency_ms: f64,
}

/// Runs the experiment (`name` is the subcommand, echoed in the report).
pub(crate) fn run(args: &Args, name: &'static str) -> Result<Report, String> {
    let common = &args.common;
    let started = wall_now();
    let n = common.nodes;
    if !(0.0..1.0).contains(&args.malicious) {
        return Err("--malicious must be in [0, 1)".into());
    }
    let mut net = Network::build(n, common.seed, &args.net, common.max_events)?;
    let table_sizes: Vec<f64> = net
        .nodes
        .iter()
        .filter_map(|&node| net.sim.state(node))
        .map(|state| state.kad().routing_table().len() as f64)
        .collect();
    let (nodes, peers) = (net.nodes.clone(), net.peers.clone());

    // Adversaries.
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(net.sim.rng());
    let bad_count = ((n as f64) * args.malicious).floor() as usize;
    let mut malicious = vec![false; n];
    for &i in &order[..bad_count] {
        malicious[i] = true;
    }
    let liars: Rc<Vec<PeerInfo>> = Rc::new(order[..bad_count].iter().map(|&i| info(peers[i])).collect());
    for &i in &order[..bad_count] {
        if let Some(state) = net.sim.state_mut(nodes[i]) {
            state.set_malicious(liars.clone());
        }
    }
    let honest: Vec<usize> = (0..n).filter(|&i| !malicious[i]).collect();
    if honest.len() < 2 {
        return Err("fewer than 2 honest nodes".into());
    }

    // Measured lookups.
    let messages_before = net.sim.stats().messages_sent;
    let mut lookups: HashMap<(NodeId, QueryId), Lookup> = HashMap::new();
    let lookup_start = net.ready_ms + 1000;
    for l in 0..args.lookups {
        let from = honest[net.sim.rng().gen_range(0..honest.len())];
        let mut to = from;
        while to == from {
            to = honest[net.sim.rng().gen_range(0..honest.len())];
        }
        let at = at_ms(lookup_start + l * args.lookup_interval_ms);
        let query = net.query();
        let target = Key::from_peer(&peers[to]);
        net.sim
            .schedule_command(at, nodes[from], Command::FindNode { query, target })
            .map_err(|e| e.to_string())?;
        lookups.insert(
            (nodes[from], query),
            Lookup {
                target: peers[to],
                started: at,
                done: None,
            },
        );
    }
    let timeout = net.config.request_timeout.as_millis() as u64;
    let end = lookup_start + args.lookups * args.lookup_interval_ms + 20 * timeout;
    net.run_phase(at_ms(end), "lookups", |at, node, event| {
        if let NodeEvent::Lookup(done) = event {
            if let Some(lookup) = lookups.get_mut(&(node, done.query)) {
                lookup.done = Some(Outcome {
                    found: done.peers.iter().any(|p| p.id == lookup.target),
                    hops: done.hops,
                    messages: done.requests + done.responses,
                    latency_ms: (at - lookup.started).as_secs_f64() * 1000.0,
                });
            }
        }
    });
    let lookup_messages = net.sim.stats().messages_sent - messages_before;
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;

    let finished: Vec<&Outcome> = lookups.values().filter_map(|l| l.done.as_ref()).collect();
    let found: Vec<&&Outcome> = finished.iter().filter(|o| o.found).collect();
    let total = args.lookups.max(1) as f64;
    let hops = Summary::of(found.iter().map(|o| f64::from(o.hops)).collect());
    let messages = Summary::of(finished.iter().map(|o| o.messages as f64).collect());
    let latency = Summary::of(finished.iter().map(|o| o.latency_ms).collect());
    let tables = Summary::of(table_sizes);
    let stats = net.sim.stats();

    let mut report = Report::new();
    report
        .add("experiment", name)
        .add("seed", common.seed)
        .add("nodes", n)
        .add("k", args.net.k)
        .add("alpha", args.net.alpha)
        .add("paths", args.net.paths)
        .add("malicious", args.malicious)
        .add("malicious_nodes", bad_count)
        .add("latency_ms", args.net.latency_ms)
        .add("loss", args.net.loss)
        .add("bootstrapped", net.bootstrapped)
        .add("table_size_mean", tables.mean)
        .add("table_size_min", tables.min)
        .add("lookups", args.lookups)
        .add("lookups_finished", finished.len())
        .add("success", found.len() as f64 / total)
        .add("hops_p50", hops.p50)
        .add("hops_p90", hops.p90)
        .add("hops_max", hops.max)
        .add("hops_mean", hops.mean)
        .add("messages_per_lookup", messages.mean)
        .add("messages_per_lookup_p90", messages.p90)
        .add("network_messages_per_lookup", lookup_messages as f64 / total)
        .add("latency_ms_p50", latency.p50)
        .add("latency_ms_p90", latency.p90)
        .add("latency_ms_p99", latency.p99)
        .add("latency_ms_max", latency.max)
        .add("join_messages_per_node", net.join_messages as f64 / n as f64)
        .add("messages_sent", stats.messages_sent)
        .add("bytes_sent", stats.bytes_sent)
        .add("virtual_ms", net.sim.now().as_duration().as_secs_f64() * 1000.0)
        .footer(stats.events, wall_ms, net.sim.trace_hash());
    Ok(report)
}
