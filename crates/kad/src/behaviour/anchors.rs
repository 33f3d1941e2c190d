//! Anchors: one warm connection in each of the farthest buckets ([`crate::Config::anchors`]).
//!
//! The routing table holds addresses, and the driver's connection manager closes a connection nobody
//! uses, so between lookups a node holds almost no connection: every lookup's first round dials, and
//! its first hop costs a handshake before the request (two round trips, not one). Most lookups start
//! in a far bucket (a random target falls in bucket 0 half the time, in the first four 15 times in
//! 16), so a node keeps, in each of the first [`crate::Config::anchors`] buckets, one peer whose
//! connection it protects ([`meshwork_wire::Output::Protect`]) and keeps in use: the first peer of
//! the bucket that answers a request of ours over a live connection. A lookup asks, besides the `α`
//! closest peers, the closest peer it already has a connection to
//! ([`crate::query::ClosestPeers::ask_first`]); the anchors make sure there is one in the buckets
//! most lookups start in, and connections other protocols hold (gossip's active view) serve as well.
//!
//! The other side does not protect our connection: its manager closes it once no frame went either
//! way for its idle timeout. So an anchor that carried no Kademlia message for
//! [`crate::Config::anchor_keepalive`] is pinged (a busy anchor costs nothing). An anchor whose
//! connection closes (the other side holds too many, or the peer is gone), that fails a ping or
//! that leaves the table frees its bucket's place at once, and is not dialled for it: the next peer
//! of that bucket that answers takes it, or, a keep-alive period after the place fell free, the
//! bucket pings one of its peers (one it holds a connection to, else the one seen last, which may be
//! the same peer again), which becomes the anchor if it answers. Without that, a
//! node that looks little up kept losing anchors to the other sides' connection managers and never
//! got them back (`benches/benches/kad_connections.rs` over QUIC: 1.3 anchors a node of 3 a minute
//! after 200 nodes joined).

use meshwork_identity::PeerId;
use meshwork_wire::Instant;

use super::queries::Purpose;
use super::state::{Kademlia, Out};
use super::types::Timer;
use crate::Key;
use crate::message::Request;
use crate::store::RecordStore;

/// An anchor: a peer of a far bucket whose connection we keep, and when a message last went either way.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Anchor {
    pub(crate) peer: PeerId,
    active: Instant,
}

/// Buckets that may keep an anchor, at most: the farthest four hold 15 of 16 random targets, and a
/// fifth would add one in 32.
pub const MAX_ANCHORS: usize = 4;

/// The anchors of the farthest buckets, by bucket index (the first [`crate::Config::anchors`]).
/// Inline, not behind a pointer: every message a node sends or receives looks here, and in a
/// simulation of thousands of nodes a heap block of each was a cache miss per message (3% of a
/// `meshsim kad-lookup` profile).
#[derive(Clone, Debug, Default)]
pub(crate) struct Anchors {
    slots: [Option<Anchor>; MAX_ANCHORS],
    /// When the pending [`Timer::Keepalive`] fires, if one is pending.
    timer: Option<Instant>,
    /// When the far buckets without an anchor recruit one: a keep-alive period after a place fell
    /// free (or after the join), and then once a period while one stays free.
    recruit_at: Option<Instant>,
}

impl Anchors {
    /// Whether `peer` is an anchor.
    pub(crate) fn contains(&self, peer: &PeerId) -> bool {
        self.slots.iter().flatten().any(|a| a.peer == *peer)
    }

    /// A message went to or came from `peer`: if it is an anchor, its connection is in use.
    pub(crate) fn touch(&mut self, peer: &PeerId, now: Instant) {
        if let Some(anchor) = self.slots.iter_mut().flatten().find(|a| a.peer == *peer) {
            anchor.active = now;
        }
    }

    /// Whether one of the first `buckets` buckets has no anchor (a cheap test before any other).
    pub(crate) fn has_room(&self, buckets: usize) -> bool {
        self.slots.iter().take(buckets).any(Option::is_none)
    }

    /// The anchors, farthest bucket first.
    pub(crate) fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.slots.iter().flatten().map(|a| a.peer)
    }
}

