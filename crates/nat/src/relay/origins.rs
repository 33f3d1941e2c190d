//! Where each peer's connection comes from, as the driver observed it: what the relay's limits per IP
//! prefix count.
//!
//! Identities cost nothing, so a limit per peer alone let one host take every reservation (128
//! identities) or every circuit. Reservations and circuits are therefore also counted by the prefix
//! (a /24, a /48) of the connection they came on ([`RelayLimits::max_reservations_per_prefix`],
//! [`RelayLimits::max_circuits_per_prefix`]); peers on relayed connections share one count. A peer
//! the driver said nothing of (a driver without the `on_connected` hook) is not counted.
//!
//! [`RelayLimits::max_reservations_per_prefix`]: super::RelayLimits::max_reservations_per_prefix
//! [`RelayLimits::max_circuits_per_prefix`]: super::RelayLimits::max_circuits_per_prefix

use std::collections::HashMap;
use std::net::SocketAddr;

use meshwork_identity::PeerId;
use meshwork_wire::IpPrefix;
use meshwork_wire::relayed::is_relayed;

use crate::prefix::prefix_of;

/// The prefix a connection comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Origin {
    /// The peers of one prefix.
    Net(IpPrefix),
    /// A relay circuit (whose address says nothing of the peer).
    Relayed,
}

impl Origin {
    /// `None` for a loopback address: every node of a devnet on one machine is 127.0.0.1.
    fn of(addr: &SocketAddr) -> Option<Self> {
        if is_relayed(addr) {
            Some(Self::Relayed)
        } else {
            prefix_of(addr.ip()).map(Self::Net)
        }
    }
}

/// The origin of each connected peer the driver told us of.
#[derive(Debug, Default)]
pub(super) struct Origins {
    of: HashMap<PeerId, Origin>,
}

impl Origins {
    /// `peer`'s connection comes from `addr` (again, after an upgrade from a relayed one).
    pub(super) fn observed(&mut self, peer: PeerId, addr: &SocketAddr) {
        match Origin::of(addr) {
            Some(origin) => self.of.insert(peer, origin),
            None => self.of.remove(&peer),
        };
    }

    /// `peer` disconnected.
    pub(super) fn forget(&mut self, peer: &PeerId) {
        self.of.remove(peer);
    }

    /// `peer`'s origin, if we were told.
    pub(super) fn get(&self, peer: &PeerId) -> Option<Origin> {
        self.of.get(peer).copied()
    }

    /// How many of `peers` share `origin`.
    pub(super) fn count<'a>(&self, origin: Origin, peers: impl Iterator<Item = &'a PeerId>) -> usize {
        peers.filter(|peer| self.get(peer) == Some(origin)).count()
    }
}
