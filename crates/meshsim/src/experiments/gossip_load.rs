//! The measured workload of `meshsim gossip`: messages published on a schedule (one origin after another,
//! at a network-wide rate, so broadcasts overlap when the rate is high), each followed to its last
//! delivery. The same schedule runs over gossip and over flood on the same overlay, so every figure has
//! its reference from the same run.
//!
//! What a workload costs is counted from the simulator's totals over its window (publication of the first
//! message to the end of the drain after the last): every byte sent, membership and announcements
//! included, over every payload byte delivered to a node other than the origin.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use meshwork_gossip::{Command, Event, Gossip, MessageId};
use meshwork_sim::flood::{Flood, FloodCommand, FloodEvent};
use meshwork_sim::metrics::Summary;
use meshwork_sim::{NodeId, Sim};
use meshwork_wire::Instant;

use super::gossip_net::{Broadcast, topic};
use crate::clock::Progress;
use crate::report::Report;

/// Who publishes when: offsets from the workload's start, and the time every message gets to spread
/// after the last publication.
#[derive(Clone, Debug)]
pub(crate) struct Schedule {
    /// Each message's publication offset and origin, in order.
    pub(crate) sends: Vec<(Duration, NodeId)>,
    /// How long the workload runs after the last publication.
    pub(crate) drain: Duration,
}

impl Schedule {
    /// `count` messages at `rate` per second network-wide, from `origins` in turn, starting with the
    /// one at index `first` (so successive workloads can start with origins that have not published).
    pub(crate) fn at_rate(origins: &[NodeId], first: usize, count: u64, rate: f64, drain: Duration) -> Self {
        let spacing = Duration::from_secs_f64(1.0 / rate.max(1e-6));
        let sends = (0..count)
            .zip(origins.iter().cycle().skip(first % origins.len().max(1)))
            .map(|(i, &origin)| (spacing.mul_f64(i as f64), origin))
            .collect();
        Self { sends, drain }
    }
}

/// What one workload measured.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Each message's figures, in publication order.
    pub(crate) runs: Vec<Broadcast>,
    /// Full copies received in the window (the origin's own excluded by construction).
    pub(crate) copies: u64,
    /// Every byte sent in the window.
    pub(crate) wire_bytes: u64,
    /// Of those, the bytes of control messages (membership, grafts, prunes, declines).
    pub(crate) control_bytes: u64,
    /// The payload size of every message.
    pub(crate) payload_bytes: usize,
    /// How long the window lasted, in virtual time.
    pub(crate) window: Duration,
}

impl Outcome {
    /// Deliveries at nodes other than the origin, over every message (at least 1).
    fn receivers(&self) -> u64 {
        let sum: u64 = self
            .runs
            .iter()
            .map(|b| b.delivered.saturating_sub(1) as u64)
            .sum();
        sum.max(1)
    }

    /// Full copies received per delivering node (the origin excluded), minus one.
    pub(crate) fn rmr(&self) -> f64 {
        self.copies as f64 / self.receivers() as f64 - 1.0
    }

    /// Bytes on the wire per payload byte delivered to a node other than its origin.
    pub(crate) fn wire_bytes_per_payload_byte(&self) -> f64 {
        self.per_payload_byte(self.wire_bytes)
    }

    /// The control messages' share of [`Outcome::wire_bytes_per_payload_byte`].
    pub(crate) fn control_bytes_per_payload_byte(&self) -> f64 {
        self.per_payload_byte(self.control_bytes)
    }

