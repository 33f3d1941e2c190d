//! Addresses of relayed connections.
//!
//! A connection carried through a relay (`meshwork-nat`'s relay protocol) has no address of its own
//! on the network: the QUIC transport gives each relay circuit a **virtual address** from
//! 240.0.0.0/4, a block reserved since RFC 1112 §4 and never routed, so no real peer can have one.
//! Every place that sees a connection's address (the node runtime's `on_connected` hook, its address
//! book, `Connection::remote_addr`) can therefore tell a relayed connection from a direct one with
//! [`is_relayed`]: the mark protocols read. A relayed address is only good while its circuit lasts,
//! so it is never an address to advertise, register or report as observed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// How many circuits get distinct virtual addresses: each gets its own /24 of 240.0.0.0/4, so the
/// transport's per-prefix admission caps never lump unrelated relayed peers together.
pub const RELAYED_ADDRESSES: u32 = 1 << 20;

/// The port every virtual address carries (QUIC refuses to dial port 0).
const RELAYED_PORT: u16 = 1;

/// Whether `addr` is a relay circuit's virtual address (IPv4, or IPv4-mapped IPv6).
pub fn is_relayed(addr: &SocketAddr) -> bool {
    let v4 = match addr.ip() {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4,
            None => return false,
        },
    };
    v4.octets()[0] & 0xf0 == 240
}

/// The `n`-th virtual address (`n` is taken modulo [`RELAYED_ADDRESSES`]).
pub fn relayed_addr(n: u32) -> SocketAddr {
    let n = n % RELAYED_ADDRESSES;
    let ip = Ipv4Addr::from(0xf000_0000 | (n << 8) | 1);
    SocketAddr::new(ip.into(), RELAYED_PORT)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn virtual_addresses_are_marked_and_real_ones_are_not() {
        for n in [0, 1, 255, 256, RELAYED_ADDRESSES - 1, RELAYED_ADDRESSES] {
            let addr = relayed_addr(n);
            assert!(is_relayed(&addr), "{addr}");
            let mapped = SocketAddr::new(
                match addr.ip() {
                    IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
                    v6 => v6,
                },
                addr.port(),
            );
            assert!(is_relayed(&mapped), "{mapped}");
        }
        for real in ["10.200.0.100:4000", "239.255.255.255:1", "[::1]:5"] {
            assert!(!is_relayed(&real.parse().unwrap()), "{real}");
        }
    }

    #[test]
    fn each_circuit_gets_its_own_slash_24() {
        let a = relayed_addr(7);
        let b = relayed_addr(8);
        let prefix = |addr: SocketAddr| match addr.ip() {
            IpAddr::V4(v4) => u32::from(v4) >> 8,
            IpAddr::V6(_) => unreachable!(),
        };
        assert_ne!(prefix(a), prefix(b));
        assert_eq!(relayed_addr(7), relayed_addr(7 + RELAYED_ADDRESSES));
    }
}
