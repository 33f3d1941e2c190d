//! What the Kademlia experiments share: the link and join options, and building a settled network.
//!
//! Node 0 starts alone; node `i` joins at `i * --join-interval-ms` through the first `--bootstraps` nodes
//! (a [`Command::Bootstrap`]: a lookup of its own key, then a refresh of every bucket). Once everyone has
//! joined, `--settle` lets each node bootstrap once more (staggered), so the early joiners learn of the
//! later ones.
//!
//! By default the joins are 20 ms apart up to 20,000 nodes, and closer beyond, so that every network
//! forms within [`FORMATION`] of virtual time ([`NetArgs::join_interval`]). A joined node keeps its
//! anchors' connections alive and checks its stale entries, a few requests a minute: at 20 ms apart a
//! network of 100,000 nodes took 33 minutes to form, and those requests were 150 of a node's 342 (45%)
//! by the time it was ready (`join_anchor_pings_per_node` 102, `join_liveness_pings_per_node` 48),
//! against 12 of 146 at 10,000 nodes; the run took 12 minutes. Formed in 400 s (4 ms apart), the node
//! of 100,000 sends 212 (206 once the simulated addresses stopped following the keys:
//! [`synthetic_address`]), 22 of them anchor pings, and the run takes 9.5 (10.5 on a day when the
//! machine ran each event 10% slower). Faster is not cheaper: formed
//! in 200 s it sends 200, but the joins overlap twice as much and hold 53 KB a node at the peak
//! against 45 KB, in the same time.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use clap::Args as ClapArgs;
use meshwork_kad::{Address, Command, Config, Event, PeerInfo, QueryId};
use meshwork_sim::{LinkConfig, NodeId, Sim, SimConfig, Stop};
use meshwork_wire::{Instant, PeerId};

use super::kad_node::{KadNode, NodeEvent, synthetic_address};
use crate::clock::Progress;

/// Network options of the Kademlia experiments.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct NetArgs {
    /// Lookup parallelism α.
    #[arg(long, default_value_t = 3)]
    pub(crate) alpha: usize,
    /// Buckets that keep an anchor, a warm connection a lookup into them asks first (the farthest
    /// ones; Kademlia's `Config::anchors`, 0 for none).
    #[arg(long, default_value_t = 3)]
    pub(crate) anchors: usize,
    /// S/Kademlia disjoint lookup paths d.
    #[arg(long, default_value_t = 1)]
    pub(crate) paths: usize,
    /// Bucket size k (also the replication factor of records).
    #[arg(long, default_value_t = 20)]
    pub(crate) k: usize,
    /// How many of the first nodes serve as bootstrap contacts.
    #[arg(long, default_value_t = 3)]
    pub(crate) bootstraps: usize,
    /// Virtual time between two joins, in milliseconds [default: 20, or less so that all the nodes
    /// join within 400 s].
    #[arg(long)]
    pub(crate) join_interval_ms: Option<u64>,
    /// After all joins, every node bootstraps once more (false: keep the tables the joins left).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) settle: bool,
    /// One-way link latency in milliseconds (plus up to `--jitter-ms`).
    #[arg(long, default_value_t = 50)]
    pub(crate) latency_ms: u64,
    /// Extra random delay per message, up to this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub(crate) jitter_ms: u64,
    /// Probability that a message is lost.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) loss: f64,
    /// Close a connection idle for this many seconds, as the node runtime's connection manager does
    /// (its default is 60); 0 keeps every connection open for the whole run.
    #[arg(long, default_value_t = 60)]
    pub(crate) idle_timeout_secs: u64,
}

/// A joined and settled network.
pub(crate) struct Network {
    pub(crate) sim: Sim<KadNode>,
    pub(crate) nodes: Vec<NodeId>,
    pub(crate) peers: Vec<PeerId>,
    pub(crate) config: Config,
    /// Completed bootstraps of the joins.
    pub(crate) bootstrapped: u64,
    /// Messages sent while joining and settling.
    pub(crate) join_messages: u64,
    /// When the network is ready, in milliseconds of virtual time.
    pub(crate) ready_ms: u64,
    /// Remaining event budget.
    pub(crate) budget: u64,
    /// Peers with an address other than their synthetic one (see [`Network::build_with`]).
    pub(crate) addresses: Rc<HashMap<PeerId, Address>>,
    next_query: u64,
}

/// The virtual time the default join interval forms a network in, at most (beyond 400,000 nodes
/// longer: the interval is 1 ms at least).
pub(crate) const FORMATION: Duration = Duration::from_secs(400);

/// The default join interval, for networks of up to 20,000 nodes.
const JOIN_INTERVAL_MS: u64 = 20;

impl NetArgs {
    /// The virtual time between two joins in a network of `n` nodes, in milliseconds:
    /// `--join-interval-ms`, else 20 ms, or less (1 ms at least) so that all `n` join within
    /// [`FORMATION`].
    pub(crate) fn join_interval(&self, n: usize) -> u64 {
        let formed_in = u64::try_from(FORMATION.as_millis()).unwrap_or(u64::MAX);
        self.join_interval_ms
            .unwrap_or_else(|| JOIN_INTERVAL_MS.min(formed_in / (n as u64).max(1)).max(1))
    }
}

pub(crate) fn at_ms(ms: u64) -> Instant {
    Instant::from_duration(Duration::from_millis(ms))
}

