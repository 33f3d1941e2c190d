//! Peers that stalled lately, remembered past their connection.
//!
//! A peer that does not answer a request in time is dropped ([`Fault::Stalled`](crate::Fault::Stalled)),
//! but a stall is no proof of malice (a partition, a busy link), so the application lets it back
//! soon. A peer that stalls on purpose then came back with a clean record and, being the least
//! loaded, was given the lowest missing blocks again: connecting stopped behind it for a request
//! timeout, over and over. Remembered here for ten minutes, it is asked after every peer that did not
//! stall: for headers only when no other claimant is waiting, and for the blocks that no peer that
//! did not stall has room for.

use std::collections::{HashMap, VecDeque};
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
    /// Every stall recorded, oldest first: what [`Stalls::tick`] forgets from (an entry whose peer
    /// stalled again since is skipped then).
    order: VecDeque<(Instant, PeerId)>,
}

impl Stalls {
    /// `peer` stalled at `now`.
    pub(super) fn record(&mut self, peer: PeerId, now: Instant) {
        self.tick(now);
        while self.last.len() >= MAX_REMEMBERED && !self.last.contains_key(&peer) {
            let Some((at, oldest)) = self.order.pop_front() else {
                break;
            };
            if self.last.get(&oldest) == Some(&at) {
                self.last.remove(&oldest);
            }
        }
        self.last.insert(peer, now);
        self.order.push_back((now, peer));
    }

    /// Forgets the stalls older than [`STALL_MEMORY`] at `now` (amortised constant time: each stall
    /// is looked at once).
    pub(super) fn tick(&mut self, now: Instant) {
        while let Some(&(at, peer)) = self.order.front() {
            if now.saturating_duration_since(at) < STALL_MEMORY {
                break;
            }
            self.order.pop_front();
            if self.last.get(&peer) == Some(&at) {
                self.last.remove(&peer);
            }
        }
    }

    /// Whether `peer` stalled within the memory (as of the last [`Stalls::tick`]).
    pub(super) fn stalled(&self, peer: &PeerId) -> bool {
        self.last.contains_key(peer)
    }
}

#[cfg(test)]
mod tests {
    use meshwork_identity::Keypair;

    use super::*;

    #[test]
    fn a_stall_is_forgotten_after_ten_minutes_unless_repeated() {
        let at = |secs| Instant::from_duration(Duration::from_secs(secs));
        let (a, b) = (
            Keypair::from_seed([1; 32]).peer_id(),
            Keypair::from_seed([2; 32]).peer_id(),
        );
        let mut stalls = Stalls::default();
        stalls.record(a, at(0));
        stalls.record(b, at(0));
        stalls.record(b, at(300));
        stalls.tick(at(599));
        assert!(stalls.stalled(&a) && stalls.stalled(&b));
        stalls.tick(at(600));
        assert!(!stalls.stalled(&a), "ten minutes on");
        assert!(stalls.stalled(&b), "its second stall is five minutes old");
        stalls.tick(at(900));
        assert!(!stalls.stalled(&b));
    }
}
