//! What a query cost ([`QueryStats`], carried by every answer) and what the node sent and heard since it
//! started ([`KadTotals`], read with [`crate::Kademlia::totals`]).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::Instant;

use crate::message::RequestId;

/// The requests one query sent and how they ended, and how long it ran. Every answer [`crate::Event`]
/// carries one, as rust-libp2p's `QueryStats` does, so a slow or failing lookup tells why: peers that
/// refused or went away (`failures`) or peers that never answered (`timeouts`).
///
/// Counts cover every request the query sent: each step of every disjoint path (the paths' counts
/// summed) and, for [`crate::Command::PutValue`] and [`crate::Command::StartProviding`], the store
/// requests after the lookup. A request still out when the answer was given ends uncounted
/// (`requests - successes - failures - timeouts` of them, [`QueryStats::unfinished`]): a record found
/// by one path ends the query while the others still wait, a lookup that converged leaves the
/// stragglers of its last round (for [`crate::Command::PutValue`] and
/// [`crate::Command::StartProviding`] too, however they end during the store phase), and a
/// [`crate::Command::FindPeer`] ends as its peer's connection comes up, before that peer (and often
/// others) answered.
///
/// Times are the driver's `now` (protocol time), never a clock read here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryStats {
    /// Requests sent.
    pub requests: u32,
    /// Requests answered with a usable answer.
    pub successes: u32,
    /// Requests that failed before their timer: the connection closed or could not be opened (the
    /// driver's `PeerDown`), the answer was of the wrong kind, or the request could not be queued
    /// because too many dials were under way. Timeouts are not counted here.
    pub failures: u32,
    /// Requests that ended by the request timer ([`crate::Config::request_timeout`]): unanswered.
    pub timeouts: u32,
    /// When the command started the query (the `now` of that input).
    pub started: Instant,
    /// From `started` to the answer (the `now` of the input that finished the query).
    pub duration: Duration,
}

impl QueryStats {
    /// Statistics of a query started at `now`, nothing sent yet.
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            started: now,
            ..Self::default()
        }
    }

    /// The statistics at the answer given at `now`: `duration` set.
    pub(crate) fn finished(mut self, now: Instant) -> Self {
        self.duration = now.saturating_duration_since(self.started);
        self
    }

    /// Requests still out when the answer was given (their outcome is not counted).
    pub fn unfinished(&self) -> u32 {
        self.requests
            .saturating_sub(self.successes)
            .saturating_sub(self.failures)
            .saturating_sub(self.timeouts)
    }

    pub(crate) fn count(&mut self, outcome: Outcome) {
        let field = match outcome {
            Outcome::Answered => &mut self.successes,
            Outcome::Failed => &mut self.failures,
            Outcome::TimedOut => &mut self.timeouts,
        };
        *field = field.saturating_add(1);
    }
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A usable answer.
    Answered,
    /// The connection went down, or the answer was unusable.
    Failed,
    /// The request timer fired first.
    TimedOut,
}

