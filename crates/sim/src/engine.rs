//! The simulator: nodes, the event queue, and the API an experiment drives it with.

use std::collections::HashMap;
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_wire::{Instant, Output, Protocol};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::fast_hash::FoldBuild;
use crate::idle::LinkUse;
use crate::queue::{Pending, Queue};
use crate::trace::Trace;
use crate::{Behaviour, Churn, Control, LinkConfig, NodeId, NodeInit, NodeStats, SimError, SimStats};

/// How a simulation is set up.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// The run seed: it derives every node key, every protocol RNG seed and the simulator's own RNG.
    pub seed: u64,
    /// The network model.
    pub link: LinkConfig,
    /// How many random live nodes a restarted node is connected to.
    pub rejoin_degree: usize,
}

impl SimConfig {
    /// The default network (50 ms constant latency, no loss) with this seed.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            link: LinkConfig::default(),
            rejoin_degree: 8,
        }
    }

    /// The same configuration with another network model.
    pub fn with_link(mut self, link: LinkConfig) -> Self {
        self.link = link;
        self
    }
}

/// Builds the fresh state of a node that restarts after a crash.
pub type RestartFactory<P> = Box<dyn FnMut(&NodeInit<'_>) -> P>;

/// A command to deliver when a connection comes up, built from the peer and the link's round trip:
/// the same shape as the node runtime's `on_round_trip` hook (`meshwork_node::OnRoundTrip`), which
/// passes the QUIC handshake's measurement. See [`Sim::set_round_trip_hook`].
pub type RoundTripHook<P> = fn(PeerId, Duration) -> Option<<P as Protocol>::Command>;

/// Why a run call returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// No event is left: nothing will ever happen again unless the experiment adds something.
    Idle,
    /// The next event is later than the time asked for.
    ReachedTime,
    /// The event budget is spent.
    EventLimit,
}

/// What a run call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOutcome {
    /// Events processed by this call.
    pub events: u64,
    /// Why it returned.
    pub stop: Stop,
}

/// What every event touches about its node, packed in 16 bytes so the whole array stays in cache.
#[derive(Clone, Copy)]
pub(crate) struct Hot {
    /// Messages delivered to the node.
    pub(crate) received: u64,
    /// Bumped at every crash, so events meant for an earlier life are discarded.
    pub(crate) epoch: u32,
    pub(crate) group: u16,
    pub(crate) region: u8,
    pub(crate) up: bool,
}

/// What the simulator keeps per node besides the protocol state and [`Hot`] (about 60 bytes plus 4 per
/// link, 12 with an idle timeout).
pub(crate) struct NodeMeta {
    /// Indices of connected nodes, sorted.
    pub(crate) links: Vec<u32>,
    /// With an idle timeout, each link's use, in the order of `links`; empty without one.
    pub(crate) uses: Vec<LinkUse>,
    pub(crate) upload_free_at: u64,
    pub(crate) stats: NodeStats,
}

/// A deterministic discrete-event simulation of a network of `P` nodes. See the crate docs for the model.
pub struct Sim<P: Protocol> {
    pub(crate) now: u64,
    pub(crate) seed: u64,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) link: LinkConfig,
    pub(crate) rejoin_degree: usize,
    pub(crate) nodes: Vec<NodeMeta>,
    pub(crate) hot: Vec<Hot>,
    pub(crate) peers: Vec<PeerId>,
    /// Connections closed so far: a message sent when this was `k` still has its connection on arrival
    /// if it is still `k`, which spares a lookup per delivery.
    pub(crate) unlinks: u64,
    pub(crate) states: Vec<Option<P>>,
    pub(crate) index: HashMap<PeerId, u32, FoldBuild>,
    pub(crate) queue: Queue<P>,
    pub(crate) out: Vec<Output<P>>,
    pub(crate) trace: Trace,
    pub(crate) stats: SimStats,
    pub(crate) adversaries: HashMap<u32, Behaviour<P>, FoldBuild>,
    pub(crate) restart: Option<RestartFactory<P>>,
    pub(crate) round_trip_hook: Option<RoundTripHook<P>>,
    pub(crate) partitioned: bool,
    /// When idle connections are next looked for (with [`LinkConfig::idle_timeout`]).
    pub(crate) sweep_at: Option<u64>,
}

fn derive(context: &str, seed: u64, index: u32, extra: u32) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(context);
    hasher.update(&seed.to_le_bytes());
    hasher.update(&index.to_le_bytes());
    hasher.update(&extra.to_le_bytes());
    *hasher.finalize().as_bytes()
}

/// The key node `index` gets in a run with `seed`: for experiments that must know keys before they
/// build the nodes (a validator set that every validator is constructed with).
pub fn node_keypair(seed: u64, index: u32) -> Keypair {
    Keypair::from_seed(derive("meshwork-sim node key", seed, index, 0))
}

