//! How far an address reaches ([`Scope`]), and which addresses a peer's word may make us dial
//! ([`dialable`]): every protocol that dials addresses peers name (membership samples, lookup answers,
//! a rendezvous's punch) asks the same question.

use std::net::{IpAddr, SocketAddr};

/// How far a connection to an address reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// This machine.
    Loopback,
    /// Private and link-local networks (RFC 1918, 6598, 3927, 4193, 4291 link-local).
    Local,
    /// Anything else.
    Global,
}

/// `ip`'s [`Scope`] (an IPv4-mapped address as IPv4).
pub fn scope(ip: IpAddr) -> Scope {
    match ip.to_canonical() {
        IpAddr::V4(ip) if ip.is_loopback() => Scope::Loopback,
        IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            let shared = a == 100 && (64..128).contains(&b); // RFC 6598, carrier-grade NAT
            if ip.is_private() || ip.is_link_local() || shared {
                Scope::Local
            } else {
                Scope::Global
            }
        }
        IpAddr::V6(ip) if ip.is_loopback() => Scope::Loopback,
        IpAddr::V6(ip) if ip.is_unique_local() || ip.is_unicast_link_local() => Scope::Local,
        IpAddr::V6(_) => Scope::Global,
    }
}

/// Whether we would dial `told` on the word of a peer whose connection comes from `teller` (unknown
/// where the driver reports no addresses, as in the simulator): an address a peer can have (not
/// unspecified, multicast or broadcast, port not 0) that reaches no less far than the teller's own.
/// A peer on the internet must not make us dial loopback or a private network (Bitcoin Core keeps
/// addresses by reachability in the same spirit).
pub fn dialable(told: SocketAddr, teller: Option<SocketAddr>) -> bool {
    let ip = told.ip().to_canonical();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    if told.port() == 0 || ip.is_unspecified() || ip.is_multicast() || broadcast {
        return false;
    }
    teller.is_none_or(|teller| scope(ip) >= scope(teller.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|_| panic!("{s} is an address"))
    }

    #[test]
    fn a_told_address_is_no_more_local_than_its_teller() {
        let public = Some(addr("198.51.100.7:4001"));
        let private = Some(addr("10.1.2.3:4001"));
        let loopback = Some(addr("127.0.0.1:4001"));
        assert!(dialable(addr("203.0.113.9:1"), public));
        assert!(!dialable(addr("127.0.0.1:22"), public));
        assert!(!dialable(addr("192.168.1.1:80"), public));
        assert!(!dialable(addr("[fe80::1]:80"), public));
        assert!(!dialable(addr("[::ffff:127.0.0.1]:80"), public));
        assert!(dialable(addr("192.168.1.1:80"), private));
        assert!(!dialable(addr("127.0.0.1:80"), private));
        assert!(dialable(addr("127.4.5.1:80"), loopback));
        assert!(dialable(addr("127.4.5.1:80"), None));
    }

    #[test]
    fn undialable_addresses_are_refused_whoever_tells_them() {
        let loopback = Some(addr("127.0.0.1:4001"));
        for told in [
            "0.0.0.0:4001",
            "224.0.0.1:4001",
            "255.255.255.255:4001",
            "[::]:4001",
            "10.0.0.1:0",
        ] {
            assert!(!dialable(addr(told), loopback), "{told}");
            assert!(!dialable(addr(told), None), "{told}");
        }
    }
}
