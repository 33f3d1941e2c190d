//! The IP prefix a peer's address counts under, wherever this crate counts peers by network rather
//! than by identity (identities cost nothing; networks do): a /24 for IPv4, a /48 for IPv6, as
//! Kademlia's routing table counts them. An IPv4 peer seen on a dual-stack socket (`::ffff:a.b.c.d`)
//! counts under its IPv4 /24, and a loopback address under none: every node of a devnet on one
//! machine is 127.0.0.1, so there the peer itself is what counts.

use std::net::IpAddr;

/// A /24 or a /48.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Prefix {
    /// The first three bytes of an IPv4 address.
    V4([u8; 3]),
    /// The first six bytes of an IPv6 address.
    V6([u8; 6]),
}

impl Prefix {
    /// The prefix `ip` is in; none for a loopback address.
    pub(crate) fn of(ip: IpAddr) -> Option<Self> {
        match ip.to_canonical() {
            ip if ip.is_loopback() => None,
            IpAddr::V4(ip) => {
                let o = ip.octets();
                Some(Self::V4([o[0], o[1], o[2]]))
            }
            IpAddr::V6(ip) => {
                let o = ip.octets();
                Some(Self::V6([o[0], o[1], o[2], o[3], o[4], o[5]]))
            }
        }
    }
}
