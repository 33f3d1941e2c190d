//! The rendezvous registry's limits, expiry and paging, and the confirmation of observed addresses.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_nat::{AddressChange, Namespace, ObservedAddresses, Refusal, Registry, RegistryLimits};
use meshwork_wire::Instant;

fn peer(n: u8) -> PeerId {
    Keypair::from_seed([n; 32]).peer_id()
}

fn ns(name: &str) -> Namespace {
    name.try_into().unwrap()
}

fn at(secs: u64) -> Instant {
    Instant::from_duration(Duration::from_secs(secs))
}

const ADDR: &str = "192.0.2.1:4000";

fn small() -> Registry {
    Registry::new(RegistryLimits {
        namespaces_per_peer: 2,
        registrations_per_namespace: 2,
        registrations_per_network: 2,
        registrations: 4,
        min_ttl: Duration::from_secs(10),
        max_ttl: Duration::from_secs(100),
    })
}

#[test]
fn every_limit_refuses_with_its_own_reason_and_a_renewal_takes_no_new_slot() {
    let mut reg = small();
    let addr: SocketAddr = ADDR.parse().unwrap();
    let sec = Duration::from_secs;
    assert_eq!(
        reg.register(at(0), peer(1), addr, ns("a"), sec(5)),
        Err(Refusal::InvalidTtl)
    );
    assert_eq!(
        reg.register(at(0), peer(1), addr, ns("a"), sec(1000)),
        Ok(sec(100))
    );
    assert_eq!(
        reg.register(at(0), peer(1), addr, ns("a"), sec(50)),
        Ok(sec(50)),
        "renewal"
    );
    assert_eq!(reg.len(), 1);
    assert_eq!(reg.register(at(0), peer(1), addr, ns("b"), sec(50)), Ok(sec(50)));
    assert_eq!(
        reg.register(at(0), peer(1), addr, ns("c"), sec(50)),
        Err(Refusal::TooManyNamespaces)
    );
    reg.register(at(0), peer(2), addr, ns("a"), sec(50)).unwrap();
    assert_eq!(
        reg.register(at(0), peer(3), addr, ns("a"), sec(50)),
        Err(Refusal::NamespaceFull)
    );
    reg.register(at(0), peer(3), addr, ns("c"), sec(50)).unwrap();
    assert_eq!(
        reg.register(at(0), peer(4), addr, ns("d"), sec(50)),
        Err(Refusal::RegistryFull)
    );
    // Once expired, the slots are free again.
    assert_eq!(reg.register(at(60), peer(4), addr, ns("d"), sec(50)), Ok(sec(50)));
    assert_eq!(reg.len(), 1);
}

#[test]
fn discovery_pages_in_peer_order_without_the_asker_or_the_expired() {
    let mut reg = Registry::new(RegistryLimits::default());
    let addr: SocketAddr = ADDR.parse().unwrap();
    for n in 1..=5 {
        reg.register(
            at(0),
            peer(n),
            addr,
            ns("coin"),
            Duration::from_secs(10 * u64::from(n)),
        )
        .unwrap();
    }
    let asker = peer(1);
    let (first, more) = reg.discover(at(15), &ns("coin"), &asker, None, 2);
    assert!(more);
    assert_eq!(first.len(), 2);
    let (rest, more) = reg.discover(at(15), &ns("coin"), &asker, Some(first[1].peer), 10);
    assert!(!more);
    let mut all: Vec<PeerId> = first.iter().chain(&rest).map(|r| r.peer).collect();
    assert!(!all.contains(&asker));
    // At 15 s, peer 1's 10 s registration is gone anyway; the other four remain, each once.
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "peer-id order");
    all.sort();
    let expected: Vec<PeerId> = {
        let mut v: Vec<_> = (2..=5).map(peer).collect();
        v.sort();
        v
    };
    assert_eq!(all, expected);
    let ttl_of_5 = first
        .iter()
        .chain(&rest)
        .find(|r| r.peer == peer(5))
        .unwrap()
        .ttl_secs;
    assert_eq!(ttl_of_5, 35);
    // Unregistering removes it from the next answer.
    reg.unregister(&peer(5), &ns("coin"));
    let (left, _) = reg.discover(at(15), &ns("coin"), &asker, None, 100);
    assert_eq!(left.len(), 3);
}

#[test]
fn an_address_is_confirmed_by_distinct_peers_and_expires_with_their_reports() {
    let ttl = Duration::from_secs(60);
    let mut seen = ObservedAddresses::new(2, ttl, 8);
    let ours: SocketAddr = "198.51.100.7:5000".parse().unwrap();
    assert!(seen.report(at(0), peer(1), None, ours).is_empty());
    assert!(
        seen.report(at(1), peer(1), None, ours).is_empty(),
        "one peer twice is still one"
    );
    assert_eq!(
        seen.report(at(2), peer(2), None, ours),
        vec![AddressChange::Confirmed(ours)]
    );
    assert_eq!(seen.confirmed(), &[ours]);
    // Peer 1's report (renewed at 1 s) goes stale at 61 s: one report is not enough.
    assert_eq!(seen.next_expiry(), Some(at(61)));
    assert_eq!(seen.expire(at(61)), vec![AddressChange::Expired(ours)]);
    assert!(seen.confirmed().is_empty());
}

