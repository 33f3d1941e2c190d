//! Who may connect in: per-IP and per-prefix caps on inbound connections (and per IPv6 /32, where a
//! prefix costs nothing), and, when every inbound slot is taken, which connection makes room for a
//! newcomer.
//!
//! The eviction follows Bitcoin Core's `SelectNodeToEvict` (`src/node/eviction.cpp`): an attacker who
//! controls many addresses in a few prefixes must not be able to replace every honest peer. Some
//! connections are protected — a few from distinct prefixes chosen by a keyed hash the attacker cannot
//! predict, the ones with the lowest round-trip time, and the longest-lived half of the rest — and the
//! victim is the newest connection of the most crowded prefix that is left. If nothing is left, the
//! newcomer is refused instead.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use meshwork_wire::IpPrefix;

#[derive(Debug, Default)]
struct Held {
    ips: HashMap<IpAddr, usize>,
    prefixes: HashMap<IpPrefix, usize>,
    blocks: HashMap<[u8; 4], usize>,
}

/// The address admission counts `ip` as: the IPv4 host behind a 6to4 address (`2002:AABB:CCDD::/48`
/// holds A.B.C.D), a Teredo one (`2001::/32`, the client's address inverted in the last 32 bits) or
/// a NAT64 one (RFC 6052's `64:ff9b::/96`, the host's address in the last 32 bits),
/// as Bitcoin Core's `GetLinkedIPv4` does, so a tunnelled host counts where its IPv4 address does
/// (a 6to4 /48 is one IPv4 address, and all of Teredo is one /32); any other as itself, an
/// IPv4-mapped one as IPv4.
fn linked(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let o = v6.octets();
            if o[..2] == [0x20, 0x02] {
                IpAddr::from([o[2], o[3], o[4], o[5]])
            } else if o[..4] == [0x20, 0x01, 0, 0] {
                IpAddr::from([!o[12], !o[13], !o[14], !o[15]])
            } else if o[..12] == [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0] {
                IpAddr::from([o[12], o[13], o[14], o[15]])
            } else {
                IpAddr::V6(v6)
            }
        }
        v4 => v4,
    }
}

/// The network group an address is in, as Bitcoin Core's `GetGroup` has it: its IPv4 /16 or its
/// IPv6 /32 (a provider's allocation), a tunnelled host's by the IPv4 address it carries. What one
/// operator's many networks most likely share: the listener evicts handshakes by group
/// (`quic/handshakes.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum NetGroup {
    /// The first two bytes of an IPv4 address.
    V4([u8; 2]),
    /// The first four bytes of an IPv6 address.
    V6([u8; 4]),
}

impl NetGroup {
    /// The group `ip` is in.
    pub(crate) fn of(ip: IpAddr) -> Self {
        match linked(ip) {
            IpAddr::V4(v4) => {
                let [a, b, _, _] = v4.octets();
                Self::V4([a, b])
            }
            IpAddr::V6(v6) => {
                let [a, b, c, d, ..] = v6.octets();
                Self::V6([a, b, c, d])
            }
        }
    }
}

/// The /32 an IPv6 address is in (none for IPv4: a /24 there is scarce).
fn ipv6_block(ip: IpAddr) -> Option<[u8; 4]> {
    match ip {
        IpAddr::V4(_) => None,
        IpAddr::V6(ip) => {
            let o = ip.octets();
            Some([o[0], o[1], o[2], o[3]])
        }
    }
}

/// Counts of inbound connections per IP and per prefix: established ones, and handshakes from an
/// address that proved it receives there (a Retry answered); an unproven handshake takes its place
/// only once it completes (`quic/listener.rs`).
#[derive(Debug)]
pub(crate) struct Admission {
    per_ip: usize,
    per_prefix: usize,
    per_block: usize,
    held: Mutex<Held>,
}

