//! Peer scoring and per-peer rate limits.
//!
//! A peer starts at zero. Misbehaviour costs points ([`Penalty`]); a negative score slowly recovers; at
//! the ban threshold the peer is banned (see [`crate::Ban`]) and its score starts again from zero when the
//! ban expires. Valid traffic is never charged: only *wasted* broadcast messages (duplicates on a link
//! we pruned, messages from outside the active view) and grafts for ids we never announced to the peer
//! draw on a token bucket per peer, in driver time, and only waste beyond it costs points. The bucket
//! refills with time and with each first-seen message the peer relays (a busy honest link has more
//! copies in flight when we prune it).

use std::collections::HashMap;

use meshwork_wire::{Instant, PeerId};

use crate::bucket::TokenBucket;
use crate::config::ScoreConfig;

/// Scores kept at most; beyond this the scores closest to zero are forgotten.
const MAX_SCORED: usize = 4096;

/// Why a peer loses points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Penalty {
    /// A message with a bad signature, or larger than its topic allows.
    InvalidMessage,
    /// A message the application rejected.
    Rejected,
    /// A graft for an id the peer announced was not answered.
    BrokenPromise,
    /// Wasted broadcast messages (duplicates on a pruned link, messages from outside the active view)
    /// or grafts for ids we never announced to the peer, beyond the peer's allowance.
    Flood,
    /// An answer to a request we never made (a `ShuffleReply` without an outstanding shuffle).
    Unsolicited,
}

#[derive(Clone, Copy, Debug)]
struct Score {
    value: f64,
    at: Instant,
}

/// Scores and token buckets of the peers this node hears from.
#[derive(Debug)]
pub(crate) struct Scores {
    config: ScoreConfig,
    scores: HashMap<PeerId, Score>,
    buckets: HashMap<PeerId, TokenBucket>,
}

impl Scores {
    pub(crate) fn new(config: ScoreConfig) -> Self {
        Self {
            config,
            scores: HashMap::new(),
            buckets: HashMap::new(),
        }
    }

    /// The peer's current score (zero if unknown).
    pub(crate) fn score(&self, peer: &PeerId, now: Instant) -> f64 {
        self.scores.get(peer).map_or(0.0, |s| self.recovered(*s, now))
    }

    fn recovered(&self, score: Score, now: Instant) -> f64 {
        let secs = (now - score.at).as_secs_f64();
        (score.value + secs * self.config.recovery_per_sec).min(0.0)
    }

    /// Charges a penalty; true if the peer is now at or below the ban threshold.
    pub(crate) fn penalise(&mut self, peer: PeerId, penalty: Penalty, now: Instant) -> bool {
        let cost = match penalty {
            Penalty::InvalidMessage => self.config.invalid_message,
            Penalty::Rejected => self.config.rejected_message,
            Penalty::BrokenPromise => self.config.broken_promise,
            Penalty::Flood => self.config.flood,
            Penalty::Unsolicited => self.config.unsolicited,
        };
        let value = self.score(&peer, now) - cost;
        self.scores.insert(peer, Score { value, at: now });
        if self.scores.len() > MAX_SCORED {
            let threshold = self.config.ban_threshold;
            let recovery = self.config.recovery_per_sec;
            self.scores
                .retain(|_, s| s.value + (now - s.at).as_secs_f64() * recovery < threshold / 2.0);
        }
        value <= self.config.ban_threshold
    }

    /// Charges one wasted message to the peer's allowance; false if the allowance is spent (the message
    /// is dropped and the caller charges [`Penalty::Flood`]). Never called for a first-seen message.
    pub(crate) fn waste(&mut self, peer: PeerId, now: Instant) -> bool {
        let burst = self.config.rate_burst;
        let rate = self.config.rate_per_sec;
        self.buckets
            .entry(peer)
            .or_insert(TokenBucket::full(burst, now))
            .take(now, burst, rate)
    }

    /// Earns the peer one token of waste allowance for a first-seen message it relayed, up to
    /// [`ScoreConfig::relay_credit`]: an honest neighbour's duplicates after our `Prune` are the
    /// messages it had already queued for us, so they grow with the useful traffic it sends, and the
    /// allowance grows with it. What a peer may waste stays bounded by what it relays, plus the
    /// time-based allowance.
    pub(crate) fn relayed(&mut self, peer: PeerId, now: Instant) {
        let (burst, rate, cap) = (
            self.config.rate_burst,
            self.config.rate_per_sec,
            self.config.relay_credit,
        );
        self.buckets
            .entry(peer)
            .or_insert(TokenBucket::full(burst, now))
            .give(now, 1.0, cap, burst, rate);
    }

    /// Forgets the score of a peer just banned: the ban is its punishment, and when it expires the peer
    /// starts again from zero (a score still at the threshold would ban it again at its first fault).
    pub(crate) fn forget_score(&mut self, peer: &PeerId) {
        self.scores.remove(peer);
    }

    /// Forgets a disconnected peer's bucket (its score stays, so reconnecting does not clear it).
    pub(crate) fn forget_bucket(&mut self, peer: &PeerId) {
        self.buckets.remove(peer);
    }
}