#[test]
fn reports_count_by_the_prefix_they_come_from() {
    let mut seen = ObservedAddresses::new(2, Duration::from_secs(60), 3);
    let ours: SocketAddr = "198.51.100.7:5000".parse().unwrap();
    let lie: SocketAddr = "203.0.113.9:1".parse().unwrap();
    let host = |last: u8| Some(std::net::IpAddr::from([192, 0, 2, last]));
    let elsewhere = |third: u8| Some(std::net::IpAddr::from([10, 0, third, 1]));
    seen.report(at(0), peer(1), elsewhere(1), ours);
    // One host under many identities is one reporter: it confirms nothing, and holds one place.
    for (i, n) in (20..60).enumerate() {
        assert!(seen.report(at(1 + i as u64), peer(n), host(n), lie).is_empty());
    }
    // So the honest report was not pushed out, and a second prefix confirms the truth.
    assert_eq!(
        seen.report(at(50), peer(2), elsewhere(2), ours),
        vec![AddressChange::Confirmed(ours)]
    );
}

#[test]
fn dual_stack_and_loopback_reporters_count_as_they_should() {
    let ours: SocketAddr = "198.51.100.7:5000".parse().unwrap();
    // IPv4 peers seen on a dual-stack socket count by their own /24s: two of them confirm.
    let mut seen = ObservedAddresses::new(2, Duration::from_secs(60), 8);
    let mapped = |third: u8| Some(format!("::ffff:10.0.{third}.1").parse().unwrap());
    seen.report(at(0), peer(1), mapped(1), ours);
    assert_eq!(
        seen.report(at(1), peer(2), mapped(2), ours),
        vec![AddressChange::Confirmed(ours)]
    );
    // On loopback (a devnet on one machine) each peer counts for itself.
    let mut seen = ObservedAddresses::new(2, Duration::from_secs(60), 8);
    let lo = Some(std::net::IpAddr::from([127, 0, 0, 1]));
    seen.report(at(0), peer(1), lo, ours);
    assert_eq!(
        seen.report(at(1), peer(2), lo, ours),
        vec![AddressChange::Confirmed(ours)]
    );
}

#[test]
fn a_liar_cannot_confirm_an_address_and_reporters_are_bounded() {
    let mut seen = ObservedAddresses::new(2, Duration::from_secs(60), 3);
    let ours: SocketAddr = "198.51.100.7:5000".parse().unwrap();
    let lie: SocketAddr = "203.0.113.9:1".parse().unwrap();
    seen.report(at(0), peer(1), None, ours);
    seen.report(at(1), peer(9), None, lie);
    seen.report(at(2), peer(9), None, lie);
    assert!(seen.confirmed().is_empty());
    // A fourth reporter evicts the oldest report (peer 1's), so its vote no longer counts.
    seen.report(at(3), peer(2), None, lie);
    seen.report(at(4), peer(3), None, ours);
    assert_eq!(seen.confirmed(), &[lie], "two distinct peers did report it");
    // A fifth evicts peer 9's: the lie loses its second vote as the truth gains one.
    let changes = seen.report(at(5), peer(4), None, ours);
    assert_eq!(
        changes,
        vec![AddressChange::Expired(lie), AddressChange::Confirmed(ours)]
    );
}

#[test]
fn a_peer_whose_registrations_lapsed_is_never_refused_for_them_however_lately_the_registry_was_purged() {
    let mut reg = Registry::new(RegistryLimits {
        namespaces_per_peer: 2,
        registrations: 10,
        min_ttl: Duration::from_secs(10),
        ..RegistryLimits::default()
    });
    let addr: SocketAddr = ADDR.parse().unwrap();
    let ms = Duration::from_millis;
    let at_ms = |ms: u64| Instant::from_duration(Duration::from_millis(ms));
    // Peer 1 fills its namespaces, each lapsing at 10.5 s.
    for name in ["a", "b"] {
        reg.register(at_ms(500), peer(1), addr, ns(name), ms(10_000))
            .unwrap();
    }
    // At 10.1 s peer 2, at its own limit, is refused. The registry used to purge every namespace then
    // (at most once a second), when peer 1's registrations still held, and so refused peer 1 below.
    for name in ["a", "b"] {
        reg.register(at_ms(0), peer(2), addr, ns(name), ms(100_000))
            .unwrap();
    }
    assert_eq!(
        reg.register(at_ms(10_100), peer(2), addr, ns("c"), ms(10_000)),
        Err(Refusal::TooManyNamespaces)
    );
    // Within the second, peer 1's lapsed registrations do not count against it.
    assert_eq!(
        reg.register(at_ms(10_600), peer(1), addr, ns("c"), ms(10_000)),
        Ok(ms(10_000))
    );
    assert_eq!(reg.len(), 3, "peer 2's two and peer 1's new one");
    // A closed connection removes every registration of its peer.
    reg.remove_peer(&peer(2));
    assert_eq!(reg.len(), 1);
    assert!(!reg.holds(&peer(2)) && reg.holds(&peer(1)));
}

