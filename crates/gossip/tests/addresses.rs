//! Issue #21: addresses travel with peers. One node driven by hand: the peers HyParView names carry
//! addresses, the node can dial the peers it learns of ([`Gossip::address_of`]), an observed address
//! beats a told one, told addresses are checked against their teller, and one message makes us dial at
//! most one peer we were told of.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use std::net::SocketAddr;

use meshwork_gossip::{
    Command, Config, Gossip, MAX_SHUFFLE, MembershipMessage as Msg, Message, PeerEntry, Timer,
};
use meshwork_identity::Keypair;
use meshwork_wire::{BoundedVec, Input, Instant, Output, PeerId, Protocol};

fn peer(n: u32) -> PeerId {
    let mut seed = [9u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    Keypair::from_seed(seed).peer_id()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn handle(g: &mut Gossip, input: Input<Gossip>) -> Vec<Output<Gossip>> {
    let mut out = Vec::new();
    g.handle(Instant::ZERO, input, &mut out);
    out
}

fn receive(g: &mut Gossip, from: PeerId, msg: Msg) -> Vec<Output<Gossip>> {
    let msg = Message::Membership(msg);
    handle(g, Input::Message { from, msg })
}

/// `from` connects from `at` (reported before `PeerUp`, as the node runtime does).
fn connect(g: &mut Gossip, from: PeerId, at: SocketAddr) -> Vec<Output<Gossip>> {
    let mut out = handle(g, Input::Command(Command::PeerAddress { peer: from, addr: at }));
    out.extend(handle(g, Input::PeerUp(from)));
    out
}

fn dials(out: &[Output<Gossip>]) -> Vec<PeerId> {
    out.iter()
        .filter_map(|o| match o {
            Output::Dial(p) => Some(*p),
            _ => None,
        })
        .collect()
}

fn sent(out: &[Output<Gossip>]) -> Vec<(PeerId, Msg)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg: Message::Membership(m),
            } => Some((*to, m.clone())),
            _ => None,
        })
        .collect()
}

/// A node with neighbours 1 and 2, connected from loopback addresses 127.0.1.1 and 127.0.2.1.
fn node() -> Gossip {
    let mut g = Gossip::new(Keypair::from_seed([1; 32]), Config::default(), 7);
    for n in 1..=2 {
        connect(&mut g, peer(n), addr(&format!("127.0.{n}.1:4001")));
        receive(&mut g, peer(n), Msg::Neighbor { high_priority: false });
    }
    assert_eq!(g.active_view().len(), 2);
    g
}

fn entry(n: u32, at: &str) -> PeerEntry {
    PeerEntry {
        id: peer(n),
        addr: Some(addr(at)),
    }
}

fn sample(entries: Vec<PeerEntry>) -> BoundedVec<PeerEntry, MAX_SHUFFLE> {
    entries.try_into().unwrap()
}

#[test]
fn a_joiner_is_announced_with_the_address_its_connection_came_from() {
    let mut g = node();
    let joiner = peer(50);
    let mut out = connect(&mut g, joiner, addr("127.0.50.1:5050"));
    out.extend(receive(&mut g, joiner, Msg::Join));
    let walks: Vec<PeerEntry> = sent(&out)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Msg::ForwardJoin { joiner, .. } => Some(joiner),
            _ => None,
        })
        .collect();
    assert_eq!(walks.len(), 2, "one walk per other neighbour");
    assert!(walks.iter().all(|w| *w == entry(50, "127.0.50.1:5050")));
}

#[test]
fn the_end_of_a_join_walk_dials_the_joiner_where_it_was_told_until_a_connection_shows_better() {
    let mut g = node();
    let told = entry(60, "127.0.60.1:6000");
    // With other neighbours a walk of ttl 0 still ends here (no hops left).
    let out = receive(&mut g, peer(1), Msg::ForwardJoin { joiner: told, ttl: 0 });
    assert_eq!(dials(&out), vec![peer(60)]);
    assert_eq!(g.address_of(&peer(60)), told.addr, "the driver can dial it");
    // The connection shows where it really is: that wins.
    let observed = addr("127.0.60.1:6001");
    connect(&mut g, peer(60), observed);
    assert_eq!(g.address_of(&peer(60)), Some(observed));
    // No peer's word replaces an observed address (a later walk naming it elsewhere).
    let other = entry(60, "127.9.9.9:9999");
    receive(
        &mut g,
        peer(2),
        Msg::ForwardJoin {
            joiner: other,
            ttl: 0,
        },
    );
    assert_eq!(g.address_of(&peer(60)), Some(observed));
}