impl Network {
    /// A fresh query id.
    pub(crate) fn query(&mut self) -> QueryId {
        self.next_query += 1;
        QueryId(self.next_query)
    }

    /// Runs the simulation until `until` (or the event budget), with progress on stderr.
    pub(crate) fn run_phase(
        &mut self,
        until: Instant,
        phase: &str,
        mut on_event: impl FnMut(Instant, NodeId, NodeEvent),
    ) {
        let mut progress = Progress::new();
        while self.budget > 0 {
            let outcome = self.sim.run(until, self.budget.min(200_000), &mut on_event);
            self.budget = self.budget.saturating_sub(outcome.events);
            if outcome.stop != Stop::EventLimit {
                break;
            }
            let sim = &self.sim;
            progress.tick(|| {
                format!(
                    "{phase}: virtual {:.1}s, {} events",
                    sim.now().as_duration().as_secs_f64(),
                    sim.stats().events
                )
            });
        }
    }

    /// The address book entry of `peer`: its id and the address it connects from.
    pub(crate) fn info(&self, peer: PeerId) -> PeerInfo {
        let addr = self.addresses.get(&peer).cloned();
        PeerInfo {
            addr: addr.unwrap_or_else(|| synthetic_address(&peer)),
            id: peer,
        }
    }

    /// Builds `n` nodes, joins them one by one and lets the tables settle.
    pub(crate) fn build(n: usize, seed: u64, net: &NetArgs, max_events: u64) -> Result<Self, String> {
        Self::build_with(n, seed, net, max_events, |_| {}, |_| HashMap::new())
    }

    /// [`Network::build`], with the nodes' Kademlia configuration changed by `tweak`, and the peers
    /// `addresses` returns (given every node's peer id, in order) connecting from those addresses instead
    /// of their synthetic ones.
    pub(crate) fn build_with(
        n: usize,
        seed: u64,
        net: &NetArgs,
        max_events: u64,
        tweak: impl FnOnce(&mut Config),
        addresses: impl FnOnce(&[PeerId]) -> HashMap<PeerId, Address>,
    ) -> Result<Self, String> {
        if n < 2 {
            return Err("kad needs at least 2 nodes".into());
        }
        // The whole network runs on this thread and names the same ids again and again: four slots a
        // node keep most of their keys (see `memoize_peer_keys`).
        meshwork_kad::key::memoize_peer_keys(4 * n);
        let mut link = LinkConfig::constant(Duration::from_millis(net.latency_ms))
            .with_jitter(Duration::from_millis(net.jitter_ms))
            .with_loss(net.loss);
        if net.idle_timeout_secs > 0 {
            link = link.with_idle_timeout(Duration::from_secs(net.idle_timeout_secs));
        }
        let mut sim = Sim::new(SimConfig::new(seed).with_link(link));
        let mut config = Config::default();
        config.k = net.k;
        config.alpha = net.alpha;
        config.disjoint_paths = net.paths;
        config.anchors = net.anchors;
        tweak(&mut config);
        let nodes = sim
            .add_nodes(n, |init| KadNode::new(init, config.clone()))
            .map_err(|e| e.to_string())?;
        let peers: Vec<PeerId> = nodes.iter().filter_map(|&node| sim.peer_id(node)).collect();
        let addresses = Rc::new(addresses(&peers));
        for &node in &nodes {
            if let Some(state) = sim.state_mut(node) {
                state.set_addresses(addresses.clone());
            }
        }
        let mut this = Self {
            sim,
            nodes,
            peers,
            config,
            bootstrapped: 0,
            join_messages: 0,
            ready_ms: 0,
            budget: max_events,
            addresses,
            next_query: 0,
        };
        let contacts: Vec<PeerInfo> = this
            .peers
            .iter()
            .take(net.bootstraps.max(1))
            .map(|&p| this.info(p))
            .collect();

        let interval = net.join_interval(n);
        for i in 1..n {
            let peers = contacts.iter().take(i).cloned().collect();
            let command = Command::Bootstrap {
                query: this.query(),
                peers,
            };
            let at = at_ms(i as u64 * interval);
            this.sim
                .schedule_command(at, this.nodes[i], command)
                .map_err(|e| e.to_string())?;
        }
        let joined = n as u64 * interval + 30_000;
        let mut bootstrapped = 0;
        this.run_phase(at_ms(joined), "joining", |_, _, event| {
            if let NodeEvent::Kad(Event::Bootstrapped { .. }) = event {
                bootstrapped += 1;
            }
        });
        this.bootstrapped = bootstrapped;

        this.ready_ms = joined;
        if net.settle {
            let spread = (n as u64 * interval / 4).max(1000);
            for i in 0..n {
                let own = this.peers[i];
                let command = Command::Bootstrap {
                    query: this.query(),
                    peers: contacts.iter().filter(|c| c.id != own).cloned().collect(),
                };
                let at = at_ms(joined + spread * i as u64 / n as u64);
                this.sim
                    .schedule_command(at, this.nodes[i], command)
                    .map_err(|e| e.to_string())?;
            }
            this.ready_ms = joined + spread + 30_000;
            this.run_phase(at_ms(this.ready_ms), "settling", |_, _, _| {});
        }
        this.join_messages = this.sim.stats().messages_sent;
        Ok(this)
    }
}
