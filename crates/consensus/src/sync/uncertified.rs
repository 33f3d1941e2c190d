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
//! headers that lead to it) are the headers below it presumed on the way and not charged; made-up
//! branches there can fill the header index to its bound, but the lines the chosen download peers
//! deliver are pinned against its pruning, so they never push the honest line out
//! ([`ChainSync::pin_download_lines`]). Telling them apart for good needs the headers fetched
//! backwards from the final block, each vouched for by its child's hash: not done yet.
//!
//! A later relay of such a header is charged for it too, where its allowance has room (best-effort:
//! room is never made for it by forgetting a header, and it never gets a message refused): a peer
//! that relays an honest header ahead of its honest sender (a leader's proposal, a validator's new
//! tip) and then floods its own allowance would otherwise have taken the honest header with it. A
//! header is forgotten only when no peer's allowance holds it any more; a flooder's copy of one
//! another peer holds is simply dropped from the flooder's allowance. An honest relay's allowance
//! is far from full (it holds the few blocks notarized and not yet final).
//!
//! [`SyncConfig::max_uncertified_headers`]: crate::SyncConfig::max_uncertified_headers

use std::collections::{HashMap, HashSet, VecDeque};

use meshwork_identity::PeerId;
use meshwork_ledger::{BlockHeader, BlockId, ChainStore};

use super::ChainSync;
use crate::chain::Chain;

/// Orphan blocks whose sender is remembered, at most (the chain's orphan pool holds fewer).
const MAX_ORPHAN_SENDERS: usize = 256;

/// The charges' shared books: what is charged to nobody connected, who sent the orphans, and how many
/// allowances hold each charged header.
#[derive(Debug, Default)]
pub(super) struct Charges {
    /// Uncertified headers of peers that left, oldest first (one peer's allowance at most).
    unowned: VecDeque<BlockId>,
    /// Who sent each orphan block (to charge it when the block joins the index), oldest first.
    orphan_senders: VecDeque<(BlockId, PeerId)>,
    /// How many entries of the allowances (the peers' and `unowned`) hold each header: one is
    /// forgotten only when the last goes. As many keys as entries at most.
    holders: HashMap<BlockId, u32>,
}

impl Charges {
    /// One more allowance holds `id`.
    fn hold(&mut self, id: BlockId) {
        *self.holders.entry(id).or_default() += 1;
    }

    /// One allowance less holds `id`; how many still do.
    fn release(&mut self, id: &BlockId) -> u32 {
        let Some(count) = self.holders.get_mut(id) else {
            return 0;
        };
        *count = count.saturating_sub(1);
        let left = *count;
        if left == 0 {
            self.holders.remove(id);
        }
        left
    }

    /// Whether an allowance other than the one holding `id` once holds it too.
    fn held_elsewhere(&self, id: &BlockId) -> bool {
        self.holders.get(id).is_some_and(|&count| count > 1)
    }
}

impl<S: ChainStore> ChainSync<S> {
    /// Before `from`'s headers are submitted: the ids among them that will be charged to it if they
    /// are taken (new to the index, within the horizon, and where the certificates do not vouch for
    /// them), with room made for them; `None` if its allowance holds no header it can give up (the
    /// headers are then not submitted). Those already in the index that the certificates do not vouch
    /// for are charged to `from` at once, if its allowance does not hold them yet and has room: each
    /// relay pays, best-effort (room is never made for them by forgetting a header, and they never
    /// get a message refused). Empty under proof of work, where headers pay for themselves.
    pub(super) fn uncertified_room(
        &mut self,
        from: &PeerId,
        headers: &[BlockHeader],
    ) -> Option<Vec<BlockId>> {
        if !self.chain.is_certified() || !self.peers.contains_key(from) {
            return Some(Vec::new());
        }
        self.chain.refresh_final_ancestry();
        self.pin_download_lines();
        let allowance = self.config.max_uncertified_headers;
        let final_height = self.chain.final_height();
        let final_known = self.chain.final_header_known();
        let (mut fresh, mut known) = (Vec::new(), Vec::new());
        for header in headers {
            let id = header.id();
            if self.chain.header(&id).is_some() {
                if known.len() < allowance && self.chain.is_uncertified(&id) {
                    known.push(id);
                }
            } else if !self.chain.beyond_horizon(header.height)
                && (header.height > final_height || final_known)
            {
                fresh.push(id);
            }
        }
        let state = self.peers.get_mut(from)?;
        let (chain, charges, queue) = (&mut self.chain, &mut self.charges, &mut state.uncertified);
        if !make_room(chain, charges, queue, fresh.len(), allowance) {
            return None;
        }
        let held: HashSet<BlockId> = queue.iter().copied().collect();
        known.sort_unstable();
        known.dedup();
        known.retain(|id| !held.contains(id));
        if queue.len() + fresh.len() + known.len() > allowance {
            settle(chain, charges, queue);
        }
        let room = allowance.saturating_sub(queue.len() + fresh.len());
        for id in known.into_iter().take(room) {
            charges.hold(id);
            queue.push_back(id);
        }
        Some(fresh)
    }

