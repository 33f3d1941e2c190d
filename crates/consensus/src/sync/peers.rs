//! Per-peer sync state, and the effects (relay, fault reports) pushed as protocol outputs.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_ledger::{BlockHeader, BlockId, ChainStore};
use meshwork_wire::{Instant, Output};

use super::ChainSync;
use super::compact::Relay;
use super::message::{MAX_BLOCKS_PER_REQUEST, Message};
use super::serve::Serving;
use super::types::Event;
use crate::traits::{BlockRelay, Fault, FaultReporter};

/// Ids a peer said it does not have, remembered at most (then forgotten all at once).
const MAX_NOT_FOUND: usize = 1024;

/// What we know about one connected sync peer.
#[derive(Debug, Default)]
pub(super) struct PeerState {
    /// What its `Status` claimed (tip, height, work), until its headers have been fetched.
    pub(super) claimed: Option<(BlockId, u64, u128)>,
    /// The best header we know to be on its chain (and in our index), with its height.
    pub(super) best: Option<(BlockId, u64)>,
    /// Blocks requested from it, with the request they belong to.
    pub(super) in_flight: BTreeMap<BlockId, u64>,
    /// The header request it owes us.
    pub(super) headers_request: Option<u64>,
    /// Valid headers of its chain that do not (yet) add up to enough work to be stored.
    pub(super) pending: Vec<BlockHeader>,
    /// The cumulative work at the last of `pending`: what it delivered, should its chain end there.
    pub(super) pending_work: u128,
    /// While we ask it for the rest of a chain, the height its answers reached: an answer that goes
    /// no higher ends the download (a peer that resends one full batch forever held a download slot,
    /// and us checking its headers, for as long as it liked).
    pub(super) reached: Option<u64>,
    /// Header messages that connected to nothing, counted since `unconnecting_since`.
    pub(super) unconnecting: u32,
    /// When the current counting window began: the first unconnecting message counted in it.
    pub(super) unconnecting_since: Option<Instant>,
    /// The claimed tip and work it was chosen for, while a header download driven by that claim runs:
    /// if its answers end without delivering that work, the claim was a lie
    /// ([`Fault::WorkNotDelivered`]).
    pub(super) download_claim: Option<(BlockId, u128)>,
    /// Blocks it said it does not have.
    pub(super) not_found: HashSet<BlockId>,
    /// The last tip it announced (`NewTip`): a block it connected, so one it must serve.
    pub(super) announced: Option<BlockId>,
    /// What we serve it: budget, answers in flight, waiting requests.
    pub(super) serving: Serving,
    /// The block at our tip being relayed from it (compact relay, `compact.rs`), while it is in flight.
    pub(super) relay: Option<Relay>,
    /// Headers it brought into a certified chain's index that no certificate vouches for yet, oldest
    /// first (`uncertified.rs`).
    pub(super) uncertified: VecDeque<BlockId>,
    /// Whether we told the driver to protect its connection ([`Output::Protect`]): while it owes us
    /// headers or blocks.
    pub(super) protected: bool,
}

impl PeerState {
    pub(super) fn note_not_found(&mut self, id: BlockId) {
        if self.not_found.len() >= MAX_NOT_FOUND {
            self.not_found.clear();
        }
        self.not_found.insert(id);
    }

    /// Counts one header message that connected to nothing at `now` and returns the count of the
    /// window it falls in (a window over starts a new one).
    pub(super) fn count_unconnecting(&mut self, now: Instant, window: Duration) -> u32 {
        let expired = self
            .unconnecting_since
            .is_none_or(|since| now.saturating_duration_since(since) >= window);
        if expired {
            self.unconnecting_since = Some(now);
            self.unconnecting = 0;
        }
        self.unconnecting = self.unconnecting.saturating_add(1);
        self.unconnecting
    }

    /// Headers that extend our header chain, or that answer our request, arrived: the peer is on a
    /// chain we can follow, so its unconnecting count starts again.
    pub(super) fn reset_unconnecting(&mut self) {
        self.unconnecting = 0;
        self.unconnecting_since = None;
    }

    /// Raises the peer's best known header to `id` at `height` if that is higher.
    pub(super) fn saw(&mut self, id: BlockId, height: u64) {
        if self.best.is_none_or(|(_, best)| height >= best) {
            self.best = Some((id, height));
        }
    }
}

/// Protocol outputs seen as the consensus capabilities: a [`BlockRelay`] (requests and announcements
/// become `Send`s) and a [`FaultReporter`] (a fault becomes an event and a disconnect).
pub(super) struct Effects<'a, S: ChainStore> {
    pub(super) out: &'a mut Vec<Output<ChainSync<S>>>,
    /// Who an announcement goes to.
    pub(super) peers: Vec<PeerId>,
}

impl<S: ChainStore> BlockRelay for Effects<'_, S> {
    fn request_blocks(&mut self, peer: PeerId, ids: &[BlockId]) {
        for chunk in ids.chunks(MAX_BLOCKS_PER_REQUEST) {
            if let Ok(ids) = chunk.to_vec().try_into() {
                self.out.push(Output::Send {
                    to: peer,
                    msg: Message::GetBlocks(ids),
                });
            }
        }
    }

    fn announce(&mut self, header: &BlockHeader) {
        for peer in &self.peers {
            self.out.push(Output::Send {
                to: *peer,
                msg: Message::NewTip(*header),
            });
        }
    }
}

impl<S: ChainStore> FaultReporter for Effects<'_, S> {
    fn report(&mut self, peer: PeerId, fault: Fault) {
        self.out.push(Output::Emit(Event::PeerFaulted { peer, fault }));
        self.out.push(Output::Disconnect(peer));
    }
}
