//! What `meshsim kad-lookup` measures of its lookups ([`super::kad_lookup`]): each lookup and how it
//! ended ([`Lookup`], [`Outcome`]), a phase of them scheduled and run ([`Plan::measure`]), and the
//! figures of one kind ([`Figures`]).

use std::collections::HashMap;

use meshwork_kad::{Address, Command, Key, QueryId};
use meshwork_sim::NodeId;
use meshwork_sim::metrics::Summary;
use meshwork_wire::{Instant, PeerId};
use rand::Rng;

use super::kad_lookup::Args;
use super::kad_net::{Network, at_ms};
use super::kad_node::NodeEvent;
use crate::report::Report;

/// One measured lookup.
pub(super) struct Lookup {
    /// A [`Command::FindPeer`], else a [`Command::FindNode`].
    pub(super) of_peer: bool,
    /// The node looked up (its key, for a [`Command::FindNode`]).
    pub(super) target: PeerId,
    /// Where the target is, for a [`Command::FindPeer`]: what it must return.
    pub(super) addr: Option<Address>,
    /// The `k` nodes closest to the target.
    pub(super) truth: Vec<PeerId>,
    /// When the command reached the searcher.
    pub(super) started: Instant,
    /// How it ended, once it has.
    pub(super) done: Option<Outcome>,
}

/// How a measured lookup ended.
pub(super) struct Outcome {
    /// It returned its target (for a [`Command::FindPeer`], at the target's own address).
    pub(super) found: bool,
    /// The share of the returned peers among the `k` truly closest.
    pub(super) accuracy: f64,
    /// The depth of the request chain that reached the target ([`super::kad_node`]).
    pub(super) hops: u32,
    /// Its requests and answers (see the module docs of [`super::kad_lookup`]).
    pub(super) messages: u64,
    /// From the command to the result.
    pub(super) latency_ms: f64,
}

/// The figures of one kind of measured lookup.
pub(super) struct Figures<'a> {
    /// The lookups that ended.
    pub(super) finished: Vec<&'a Outcome>,
    /// Those that returned their target.
    pub(super) found: Vec<&'a Outcome>,
    /// The share of all lookups of the kind that returned their target.
    pub(super) success: f64,
    /// Hops of those that found their target.
    pub(super) hops: Summary,
    /// Messages of those that ended.
    pub(super) messages: Summary,
    /// Latency of those that ended, in milliseconds.
    pub(super) latency: Summary,
    /// The same latency in link round trips.
    pub(super) round_trips: Summary,
}

impl<'a> Figures<'a> {
    /// The figures of the `count` lookups of peers (`of_peer`) or of keys among `lookups`.
    pub(super) fn of(
        lookups: &'a HashMap<(NodeId, QueryId), Lookup>,
        of_peer: bool,
        count: u64,
        round_trip_ms: f64,
    ) -> Self {
        let finished: Vec<&Outcome> = lookups
            .values()
            .filter(|l| l.of_peer == of_peer)
            .filter_map(|l| l.done.as_ref())
            .collect();
        let found: Vec<&Outcome> = finished.iter().copied().filter(|o| o.found).collect();
        let summary = |value: &dyn Fn(&Outcome) -> f64, of: &[&Outcome]| {
            Summary::of(of.iter().map(|o| value(o)).collect())
        };
        Self {
            success: found.len() as f64 / count.max(1) as f64,
            hops: summary(&|o| f64::from(o.hops), &found),
            messages: summary(&|o| o.messages as f64, &finished),
            latency: summary(&|o| o.latency_ms, &finished),
            round_trips: summary(&|o| o.latency_ms / round_trip_ms.max(1e-9), &finished),
            finished,
            found,
        }
    }
}

impl Figures<'_> {
    /// Adds the figures of the `count` lookups of peers, under the `find_peer_` keys.
    pub(super) fn report(&self, report: &mut Report, count: u64) {
        report
            .add("find_peer_lookups", count)
            .add("find_peer_lookups_finished", self.finished.len())
            .add("find_peer_success", self.success)
            .add("find_peer_hops_p50", self.hops.p50)
            .add("find_peer_hops_p90", self.hops.p90)
            .add("find_peer_messages_per_lookup", self.messages.mean)
            .add("find_peer_latency_ms_p50", self.latency.p50)
            .add("find_peer_latency_ms_p90", self.latency.p90)
            .add("find_peer_round_trips_p50", self.round_trips.p50)
            .add("find_peer_round_trips_p90", self.round_trips.p90);
    }
}

