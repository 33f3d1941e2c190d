//! The last free slots find each other: a full node's refusal names a peer it refused shortly before
//! (which has room), the refused node asks it, and two linked nodes both one short escalate once.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use std::net::SocketAddr;
use std::time::Duration;

use meshwork_gossip::{Command, Config, Gossip, MembershipMessage as Msg, Message, PeerEntry, Timer};
use meshwork_identity::Keypair;
use meshwork_wire::{Input, Instant, Output, PeerId, Protocol};

fn peer(n: u8) -> PeerId {
    Keypair::from_seed([n; 32]).peer_id()
}

fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, n, 1], 4001))
}

fn at(ms: u64) -> Instant {
    Instant::from_duration(Duration::from_millis(ms))
}

fn handle(g: &mut Gossip, now: Instant, input: Input<Gossip>) -> Vec<Output<Gossip>> {
    let mut out = Vec::new();
    g.handle(now, input, &mut out);
    out
}

fn receive(g: &mut Gossip, now: Instant, from: PeerId, msg: Msg) -> Vec<Output<Gossip>> {
    let msg = Message::Membership(msg);
    handle(g, now, Input::Message { from, msg })
}

/// `n` connects from its address and asks to be a neighbour (low priority).
fn ask(g: &mut Gossip, now: Instant, n: u8) -> Vec<Output<Gossip>> {
    let command = Command::PeerAddress {
        peer: peer(n),
        addr: addr(n),
    };
    handle(g, now, Input::Command(command));
    handle(g, now, Input::PeerUp(peer(n)));
    receive(g, now, peer(n), Msg::Neighbor { high_priority: false })
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

fn refusal_to(out: &[Output<Gossip>], to: PeerId) -> Option<PeerEntry> {
    sent(out)
        .into_iter()
        .find_map(|(p, m)| match m {
            Msg::NeighborReply {
                accepted: false,
                alternative,
            } if p == to => Some(alternative),
            _ => None,
        })
        .expect("a refusal")
}

fn entry(n: u8) -> PeerEntry {
    PeerEntry {
        id: peer(n),
        addr: Some(addr(n)),
    }
}

/// A node with neighbours 2 to 6 (full).
fn full() -> Gossip {
    let mut g = Gossip::new(Keypair::from_seed([1; 32]), Config::default(), 7);
    for n in 2..7 {
        ask(&mut g, at(0), n);
    }
    assert_eq!(g.active_view().len(), 5);
    g
}

#[test]
fn a_refusal_names_the_peer_refused_before_once_and_while_fresh() {
    let mut g = full();
    let out = ask(&mut g, at(100), 20);
    assert_eq!(refusal_to(&out, peer(20)), None, "nobody to name yet");
    let out = ask(&mut g, at(200), 21);
    assert_eq!(
        refusal_to(&out, peer(21)),
        Some(entry(20)),
        "named with its address"
    );
    // 20 was named once; 21 is named next.
    let out = ask(&mut g, at(300), 22);
    assert_eq!(refusal_to(&out, peer(22)), Some(entry(21)));
    // A seeker is remembered for a repair round (10 s): it asks again each round anyway.
    let out = ask(&mut g, at(20_000), 23);
    assert_eq!(refusal_to(&out, peer(23)), None);
}

/// A node with neighbours 2 to 5 (one slot free) that asked passive peer 30 for it.
fn one_short_asking_30() -> Gossip {
    let mut g = Gossip::new(Keypair::from_seed([1; 32]), Config::default(), 7);
    for n in 2..6 {
        ask(&mut g, at(0), n);
    }
    // Neighbour 2 ends a shuffle walk here with peer 30 in its sample.
    let peers = vec![entry(30)].try_into().unwrap();
    let origin = PeerEntry::id_only(peer(2));
    receive(
        &mut g,
        at(0),
        peer(2),
        Msg::Shuffle {
            origin,
            ttl: 0,
            peers,
            nonce: 0,
        },
    );
    let out = handle(&mut g, at(10_000), Input::Timer(Timer::Shuffle));
    assert!(out.iter().any(|o| matches!(o, Output::Dial(p) if *p == peer(30))));
    let out = handle(&mut g, at(10_000), Input::PeerUp(peer(30)));
    assert!(sent(&out).contains(&(peer(30), Msg::Neighbor { high_priority: false })));
    g
}

#[test]
fn a_refused_node_asks_the_peer_the_refusal_names() {
    let mut g = one_short_asking_30();
    let reply = Msg::NeighborReply {
        accepted: false,
        alternative: Some(entry(40)),
    };
    let out = receive(&mut g, at(10_010), peer(30), reply);
    assert!(out.iter().any(|o| matches!(o, Output::Dial(p) if *p == peer(40))));
    assert_eq!(g.address_of(&peer(40)), Some(addr(40)));
    let out = handle(&mut g, at(10_020), Input::PeerUp(peer(40)));
    assert!(sent(&out).contains(&(peer(40), Msg::Neighbor { high_priority: false })));
}

#[test]
fn two_linked_nodes_one_short_each_escalate_once() {
    let mut g = one_short_asking_30();
    // 30 refuses, naming neighbour 3 (one short too): no low-priority request can fill our two slots,
    // so we ask 30 again with high priority, over the same connection.
    let reply = Msg::NeighborReply {
        accepted: false,
        alternative: Some(entry(3)),
    };
    let out = receive(&mut g, at(10_010), peer(30), reply.clone());
    assert_eq!(
        sent(&out),
        vec![(peer(30), Msg::Neighbor { high_priority: true })]
    );
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Disconnect(p) if *p == peer(30)))
    );
    // Refused again (its neighbours are protected): no third request.
    let out = receive(&mut g, at(10_020), peer(30), reply);
    assert!(!sent(&out).iter().any(|(to, _)| *to == peer(30)));
}