#[test]
fn a_told_address_does_not_replace_another_told_one() {
    let mut g = node();
    let first = entry(61, "127.0.61.1:6100");
    receive(
        &mut g,
        peer(1),
        Msg::ForwardJoin {
            joiner: first,
            ttl: 0,
        },
    );
    let second = entry(61, "127.0.61.2:6100");
    receive(
        &mut g,
        peer(2),
        Msg::ForwardJoin {
            joiner: second,
            ttl: 0,
        },
    );
    assert_eq!(g.address_of(&peer(61)), first.addr);
}

#[test]
fn a_peer_on_a_public_address_cannot_make_us_dial_loopback_or_a_private_network() {
    let mut g = Gossip::new(Keypair::from_seed([1; 32]), Config::default(), 7);
    connect(&mut g, peer(1), addr("198.51.100.1:4001"));
    receive(&mut g, peer(1), Msg::Neighbor { high_priority: false });
    for (n, told) in [(70, "127.0.0.1:22"), (71, "192.168.1.1:80"), (72, "0.0.0.0:4001")] {
        let out = receive(
            &mut g,
            peer(1),
            Msg::ForwardJoin {
                joiner: entry(n, told),
                ttl: 0,
            },
        );
        assert!(dials(&out).is_empty(), "{told}");
        assert_eq!(g.address_of(&peer(n)), None, "{told}");
    }
    // A public address is fine.
    let out = receive(
        &mut g,
        peer(1),
        Msg::ForwardJoin {
            joiner: entry(73, "203.0.113.5:4001"),
            ttl: 0,
        },
    );
    assert_eq!(dials(&out), vec![peer(73)]);
}

#[test]
fn the_first_hop_of_a_shuffle_names_its_origin_with_the_observed_address() {
    let mut g = node();
    // Neighbour 1 starts a shuffle (it does not know its own address, and lies about it here).
    let origin = entry(1, "127.0.99.1:1");
    let peers = sample(vec![entry(80, "127.0.80.1:8000")]);
    let out = receive(
        &mut g,
        peer(1),
        Msg::Shuffle {
            origin,
            ttl: 3,
            peers,
            nonce: 7,
        },
    );
    let forwarded = sent(&out)
        .into_iter()
        .find_map(|(to, m)| match m {
            Msg::Shuffle { origin, .. } => Some((to, origin)),
            _ => None,
        })
        .unwrap();
    assert_eq!(forwarded, (peer(2), entry(1, "127.0.1.1:4001")));
}

#[test]
fn one_message_makes_us_dial_at_most_one_peer_we_were_told_of() {
    let mut g = node();
    // A shuffle walk ending here: its 16 peers go to the passive view, and only the origin is dialled
    // (for the reply).
    let peers = sample(
        (100..116)
            .map(|n| entry(n, &format!("127.1.{n}.1:4001")))
            .collect(),
    );
    let origin = entry(90, "127.0.90.1:9000");
    let out = receive(
        &mut g,
        peer(1),
        Msg::Shuffle {
            origin,
            ttl: 0,
            peers,
            nonce: 7,
        },
    );
    assert_eq!(dials(&out), vec![peer(90)]);
    assert_eq!(g.address_of(&peer(90)), origin.addr);
    let learnt: Vec<PeerId> = (100..116)
        .map(peer)
        .filter(|p| g.passive_view().contains(p))
        .collect();
    assert!(!learnt.is_empty());
    assert!(
        learnt.iter().all(|p| g.address_of(p).is_some()),
        "passive peers keep their addresses"
    );
    // A reply to our shuffle: its peers go to the passive view, nobody is dialled.
    let out = handle(&mut g, Input::Timer(Timer::Shuffle));
    let (target, size, nonce) = sent(&out)
        .into_iter()
        .find_map(|(to, m)| match m {
            Msg::Shuffle { peers, nonce, .. } => Some((to, peers.len(), nonce)),
            _ => None,
        })
        .unwrap();
    let reply = sample(
        (200..216)
            .map(|n| entry(n, &format!("127.2.{n}.1:4001")))
            .collect(),
    );
    let out = receive(&mut g, target, Msg::ShuffleReply { peers: reply, nonce });
    assert!(dials(&out).is_empty());
    assert!(size > 0);
}

