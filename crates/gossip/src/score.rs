//! Peer scoring and per-peer rate limits.
//!
//! A peer starts at zero. Misbehaviour costs points ([`Penalty`]); a negative score slowly recovers; at
//! the ban threshold the peer is removed from both views, disconnected, and refused from then on. Broadcast
//! messages from each peer pass a token bucket in driver time; messages over the limit are dropped and cost
//! points too.

use std::collections::HashMap;

use meshwork_wire::{Instant, PeerId};

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
    /// A message over the peer's rate limit.
    Flood,
}

#[derive(Clone, Copy, Debug)]
struct Score {
    value: f64,
    at: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Scores and token buckets of the peers this node hears from.
#[derive(Debug)]
pub(crate) struct Scores {
    config: ScoreConfig,
    scores: HashMap<PeerId, Score>,
    buckets: HashMap<PeerId, Bucket>,
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

    /// Takes one token from the peer's bucket; false if it is empty (the message is over the limit).
    pub(crate) fn allow(&mut self, peer: PeerId, now: Instant) -> bool {
        let burst = self.config.rate_burst;
        let rate = self.config.rate_per_sec;
        let bucket = self.buckets.entry(peer).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens = (bucket.tokens + (now - bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets a disconnected peer's bucket (its score stays, so reconnecting does not clear it).
    pub(crate) fn forget_bucket(&mut self, peer: &PeerId) {
        self.buckets.remove(peer);
    }
}
