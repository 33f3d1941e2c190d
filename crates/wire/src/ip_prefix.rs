//! [`IpPrefix`]: the network a peer's address counts under, wherever a protocol or the transport counts
//! peers by network rather than by identity (identities cost nothing; networks do).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A /24 for IPv4, a /48 for IPv6: one operator usually holds a whole prefix, so caps and eviction
/// work per prefix, as Kademlia's routing table (S/Kademlia) and Bitcoin's address manager count them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum IpPrefix {
    /// The first three bytes of an IPv4 address.
    V4([u8; 3]),
    /// The first six bytes of an IPv6 address.
    V6([u8; 6]),
}

impl IpPrefix {
    /// The prefix `ip` is in; an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, a dual-stack socket's
    /// view of an IPv4 peer) counts as IPv4.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(ip) => {
                let [a, b, c, _] = ip.octets();
                Self::V4([a, b, c])
            }
            IpAddr::V6(ip) => {
                let o = ip.octets();
                Self::V6([o[0], o[1], o[2], o[3], o[4], o[5]])
            }
        }
    }
}