/// One admitted inbound connection's place in the counts; released when dropped.
#[derive(Debug)]
pub(crate) struct AddrSlot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    pub(crate) fn new(per_ip: usize, per_prefix: usize, per_block: usize) -> Arc<Self> {
        Arc::new(Self {
            per_ip,
            per_prefix,
            per_block,
            held: Mutex::new(Held::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a connection from `ip` would be admitted now (neither its IP, its prefix nor its IPv6
    /// /32 is at its cap), without taking a place.
    pub(crate) fn has_room(&self, ip: IpAddr) -> bool {
        self.room(&self.lock(), linked(ip))
    }

    fn room(&self, held: &Held, ip: IpAddr) -> bool {
        let by_ip = held.ips.get(&ip).copied().unwrap_or(0);
        let by_prefix = held.prefixes.get(&IpPrefix::of(ip)).copied().unwrap_or(0);
        let by_block = ipv6_block(ip).map_or(0, |block| held.blocks.get(&block).copied().unwrap_or(0));
        by_ip < self.per_ip && by_prefix < self.per_prefix && by_block < self.per_block
    }

    /// Admits a connection from `ip` if neither its IP, its prefix nor its IPv6 /32 is at its cap.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<AddrSlot> {
        let ip = linked(ip);
        let prefix = IpPrefix::of(ip);
        let mut held = self.lock();
        if !self.room(&held, ip) {
            return None;
        }
        *held.ips.entry(ip).or_default() += 1;
        *held.prefixes.entry(prefix).or_default() += 1;
        if let Some(block) = ipv6_block(ip) {
            *held.blocks.entry(block).or_default() += 1;
        }
        Some(AddrSlot {
            admission: self.clone(),
            ip,
        })
    }
}

impl Drop for AddrSlot {
    fn drop(&mut self) {
        let mut held = self.admission.lock();
        let prefix = IpPrefix::of(self.ip);
        decrement(&mut held.ips, self.ip);
        decrement(&mut held.prefixes, prefix);
        if let Some(block) = ipv6_block(self.ip) {
            decrement(&mut held.blocks, block);
        }
    }
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: K) {
    if let Some(count) = map.get_mut(&key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            map.remove(&key);
        }
    }
}

/// An inbound connection that might be evicted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate<K> {
    pub(crate) key: K,
    pub(crate) prefix: IpPrefix,
    /// Establishment order: smaller is older.
    pub(crate) seq: u64,
    pub(crate) rtt: Duration,
}

/// Connections protected by a keyed hash of their prefix (Bitcoin Core: 4 by netgroup).
const PROTECT_BY_PREFIX: usize = 4;
/// Connections protected for the lowest round-trip time (Bitcoin Core: 8 by ping).
const PROTECT_BY_RTT: usize = 8;

/// Which inbound connection to close to make room, or `None` if every one is protected. `salt` keys the
/// prefix hash, so an attacker cannot pick prefixes that win the protection.
pub(crate) fn select_victim<K: Copy>(mut left: Vec<Candidate<K>>, salt: &impl BuildHasher) -> Option<K> {
    // A few from distinct prefixes, by keyed hash.
    left.sort_by_key(|c| salt.hash_one(c.prefix));
    let mut protected_prefixes = Vec::new();
    left.retain(|c| {
        if protected_prefixes.len() < PROTECT_BY_PREFIX && !protected_prefixes.contains(&c.prefix) {
            protected_prefixes.push(c.prefix);
            false
        } else {
            true
        }
    });
    // The fastest.
    left.sort_by_key(|c| (c.rtt, c.seq));
    left.drain(..PROTECT_BY_RTT.min(left.len()));
    // The longest-lived half of the rest.
    left.sort_by_key(|c| c.seq);
    left.drain(..left.len() / 2);
    // The newest of the most crowded prefix (ties: the prefix whose newest member is newest).
    let mut groups: HashMap<IpPrefix, (usize, Candidate<K>)> = HashMap::new();
    for c in left {
        let group = groups.entry(c.prefix).or_insert((0, c));
        group.0 += 1;
        if c.seq > group.1.seq {
            group.1 = c;
        }
    }
    groups
        .into_values()
        .max_by_key(|(count, newest)| (*count, newest.seq))
        .map(|(_, newest)| newest.key)
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::RandomState;

    use super::*;

    fn candidate(key: u64, ip: [u8; 4], rtt_ms: u64) -> Candidate<u64> {
        Candidate {
            key,
            prefix: IpPrefix::of(IpAddr::from(ip)),
            seq: key,
            rtt: Duration::from_millis(rtt_ms),
        }
    }

    #[test]
    fn caps_per_ip_and_prefix_and_release_on_drop() {
        let admission = Admission::new(2, 3, usize::MAX);
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let first = admission.admit(a).expect("first");
        let _second = admission.admit(a).expect("second");
        assert!(admission.admit(a).is_none(), "third from one IP");
        let _third = admission.admit(b).expect("another IP of the prefix");
        assert!(admission.admit(b).is_none(), "the prefix is full");
        assert!(
            admission.admit(IpAddr::from([10, 0, 1, 1])).is_some(),
            "another prefix"
        );
        drop(first);
        let _again = admission.admit(a).expect("a released slot is free again");
        // An IPv4-mapped IPv6 address is the same host.
        assert!(admission.admit("::ffff:10.0.0.1".parse().unwrap()).is_none());
    }

    #[test]
    fn network_groups_are_ipv4_slash_16s_and_ipv6_slash_32s_tunnels_by_what_they_carry() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(NetGroup::of(ip("10.1.2.3")), NetGroup::of(ip("10.1.200.9")));
        assert_ne!(NetGroup::of(ip("10.1.2.3")), NetGroup::of(ip("10.2.2.3")));
        assert_eq!(
            NetGroup::of(ip("2001:db8:1::1")),
            NetGroup::of(ip("2001:db8:ffff::1"))
        );
        assert_ne!(NetGroup::of(ip("2001:db8::1")), NetGroup::of(ip("2001:db9::1")));
        // 6to4 carrying 10.1.0.1, and an IPv4-mapped address: the IPv4 group.
        assert_eq!(
            NetGroup::of(ip("2002:0a01:0001::1")),
            NetGroup::of(ip("10.1.0.1"))
        );
        assert_eq!(NetGroup::of(ip("::ffff:10.1.9.9")), NetGroup::of(ip("10.1.0.1")));
        // Teredo carries the client's address inverted (here 10.1.0.1); NAT64 (RFC 6052) as is.
        assert_eq!(
            NetGroup::of(ip("2001:0:1:2:3:4:f5fe:fffe")),
            NetGroup::of(ip("10.1.0.1"))
        );
        assert_eq!(
            NetGroup::of(ip("64:ff9b::10.1.7.7")),
            NetGroup::of(ip("10.1.0.1"))
        );
    }