fn derive_u64(context: &str, seed: u64, index: u32, extra: u32) -> u64 {
    let bytes = derive(context, seed, index, extra);
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

impl<P: Protocol> Sim<P> {
    /// An empty simulation at virtual time zero.
    pub fn new(config: SimConfig) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(derive_u64("meshwork-sim engine rng", config.seed, 0, 0));
        let sweep_at = config.link.idle_timeout.map(crate::idle::sweep_interval);
        Self {
            now: 0,
            seed: config.seed,
            rng,
            link: config.link,
            rejoin_degree: config.rejoin_degree,
            nodes: Vec::new(),
            hot: Vec::new(),
            peers: Vec::new(),
            unlinks: 0,
            states: Vec::new(),
            index: HashMap::default(),
            queue: Queue::new(),
            out: Vec::new(),
            trace: Trace::new(),
            stats: SimStats::default(),
            adversaries: HashMap::default(),
            restart: None,
            round_trip_hook: None,
            partitioned: false,
            sweep_at,
        }
    }

    pub(crate) fn keypair(&self, index: u32) -> Keypair {
        node_keypair(self.seed, index)
    }

    pub(crate) fn init_state(
        &self,
        index: u32,
        incarnation: u32,
        keypair: &Keypair,
        make: impl FnOnce(&NodeInit<'_>) -> P,
    ) -> P {
        let init = NodeInit {
            id: NodeId(index),
            keypair,
            rng_seed: derive_u64("meshwork-sim node rng", self.seed, index, incarnation),
            incarnation,
        };
        make(&init)
    }

    /// Adds a node, built by `make` from its id, key and RNG seed. It starts up, with no connections.
    pub fn add_node(&mut self, make: impl FnOnce(&NodeInit<'_>) -> P) -> Result<NodeId, SimError> {
        let index = u32::try_from(self.nodes.len()).map_err(|_| SimError::TooManyNodes)?;
        let keypair = self.keypair(index);
        let state = self.init_state(index, 0, &keypair, make);
        let region = match &self.link.latency {
            crate::Latency::Regions(matrix) => u8::try_from(self.rng.gen_range(0..matrix.len())).unwrap_or(0),
            _ => 0,
        };
        let peer = keypair.peer_id();
        self.index.insert(peer, index);
        self.nodes.push(NodeMeta {
            links: Vec::new(),
            uses: Vec::new(),
            upload_free_at: 0,
            stats: NodeStats::default(),
        });
        self.hot.push(Hot {
            received: 0,
            epoch: 0,
            group: 0,
            region,
            up: true,
        });
        self.peers.push(peer);
        self.states.push(Some(state));
        Ok(NodeId(index))
    }

    /// Adds `count` nodes built by `make`.
    pub fn add_nodes(
        &mut self,
        count: usize,
        mut make: impl FnMut(&NodeInit<'_>) -> P,
    ) -> Result<Vec<NodeId>, SimError> {
        self.nodes.reserve(count);
        self.states.reserve(count);
        (0..count).map(|_| self.add_node(&mut make)).collect()
    }

    pub(crate) fn check(&self, node: NodeId) -> Result<u32, SimError> {
        if node.index() < self.nodes.len() {
            Ok(node.0)
        } else {
            Err(SimError::UnknownNode(node))
        }
    }

    /// Connects two live nodes now: both get `PeerUp` at the current time. Connecting nodes that are
    /// already connected does nothing.
    pub fn connect(&mut self, a: NodeId, b: NodeId) -> Result<(), SimError> {
        self.apply_control(Control::Connect(a, b))
    }

    /// Hands `cmd` to `node` at the current time.
    pub fn command(&mut self, node: NodeId, cmd: P::Command) -> Result<(), SimError> {
        self.schedule_command(Instant::from_nanos(self.now), node, cmd)
    }

    /// Hands `cmd` to `node` at time `at` (or now, if `at` has passed), if the node is up then.
    pub fn schedule_command(&mut self, at: Instant, node: NodeId, cmd: P::Command) -> Result<(), SimError> {
        let node = self.check(node)?;
        self.queue
            .push(at.as_nanos().max(self.now), Pending::Command { node, cmd });
        Ok(())
    }

    /// Applies `control` at time `at` (or now, if `at` has passed).
    pub fn schedule_control(&mut self, at: Instant, control: Control) -> Result<(), SimError> {
        self.validate(&control)?;
        self.queue
            .push(at.as_nanos().max(self.now), Pending::Control(control));
        Ok(())
    }

    /// Applies `control` now.
    pub fn apply_control(&mut self, control: Control) -> Result<(), SimError> {
        self.validate(&control)?;
        self.control(control)
    }

    fn validate(&self, control: &Control) -> Result<(), SimError> {
        match control {
            Control::Partition(groups) => groups.iter().flatten().try_for_each(|&n| self.check(n).map(drop)),
            Control::Heal => Ok(()),
            Control::Crash(n) => self.check(*n).map(drop),
            Control::Restart(n) => {
                self.check(*n)?;
                self.restart.as_ref().map(drop).ok_or(SimError::NoRestartFactory)
            }
            Control::Connect(a, b) | Control::Disconnect(a, b) => {
                self.check(*a)?;
                self.check(*b)?;
                if a == b {
                    Err(SimError::SelfConnect(*a))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Sets how a restarted node gets its fresh state.
    pub fn set_restart(&mut self, factory: impl FnMut(&NodeInit<'_>) -> P + 'static) {
        self.restart = Some(Box::new(factory));
    }

    /// From now on, every `PeerUp` is followed in the same step by the command `hook` builds from the
    /// peer and the link's round trip, as the node runtime follows it with the handshake's (a protocol
    /// that learns from round trips then learns the same here). The round trip is the link model's
    /// mean, so it draws nothing from the run's RNG: the base latency both ways (a uniform range's
    /// midpoint) plus the mean jitter of both directions.
    pub fn set_round_trip_hook(&mut self, hook: RoundTripHook<P>) {
        self.round_trip_hook = Some(hook);
    }

    /// Makes `node` an adversary: `behaviour` applies to every message it sends from now on.
    pub fn set_adversary(&mut self, node: NodeId, behaviour: Behaviour<P>) -> Result<(), SimError> {
        let node = self.check(node)?;
        self.adversaries.insert(node, behaviour);
        Ok(())
    }

    /// Makes `node` honest again.
    pub fn clear_adversary(&mut self, node: NodeId) {
        self.adversaries.remove(&node.0);
    }

    /// Schedules churn (crashes and restarts) as described by `churn`; returns how many departures it
    /// scheduled (at most ten million).
    pub fn churn(&mut self, churn: &Churn) -> Result<u64, SimError> {
        if self.restart.is_none() {
            return Err(SimError::NoRestartFactory);
        }
        let n = self.nodes.len();
        if n == 0
            || churn.leaves_per_sec.is_nan()
            || churn.leaves_per_sec <= 0.0
            || !churn.leaves_per_sec.is_finite()
        {
            return Ok(0);
        }
        let mut t = churn.start.as_nanos().max(self.now) as f64;
        let end = churn.end.as_nanos() as f64;
        let mut scheduled = 0;
        while scheduled < 10_000_000 {
            let u: f64 = self.rng.r#gen();
            t += -(1.0 - u).ln() / churn.leaves_per_sec * 1e9;
            if t >= end {
                break;
            }
            let node = NodeId(u32::try_from(self.rng.gen_range(0..n)).unwrap_or(0));
            let at = Instant::from_nanos(t as u64);
            self.queue
                .push(at.as_nanos(), Pending::Control(Control::Crash(node)));
            let back = at + churn.downtime;
            self.queue
                .push(back.as_nanos(), Pending::Control(Control::Restart(node)));
            scheduled += 1;
        }
        Ok(scheduled)
    }

    /// Places `node` in region `region` of the [`crate::Latency::Regions`] matrix.
    pub fn set_region(&mut self, node: NodeId, region: u8) -> Result<(), SimError> {
        let node = self.check(node)?;
        self.hot[node as usize].region = region;
        Ok(())
    }

    /// Processes events up to and including time `until`, then sets the clock to `until`
    /// (unless `until` is [`Instant::MAX`]). Emitted events go to `on_emit`.
    pub fn run_until<F>(&mut self, until: Instant, on_emit: F) -> RunOutcome
    where
        F: FnMut(Instant, NodeId, P::Event),
    {
        self.run(until, u64::MAX, on_emit)
    }

    /// Processes at most `max_events` events, however far in time they go.
    pub fn run_for<F>(&mut self, max_events: u64, on_emit: F) -> RunOutcome
    where
        F: FnMut(Instant, NodeId, P::Event),
    {
        self.run(Instant::MAX, max_events, on_emit)
    }

    /// Processes events until the queue is empty, the next event is after `until`, or `max_events` were
    /// processed, whichever comes first. The clock moves to `until` only in the first two cases.
    pub fn run<F>(&mut self, until: Instant, max_events: u64, mut on_emit: F) -> RunOutcome
    where
        F: FnMut(Instant, NodeId, P::Event),
    {
        let until = until.as_nanos();
        let mut events = 0;
        let stop = loop {
            if events >= max_events {
                break Stop::EventLimit;
            }
            match self.queue.peek_time() {
                None => break Stop::Idle,
                Some(time) if time > until => break Stop::ReachedTime,
                Some(time) => self.sweep_before(time, &mut on_emit),
            }
            let Some((time, pending)) = self.queue.pop() else {
                break Stop::Idle;
            };
            self.now = time;
            events += 1;
            self.stats.events += 1;
            self.process(pending, &mut on_emit);
        };
        if stop != Stop::EventLimit && until != u64::MAX {
            self.now = self.now.max(until);
        }
        RunOutcome { events, stop }
    }

    /// Moves the clock forward by `duration`, processing everything on the way.
    pub fn advance<F>(&mut self, duration: Duration, on_emit: F) -> RunOutcome
    where
        F: FnMut(Instant, NodeId, P::Event),
    {
        let until = Instant::from_nanos(self.now) + duration;
        self.run_until(until, on_emit)
    }
}
