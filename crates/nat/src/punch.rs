//! Hole punches in flight, on either side.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use meshwork_identity::PeerId;
use meshwork_wire::Instant;

/// One hole punch towards a peer.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    /// When it began: the `Connect`, or the `Punch` on the side that did not ask.
    pub(crate) started: Instant,
    /// The rendezvous coordinating it; only it may send the `Punch`.
    pub(crate) via: PeerId,
    /// Where to dial, once the rendezvous said.
    pub(crate) addr: Option<SocketAddr>,
    /// Tells this punch's deadline from an earlier punch's.
    pub(crate) attempt: u64,
    /// Dials made so far.
    pub(crate) dials: u32,
    /// Whether this node asked for it (`Connect`); otherwise the other side did.
    pub(crate) asked: bool,
}

/// The punches in flight, at most `max`.
#[derive(Debug)]
pub(crate) struct Punches {
    pending: BTreeMap<PeerId, Pending>,
    max: usize,
    seq: u64,
}

impl Punches {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            pending: BTreeMap::new(),
            max,
            seq: 0,
        }
    }

    /// Starts a punch towards `peer` through `via`, which this node `asked` for or not; `None` when
    /// `max` are in flight, or half of them for punches others asked for (the dials those cost us
    /// cannot take the places of our own). A punch already in flight towards `peer` is kept and
    /// returned.
    pub(crate) fn start(
        &mut self,
        now: Instant,
        peer: PeerId,
        via: PeerId,
        asked: bool,
    ) -> Option<&mut Pending> {
        if !self.pending.contains_key(&peer) {
            let unasked = self.pending.values().filter(|p| !p.asked).count();
            if self.pending.len() >= self.max || (!asked && unasked >= (self.max / 2).max(1)) {
                return None;
            }
            self.seq += 1;
            self.pending.insert(
                peer,
                Pending {
                    started: now,
                    via,
                    addr: None,
                    attempt: self.seq,
                    dials: 0,
                    asked,
                },
            );
        }
        self.pending.get_mut(&peer)
    }

    pub(crate) fn get_mut(&mut self, peer: &PeerId) -> Option<&mut Pending> {
        self.pending.get_mut(peer)
    }

    pub(crate) fn get(&self, peer: &PeerId) -> Option<&Pending> {
        self.pending.get(peer)
    }

    pub(crate) fn finish(&mut self, peer: &PeerId) -> Option<Pending> {
        self.pending.remove(peer)
    }

    /// Where to dial `peer`, while a punch towards it is in flight.
    pub(crate) fn address_of(&self, peer: &PeerId) -> Option<SocketAddr> {
        self.pending.get(peer).and_then(|p| p.addr)
    }

    /// The punches `rendezvous` coordinates whose `Punch` has not come yet.
    pub(crate) fn waiting_on(&self, rendezvous: &PeerId) -> Vec<PeerId> {
        self.pending
            .iter()
            .filter(|(_, p)| p.via == *rendezvous && p.addr.is_none())
            .map(|(peer, _)| *peer)
            .collect()
    }
}
