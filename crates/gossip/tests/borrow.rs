//! Borrowed trees (`Trees::Borrow`) driven by hand: a node whose own tree has not formed sends its
//! messages along a neighbour's tree, every node relays them as messages of that tree, and a node floods
//! once (forming its own tree) when it has no neighbour to borrow from or has borrowed enough.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

mod support;

use meshwork_gossip::{
    BORROW_LIMIT, Command, Config, Gossip, GossipMessage, Message, Timer, TreeMessage, Trees,
};
use meshwork_wire::{Input, Instant, PeerId, Protocol};
use support::{key, topic, tree_sends};

fn id(n: u8) -> PeerId {
    key(n).peer_id()
}

/// A node (key 1) that borrows trees, with the given peers in its active view.
fn node(peers: &[u8]) -> Gossip {
    let config = Config {
        trees: Trees::Borrow,
        ..Config::default()
    };
    support::node_with(config, peers).0
}

/// The tree messages `input`, one second in, makes the node send, with their receivers.
fn handle(g: &mut Gossip, input: Input<Gossip>) -> Vec<(PeerId, TreeMessage)> {
    tree_sends(support::handle(g, support::at(1000), input))
}

fn tree(g: &mut Gossip, from: u8, msg: TreeMessage) -> Vec<(PeerId, TreeMessage)> {
    let msg = Message::Tree(msg);
    handle(g, Input::Message { from: id(from), msg })
}

fn signed_by(origin: u8, seq: u64) -> GossipMessage {
    GossipMessage::sign(&key(origin), topic(), seq, b"tx".to_vec().try_into().unwrap())
}

fn publish(g: &mut Gossip) -> Vec<(PeerId, TreeMessage)> {
    handle(g, Input::Command(Command::Publish(topic(), b"mine".to_vec())))
}

/// Who got the message in full, and on which tree.
fn pushes(out: &[(PeerId, TreeMessage)]) -> Vec<(PeerId, Option<PeerId>)> {
    let mut pushes: Vec<_> = out
        .iter()
        .filter_map(|(to, m)| match m {
            TreeMessage::Gossip { .. } => Some((*to, None)),
            TreeMessage::Borrowed { tree, .. } => Some((*to, Some(*tree))),
            _ => None,
        })
        .collect();
    pushes.sort();
    pushes
}

fn sorted(mut peers: Vec<(PeerId, Option<PeerId>)>) -> Vec<(PeerId, Option<PeerId>)> {
    peers.sort();
    peers
}

#[test]
fn a_new_origin_sends_along_the_tree_of_a_neighbour_that_published_on_its_own() {
    let mut g = node(&[2, 3, 4]);
    // Neighbour 2 publishes on its own tree; a duplicate from 3 prunes link 3 from 2's tree.
    tree(
        &mut g,
        2,
        TreeMessage::Gossip {
            message: signed_by(2, 1),
            hops: 1,
        },
    );
    tree(
        &mut g,
        3,
        TreeMessage::Gossip {
            message: signed_by(2, 1),
            hops: 2,
        },
    );
    assert_eq!(g.lazy_peers(&id(2)), vec![id(3)]);

    let out = publish(&mut g);
    let on_2 = Some(id(2));
    assert_eq!(pushes(&out), sorted(vec![(id(2), on_2), (id(4), on_2)]));
    // The lazy link of the borrowed tree hears of it in the next `IHave`.
    let flushed = handle(&mut g, Input::Timer(Timer::FlushIHave));
    assert!(
        flushed
            .iter()
            .any(|(to, m)| *to == id(3) && matches!(m, TreeMessage::IHave { .. })),
        "{flushed:?}"
    );
    assert_eq!(g.stats().tree.published_borrowed, 1);
}

#[test]
fn without_a_neighbour_to_borrow_from_the_first_message_floods_and_forms_its_own_tree() {
    let mut g = node(&[2, 3]);
    let out = publish(&mut g);
    assert_eq!(pushes(&out), sorted(vec![(id(2), None), (id(3), None)]));
    // A lender appears later: the node has its own tree now and keeps it.
    tree(
        &mut g,
        2,
        TreeMessage::Gossip {
            message: signed_by(2, 1),
            hops: 1,
        },
    );
    let out = publish(&mut g);
    assert!(pushes(&out).iter().all(|(_, on)| on.is_none()), "{out:?}");
    assert_eq!(g.stats().tree.published_borrowed, 0);
}

