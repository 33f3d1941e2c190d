//! Issue #21: nothing lost silently. Where gossip refuses something from a peer it says so with
//! `Output::Dropped` and the reason, so the driver counts it and logs the peer.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use std::net::SocketAddr;
use std::time::Duration;

use meshwork_gossip::{
    Command, Config, Event, Gossip, GossipMessage, MembershipMessage as Msg, Message, TopicId, TopicOptions,
    TreeMessage,
};
use meshwork_identity::{Keypair, Signature};
use meshwork_wire::{DropReason, Input, Instant, Output, PeerId, Protocol};

fn peer(n: u32) -> PeerId {
    let mut seed = [5u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    Keypair::from_seed(seed).peer_id()
}

fn at(s: u64) -> Instant {
    Instant::from_duration(Duration::from_secs(s))
}

fn node() -> Gossip {
    Gossip::new(Keypair::from_seed([1; 32]), Config::default(), 7)
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

/// `from` connects from `ip` (port 4001).
fn connect(g: &mut Gossip, now: Instant, from: PeerId, ip: [u8; 4]) {
    let addr = SocketAddr::from((ip, 4001));
    handle(g, now, Input::Command(Command::PeerAddress { peer: from, addr }));
    handle(g, now, Input::PeerUp(from));
}

/// The reasons `out` reports for `peer`.
fn dropped(out: &[Output<Gossip>], peer: PeerId) -> Vec<DropReason> {
    out.iter()
        .filter_map(|o| match o {
            Output::Dropped { peer: p, reason } if *p == peer => Some(*reason),
            _ => None,
        })
        .collect()
}

/// A node with five neighbours, each in its own /24.
fn full() -> Gossip {
    let mut g = node();
    for n in 0..5 {
        connect(&mut g, at(0), peer(n), [10, n as u8, 0, 1]);
        let out = receive(&mut g, at(0), peer(n), Msg::Neighbor { high_priority: false });
        assert!(dropped(&out, peer(n)).is_empty());
    }
    assert_eq!(g.active_view().len(), 5);
    g
}

#[test]
fn a_peer_refused_by_a_full_view_is_reported_full() {
    let mut g = full();
    let late = peer(50);
    connect(&mut g, at(1), late, [10, 50, 0, 1]);
    let out = receive(&mut g, at(1), late, Msg::Neighbor { high_priority: false });
    assert_eq!(dropped(&out, late), vec![DropReason::Full]);
    assert!(out.iter().any(|o| matches!(o, Output::Send { to, msg: Message::Membership(Msg::NeighborReply { accepted: false, alternative: None }) } if *to == late)));
}

#[test]
fn a_peer_over_its_request_allowance_is_reported_rate_limited() {
    let mut g = node();
    let chatty = peer(60);
    connect(&mut g, at(0), chatty, [10, 60, 0, 1]);
    // The allowance is a burst of 16 requests; the 17th in the same instant is refused.
    let burst = Config::default().admission.requests_burst as usize;
    for _ in 0..burst {
        let out = receive(&mut g, at(0), chatty, Msg::Neighbor { high_priority: false });
        assert!(dropped(&out, chatty).is_empty());
    }
    let out = receive(&mut g, at(0), chatty, Msg::Neighbor { high_priority: false });
    assert_eq!(dropped(&out, chatty), vec![DropReason::RateLimited]);
    assert!(
        out.iter().all(|o| !matches!(o, Output::Send { .. })),
        "nothing answered"
    );
}

#[test]
fn joins_over_a_prefix_allowance_and_neighbours_over_a_prefix_share_are_reported_prefix_limit() {
    let mut g = node();
    // Joins from one /24: a burst of 8 is handled (the first two enter the active view, the rest are
    // refused a slot for their prefix's share but wait in the passive view), the 9th is not even read.
    let burst = Config::default().admission.prefix_joins_burst as u32;
    for n in 0..burst {
        connect(&mut g, at(0), peer(100 + n), [10, 7, 7, n as u8 + 1]);
        let out = receive(&mut g, at(0), peer(100 + n), Msg::Join);
        let expected = if n < 2 {
            vec![]
        } else {
            vec![DropReason::PrefixLimit]
        };
        assert_eq!(dropped(&out, peer(100 + n)), expected, "join {n}");
    }
    let ninth = peer(100 + burst);
    connect(&mut g, at(0), ninth, [10, 7, 7, 200]);
    let out = receive(&mut g, at(0), ninth, Msg::Join);
    assert_eq!(dropped(&out, ninth), vec![DropReason::PrefixLimit]);
    assert!(
        out.iter().all(|o| !matches!(o, Output::Send { .. })),
        "not handled at all"
    );
    assert!(!g.passive_view().contains(&ninth));

    // The active view takes two neighbours of one /24 at most, even with room.
    let mut g = node();
    for n in 0..2 {
        connect(&mut g, at(0), peer(200 + n), [10, 8, 8, n as u8 + 1]);
        receive(
            &mut g,
            at(0),
            peer(200 + n),
            Msg::Neighbor { high_priority: false },
        );
    }
    let third = peer(202);
    connect(&mut g, at(0), third, [10, 8, 8, 3]);
    let out = receive(&mut g, at(0), third, Msg::Neighbor { high_priority: false });
    assert_eq!(g.active_view().len(), 2, "room left");
    assert_eq!(dropped(&out, third), vec![DropReason::PrefixLimit]);
}

#[test]
fn an_unsolicited_shuffle_reply_is_reported_unsolicited() {
    let mut g = full();
    let out = receive(
        &mut g,
        at(1),
        peer(0),
        Msg::ShuffleReply {
            peers: Default::default(),
            nonce: 0,
        },
    );
    assert_eq!(dropped(&out, peer(0)), vec![DropReason::Unsolicited]);
    // So is an acceptance of a request we never made (from a peer that is not a neighbour: one that
    // is crossed a request of its own, and the link is up already).
    let stranger = peer(70);
    connect(&mut g, at(1), stranger, [10, 70, 0, 1]);
    let out = receive(
        &mut g,
        at(1),
        stranger,
        Msg::NeighborReply {
            accepted: true,
            alternative: None,
        },
    );
    assert_eq!(dropped(&out, stranger), vec![DropReason::Unsolicited]);
    assert!(!g.active_view().contains(&stranger));
    let out = receive(
        &mut g,
        at(1),
        peer(1),
        Msg::NeighborReply {
            accepted: true,
            alternative: None,
        },
    );
    assert!(dropped(&out, peer(1)).is_empty());
}

#[test]
fn a_banned_peer_is_reported_banned_for_what_it_sends_and_its_connections() {
    let mut g = full();
    let options = TopicOptions::default();
    handle(
        &mut g,
        at(0),
        Input::Command(Command::Subscribe(TopicId::from_name("t"), options)),
    );
    let bad = peer(0);
    // Forged messages cost 50 points each; at -100 the peer is banned.
    let mut banned_at = None;
    for i in 0..4 {
        let mut forged = GossipMessage::sign(
            &Keypair::from_seed([9; 32]),
            TopicId::from_name("t"),
            i,
            b"x".to_vec().try_into().unwrap(),
        );
        forged.signature = Signature::from_bytes([0; 64]);
        let msg = Message::Tree(TreeMessage::Gossip {
            message: forged,
            hops: 1,
        });
        let out = handle(&mut g, at(1), Input::Message { from: bad, msg });
        if out
            .iter()
            .any(|o| matches!(o, Output::Emit(Event::PeerBanned(p)) if *p == bad))
        {
            banned_at = Some(i);
            break;
        }
    }
    assert!(banned_at.is_some(), "the peer was banned");
    let out = receive(&mut g, at(2), bad, Msg::Neighbor { high_priority: true });
    assert_eq!(dropped(&out, bad), vec![DropReason::Banned]);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Disconnect(p) if *p == bad))
    );
    let out = handle(&mut g, at(3), Input::PeerUp(bad));
    assert_eq!(dropped(&out, bad), vec![DropReason::Banned]);
}
