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
//! So each header a peer brings into the index that the certificates do not vouch for (off the
//! chosen block's chain above the final block, off the final chain below it) is charged to that peer
//! until they do or it is gone. Past [`SyncConfig::max_uncertified_headers`] the peer's oldest such
//! header with nothing built on it is forgotten: the flood costs the flooder's own headers and never
//! one another peer built on. A peer with none to give up is not taken more from. What a peer was
//! charged outlives its connection in one shared allowance of the same size, so reconnecting does
//! not start it afresh; a block that waited as an orphan is charged to whoever sent it when it
//! joins the index. An honest peer brings the few blocks notarized and not yet final, a leader its
//! proposals; all peers together hold at most one more than their number times the allowance, far
//! below the index's bound.
//!
//! Below the final block, the final chain is the final block's ancestors, known as soon as its header
//! is (connected or not): a header new to the index there is off it, and charged. Only while the final
//! block's header is unknown (a node catching up learns the certificate first, then fetches the
//! headers that lead to it) are the headers below it presumed on the way and not charged.
//!
//! [`SyncConfig::max_uncertified_headers`]: crate::SyncConfig::max_uncertified_headers

use std::collections::VecDeque;

use meshwork_identity::PeerId;
use meshwork_ledger::{BlockHeader, BlockId, ChainStore};

use super::ChainSync;
use crate::chain::Chain;

/// Orphan blocks whose sender is remembered, at most (the chain's orphan pool holds fewer).
const MAX_ORPHAN_SENDERS: usize = 256;

/// What is charged to nobody connected: the headers of peers that left, and who sent the orphans.
#[derive(Debug, Default)]
pub(super) struct Unowned {
    /// Uncertified headers of peers that left, oldest first (one peer's allowance at most).
    headers: VecDeque<BlockId>,
    /// Who sent each orphan block (to charge it when the block joins the index), oldest first.
    orphan_senders: VecDeque<(BlockId, PeerId)>,
}

impl<S: ChainStore> ChainSync<S> {
    /// Before `from`'s headers are submitted: the ids among them that will be charged to it if they
    /// are taken (new to the index, within the horizon, and where the certificates do not vouch for
    /// them), with room made for them; `None` if its allowance holds no header it can give up (the
    /// headers are then not submitted). Empty under proof of work, where headers pay for themselves.
    pub(super) fn uncertified_room(
        &mut self,
        from: &PeerId,
        headers: &[BlockHeader],
    ) -> Option<Vec<BlockId>> {
        if !self.chain.is_certified() || !self.peers.contains_key(from) {
            return Some(Vec::new());
        }
        let final_height = self.chain.final_height();
        let final_known = self.chain.final_header_known();
        let fresh: Vec<BlockId> = headers
            .iter()
            .filter(|header| {
                !self.chain.beyond_horizon(header.height) && (header.height > final_height || final_known)
            })
            .map(BlockHeader::id)
            .filter(|id| self.chain.header(id).is_none())
            .collect();
        let allowance = self.config.max_uncertified_headers;
        let state = self.peers.get_mut(from)?;
        make_room(&mut self.chain, &mut state.uncertified, fresh.len(), allowance).then_some(fresh)
    }

    /// After the submission: charges `from` with those of `fresh` now in the index and uncertified.
    pub(super) fn charge_uncertified(&mut self, from: &PeerId, fresh: &[BlockId]) {
        let allowance = self.config.max_uncertified_headers;
        let chain = &mut self.chain;
        let queue = match self.peers.get_mut(from) {
            Some(state) => &mut state.uncertified,
            None => &mut self.unowned.headers,
        };
        queue.extend(fresh.iter().filter(|id| chain.is_uncertified(id)));
        make_room(chain, queue, 0, allowance);
    }

    /// `id`, sent by `from`, waits as an orphan: it is charged to `from` if it joins the index.
    pub(super) fn note_orphan(&mut self, from: PeerId, id: BlockId) {
        let senders = &mut self.unowned.orphan_senders;
        senders.push_back((id, from));
        if senders.len() > MAX_ORPHAN_SENDERS {
            senders.pop_front();
        }
    }

    /// Orphans that joined the index: each is charged to whoever sent it.
    pub(super) fn charge_adopted(&mut self, adopted: &[BlockId]) {
        for id in adopted {
            let senders = &mut self.unowned.orphan_senders;
            if let Some(at) = senders.iter().position(|(orphan, _)| orphan == id)
                && let Some((_, sender)) = senders.remove(at)
            {
                self.charge_uncertified(&sender, &[*id]);
            }
        }
    }

    /// `peer` left: what it was charged stays charged, to the headers of peers that left.
    pub(super) fn release_uncertified(&mut self, charged: VecDeque<BlockId>) {
        let allowance = self.config.max_uncertified_headers;
        let unowned = &mut self.unowned.headers;
        unowned.extend(charged);
        make_room(&mut self.chain, unowned, 0, allowance);
    }
}

/// Makes room in `queue` (one peer's charges, oldest first) for `incoming` more within `allowance`:
/// entries the certificates vouch for now, or gone from the index, are dropped first (they cost
/// nothing); then the oldest with nothing built on it is forgotten, so that no header another peer
/// built on goes with it. False if none can be forgotten and there is still no room.
fn make_room<S: ChainStore>(
    chain: &mut Chain<S>,
    queue: &mut VecDeque<BlockId>,
    incoming: usize,
    allowance: usize,
) -> bool {
    if queue.len() + incoming <= allowance {
        return true;
    }
    queue.retain(|id| chain.is_uncertified(id));
    while queue.len() + incoming > allowance {
        let Some(at) = queue.iter().position(|id| chain.is_leaf(id)) else {
            return false;
        };
        if let Some(id) = queue.remove(at) {
            chain.forget_uncertified(&id);
        }
    }
    true
}