impl<S: RecordStore> Kademlia<S> {
    /// `peer` answered us over a live connection: it becomes its bucket's anchor if the bucket is one
    /// of the farthest [`crate::Config::anchors`], it has none, and the table holds `peer`.
    pub(crate) fn consider_anchor(&mut self, peer: PeerId, now: Instant, out: &mut Out<S>) {
        // A seed is every joining node's first answer: anchoring it would load the seeds with a
        // connection from every node.
        if self.seeds.iter().any(|seed| seed.id == peer) || !self.table.contains(&peer) {
            return;
        }
        let Some(index) = self.table.bucket_index(&Key::from_peer(&peer)) else {
            return;
        };
        if index >= self.config.anchors {
            return;
        }
        let Some(None) = self.anchors.slots.get(index) else {
            return;
        };
        let anchor = Anchor { peer, active: now };
        self.protecting(peer, out, |kad| kad.anchors.slots[index] = Some(anchor));
        self.arm_keepalive(now, out);
    }

    /// Makes sure a [`Timer::Keepalive`] fires when the quietest anchor is due its ping, or a
    /// period from now if a far bucket has no anchor (to recruit one). An anchor that carries traffic
    /// meanwhile only moves its own time later, so a timer set earlier is kept and finds nothing to
    /// do, or less.
    pub(crate) fn arm_keepalive(&mut self, now: Instant, out: &mut Out<S>) {
        let period = self.config.anchor_keepalive;
        if self.anchors.recruit_at.is_none() && self.anchors.has_room(self.config.anchors) {
            self.anchors.recruit_at = Some(now + period);
        }
        let pings = self.anchors.slots.iter().flatten().map(|a| a.active + period);
        let Some(due) = pings.chain(self.anchors.recruit_at).min() else {
            return;
        };
        if self.anchors.timer.is_some_and(|pending| pending <= due) {
            return;
        }
        self.anchors.timer = Some(due);
        self.schedule(due.saturating_duration_since(now), Timer::Keepalive, out);
    }

    /// `peer` is no longer an anchor (its connection closed, it left the table, or it failed a
    /// keep-alive ping): its connection is released unless a request waits on it, and its bucket
    /// takes the next peer that answers, or the one it recruits at the next keep-alive timer.
    pub(crate) fn release_anchor(&mut self, now: Instant, peer: &PeerId, out: &mut Out<S>) {
        let Some(index) = self
            .anchors
            .slots
            .iter()
            .position(|s| s.is_some_and(|a| a.peer == *peer))
        else {
            return;
        };
        self.protecting(*peer, out, |kad| kad.anchors.slots[index] = None);
        self.arm_keepalive(now, out);
    }

    /// On [`Timer::Keepalive`]: anchors that left the table are released, those that carried
    /// nothing for [`crate::Config::anchor_keepalive`] are pinged, and each far bucket without an
    /// anchor pings a candidate. The timer is set again for the next one due.
    pub(crate) fn keepalive_due(&mut self, now: Instant, out: &mut Out<S>) {
        if self.anchors.timer.is_some_and(|pending| pending <= now) {
            self.anchors.timer = None;
        }
        let period = self.config.anchor_keepalive;
        let anchors: Vec<Anchor> = self.anchors.slots.iter().flatten().copied().collect();
        for anchor in anchors {
            if !self.table.contains(&anchor.peer) {
                self.release_anchor(now, &anchor.peer, out);
            } else if anchor.active + period <= now {
                // Over the anchor's live connection (an anchor whose connection closed is released).
                self.request(now, anchor.peer, Request::Ping, Purpose::Keepalive, out);
            }
        }
        if self.anchors.recruit_at.is_some_and(|at| at <= now) {
            // Once a period at most: `arm_keepalive` sets the next time if a place stays free.
            self.anchors.recruit_at = None;
            for index in 0..self.config.anchors {
                if self.anchors.slots[index].is_none() {
                    if let Some(candidate) = self.recruit(index) {
                        // Anchored when it answers over the connection (`consider_anchor`).
                        self.request(now, candidate, Request::Ping, Purpose::Keepalive, out);
                    }
                }
            }
        }
        self.arm_keepalive(now, out);
    }

    /// The peer of bucket `index` to ask to be its anchor: one we hold a connection to, else the
    /// one that answered last; never a seed. None while a request waits on a peer of the bucket:
    /// its answer will do.
    fn recruit(&self, index: usize) -> Option<PeerId> {
        let bucket = self.table.bucket(index);
        if bucket.iter().any(|e| self.is_waiting_on(&e.peer)) {
            return None;
        }
        let seed = |peer: &PeerId| self.seeds.iter().any(|s| s.id == *peer);
        let mut candidates = bucket.iter().rev().map(|e| e.peer).filter(|p| !seed(p));
        let first = candidates.next()?;
        if self.is_connected(&first) {
            return Some(first);
        }
        Some(candidates.find(|p| self.is_connected(p)).unwrap_or(first))
    }
}
