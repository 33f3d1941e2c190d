//! Bans that decay: a banned peer is refused by gossip (and only by gossip) until its ban expires.
//!
//! A ban is the answer to a score at the threshold, and it is gossip's own: the peer is released with
//! [`Output::Disconnect`](meshwork_wire::Output::Disconnect), which in a composite releases gossip's
//! hold only (ARCHITECTURE.md, "A protocol's disconnect is its own"), so sync and Kademlia keep the
//! connection. Bans expire after [`ScoreConfig::ban_duration`](crate::ScoreConfig::ban_duration) of
//! driver time, as Bitcoin Core's discouragement does (`-bantime`, 24 h there for manual bans; a
//! gossip ban is about traffic, so minutes are enough): an honest peer that was banned by mistake, or
//! whose key was used by somebody else for a while, comes back.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use meshwork_wire::{Instant, PeerId};

use crate::score::Penalty;

/// A ban in force: why, and until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ban {
    /// The penalty that took the peer's score to the ban threshold.
    pub penalty: Penalty,
    /// When the peer was banned (driver time).
    pub since: Instant,
    /// When the ban expires (driver time): from then on the peer is accepted again, with a clean score.
    pub until: Instant,
}

/// The bans in force, oldest first, at most `max` of them.
#[derive(Debug)]
pub(crate) struct Bans {
    bans: HashMap<PeerId, Ban>,
    order: VecDeque<PeerId>,
    max: usize,
    duration: Duration,
}

impl Bans {
    pub(crate) fn new(max: usize, duration: Duration) -> Self {
        Self {
            bans: HashMap::new(),
            order: VecDeque::new(),
            max,
            duration,
        }
    }

    /// Bans `peer` from `now` for the configured duration (a ban in force is renewed).
    pub(crate) fn insert(&mut self, peer: PeerId, penalty: Penalty, now: Instant) -> Ban {
        let ban = Ban {
            penalty,
            since: now,
            until: now + self.duration,
        };
        if self.bans.insert(peer, ban).is_none() {
            self.order.push_back(peer);
        }
        // Full: the oldest ban goes first. Keys are free to make, so this only bounds memory; a score
        // at the threshold bans again at the next offence.
        while self.order.len() > self.max {
            if let Some(old) = self.order.pop_front() {
                self.bans.remove(&old);
            }
        }
        ban
    }

    /// The ban of `peer`, if one is in force at `now`.
    pub(crate) fn get(&self, peer: &PeerId, now: Instant) -> Option<Ban> {
        self.bans.get(peer).filter(|ban| ban.until > now).copied()
    }

    pub(crate) fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.get(peer, now).is_some()
    }

    /// Forgets the bans that have expired at `now`; returns how many.
    pub(crate) fn expire(&mut self, now: Instant) -> usize {
        let before = self.bans.len();
        self.bans.retain(|_, ban| ban.until > now);
        let bans = &self.bans;
        self.order.retain(|peer| bans.contains_key(peer));
        before - self.bans.len()
    }
}
