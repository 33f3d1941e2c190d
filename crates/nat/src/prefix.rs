//! The network a peer's address counts under in this crate: its [`IpPrefix`] (a /24, a /48; an
//! IPv4-mapped address as IPv4), except on loopback, where every node of a devnet on one machine is
//! 127.0.0.1 and the peer itself is what counts.

use std::net::IpAddr;

use meshwork_wire::IpPrefix;

/// `ip`'s prefix; none for a loopback address.
pub(crate) fn prefix_of(ip: IpAddr) -> Option<IpPrefix> {
    (!ip.to_canonical().is_loopback()).then(|| IpPrefix::of(ip))
}
