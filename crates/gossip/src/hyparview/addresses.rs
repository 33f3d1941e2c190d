//! Where the peers of the views can be dialled: HyParView's address book.
//!
//! Addresses come from two sources. The driver reports the address each connection comes from
//! ([`Command::PeerAddress`](crate::Command::PeerAddress), with every `PeerUp`): on a transport where
//! one socket dials and listens (our QUIC) that is where the peer accepts connections. And every
//! membership message that names a peer carries the address its sender knows for it
//! ([`PeerEntry`]): the contact names a joiner with the address it observed, the first hop of a
//! shuffle fills in the origin's, and samples carry what their sender knows.
//!
//! A told address is a claim, and a peer can name any address, so:
//! - an address observed on a live connection always replaces a told one; a told one never replaces
//!   anything (the first teller's claim stands until the peer leaves every view, and a dial that
//!   fails drops the peer from the passive view, and so the claim);
//! - a told address must be dialable (not unspecified, multicast or broadcast, port not 0) and no more
//!   local than the teller's own observed address: a peer on the internet cannot make us dial
//!   loopback or a private network (Bitcoin Core keeps addresses by reachability in the same spirit);
//!   an entry with such an address is ignored whole;
//! - only observed addresses count for the per-prefix limits (what a peer claims is free to choose);
//! - one membership message makes us dial at most one peer we were told of (the end of a join walk,
//!   the origin of a shuffle, the alternative of a `Disconnect` or of a refusing `NeighborReply`), and
//!   only when it comes within the admission rules: walks from active neighbours within their request
//!   allowance, a `Disconnect`'s alternative from a neighbour that evicted us, a `NeighborReply`'s
//!   in answer to a request of ours. Peers of samples only enter the passive view (within the
//!   per-source share), from which repair dials one per free active slot.
//!
//! The book holds at most [`MAX_ADDRESSES`] entries, and forgets a peer's address once the peer is in
//! no view and neither connected, asked, dialled nor a contact.

use std::collections::HashMap;
use std::net::SocketAddr;

use meshwork_wire::{IpPrefix, PeerId, dialable};

use super::HyParView;
use crate::message::PeerEntry;

/// Addresses kept at most (observed and told). The views, the connections being opened and the
/// contacts need a few dozen; the rest is room for the connections a composite keeps open (the
/// per-prefix limits count those), which the driver bounds far below this.
pub(crate) const MAX_ADDRESSES: usize = 4096;

/// A peer's address and where we have it from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Known {
    addr: SocketAddr,
    /// True if the driver observed it on a connection; false if a peer told us.
    observed: bool,
}

/// Addresses by peer, bounded by [`MAX_ADDRESSES`].
#[derive(Debug, Default)]
pub(super) struct AddressBook {
    known: HashMap<PeerId, Known>,
}

impl AddressBook {
    /// The best address known for `peer`.
    pub(super) fn get(&self, peer: &PeerId) -> Option<SocketAddr> {
        self.known.get(peer).map(|k| k.addr)
    }

    /// The address observed on `peer`'s connection, if any.
    pub(super) fn observed(&self, peer: &PeerId) -> Option<SocketAddr> {
        self.known.get(peer).filter(|k| k.observed).map(|k| k.addr)
    }

    /// The prefix the limits count `peer` under: that of its observed address only.
    pub(super) fn prefix(&self, peer: &PeerId) -> Option<IpPrefix> {
        self.observed(peer).map(|addr| IpPrefix::of(addr.ip()))
    }

    pub(super) fn retain(&mut self, mut keep: impl FnMut(&PeerId) -> bool) {
        self.known.retain(|peer, _| keep(peer));
    }

    pub(super) fn remove(&mut self, peer: &PeerId) {
        self.known.remove(peer);
    }
}

impl HyParView {
    /// The driver observed `peer`'s connection coming from `addr` (before or after its `PeerUp`).
    /// It replaces any address a peer told us.
    pub(crate) fn set_address(&mut self, peer: PeerId, addr: SocketAddr) {
        if self.addresses.known.len() >= MAX_ADDRESSES && !self.addresses.known.contains_key(&peer) {
            self.sweep_addresses();
        }
        // Still full: every entry is a peer we are dealing with. Past the bound a peer is under no
        // prefix limit, which takes more connections than any driver keeps.
        if self.addresses.known.len() < MAX_ADDRESSES || self.addresses.known.contains_key(&peer) {
            let known = Known { addr, observed: true };
            self.addresses.known.insert(peer, known);
        }
    }

    /// Where `peer` can be dialled, as far as we know.
    pub(crate) fn address_of(&self, peer: &PeerId) -> Option<SocketAddr> {
        self.addresses.get(peer)
    }

    /// `peer`, named with the address we know for it.
    pub(super) fn entry(&self, peer: PeerId) -> PeerEntry {
        PeerEntry {
            id: peer,
            addr: self.addresses.get(&peer),
        }
    }

    /// Whether `entry`, told by `teller`, may be taken: no address, or one we would dial on its word.
    pub(super) fn plausible(&self, entry: &PeerEntry, teller: &PeerId) -> bool {
        entry
            .addr
            .is_none_or(|addr| dialable(addr, self.addresses.observed(teller)))
    }

    /// Records the address `entry` carries, unless one is known already (an observed one is better,
    /// and a told one is not replaced on another peer's word). Call it once the entry was taken (into
    /// the passive view, or as a peer to ask), so the book holds only peers we deal with.
    pub(super) fn remember(&mut self, entry: &PeerEntry) {
        let Some(addr) = entry.addr else { return };
        let book = &mut self.addresses.known;
        if entry.id != self.me && !book.contains_key(&entry.id) && book.len() < MAX_ADDRESSES {
            book.insert(
                entry.id,
                Known {
                    addr,
                    observed: false,
                },
            );
        }
    }

    /// Whether `peer` is one we deal with: in a view, connected, being dialled or asked, or a contact.
    pub(super) fn deals_with(&self, peer: &PeerId) -> bool {
        self.connected.contains(peer)
            || self.is_active(peer)
            || self.passive.contains(peer)
            || self.dialing.contains_key(peer)
            || self.requested.contains_key(peer)
            || self.contacts.contains(peer)
    }

    /// Forgets `peer`'s address if we no longer deal with it.
    pub(super) fn forget_address(&mut self, peer: &PeerId) {
        if !self.deals_with(peer) {
            self.addresses.remove(peer);
        }
    }

    /// Forgets the addresses of every peer we no longer deal with (a driver need not report a
    /// disconnect we asked for, so the forgetting on the way is not enough).
    pub(super) fn sweep_addresses(&mut self) {
        let mut book = std::mem::take(&mut self.addresses);
        book.retain(|peer| self.deals_with(peer));
        self.addresses = book;
    }
}
