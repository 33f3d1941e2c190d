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

/// Scores kept at most; beyond this the quarter closest to zero is forgotten.
const MAX_SCORED: usize = 4096;

/// Why a peer loses points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Penalty {
    /// A message with a bad signature, or larger than its topic allows.
    InvalidMessage,
    /// A message the application rejected, when it came or later ([`Command::Blame`](crate::Command::Blame)).
    Rejected,
    /// A graft for an id the peer announced was not answered.
    BrokenPromise,
    /// Wasted broadcast messages (duplicates on a pruned link, messages from outside the active view)
    /// or grafts for ids we never announced to the peer, beyond the peer's allowance.
    Flood,
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
        };
        let value = self.score(&peer, now) - cost;
        self.scores.insert(peer, Score { value, at: now });
        if self.scores.len() > MAX_SCORED {
            self.forget_mildest(now);
        }
        value <= self.config.ban_threshold
    }

    /// Forgets the quarter of the scores closest to zero. Not every score above some bar: fresh
    /// identities each earning a small penalty would then erase the record of a peer working its way
    /// towards a ban; here they push out one another first. Ties go by id, so that the same inputs
    /// forget the same scores (the simulator replays a seed exactly).
    fn forget_mildest(&mut self, now: Instant) {
        let mut ranked: Vec<(f64, PeerId)> = self
            .scores
            .iter()
            .map(|(peer, score)| (self.recovered(*score, now), *peer))
            .collect();
        ranked.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        for (_, peer) in ranked.drain(MAX_SCORED * 3 / 4..) {
            self.scores.remove(&peer);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use meshwork_identity::Keypair;

    #[test]
    fn fresh_identities_with_small_penalties_do_not_erase_a_worse_record() {
        let mut scores = Scores::new(ScoreConfig::default());
        let now = Instant::ZERO;
        let neighbour = Keypair::from_seed([1; 32]).peer_id();
        for _ in 0..2 {
            scores.penalise(neighbour, Penalty::Rejected, now);
        }
        assert_eq!(scores.score(&neighbour, now), -40.0);
        for i in 0..2 * MAX_SCORED as u32 {
            let mut seed = [0; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            seed[31] = 9;
            scores.penalise(Keypair::from_seed(seed).peer_id(), Penalty::BrokenPromise, now);
        }
        assert!(scores.scores.len() <= MAX_SCORED);
        assert_eq!(scores.score(&neighbour, now), -40.0, "its record stays");
    }
}