#[test]
fn the_count_of_registrations_stays_true_through_renewals_expiry_and_closed_connections() {
    let mut reg = Registry::new(RegistryLimits {
        namespaces_per_peer: 3,
        min_ttl: Duration::from_secs(10),
        ..RegistryLimits::default()
    });
    let addr: SocketAddr = ADDR.parse().unwrap();
    let sec = Duration::from_secs;
    let names = ["a", "b", "c"];
    // Every live registration, counted the way a client sees them.
    let visible = |reg: &mut Registry, now: Instant| -> usize {
        names
            .iter()
            .map(|name| reg.discover(now, &ns(name), &peer(250), None, 100).0.len())
            .sum()
    };
    for p in 1..=6u8 {
        for (i, name) in names.iter().enumerate() {
            // Peers 1-3 register for 10 s, 4-6 for 100 s; every third registration is renewed.
            let ttl = if p <= 3 { sec(10) } else { sec(100) };
            reg.register(at(0), peer(p), addr, ns(name), ttl).unwrap();
            if (usize::from(p) + i) % 3 == 0 {
                reg.register(at(1), peer(p), addr, ns(name), ttl).unwrap();
            }
        }
    }
    assert_eq!(reg.len(), 18);
    assert_eq!(visible(&mut reg, at(5)), 18);
    // At 20 s the short ones lapsed. A peer at its limit purges its own; one namespace's look-up
    // purges that namespace; a closed connection removes all of one peer's; the sweep the rest.
    assert_eq!(
        reg.register(at(20), peer(1), addr, ns("d"), sec(100)),
        Ok(sec(100))
    );
    assert_eq!(reg.len(), 16, "peer 1's three lapsed ones gone, its new one in");
    assert_eq!(reg.discover(at(20), &ns("a"), &peer(250), None, 100).0.len(), 3);
    assert_eq!(reg.len(), 14, "peers 2 and 3 lapsed under a");
    reg.remove_peer(&peer(4));
    assert_eq!(reg.len(), 11);
    assert!(!reg.holds(&peer(4)));
    reg.expire(at(20));
    assert_eq!(
        reg.len(),
        7,
        "peers 5 and 6 in three namespaces each, and peer 1's new one"
    );
    assert_eq!(visible(&mut reg, at(20)), 6);
    assert!(reg.holds(&peer(1)) && !reg.holds(&peer(2)) && !reg.holds(&peer(3)));
    // Every peer can still take its full share of namespaces: nothing was left counted.
    for p in 2..=3u8 {
        for name in names {
            reg.register(at(21), peer(p), addr, ns(name), sec(100)).unwrap();
        }
    }
    assert_eq!(reg.len(), 13);
}

#[test]
fn one_network_holds_at_most_its_share_of_a_namespace() {
    let mut reg = Registry::new(RegistryLimits::default());
    let share = RegistryLimits::default().registrations_per_network;
    let sec = Duration::from_secs;
    // Fresh identities of one /24 fill their network's share, and no more.
    let mut taken = 0;
    for n in 0..(2 * share) as u8 {
        let addr: SocketAddr = format!("198.51.100.{n}:4000").parse().unwrap();
        match reg.register(at(0), peer(n), addr, ns("coin"), sec(60)) {
            Ok(_) => taken += 1,
            Err(refusal) => assert_eq!(refusal, Refusal::NamespaceFull),
        }
    }
    assert_eq!(taken, share);
    // Another network still gets in, and so does the first one in another namespace.
    let other: SocketAddr = "203.0.113.7:4000".parse().unwrap();
    assert!(reg.register(at(0), peer(200), other, ns("coin"), sec(60)).is_ok());
    // A renewal that moves into the full network is refused as a new registration there would be
    // (it was taken before, past the share); one that stays where it was is a renewal.
    let full: SocketAddr = "198.51.100.251:4000".parse().unwrap();
    assert_eq!(
        reg.register(at(1), peer(200), full, ns("coin"), sec(60)),
        Err(Refusal::NamespaceFull)
    );
    assert!(reg.register(at(1), peer(200), other, ns("coin"), sec(60)).is_ok());
    let moved_within: SocketAddr = "198.51.100.0:4001".parse().unwrap();
    assert!(
        reg.register(at(1), peer(0), moved_within, ns("coin"), sec(60))
            .is_ok()
    );
    let first: SocketAddr = "198.51.100.250:4000".parse().unwrap();
    assert!(reg.register(at(0), peer(201), first, ns("chat"), sec(60)).is_ok());
    // On loopback (a devnet on one machine) every peer counts alone.
    let local: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    for n in 0..(2 * share) as u8 {
        let peer = Keypair::from_seed([n; 32]).peer_id();
        reg.register(at(0), peer, local, ns("devnet"), sec(60)).unwrap();
    }
}