/// The red team's G4: fresh identities of one subnet, each asking to be refused, took every referral
/// (draining the seekers honest nodes left) and left only themselves to be named. Now a prefix takes
/// two referrals in a burst: thirty Sybils of one /24 drain at most two honest seekers of four, and of
/// the next honest requesters at most one is named a Sybil.
#[test]
fn a_subnet_of_fresh_identities_takes_two_referrals() {
    let mut g = full();
    for n in 20..24 {
        ask(&mut g, at(100), n);
    }
    let mut named_to_sybils = Vec::new();
    for n in 100..130u8 {
        let command = Command::PeerAddress {
            peer: peer(n),
            addr: SocketAddr::from(([127, 0, 200, n], 4001)),
        };
        handle(&mut g, at(200), Input::Command(command));
        handle(&mut g, at(200), Input::PeerUp(peer(n)));
        let out = receive(&mut g, at(200), peer(n), Msg::Neighbor { high_priority: false });
        named_to_sybils.extend(refusal_to(&out, peer(n)).map(|e| e.id));
    }
    assert_eq!(named_to_sybils.len(), 2, "the subnet's allowance");
    let sybils: Vec<PeerId> = (100..130).map(peer).collect();
    let honest_drained = named_to_sybils.iter().filter(|p| !sybils.contains(p)).count();
    assert!(honest_drained <= 2, "{honest_drained} honest seekers drained");
    let named: Vec<PeerId> = (24..28)
        .filter_map(|n| refusal_to(&ask(&mut g, at(300), n), peer(n)).map(|e| e.id))
        .collect();
    assert_eq!(named.len(), 4, "{named:?}");
    let to_sybils = named.iter().filter(|p| sybils.contains(p)).count();
    assert!(
        to_sybils <= 1,
        "honest requesters named {to_sybils} Sybils: {named:?}"
    );
}

#[test]
fn asking_again_with_nothing_to_be_given_costs_the_prefix_nothing() {
    let mut g = full();
    let in_prefix = |n: u8| SocketAddr::from(([127, 0, 200, n], 4001));
    let ask_from_prefix = |g: &mut Gossip, ms: u64, n: u8| {
        let command = Command::PeerAddress {
            peer: peer(n),
            addr: in_prefix(n),
        };
        handle(g, at(ms), Input::Command(command));
        handle(g, at(ms), Input::PeerUp(peer(n)));
        let out = receive(g, at(ms), peer(n), Msg::Neighbor { high_priority: false });
        refusal_to(&out, peer(n))
    };
    // Peer 100 asks every few milliseconds, nobody else seeking: remembered once, charged once.
    for ms in [100, 101, 102, 103] {
        assert_eq!(ask_from_prefix(&mut g, ms, 100), None);
    }
    // An honest requester elsewhere is named 100, and is remembered in turn.
    assert_eq!(
        refusal_to(&ask(&mut g, at(104), 20), peer(20)),
        Some(PeerEntry {
            id: peer(100),
            addr: Some(in_prefix(100)),
        })
    );
    // A second node of the prefix still has the allowance's second referral.
    assert_eq!(ask_from_prefix(&mut g, 105, 101), Some(entry(20)));
}
