//! The header download: which peers are asked for headers because of the work they claim, and holding
//! them to that claim.
//!
//! A peer's `Status` claims a chain (tip, height, cumulative work). Claims cost nothing to make, so a
//! claim only decides whom we ask, and a peer that is asked because of its claim must deliver it:
//! - up to [`SyncConfig::header_download_peers`](crate::SyncConfig::header_download_peers) claimants
//!   are asked at once, the most work first (peers that stalled lately last, `stalls.rs`), so one that
//!   stalls (it is dropped when its request times out) or lies does not hold up the download: another
//!   is already fetching, and the next claimant takes its place;
//! - when its answers end (an empty reply, a batch short of [`MAX_HEADERS`] with no more to come, or a
//!   full one that brings nothing: no new header, none higher than the last answer's) while the
//!   claimed tip is still unknown to us and the chain it delivered carries less work than it claimed,
//!   the claim was a lie: [`Fault::WorkNotDelivered`]. An honest peer's best chain is what it serves,
//!   so its answers end at its tip (or at a later, heavier one). A full answer of a lighter branch no
//!   higher than the last, and not continuing the headers held for it, ends the download without a
//!   verdict: it may have switched branches.

use meshwork_identity::PeerId;
use meshwork_ledger::{BlockId, ChainStore};
use meshwork_wire::{BoundedVec, Output};

use super::message::{MAX_HEADERS, MAX_LOCATOR, Message};
use super::{ChainSync, Timer};
use crate::traits::Fault;

impl<S: ChainStore> ChainSync<S> {
    /// Starts header downloads from the peers claiming the most work beyond our best header (the first
    /// by id among equals) while fewer than `header_download_peers` run.
    pub(super) fn request_headers(&mut self, out: &mut Vec<Output<Self>>) {
        let running = self
            .peers
            .values()
            .filter(|state| state.download_claim.is_some())
            .count();
        let free = self.config.header_download_peers.max(1).saturating_sub(running);
        if free == 0 {
            return;
        }
        let best_work = self.chain.best_header().work;
        // A claim below the chain-work floor could not be stored even if true: not worth asking for.
        let floor = self.chain.work_floor();
        let mut candidates: Vec<(u128, PeerId, BlockId)> = self
            .peers
            .iter()
            .filter(|(_, state)| state.headers_request.is_none() && state.download_claim.is_none())
            .filter_map(|(peer, state)| state.claimed.map(|(tip, _, work)| (work, *peer, tip)))
            .filter(|(work, _, tip)| *work > best_work && *work >= floor && self.chain.header(tip).is_none())
            .collect();
        // Peers that stalled lately last (`stalls.rs`), then the most work first; the sort is stable,
        // so equals stay in id order.
        candidates.sort_by_key(|(work, peer, _)| (self.stalls.stalled(peer), std::cmp::Reverse(*work)));
        for (work, peer, tip) in candidates.into_iter().take(free) {
            if let Some(state) = self.peers.get_mut(&peer) {
                state.download_claim = Some((tip, work));
            }
            let locator = self.chain.engine().locator();
            self.send_get_headers(peer, locator, None, out);
        }
    }

    /// Asks `peer` for headers after `locator`; `reached`, the height its answers reached when this
    /// asks for the rest of a chain (`None`: a new download).
    pub(super) fn send_get_headers(
        &mut self,
        peer: PeerId,
        mut locator: Vec<BlockId>,
        reached: Option<u64>,
        out: &mut Vec<Output<Self>>,
    ) {
        locator.truncate(MAX_LOCATOR);
        let Ok(locator) = BoundedVec::try_from(locator) else {
            return;
        };
        let seq = self.next_seq();
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        state.headers_request = Some(seq);
        state.reached = reached;
        out.push(Output::Send {
            to: peer,
            msg: Message::GetHeaders { locator, stop: None },
        });
        out.push(Output::Schedule {
            after: self.config.headers_timeout,
            timer: Timer::Headers { peer, seq },
        });
    }

    /// `from`'s answers to our header requests ended with its chain at `delivered` work: if it was asked
    /// because of a claim that it did not deliver (and nobody else did: the claimed tip is still
    /// unknown), it lied about its work.
    pub(super) fn end_download(&mut self, from: PeerId, delivered: u128, out: &mut Vec<Output<Self>>) {
        let Some(state) = self.peers.get_mut(&from) else {
            return;
        };
        state.claimed = None;
        let Some((tip, claimed)) = state.download_claim.take() else {
            return;
        };
        // Under the certified rule a tip may be a notarized block whose view is then skipped: the peer
        // moves back below it, and an honest answer delivers less than its status claimed.
        if delivered < claimed && self.chain.header(&tip).is_none() && !self.chain.is_certified() {
            self.fault(from, Fault::WorkNotDelivered { claimed, delivered }, out);
        }
    }

    /// A claim-driven download ended without a verdict on the claim (its headers are dated after our
    /// clock allows, or it sent a lighter branch no higher than before): the peer is not blamed, and
    /// not asked again until it announces something.
    pub(super) fn abandon_download(&mut self, from: &PeerId) {
        if let Some(state) = self.peers.get_mut(from) {
            state.claimed = None;
            state.download_claim = None;
            state.pending.clear();
        }
    }
}

/// Whether a `Headers` answer of `len` headers is the last of a download: after a full one more may
/// follow (`headers.rs` asks for them while the answers bring something).
pub(super) fn is_final(len: usize) -> bool {
    len < MAX_HEADERS
}
