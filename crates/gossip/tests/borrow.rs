//! Borrowed trees (`Trees::Borrow`) driven by hand: a node whose own tree has not formed sends its
//! messages along the tree of a lender (a neighbour, or a node two links away), every node relays them
//! as messages of that tree, and a node floods once (forming its own tree) when it has no lender or has
//! borrowed enough.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

mod support;

use meshwork_gossip::{
    BORROW_LIMIT, Command, Config, Gossip, GossipMessage, Message, Timer, TreeMessage, TreeRef, TreeTag,
    Trees,
};
use meshwork_wire::{Input, Instant, PeerId, Protocol};
use support::{key, topic, tree_sends};

fn id(n: u8) -> PeerId {
    key(n).peer_id()
}

/// The name of `n`'s tree in a borrowed copy.
fn tree_ref(n: u8) -> TreeRef {
    TreeRef::of(&id(n))
}

/// A node (key 1) that borrows trees, with the given peers in its active view.
fn node(peers: &[u8]) -> Gossip {
    node_with_lenders_within(peers, Config::default().lender_hops)
}

/// A node (key 1) that borrows trees from lenders up to `hops` links away.
fn node_with_lenders_within(peers: &[u8], hops: u16) -> Gossip {
    let config = Config {
        trees: Trees::Borrow,
        lender_hops: hops,
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
fn pushes(out: &[(PeerId, TreeMessage)]) -> Vec<(PeerId, Option<TreeRef>)> {
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

fn sorted(mut peers: Vec<(PeerId, Option<TreeRef>)>) -> Vec<(PeerId, Option<TreeRef>)> {
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
    let on_2 = Some(tree_ref(2));
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
        assert!(all_on(&out, 2), "{out:?}");
    }
    let out = publish(&mut g);
    assert_eq!(pushes(&out), sorted(vec![(id(2), None), (id(3), None)]));
    assert_eq!(g.stats().tree.published_borrowed, u64::from(BORROW_LIMIT));
}

#[test]
fn a_borrowed_message_follows_the_lenders_tree_and_only_a_graft_changes_that_tree() {
    let mut g = node(&[2, 3, 4]);
    let (lender, signer) = (id(10), id(11));
    // The lender's tree has formed here (its own message came through), and link 3 is off it.
    heard_from_via(&mut g, 10, 2, 2);
    tree(&mut g, 3, TreeMessage::Prune { origin: lender });
    let message = signed_by(11, 1);
    let borrowed = |hops| TreeMessage::Borrowed {
        tree: tree_ref(10),
        message: message.clone(),
        hops,
    };

    let out = tree(&mut g, 2, borrowed(2));
    assert_eq!(pushes(&out), vec![(id(4), Some(tree_ref(10)))]);

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
    assert_eq!(pushes(&out), vec![(id(3), Some(tree_ref(10)))]);
    assert!(
        g.lazy_peers(&lender).is_empty(),
        "the graft mended the lender's tree"
    );
}

#[test]
fn repeated_copies_of_a_borrowed_message_are_waste_on_any_link() {
    let mut g = node(&[2, 3]);
    // The lender's tree has formed here (its own message came through).
    heard_from_via(&mut g, 10, 2, 2);
    let message = signed_by(11, 1);
    let borrowed = TreeMessage::Borrowed {
        tree: tree_ref(10),
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

#[test]
fn a_neighbours_first_copy_of_a_borrowed_message_on_an_eager_link_is_not_waste_its_repeat_is() {
    // No allowance: every wasted message is counted (`rate_limited`) at once.
    let mut config = Config {
        trees: Trees::Borrow,
        ..Config::default()
    };
    (
        config.score.rate_burst,
        config.score.rate_per_sec,
        config.score.relay_credit,
    ) = (0.0, 0.0, 0.0);
    let mut g = support::node_with(config, &[2, 3]).0;
    heard_from_via(&mut g, 10, 2, 2);
    let borrowed = TreeMessage::Borrowed {
        tree: tree_ref(10),
        message: signed_by(11, 1),
        hops: 2,
    };
    tree(&mut g, 2, borrowed.clone());
    // Someone injected the message at two points of the lender's tree: neighbour 3 relays it to us
    // too, honestly, on a link eager on that tree.
    tree(&mut g, 3, borrowed.clone());
    assert_eq!(g.stats().rate_limited, 0, "an honest relay's copy");
    tree(&mut g, 3, borrowed.clone());
    assert_eq!(g.stats().rate_limited, 1, "its repeat");
    tree(&mut g, 2, borrowed);
    assert_eq!(g.stats().rate_limited, 2, "the first sender's repeat");
}

/// Neighbour `lender`'s own message comes through, `secs` seconds in (the other inputs come at one
/// second).
fn heard_from(g: &mut Gossip, lender: u8, secs: u64) {
    heard_at(g, secs, lender, lender, 1);
}

/// `lender`'s own message comes through from neighbour `via`, `hops` links from `lender`, one second
/// in.
fn heard_from_via(g: &mut Gossip, lender: u8, via: u8, hops: u16) {
    heard_at(g, 1, lender, via, hops);
}

fn heard_at(g: &mut Gossip, secs: u64, lender: u8, via: u8, hops: u16) {
    let message = signed_by(lender, 1);
    let msg = Message::Tree(TreeMessage::Gossip { message, hops });
    let input = Input::Message { from: id(via), msg };
    g.handle(Instant::from_nanos(secs * 1_000_000_000), input, &mut Vec::new());
}

/// The driver measured a round trip of `ms` to `peer`.
fn round_trip(peer: u8, ms: u64) -> Input<Gossip> {
    let rtt = std::time::Duration::from_millis(ms);
    Input::Command(Command::PeerRoundTrip { peer: id(peer), rtt })
}

/// The node's next message goes out on `lender`'s tree.
fn assert_borrows_from(g: &mut Gossip, lender: u8) {
    let out = publish(g);
    assert!(all_on(&out, lender), "{out:?}");
}

/// The tree each message of `out` was pushed on is `lender`'s.
fn all_on(out: &[(PeerId, TreeMessage)], lender: u8) -> bool {
    let pushed = pushes(out);
    !pushed.is_empty() && pushed.iter().all(|(_, on)| *on == Some(tree_ref(lender)))
}

#[test]
fn the_nearest_lender_by_measured_round_trip_is_borrowed_from() {
    let mut g = node(&[2, 3, 4]);
    handle(&mut g, round_trip(2, 5));
    handle(&mut g, round_trip(3, 80));
    // 3 is heard from last, but 2 is sixteen times nearer: every path of a borrowed message starts
    // with the link to the lender.
    heard_from(&mut g, 2, 1);
    heard_from(&mut g, 3, 2);
    assert_borrows_from(&mut g, 2);
}

#[test]
fn without_round_trips_the_lender_heard_from_last_is_borrowed_from() {
    let mut g = node(&[2, 3, 4]);
    heard_from(&mut g, 2, 1);
    heard_from(&mut g, 3, 2);
    assert_borrows_from(&mut g, 3);
}

#[test]
fn without_a_neighbour_that_published_a_lender_two_links_away_is_borrowed_from() {
    let mut g = node(&[2, 3]);
    // 10 is no neighbour: its own message came through 2, two links from it.
    heard_from_via(&mut g, 10, 2, 2);
    let out = publish(&mut g);
    // Its tree here is all eager (no duplicate pruned it), so both links carry ours on it.
    assert_eq!(
        pushes(&out),
        sorted(vec![(id(2), Some(tree_ref(10))), (id(3), Some(tree_ref(10)))])
    );
    assert_eq!(g.stats().tree.published_borrowed, 1);
}

#[test]
fn a_neighbour_lends_before_a_node_two_links_away_heard_from_later() {
    let mut g = node(&[2, 3, 4]);
    heard_from(&mut g, 3, 1);
    heard_at(&mut g, 2, 10, 2, 2);
    assert_borrows_from(&mut g, 3);
}

#[test]
fn a_lender_beyond_the_limit_lends_nothing_and_the_first_message_floods() {
    // Three links away, past the default of two.
    let mut g = node(&[2, 3]);
    heard_from_via(&mut g, 10, 2, 3);
    let out = publish(&mut g);
    assert_eq!(pushes(&out), sorted(vec![(id(2), None), (id(3), None)]));
    // Two links away, with lenders limited to neighbours.
    let mut g = node_with_lenders_within(&[2, 3], 1);
    heard_from_via(&mut g, 10, 2, 2);
    let out = publish(&mut g);
    assert_eq!(pushes(&out), sorted(vec![(id(2), None), (id(3), None)]));
}

#[test]
fn a_borrowed_message_whose_tag_names_no_tree_here_is_its_origins_and_floods_on() {
    let mut g = node(&[2, 3, 4]);
    let message = signed_by(11, 1);
    let borrowed = TreeMessage::Borrowed {
        tree: tree_ref(10),
        message,
        hops: 2,
    };
    // No tree of 10 here: the message follows its origin's tree, which is new here (all eager), and
    // goes on as the origin's own, so the nodes past this one form the origin's tree as well.
    let out = tree(&mut g, 2, borrowed);
    assert_eq!(pushes(&out), sorted(vec![(id(3), None), (id(4), None)]));
    // But its origin published on a borrowed tree, so it has none of its own to lend: our first
    // message floods.
    let out = publish(&mut g);
    assert_eq!(
        pushes(&out),
        sorted(vec![(id(2), None), (id(3), None), (id(4), None)])
    );
}

/// A key whose tree shares `n`'s tag (its first four bytes) but not the rest of its name: a byte
/// past the tag changed, until the key is a point again.
fn same_tag_as(n: u8) -> PeerId {
    (1..=u8::MAX)
        .find_map(|x| {
            let mut bytes = *id(n).as_bytes();
            bytes[5] ^= x;
            PeerId::from_bytes(bytes).ok()
        })
        .unwrap()
}

/// Neighbour 3 prunes a key that shares 10's tag (any neighbour may prune any key, and the tree it
/// makes here is one link 3 is off); then 2 pushes 11's message borrowing 10's tree. Who gets it.
fn borrowed_after_a_prune_of_a_tag_sharer(g: &mut Gossip) -> Vec<(PeerId, Option<TreeRef>)> {
    let other = same_tag_as(10);
    assert_eq!(TreeTag::of(&other), TreeTag::of(&id(10)));
    tree(g, 3, TreeMessage::Prune { origin: other });
    let borrowed = TreeMessage::Borrowed {
        tree: tree_ref(10),
        message: signed_by(11, 1),
        hops: 3,
    };
    pushes(&tree(g, 2, borrowed))
}

#[test]
fn a_prune_naming_a_key_that_shares_a_lenders_tag_does_not_take_the_tag() {
    let mut g = node(&[2, 3, 4]);
    heard_from_via(&mut g, 10, 2, 2);
    // 10's tree (all eager here) still carries the copy.
    let on_10 = Some(tree_ref(10));
    assert_eq!(
        borrowed_after_a_prune_of_a_tag_sharer(&mut g),
        sorted(vec![(id(3), on_10), (id(4), on_10)])
    );
}

#[test]
fn a_borrowed_copy_does_not_follow_another_tree_that_shares_its_tag() {
    // 10's tree is unknown here, and its tag stands for the other. Pushed along the other tree, the
    // copy would reach 4 only, and every copy a neighbour already held would count against us. It is
    // its origin's message here instead, and floods on.
    let mut g = node(&[2, 3, 4]);
    assert_eq!(
        borrowed_after_a_prune_of_a_tag_sharer(&mut g),
        sorted(vec![(id(3), None), (id(4), None)])
    );
}

#[test]
fn lenders_reached_through_a_neighbour_that_left_lend_no_more() {
    let mut g = node(&[2, 3]);
    heard_from_via(&mut g, 10, 2, 2);
    handle(&mut g, Input::PeerDown(id(2)));
    let out = publish(&mut g);
    assert_eq!(pushes(&out), vec![(id(3), None)]);
}

#[test]
fn of_lenders_two_links_away_the_one_behind_the_nearer_neighbour_is_borrowed_from() {
    let mut g = node(&[2, 3, 4]);
    handle(&mut g, round_trip(2, 5));
    handle(&mut g, round_trip(3, 80));
    // 11 is heard from last, through the far neighbour: the way to a lender starts with that link.
    heard_at(&mut g, 1, 10, 2, 2);
    heard_at(&mut g, 2, 11, 3, 2);
    assert_borrows_from(&mut g, 10);
}
