//! The network a peer's address counts under in this crate: its [`IpPrefix`] (a /24, a /48; an
//! IPv4-mapped address as IPv4), except on loopback, where every node of a devnet on one machine is
//! 127.0.0.1 and the peer itself is what counts. And how far an address reaches ([`Scope`]).

use std::net::IpAddr;

use meshwork_wire::IpPrefix;

/// `ip`'s prefix; none for a loopback address.
pub(crate) fn prefix_of(ip: IpAddr) -> Option<IpPrefix> {
    (!ip.to_canonical().is_loopback()).then(|| IpPrefix::of(ip))
}

/// How far an address reaches, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Scope {
    /// This machine.
    Loopback,
    /// One link (169.254.0.0/16, fe80::/10).
    LinkLocal,
    /// One site (RFC 1918, fc00::/7).
    Private,
    /// Anything else.
    Global,
}

/// `ip`'s [`Scope`] (an IPv4-mapped address as IPv4).
pub(crate) fn scope(ip: IpAddr) -> Scope {
    match ip.to_canonical() {
        ip if ip.is_loopback() => Scope::Loopback,
        IpAddr::V4(v4) if v4.is_link_local() => Scope::LinkLocal,
        IpAddr::V4(v4) if v4.is_private() => Scope::Private,
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Scope::LinkLocal,
        IpAddr::V6(v6) if v6.is_unique_local() => Scope::Private,
        _ => Scope::Global,
    }
}