/// What a phase of measured lookups draws from.
pub(super) struct Plan<'a> {
    pub(super) args: &'a Args,
    /// The nodes that search and are searched for.
    pub(super) honest: &'a [usize],
    /// Every node's key and peer id, for the truly closest.
    pub(super) keys: &'a [(Key, PeerId)],
}

impl Plan<'_> {
    /// Schedules `count` lookups, of peers if `of_peer` (else of keys), from `start_ms` on, one every
    /// `--lookup-interval-ms`, each from a random honest node for another, and runs the network until
    /// the last could have timed out 20 times over, or, for lookups of peers, until they have all
    /// ended. Returns when the phase ended, in milliseconds of virtual time.
    pub(super) fn measure(
        &self,
        net: &mut Network,
        lookups: &mut HashMap<(NodeId, QueryId), Lookup>,
        of_peer: bool,
        count: u64,
        start_ms: u64,
    ) -> Result<u64, String> {
        let (honest, interval) = (self.honest, self.args.lookup_interval_ms);
        for l in 0..count {
            let from = honest[net.sim.rng().gen_range(0..honest.len())];
            let mut to = from;
            while to == from {
                to = honest[net.sim.rng().gen_range(0..honest.len())];
            }
            let at = at_ms(start_ms + l * interval);
            let query = net.query();
            let (peer, target) = (net.peers[to], Key::from_peer(&net.peers[to]));
            let (truth, addr, command) = if of_peer {
                let addr = Some(net.info(peer).addr);
                (Vec::new(), addr, Command::FindPeer { query, peer })
            } else {
                let truth = closest(self.keys, &target, net.config.k);
                (truth, None, Command::FindNode { query, target })
            };
            net.sim
                .schedule_command(at, net.nodes[from], command)
                .map_err(|e| e.to_string())?;
            let lookup = Lookup {
                of_peer,
                target: peer,
                addr,
                truth,
                started: at,
                done: None,
            };
            lookups.insert((net.nodes[from], query), lookup);
        }
        let timeout = net.config.request_timeout.as_millis() as u64;
        let end = start_ms + count * interval + 20 * timeout;
        let (phase, mut until) = if of_peer {
            ("peer lookups", start_ms)
        } else {
            ("lookups", end)
        };
        let mut open = count;
        loop {
            // Lookups of peers run a second at a time until none is left.
            until = if of_peer { (until + 1000).min(end) } else { end };
            net.run_phase(at_ms(until), phase, |at, node, event| {
                let NodeEvent::Lookup(done) = event else {
                    return;
                };
                let Some(lookup) = lookups.get_mut(&(node, done.query)) else {
                    return;
                };
                let right = done.peers.iter().filter(|p| lookup.truth.contains(&p.id)).count();
                // A peer found counts only at its own address.
                let found = done.peers.iter().any(|p| {
                    p.id == lookup.target && lookup.addr.as_ref().is_none_or(|addr| *addr == p.addr)
                });
                // Only this phase's lookups count (one of keys may end late, in the phase of peers).
                open = open.saturating_sub(u64::from(lookup.done.is_none() && lookup.of_peer == of_peer));
                lookup.done = Some(Outcome {
                    found,
                    accuracy: right as f64 / done.peers.len().max(1) as f64,
                    hops: done.hops,
                    messages: done.requests + done.responses,
                    latency_ms: (at - lookup.started).as_secs_f64() * 1000.0,
                });
            });
            if until >= end || open == 0 || net.budget == 0 {
                return Ok(until);
            }
        }
    }
}

/// The `k` of `keys` closest to `target`.
pub(super) fn closest(keys: &[(Key, PeerId)], target: &Key, k: usize) -> Vec<PeerId> {
    let mut by_distance: Vec<(meshwork_kad::Distance, PeerId)> = keys
        .iter()
        .map(|(key, peer)| (key.distance(target), *peer))
        .collect();
    let k = k.min(by_distance.len());
    if k > 0 && k < by_distance.len() {
        by_distance.select_nth_unstable_by_key(k - 1, |entry| entry.0);
    }
    // Collected from a slice: collecting the vector itself would keep its whole buffer.
    by_distance[..k].iter().map(|(_, peer)| *peer).collect()
}
