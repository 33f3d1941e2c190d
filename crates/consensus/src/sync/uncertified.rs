//! Certified chains: each peer's allowance of headers that no certificate vouches for.
//!
//! Under the certified rule headers carry no proof of work (the target is fixed), so a peer can make
//! up valid headers for free, on any block from the final one up to
//! [`UNCERTIFIED_HORIZON`](crate::UNCERTIFIED_HORIZON) above it. The header index is bounded
//! ([`ChainConfig::max_headers`](crate::ChainConfig::max_headers)) by pruning its lowest-ranked side
//! branches, and made-up headers could fill it: then honest headers were pruned first (a proposal the
//! validators must check sits at the tip's height, made-up branches above it), and the index held a
//! million headers of an attacker's.
//!
//! So each header a peer brings into the index above the final block, off the chosen block's chain,
//! is charged to that peer until a certificate vouches for it (it becomes final, or the chosen chain
//! runs through it) or it is gone. Past [`SyncConfig::max_uncertified_headers`] the peer's oldest such
//! header is forgotten, with whatever was built on it: the flood costs the flooder's own headers. An
//! honest peer brings the few blocks notarized and not yet final, a leader its proposals; all peers
//! together hold at most their number times the allowance, far below the index's bound, so the index
//! never fills with them.
//!
//! [`SyncConfig::max_uncertified_headers`]: crate::SyncConfig::max_uncertified_headers

use meshwork_identity::PeerId;
use meshwork_ledger::{BlockHeader, BlockId, ChainStore};

use super::ChainSync;

impl<S: ChainStore> ChainSync<S> {
    /// Before `from`'s headers are submitted: the ids among them that would be charged to it (new to
    /// the index and above the final block, on a certified chain), with room made for them in its
    /// allowance. Empty under proof of work, where headers pay for themselves.
    pub(super) fn uncertified_room(&mut self, from: &PeerId, headers: &[BlockHeader]) -> Vec<BlockId> {
        if !self.chain.is_certified() || !self.peers.contains_key(from) {
            return Vec::new();
        }
        let final_height = self.chain.final_height();
        let fresh: Vec<BlockId> = headers
            .iter()
            .filter(|header| header.height > final_height)
            .map(BlockHeader::id)
            .filter(|id| self.chain.header(id).is_none())
            .collect();
        if !fresh.is_empty() {
            self.make_room(from, fresh.len());
        }
        fresh
    }

    /// After the submission: charges `from` with those of `fresh` now in the index and uncertified.
    pub(super) fn charge_uncertified(&mut self, from: &PeerId, fresh: &[BlockId]) {
        let Some(state) = self.peers.get_mut(from) else {
            return;
        };
        let taken = fresh.iter().filter(|id| self.chain.is_uncertified(id));
        state.uncertified.extend(taken);
        // A batch larger than the allowance (a configuration below the horizon) is trimmed too.
        if state.uncertified.len() > self.config.max_uncertified_headers {
            self.make_room(from, 0);
        }
    }

    /// Forgets `from`'s oldest uncertified headers until `incoming` more fit its allowance. Entries
    /// a certificate has vouched for since, or gone from the index, are dropped first: they cost
    /// nothing. An entry that went with an older one's branch is dropped when it comes up.
    fn make_room(&mut self, from: &PeerId, incoming: usize) {
        let Some(state) = self.peers.get_mut(from) else {
            return;
        };
        let chain = &mut self.chain;
        state.uncertified.retain(|id| chain.is_uncertified(id));
        let allowance = self.config.max_uncertified_headers;
        while state.uncertified.len() + incoming > allowance {
            let Some(oldest) = state.uncertified.pop_front() else {
                break;
            };
            chain.forget_uncertified(&oldest);
        }
    }
}