/// What one node's Kademlia sent and heard since it was created, every query and request of it
/// (lookups, stores, liveness pings of full buckets), and how many peers entered the table by asking. Read it
/// with [`crate::Kademlia::totals`]; from the node runtime, through a closure run on the state.
///
/// `requests` = `successes` + `failures` + `timeouts` + requests still out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KadTotals {
    /// Requests sent.
    pub requests: u64,
    /// Of `requests`: liveness pings of a full bucket's oldest entry.
    pub liveness_pings: u64,
    /// Of `requests`: pings that keep an anchor's connection in use, or recruit a far bucket's
    /// anchor ([`crate::Config::anchors`]).
    pub anchor_pings: u64,
    /// Peers that entered the routing table by sending us a request ([`crate::Config::admit_inbound`]).
    /// Not requests of ours: an asker enters without one.
    pub admitted_inbound: u64,
    /// Dials asked of the driver (`Output::Dial`): a message for a peer we had no connection to.
    pub dials: u64,
    /// Requests answered (with a usable answer).
    pub successes: u64,
    /// Requests failed before their timer (connection down, wrong answer, not sendable).
    pub failures: u64,
    /// Requests that ended by the request timer, unanswered.
    pub timeouts: u64,
    /// Answers that came after their request had timed out (among the last 1,024 timeouts): the peer
    /// was slow, not gone. Already counted in
    /// `timeouts`; the answer is discarded.
    pub late_answers: u64,
    /// Answers to no request of ours: never asked, asked of another peer, or answered twice. Each is
    /// also pushed as [`meshwork_wire::Output::Dropped`] with
    /// [`DropReason::Unsolicited`](meshwork_wire::DropReason::Unsolicited).
    pub unsolicited: u64,
    /// Peers that answered but were kept out of the routing table because their IP prefix already
    /// fills its share of a bucket or of the table, and inbound peers not pinged for the same reason.
    /// Each is also pushed as `Output::Dropped` with
    /// [`DropReason::PrefixLimit`](meshwork_wire::DropReason::PrefixLimit).
    pub prefix_refused: u64,
    /// Messages not sent because the peer's dial queue or the set of dials was full. Each is also pushed
    /// as `Output::Dropped` with [`DropReason::QueueFull`](meshwork_wire::DropReason::QueueFull); a
    /// request among them fails at once (counted in `failures`).
    pub queue_full: u64,
    /// Requests sent again on a new connection because their connection closed while they waited
    /// (once per request; a peer's connection manager closes connections it does not need, unaware
    /// that ours waits on an answer). Not counted again in `requests`.
    pub retried: u64,
}

/// Totals of many nodes, field by field (a simulation's or a bench's whole network).
impl std::iter::Sum for KadTotals {
    fn sum<I: Iterator<Item = Self>>(nodes: I) -> Self {
        nodes.fold(Self::default(), |sum, node| Self {
            requests: sum.requests + node.requests,
            liveness_pings: sum.liveness_pings + node.liveness_pings,
            anchor_pings: sum.anchor_pings + node.anchor_pings,
            admitted_inbound: sum.admitted_inbound + node.admitted_inbound,
            dials: sum.dials + node.dials,
            successes: sum.successes + node.successes,
            failures: sum.failures + node.failures,
            timeouts: sum.timeouts + node.timeouts,
            late_answers: sum.late_answers + node.late_answers,
            unsolicited: sum.unsolicited + node.unsolicited,
            prefix_refused: sum.prefix_refused + node.prefix_refused,
            queue_full: sum.queue_full + node.queue_full,
            retried: sum.retried + node.retried,
        })
    }
}

/// Timed-out request ids remembered to tell a late answer from an unsolicited one.
pub(crate) const MAX_REMEMBERED_TIMEOUTS: usize = 1024;

/// The last [`MAX_REMEMBERED_TIMEOUTS`] requests that timed out, and whom they were sent to, so an answer
/// after the timer is counted as late rather than unsolicited.
#[derive(Clone, Debug, Default)]
pub(crate) struct RecentTimeouts {
    peers: HashMap<RequestId, PeerId>,
    order: VecDeque<RequestId>,
}

impl RecentTimeouts {
    pub(crate) fn remember(&mut self, id: RequestId, peer: PeerId) {
        if self.order.len() >= MAX_REMEMBERED_TIMEOUTS {
            if let Some(oldest) = self.order.pop_front() {
                self.peers.remove(&oldest);
            }
        }
        self.order.push_back(id);
        self.peers.insert(id, peer);
    }

    /// Whether `id` timed out recently and was sent to `from`; forgets it, so a second answer is
    /// unsolicited.
    pub(crate) fn take(&mut self, id: RequestId, from: &PeerId) -> bool {
        if self.peers.get(&id) == Some(from) {
            self.peers.remove(&id);
            return true;
        }
        false
    }
}