    /// The red team's T4: a /48 costs nothing within a provider's /32, so handshakes from thousands of
    /// /48s were capped only per /48. Now one /32 holds at most its own cap, and releases on drop.
    #[test]
    fn an_ipv6_block_is_capped_across_its_prefixes() {
        let admission = Admission::new(4, 16, 64);
        let ip = |block: u16, prefix: u16, host: u16| IpAddr::from([0x2001, block, prefix, 0, 0, 0, 0, host]);
        let mut held = Vec::new();
        for prefix in 0..100u16 {
            held.extend(admission.admit(ip(7, prefix, 1)));
        }
        assert_eq!(held.len(), 64, "one /32, a hundred /48s");
        assert!(admission.admit(ip(8, 0, 1)).is_some(), "another /32");
        assert!(
            admission.admit(IpAddr::from([10, 1, 2, 3])).is_some(),
            "IPv4 is under no /32"
        );
        held.pop();
        assert!(
            admission.admit(ip(7, 500, 1)).is_some(),
            "a released place is free again"
        );
        // A tunnelled host counts as its IPv4 address: one Teredo client behind a hundred /48s (its
        // Teredo servers'), and a 6to4 /48 beside the IPv4 host it embeds.
        let teredo: Vec<_> = (0..100u16)
            .filter_map(|prefix| admission.admit(IpAddr::from([0x2001, 0, prefix, 0, 0, 0, 0, 1])))
            .collect();
        assert_eq!(teredo.len(), 4, "the per-IP cap of 255.255.255.254");
        let host = IpAddr::from([192, 0, 2, 9]);
        let _v4: Vec<_> = (0..3).filter_map(|_| admission.admit(host)).collect();
        let six_to_four = IpAddr::from([0x2002, 0xc000, 0x0209, 7, 0, 0, 0, 1]);
        let fourth = admission.admit(six_to_four);
        assert!(fourth.is_some(), "its fourth place");
        assert!(admission.admit(six_to_four).is_none() && admission.admit(host).is_none());
    }

    #[test]
    fn evicts_the_newest_of_the_most_crowded_prefix() {
        let salt = RandomState::new();
        // 20 honest peers from distinct prefixes, slow links, connected first; then 40 from one /24.
        let mut candidates: Vec<_> = (0..20).map(|i| candidate(i, [20, i as u8, 0, 1], 200)).collect();
        candidates.extend((20..60).map(|i| candidate(i, [66, 6, 6, i as u8], 200)));
        for _ in 0..10 {
            let victim = select_victim(candidates.clone(), &salt).expect("someone to evict");
            assert!(victim >= 20, "an honest peer was chosen: {victim}");
            candidates.retain(|c| c.key != victim);
        }
    }

    #[test]
    fn protects_everyone_when_few_are_held() {
        let salt = RandomState::new();
        let candidates: Vec<_> = (0..12).map(|i| candidate(i, [30, i as u8, 0, 1], i)).collect();
        assert_eq!(select_victim(candidates, &salt), None);
    }
}