    /// Before headers are submitted to a certified chain whose final block's header is unknown (a
    /// node catching up): pins the lines the chosen download peers deliver, which the index's pruning
    /// then spares; otherwise pins nothing.
    pub(super) fn pin_download_lines(&mut self) {
        let catching_up = self.chain.is_certified()
            && self.chain.final_certificate().is_some()
            && !self.chain.final_header_known();
        let tips = if catching_up {
            (self.peers.values())
                .filter(|state| state.download_claim.is_some())
                .filter_map(|state| state.best.map(|(id, _)| id))
                .collect()
        } else {
            Vec::new()
        };
        self.chain.pin_header_lines(tips);
    }

    /// After the submission: charges `from` with those of `fresh` now in the index and uncertified.
    pub(super) fn charge_uncertified(&mut self, from: &PeerId, fresh: &[BlockId]) {
        self.chain.refresh_final_ancestry();
        let allowance = self.config.max_uncertified_headers;
        let (chain, charges) = (&mut self.chain, &mut self.charges);
        let mut unowned = std::mem::take(&mut charges.unowned);
        let queue = match self.peers.get_mut(from) {
            Some(state) => &mut state.uncertified,
            None => &mut unowned,
        };
        for id in fresh.iter().filter(|id| chain.is_uncertified(id)) {
            charges.hold(*id);
            queue.push_back(*id);
        }
        make_room(chain, charges, queue, 0, allowance);
        charges.unowned.append(&mut unowned);
    }

    /// `id`, sent by `from`, waits as an orphan: it is charged to `from` if it joins the index.
    pub(super) fn note_orphan(&mut self, from: PeerId, id: BlockId) {
        let senders = &mut self.charges.orphan_senders;
        senders.push_back((id, from));
        if senders.len() > MAX_ORPHAN_SENDERS {
            senders.pop_front();
        }
    }

    /// Orphans that joined the index: each is charged to whoever sent it.
    pub(super) fn charge_adopted(&mut self, adopted: &[BlockId]) {
        for id in adopted {
            let senders = &mut self.charges.orphan_senders;
            if let Some(at) = senders.iter().position(|(orphan, _)| orphan == id)
                && let Some((_, sender)) = senders.remove(at)
            {
                self.charge_uncertified(&sender, &[*id]);
            }
        }
    }

    /// `peer` left: what it was charged stays charged, to the headers of peers that left.
    pub(super) fn release_uncertified(&mut self, charged: VecDeque<BlockId>) {
        self.chain.refresh_final_ancestry();
        let allowance = self.config.max_uncertified_headers;
        let mut unowned = std::mem::take(&mut self.charges.unowned);
        unowned.extend(charged);
        make_room(&mut self.chain, &mut self.charges, &mut unowned, 0, allowance);
        self.charges.unowned = unowned;
    }
}

/// Drops from `queue` the entries the certificates vouch for now, or gone from the index: they cost
/// nothing.
fn settle<S: ChainStore>(chain: &Chain<S>, charges: &mut Charges, queue: &mut VecDeque<BlockId>) {
    queue.retain(|id| {
        let keep = chain.is_uncertified(id);
        if !keep {
            charges.release(id);
        }
        keep
    });
}

/// Makes room in `queue` (one allowance, oldest first) for `incoming` more within `allowance`:
/// entries the certificates vouch for now, or gone from the index, are dropped first (they cost
/// nothing); then the oldest that another allowance holds too (dropped from this one only) or that
/// has nothing built on it (forgotten, unless another allowance holds it), so that no header another
/// peer built on or relayed goes with it. False if none can be given up and there is still no room.
fn make_room<S: ChainStore>(
    chain: &mut Chain<S>,
    charges: &mut Charges,
    queue: &mut VecDeque<BlockId>,
    incoming: usize,
    allowance: usize,
) -> bool {
    if queue.len() + incoming <= allowance {
        return true;
    }
    settle(chain, charges, queue);
    while queue.len() + incoming > allowance {
        let Some(at) = queue
            .iter()
            .position(|id| charges.held_elsewhere(id) || chain.is_leaf(id))
        else {
            return false;
        };
        if let Some(id) = queue.remove(at)
            && charges.release(&id) == 0
        {
            chain.forget_uncertified(&id);
        }
    }
    true
}