    /// Control bytes a node sent per second of the window: what membership and tree upkeep cost a
    /// node, which at a low rate is most of what it sends.
    pub(crate) fn control_bytes_per_node_per_sec(&self, nodes: usize) -> f64 {
        self.control_bytes as f64 / nodes.max(1) as f64 / self.window.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// `--csv`'s rows, one per message: [`CSV_HEADER`]'s columns.
    pub(crate) fn csv_rows<'a>(&'a self, protocol: &'a str, rate: f64) -> impl Iterator<Item = String> + 'a {
        self.runs.iter().enumerate().map(move |(i, b)| {
            let p50 = Summary::of(b.latencies_ms.clone()).p50;
            format!(
                "{protocol},{rate},{i},{},{},{:.4},{},{:.3},{:.3}",
                b.delivered,
                b.live,
                b.reliability(),
                b.max_hops,
                b.last_ms,
                p50
            )
        })
    }

    fn per_payload_byte(&self, bytes: u64) -> f64 {
        bytes as f64 / (self.receivers() * self.payload_bytes.max(1) as u64) as f64
    }

    /// The hops of the latest first delivery of any message.
    pub(crate) fn last_hop(&self) -> u32 {
        self.runs.iter().map(|b| b.max_hops).max().unwrap_or(0)
    }

    /// Each message's share of the live nodes reached.
    pub(crate) fn reliabilities(&self) -> Vec<f64> {
        self.runs.iter().map(Broadcast::reliability).collect()
    }

    /// The worst message's reliability.
    pub(crate) fn reliability_min(&self) -> f64 {
        self.reliabilities().into_iter().fold(1.0, f64::min)
    }

    /// Every delivery's latency, origin excluded.
    pub(crate) fn latencies_ms(&self) -> Vec<f64> {
        self.runs
            .iter()
            .flat_map(|b| b.latencies_ms.iter().copied())
            .collect()
    }

    /// Each message's last delivery, after its publication.
    pub(crate) fn last_delivery_ms(&self) -> Vec<f64> {
        self.runs.iter().map(|b| b.last_ms).collect()
    }

    /// Adds this outcome's figures under `prefix` (`gossip` or `flood`): reliability (mean, min), RMR,
    /// last hop, latency (p50, p99), last delivery (p50, p99), bytes per node, wire bytes per payload byte.
    pub(crate) fn report(&self, report: &mut Report, keys: &Keys, nodes: usize) {
        let reliability = Summary::of(self.reliabilities());
        let latency = Summary::of(self.latencies_ms());
        let last = Summary::of(self.last_delivery_ms());
        report
            .add(keys.0[0], reliability.mean)
            .add(keys.0[1], reliability.min)
            .add(keys.0[2], self.rmr())
            .add(keys.0[3], self.last_hop())
            .add(keys.0[4], latency.p50)
            .add(keys.0[5], latency.p99)
            .add(keys.0[6], last.p50)
            .add(keys.0[7], last.p99)
            .add(keys.0[8], self.wire_bytes as f64 / nodes.max(1) as f64)
            .add(keys.0[9], self.wire_bytes_per_payload_byte());
    }
}

/// The columns of [`Outcome::csv_rows`]: the protocol (and phase), the network-wide rate of its
/// workload (messages per second), the message's number in it, the live nodes that delivered it and
/// all live nodes, their ratio, the last delivery's hops and time, and the median latency.
pub(crate) const CSV_HEADER: &str =
    "protocol,rate,message,delivered,live,reliability,last_delivery_hop,last_delivery_ms,latency_ms_p50";

/// The report keys of one protocol's figures, in the order [`Outcome::report`] adds them.
pub(crate) struct Keys(pub(crate) [&'static str; 10]);

/// Gossip's keys.
pub(crate) const GOSSIP: Keys = Keys([
    "gossip_reliability",
    "gossip_reliability_min",
    "gossip_rmr",
    "gossip_last_delivery_hop",
    "gossip_latency_ms_p50",
    "gossip_latency_ms_p99",
    "gossip_last_delivery_ms_p50",
    "gossip_last_delivery_ms_p99",
    "gossip_bytes_per_node",
    "gossip_wire_bytes_per_payload_byte",
]);

/// Flood's keys.
pub(crate) const FLOOD: Keys = Keys([
    "flood_reliability",
    "flood_reliability_min",
    "flood_rmr",
    "flood_last_delivery_hop",
    "flood_latency_ms_p50",
    "flood_latency_ms_p99",
    "flood_last_delivery_ms_p50",
    "flood_last_delivery_ms_p99",
    "flood_bytes_per_node",
    "flood_wire_bytes_per_payload_byte",
]);

/// Per-message bookkeeping while a workload runs.
struct Follow {
    runs: Vec<Broadcast>,
    published: Vec<Instant>,
}

impl Follow {
    fn new(count: usize) -> Self {
        Self {
            runs: (0..count).map(|_| Broadcast::default()).collect(),
            published: vec![Instant::ZERO; count],
        }
    }

    fn delivered(&mut self, index: usize, at: Instant, hops: u32) {
        let (Some(run), Some(&published)) = (self.runs.get_mut(index), self.published.get(index)) else {
            return;
        };
        run.delivered += 1;
        run.max_hops = run.max_hops.max(hops);
        if hops > 0 {
            let ms = (at - published).as_secs_f64() * 1000.0;
            run.latencies_ms.push(ms);
            run.last_ms = run.last_ms.max(ms);
        }
    }
}

/// Runs `schedule` on any simulated protocol: `publish(sim, index, origin)` publishes message `index`,
/// and `on_event` maps each event to the index and hops of a delivery, if it is one.
fn run<P: meshwork_wire::Protocol>(
    sim: &mut Sim<P>,
    schedule: &Schedule,
    label: &str,
    mut publish: impl FnMut(&mut Sim<P>, usize, NodeId),
    mut on_event: impl FnMut(NodeId, P::Event) -> Option<(usize, u32)>,
) -> Vec<Broadcast> {
    let mut follow = Follow::new(schedule.sends.len());
    let start = sim.now();
    let mut progress = Progress::new();
    let total = schedule.sends.len();
    let mut record = |follow: &mut Follow, at: Instant, node: NodeId, event: P::Event| {
        if let Some((index, hops)) = on_event(node, event) {
            follow.delivered(index, at, hops);
        }
    };
    for (index, &(offset, origin)) in schedule.sends.iter().enumerate() {
        progress.tick(|| format!("{label}: message {index} of {total}"));
        sim.run_until(start + offset, |at, node, event| {
            record(&mut follow, at, node, event)
        });
        follow.published[index] = sim.now();
        follow.runs[index].live = sim.live_nodes().count();
        if sim.is_up(origin) {
            publish(sim, index, origin);
        }
    }
    let end = start + schedule.sends.last().map_or(Duration::ZERO, |s| s.0) + schedule.drain;
    sim.run_until(end, |at, node, event| record(&mut follow, at, node, event));
    follow.runs
}

/// Runs `schedule` over gossip.
pub(crate) fn gossip(sim: &mut Sim<Gossip>, schedule: &Schedule, payload_bytes: usize) -> Outcome {
    let received = |sim: &Sim<Gossip>| -> u64 {
        sim.live_nodes()
            .filter_map(|n| sim.state(n))
            .map(|s| s.stats().tree.gossip_received)
            .sum()
    };
    let (copies_before, bytes_before) = (received(sim), sim.stats().bytes_sent);
    let control_before = sim.stats().control_bytes;
    let start = sim.now();
    // A publication's id is known when its origin emits `Published`, in the same step.
    let waiting: RefCell<HashMap<NodeId, VecDeque<usize>>> = RefCell::default();
    let mut ids: HashMap<MessageId, usize> = HashMap::new();
    let runs = run(
        sim,
        schedule,
        "gossip",
        |sim, index, origin| {
            waiting.borrow_mut().entry(origin).or_default().push_back(index);
            let _ = sim.command(origin, Command::Publish(topic(), vec![0xab; payload_bytes]));
        },
        |node, event| match event {
            Event::Published { id, .. } => {
                let index = waiting.borrow_mut().get_mut(&node)?.pop_front()?;
                ids.insert(id, index);
                None
            }
            Event::Delivered { id, hops, .. } => Some((*ids.get(&id)?, u32::from(hops))),
            _ => None,
        },
    );
    Outcome {
        runs,
        copies: received(sim) - copies_before,
        wire_bytes: sim.stats().bytes_sent - bytes_before,
        control_bytes: sim.stats().control_bytes - control_before,
        payload_bytes,
        window: sim.now() - start,
    }
}

/// Runs `schedule` over flood (message ids are the schedule's indices, offset by `first_id`).
pub(crate) fn flood(
    sim: &mut Sim<Flood>,
    schedule: &Schedule,
    payload_bytes: usize,
    first_id: u64,
) -> Outcome {
    let (sent_before, bytes_before) = (sim.stats().messages_sent, sim.stats().bytes_sent);
    let start = sim.now();
    let runs = run(
        sim,
        schedule,
        "flood",
        |sim, index, origin| {
            if let Ok(command) = FloodCommand::publish(first_id + index as u64, vec![0xab; payload_bytes]) {
                let _ = sim.command(origin, command);
            }
        },
        |_, FloodEvent::Delivered { id, hops, .. }| {
            let index = usize::try_from(id.checked_sub(first_id)?).ok()?;
            Some((index, hops))
        },
    );
    Outcome {
        runs,
        copies: sim.stats().messages_sent - sent_before,
        wire_bytes: sim.stats().bytes_sent - bytes_before,
        control_bytes: 0, // flood has none
        payload_bytes,
        window: sim.now() - start,
    }
}