#[test]
fn only_a_neighbour_that_evicted_us_names_a_peer_we_dial() {
    let mut g = node();
    // A connected stranger "evicts" us, naming a peer of its choice: not followed.
    connect(&mut g, peer(30), addr("127.0.30.1:4001"));
    let hint = Some(entry(31, "127.0.31.1:4001"));
    let out = receive(&mut g, peer(30), Msg::Disconnect { alternative: hint });
    assert!(!dials(&out).contains(&peer(31)));
    // A neighbour that evicts us is followed: the peer that took our slot is asked first.
    let hint = Some(entry(32, "127.0.32.1:4001"));
    let out = receive(&mut g, peer(1), Msg::Disconnect { alternative: hint });
    assert_eq!(dials(&out).first(), Some(&peer(32)));
    assert_eq!(g.address_of(&peer(32)), hint.and_then(|h| h.addr));
}

#[test]
fn an_evicted_peer_is_told_where_its_replacement_is() {
    let mut g = Gossip::new(Keypair::from_seed([1; 32]), Config::default(), 7);
    for n in 1..=5 {
        connect(&mut g, peer(n), addr(&format!("127.0.{n}.1:4001")));
        receive(&mut g, peer(n), Msg::Neighbor { high_priority: false });
    }
    let newcomer = peer(40);
    connect(&mut g, newcomer, addr("127.0.40.1:4040"));
    let out = receive(&mut g, newcomer, Msg::Neighbor { high_priority: true });
    let hint = sent(&out).into_iter().find_map(|(_, m)| match m {
        Msg::Disconnect { alternative } => alternative,
        _ => None,
    });
    assert_eq!(hint, Some(entry(40, "127.0.40.1:4040")));
}

#[test]
fn addresses_are_forgotten_when_the_peer_leaves_every_view() {
    let mut g = node();
    let joiner = entry(60, "127.0.60.1:6000");
    receive(&mut g, peer(1), Msg::ForwardJoin { joiner, ttl: 0 });
    assert!(g.address_of(&peer(60)).is_some());
    // The dial fails: the peer is in no view and not connected any more.
    handle(&mut g, Input::PeerDown(peer(60)));
    assert_eq!(g.address_of(&peer(60)), None);
    // A neighbour whose connection fails leaves the active view and is not kept in reserve.
    handle(&mut g, Input::PeerDown(peer(2)));
    assert!(!g.active_view().contains(&peer(2)) && !g.passive_view().contains(&peer(2)));
    assert_eq!(g.address_of(&peer(2)), None);
    // An evicted neighbour goes to the passive view and keeps its address there.
    receive(&mut g, peer(1), Msg::Disconnect { alternative: None });
    assert!(g.passive_view().contains(&peer(1)));
    assert_eq!(g.address_of(&peer(1)), Some(addr("127.0.1.1:4001")));
}

#[test]
fn the_address_book_is_bounded() {
    let mut g = node();
    // Addresses reported for 5,000 peers that never connect (a driver gone wrong, or a flood of
    // half-open connections): at most 4,096 are kept, and the neighbours' are among them.
    for n in 1_000..6_000 {
        let at = SocketAddr::from(([10, (n >> 8) as u8, n as u8, 1], 4001));
        handle(
            &mut g,
            Input::Command(Command::PeerAddress {
                peer: peer(n),
                addr: at,
            }),
        );
    }
    let kept = (1_000..6_000)
        .filter(|n| g.address_of(&peer(*n)).is_some())
        .count();
    assert!(kept <= 4_096, "{kept}");
    assert_eq!(g.address_of(&peer(1)), Some(addr("127.0.1.1:4001")));
}
