//! Peers that stalled lately, remembered past their connection.
//!
//! A peer that does not answer a request in time is dropped ([`Fault::Stalled`](crate::Fault::Stalled)), but a
//! stall is no proof of malice (a partition, a busy link), so the application lets it back soon. A
//! peer that stalls on purpose then came back with a clean record and, being the least loaded, was
//! given the lowest missing blocks again: connecting stopped behind it for a request timeout, over
//! and over. Remembered here, it is asked after every peer that did not stall: for headers only when
//! no other claimant is waiting, and for blocks one at a time, those the peers that did not stall
//! have no room for.

use std::collections::HashMap;
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::Instant;

/// How long a stall is remembered.
const STALL_MEMORY: Duration = Duration::from_secs(600);
/// Stalled peers remembered at most; past it the one that stalled longest ago is forgotten.
const MAX_REMEMBERED: usize = 4096;

/// When each peer that stalled lately last did.
#[derive(Debug, Default)]
pub(super) struct Stalls {
    last: HashMap<PeerId, Instant>,
}

impl Stalls {
    /// `peer` stalled at `now`. Stalls older than [`STALL_MEMORY`] are forgotten on the way.
    pub(super) fn record(&mut self, peer: PeerId, now: Instant) {
        self.last
            .retain(|_, at| now.saturating_duration_since(*at) < STALL_MEMORY);
        if self.last.len() >= MAX_REMEMBERED && !self.last.contains_key(&peer) {
            let oldest = self
                .last
                .iter()
                .min_by_key(|(p, at)| (**at, **p))
                .map(|(p, _)| *p);
            if let Some(oldest) = oldest {
                self.last.remove(&oldest);
            }
        }
        self.last.insert(peer, now);
    }

    /// Whether `peer` stalled within the memory (as of the last stall recorded).
    pub(super) fn stalled(&self, peer: &PeerId) -> bool {
        self.last.contains_key(peer)
    }
}
