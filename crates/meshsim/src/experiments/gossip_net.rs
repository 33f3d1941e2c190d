//! What the gossip experiments share: link and timing options, building a joined overlay, measuring one
//! broadcast, and reading the overlay the active views form.
//!
//! Nodes join one by one, `--join-interval-ms` apart, each through a contact drawn from the nodes already
//! in (as a bootstrap list or a DHT would give), then the overlay settles for `--settle-secs` (shuffle
//! rounds fill the passive views). Every new link's round trip reaches gossip as on the node runtime
//! (`--no-round-trips` leaves it out).

use std::time::Duration;

use clap::Args as ClapArgs;
use meshwork_gossip::{Command, Event, Gossip, MessageId, TopicId, TopicOptions};
use meshwork_sim::{LinkConfig, NodeId, Sim, SimConfig};
use meshwork_wire::{Instant, Protocol};
use rand::Rng;

/// Network and timing options of the gossip experiments.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct NetArgs {
    /// Payload size in bytes.
    #[arg(long, default_value_t = 64)]
    pub(crate) payload_bytes: usize,
    /// One-way link latency in milliseconds (plus up to `--jitter-ms`).
    #[arg(long, default_value_t = 50)]
    pub(crate) latency_ms: u64,
    /// Extra random delay per message, up to this many milliseconds.
    #[arg(long, default_value_t = 10)]
    pub(crate) jitter_ms: u64,
    /// Virtual time between two broadcasts, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub(crate) interval_ms: u64,
    /// Virtual time between two joins, in milliseconds.
    #[arg(long, default_value_t = 2)]
    pub(crate) join_interval_ms: u64,
    /// Virtual time the overlay settles after the last join, in seconds.
    #[arg(long, default_value_t = 30)]
    pub(crate) settle_secs: u64,
    /// Each node's upload bandwidth in bytes per second (messages queue behind each other on the
    /// sender's uplink); unlimited if not given. With it, a high enough `--rate` saturates the network.
    #[arg(long)]
    pub(crate) upload_bytes_per_sec: Option<u64>,
    /// Do not tell gossip each new link's round trip. By default it hears it, as it does on the node
    /// runtime (coin-node and chat pass the QUIC handshake's): its wait before grafting is then
    /// learnt from the first link, where without it the wait stays at `graft_timeout` (300 ms)
    /// until a graft is answered.
    #[arg(long)]
    pub(crate) no_round_trips: bool,
}

impl NetArgs {
    /// The link model: constant latency plus uniform jitter.
    pub(crate) fn link(&self) -> LinkConfig {
        let link = LinkConfig::constant(Duration::from_millis(self.latency_ms))
            .with_jitter(Duration::from_millis(self.jitter_ms));
        match self.upload_bytes_per_sec {
            Some(rate) => link.with_upload(rate),
            None => link,
        }
    }
}

/// The one topic of the experiments.
pub(crate) fn topic() -> TopicId {
    TopicId::from_name("meshsim")
}

/// A simulated node that is, or wraps, a [`Gossip`] state machine.
pub(crate) trait GossipNode: Protocol<Event = Event> {
    /// The gossip state.
    fn gossip(&self) -> &Gossip;
    /// The node's command for a gossip command.
    fn wrap(command: Command) -> Self::Command;
}

impl GossipNode for Gossip {
    fn gossip(&self) -> &Gossip {
        self
    }

    fn wrap(command: Command) -> Command {
        command
    }
}