#[test]
fn after_the_borrow_limit_a_node_forms_its_own_tree() {
    let mut g = node(&[2, 3]);
    tree(
        &mut g,
        2,
        TreeMessage::Gossip {
            message: signed_by(2, 1),
            hops: 1,
        },
    );
    for _ in 0..BORROW_LIMIT {
        let out = publish(&mut g);
        assert!(pushes(&out).iter().all(|(_, on)| *on == Some(id(2))), "{out:?}");
    }
    let out = publish(&mut g);
    assert_eq!(pushes(&out), sorted(vec![(id(2), None), (id(3), None)]));
    assert_eq!(g.stats().tree.published_borrowed, u64::from(BORROW_LIMIT));
}

#[test]
fn a_borrowed_message_follows_the_lenders_tree_and_only_a_graft_changes_that_tree() {
    let mut g = node(&[2, 3, 4]);
    let (lender, signer) = (id(10), id(11));
    // Link 3 is off the lender's tree.
    tree(&mut g, 3, TreeMessage::Prune { origin: lender });
    let message = signed_by(11, 1);
    let borrowed = |hops| TreeMessage::Borrowed {
        tree: lender,
        message: message.clone(),
        hops,
    };

    let out = tree(&mut g, 2, borrowed(2));
    assert_eq!(pushes(&out), vec![(id(4), Some(lender))]);

    // A duplicate changes no tree: the lender's tree is shaped by the lender's own messages only (the
    // flows of many origins pruning one tree would leave some nodes off it), and the signer has none.
    let out = tree(&mut g, 4, borrowed(3));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(g.lazy_peers(&lender), vec![id(3)]);
    assert!(g.lazy_peers(&signer).is_empty());

    // Link 3 was told in an `IHave`; its graft gets the message on the lender's tree, and the link
    // rejoins the lender's tree.
    handle(&mut g, Input::Timer(Timer::FlushIHave));
    let out = tree(&mut g, 3, TreeMessage::Graft { id: message.id() });
    assert_eq!(pushes(&out), vec![(id(3), Some(lender))]);
    assert!(
        g.lazy_peers(&lender).is_empty(),
        "the graft mended the lender's tree"
    );
}

#[test]
fn repeated_copies_of_a_borrowed_message_are_waste_on_any_link() {
    let mut g = node(&[2, 3]);
    let message = signed_by(11, 1);
    let borrowed = TreeMessage::Borrowed {
        tree: id(10),
        message,
        hops: 2,
    };
    tree(&mut g, 2, borrowed.clone());
    // Link 3 is eager on the lender's tree, and a borrowed duplicate prunes nothing: without metering,
    // a peer could repeat one forever. 600 is past the allowance (`ScoreConfig::rate_burst`, 500).
    for _ in 0..600 {
        tree(&mut g, 3, borrowed.clone());
    }
    assert!(g.stats().rate_limited > 0, "{:?}", g.stats());
}

/// `lender`'s own message comes through, `secs` seconds in (the other inputs come at one second).
fn heard_from(g: &mut Gossip, lender: u8, secs: u64) {
    let message = signed_by(lender, 1);
    let msg = Message::Tree(TreeMessage::Gossip { message, hops: 1 });
    let input = Input::Message {
        from: id(lender),
        msg,
    };
    g.handle(Instant::from_nanos(secs * 1_000_000_000), input, &mut Vec::new());
}

/// The tree each message of `out` was pushed on is `lender`'s.
fn all_on(out: &[(PeerId, TreeMessage)], lender: u8) -> bool {
    let pushed = pushes(out);
    !pushed.is_empty() && pushed.iter().all(|(_, on)| *on == Some(id(lender)))
}

#[test]
fn the_nearest_lender_by_measured_round_trip_is_borrowed_from() {
    let mut g = node(&[2, 3, 4]);
    let rtt = |peer: u8, ms: u64| {
        let rtt = std::time::Duration::from_millis(ms);
        Input::Command(Command::PeerRoundTrip { peer: id(peer), rtt })
    };
    handle(&mut g, rtt(2, 5));
    handle(&mut g, rtt(3, 80));
    // 3 is heard from last, but 2 is sixteen times nearer: every path of a borrowed message starts
    // with the link to the lender.
    heard_from(&mut g, 2, 1);
    heard_from(&mut g, 3, 2);
    let out = publish(&mut g);
    assert!(all_on(&out, 2), "{out:?}");
}

#[test]
fn without_round_trips_the_lender_heard_from_last_is_borrowed_from() {
    let mut g = node(&[2, 3, 4]);
    heard_from(&mut g, 2, 1);
    heard_from(&mut g, 3, 2);
    let out = publish(&mut g);
    assert!(all_on(&out, 3), "{out:?}");
}