/// Creates `n` nodes with `make`, subscribes them, joins them one by one and lets the overlay settle.
pub(crate) fn build<P: GossipNode>(
    n: usize,
    seed: u64,
    net: &NetArgs,
    options: TopicOptions,
    make: impl FnMut(&meshwork_sim::NodeInit<'_>) -> P,
) -> Result<Sim<P>, String> {
    let mut sim = Sim::new(SimConfig::new(seed).with_link(net.link()));
    if !net.no_round_trips {
        sim.set_round_trip_hook(|peer, rtt| Some(P::wrap(Command::PeerRoundTrip { peer, rtt })));
    }
    let nodes = sim.add_nodes(n, make).map_err(|e| e.to_string())?;
    for &node in &nodes {
        sim.command(node, P::wrap(Command::Subscribe(topic(), options)))
            .map_err(|e| e.to_string())?;
    }
    for (i, &node) in nodes.iter().enumerate().skip(1) {
        let contact = NodeId(u32::try_from(sim.rng().gen_range(0..i)).unwrap_or(0));
        let Some(contact) = sim.peer_id(contact) else {
            continue;
        };
        sim.command(node, P::wrap(Command::Join(vec![contact])))
            .map_err(|e| e.to_string())?;
        sim.advance(Duration::from_millis(net.join_interval_ms), |_, _, _| {});
    }
    sim.advance(Duration::from_secs(net.settle_secs), |_, _, _| {});
    Ok(sim)
}

/// Figures of one broadcast.
#[derive(Debug, Default)]
pub(crate) struct Broadcast {
    /// Counted nodes that delivered it.
    pub(crate) delivered: usize,
    /// Counted live nodes.
    pub(crate) live: usize,
    /// Full copies the counted nodes received.
    pub(crate) copies: u64,
    /// Hops of the last delivery.
    pub(crate) max_hops: u32,
    /// Delivery latencies, origin excluded.
    pub(crate) latencies_ms: Vec<f64>,
    /// The last delivery, in milliseconds after publication (0 if nobody but the origin delivered).
    pub(crate) last_ms: f64,
}

impl Broadcast {
    /// The share of the counted live nodes that delivered it.
    pub(crate) fn reliability(&self) -> f64 {
        self.delivered as f64 / self.live.max(1) as f64
    }
}

/// Each broadcast's reliability, numbered from 1: the points of a reliability-over-time line.
pub(crate) fn per_broadcast(runs: &[Broadcast]) -> Vec<(f64, f64)> {
    runs.iter()
        .enumerate()
        .map(|(i, b)| ((i + 1) as f64, b.reliability()))
        .collect()
}

/// Publishes one message from `origin` and follows it for `--interval-ms`, counting only the live nodes
/// `counted` selects (all of them, or the honest ones). Every event is also handed to `watch`.
pub(crate) fn broadcast<P: GossipNode>(
    sim: &mut Sim<P>,
    origin: NodeId,
    net: &NetArgs,
    payload: Vec<u8>,
    counted: &dyn Fn(NodeId) -> bool,
    watch: &mut dyn FnMut(Instant, NodeId, &Event),
) -> Broadcast {
    let received = |sim: &Sim<P>| -> u64 {
        sim.live_nodes()
            .filter(|n| counted(*n))
            .filter_map(|n| sim.state(n))
            .map(|s| s.gossip().stats().tree.gossip_received)
            .sum()
    };
    let before = received(sim);
    let published = sim.now();
    let _ = sim.command(origin, P::wrap(Command::Publish(topic(), payload)));
    let mut id: Option<MessageId> = None;
    let mut out = Broadcast {
        live: sim.live_nodes().filter(|n| counted(*n)).count(),
        ..Broadcast::default()
    };
    sim.advance(Duration::from_millis(net.interval_ms), |at, node, event| {
        watch(at, node, &event);
        match event {
            Event::Published { id: new, .. } if node == origin => id = Some(new),
            Event::Delivered { id: got, hops, .. } if Some(got) == id && counted(node) => {
                out.delivered += 1;
                out.max_hops = out.max_hops.max(u32::from(hops));
                if hops > 0 {
                    let ms = (at - published).as_secs_f64() * 1000.0;
                    out.latencies_ms.push(ms);
                    out.last_ms = out.last_ms.max(ms);
                }
            }
            _ => {}
        }
    });
    out.copies = received(sim) - before;
    out
}

/// The overlay the active views form: its links (each once, both ends agreeing) and its number of
/// connected components among live nodes.
pub(crate) fn overlay<P: GossipNode>(sim: &Sim<P>) -> (Vec<(NodeId, NodeId)>, usize) {
    let n = sim.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut edges = Vec::new();
    for node in sim.live_nodes() {
        let Some(state) = sim.state(node) else {
            continue;
        };
        let me = state.gossip().peer_id();
        for peer in state.gossip().active_view() {
            let Some(other) = sim.node_of(peer) else {
                continue;
            };
            let mutual = sim
                .state(other)
                .is_some_and(|s| s.gossip().active_view().contains(&me));
            if node < other && mutual {
                edges.push((node, other));
                let (a, b) = (
                    root(&mut parent, node.0 as usize),
                    root(&mut parent, other.0 as usize),
                );
                parent[a] = b;
            }
        }
    }
    let live: Vec<usize> = sim.live_nodes().map(|n| n.0 as usize).collect();
    let mut roots: Vec<usize> = live.iter().map(|&x| root(&mut parent, x)).collect();
    roots.sort_unstable();
    roots.dedup();
    (edges, roots.len())
}
