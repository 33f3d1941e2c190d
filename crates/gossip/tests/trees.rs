//! Plumtree trees driven by hand: one tree per origin, prune and graft per origin, the §3.8 optimisation.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

mod support;

use meshwork_gossip::{
    Command, Config, Gossip, GossipMessage, Message, Timer, TopicId, TopicOptions, TreeMessage,
};
use meshwork_identity::Keypair;
use meshwork_wire::{Input, Instant, Output, PeerId, Protocol};

fn topic() -> TopicId {
    TopicId::from_name("t")
}

fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

/// A node (key 1) with `config` and the given peers in its active view.
fn node_with(config: Config, peers: &[u8]) -> Gossip {
    let mut g = Gossip::new(key(1), config, 7);
    let mut out = Vec::new();
    let subscribe = Command::Subscribe(topic(), TopicOptions::default());
    g.handle(Instant::ZERO, Input::Command(subscribe), &mut out);
    for &n in peers {
        support::neighbour_up(&mut g, key(n).peer_id());
    }
    g
}

/// A message published by the peer of key `origin`.
fn published_by(origin: u8, seq: u64) -> GossipMessage {
    GossipMessage::sign(&key(origin), topic(), seq, b"hi".to_vec().try_into().unwrap())
}

fn tree(g: &mut Gossip, from: u8, msg: TreeMessage) -> Vec<(PeerId, TreeMessage)> {
    let mut out = Vec::new();
    let msg = Message::Tree(msg);
    let from = key(from).peer_id();
    g.handle(Instant::ZERO, Input::Message { from, msg }, &mut out);
    support::tree_sends(out)
}

fn gossip(g: &mut Gossip, from: u8, message: GossipMessage, hops: u16) -> Vec<(PeerId, TreeMessage)> {
    tree(g, from, TreeMessage::Gossip { message, hops })
}

/// The tree of the peer of key `origin` forms here (a message of its own, sequence 0, comes from
/// neighbour 2), and neighbour `lazy` prunes its link: what a duplicate of ours would have had it
/// do. A prune naming an origin we hold no tree for changes nothing.
fn formed_with_lazy(g: &mut Gossip, origin: u8, lazy: u8) {
    gossip(g, 2, published_by(origin, 0), 1);
    let origin = key(origin).peer_id();
    tree(g, lazy, TreeMessage::Prune { origin });
    assert_eq!(g.lazy_peers(&origin), vec![key(lazy).peer_id()]);
}

#[test]
fn a_duplicate_prunes_the_link_for_its_origin_only() {
    let mut g = node_with(Config::default(), &[2, 3]);
    let (x, y) = (key(10).peer_id(), key(11).peer_id());
    gossip(&mut g, 2, published_by(10, 1), 1);
    let out = gossip(&mut g, 3, published_by(10, 1), 1);
    assert_eq!(out, vec![(key(3).peer_id(), TreeMessage::Prune { origin: x })]);
    assert_eq!(g.lazy_peers(&x), vec![key(3).peer_id()]);
    // Origin Y's first message still goes eagerly to 3: its tree is its own.
    let out = gossip(&mut g, 2, published_by(11, 1), 1);
    assert!(
        out.iter()
            .any(|(to, m)| *to == key(3).peer_id() && matches!(m, TreeMessage::Gossip { .. })),
        "{out:?}"
    );
    assert!(g.lazy_peers(&y).is_empty());
    assert_eq!(g.tree_count(), 2, "both trees formed here, all eager for y");
}

#[test]
fn prune_shortcut_and_graft_move_a_link_between_lazy_and_eager() {
    let mut g = node_with(Config::default(), &[2, 3]);
    let x = key(10).peer_id();
    let b = key(3).peer_id();
    // Before X's tree forms here, a prune naming it changes nothing: every link stays eager.
    tree(&mut g, 3, TreeMessage::Prune { origin: x });
    assert!(g.lazy_peers(&x).is_empty());
    assert_eq!(g.tree_count(), 0);
    formed_with_lazy(&mut g, 10, 3);
    tree(&mut g, 3, TreeMessage::Shortcut { origin: x });
    assert!(g.lazy_peers(&x).is_empty());
    // A graft names a message we announced: the link turns eager for that message's origin, and the
    // message is sent.
    tree(&mut g, 3, TreeMessage::Prune { origin: x });
    let message = published_by(10, 1);
    let id = message.id();
    gossip(&mut g, 2, message, 1);
    let mut flushed = Vec::new();
    g.handle(Instant::ZERO, Input::Timer(Timer::FlushIHave), &mut flushed);
    assert!(
        flushed
            .iter()
            .any(|o| matches!(o, Output::Send { to, .. } if *to == b))
    );
    let out = tree(&mut g, 3, TreeMessage::Graft { id });
    assert!(matches!(&out[..], [(to, TreeMessage::Gossip { hops: 2, .. })] if *to == b));
    assert!(g.eager_peers(&x).contains(&b));
}

#[test]
fn a_much_shorter_announcement_reshapes_the_tree() {
    // Peer 2 is on the tree of origin X (it delivered at 8 hops); peer 3 is lazy and announces 2 hops.
    let mut g = node_with(Config::default(), &[2, 3]);
    let (x, a, b) = (key(10).peer_id(), key(2).peer_id(), key(3).peer_id());
    formed_with_lazy(&mut g, 10, 3);
    let message = published_by(10, 1);
    let id = message.id();
    gossip(&mut g, 2, message, 8);
    assert_eq!(g.eager_peers(&x), vec![a]);
    // An announcement only a little shorter (6 + 1 + threshold 3 > 8) changes nothing.
    let ids = vec![support::announcement(10, id, 6)].try_into().unwrap();
    assert!(tree(&mut g, 3, TreeMessage::IHave { ids }).is_empty());
    // Much shorter (2 + 1 + 3 <= 8): 3 becomes the tree link, 2 is pruned (Plumtree §3.8).
    let ids = vec![support::announcement(10, id, 2)].try_into().unwrap();
    let out = tree(&mut g, 3, TreeMessage::IHave { ids });
    assert_eq!(
        out,
        vec![
            (b, TreeMessage::Shortcut { origin: x }),
            (a, TreeMessage::Prune { origin: x }),
        ]
    );
    assert_eq!(g.eager_peers(&x), vec![b]);
    assert_eq!(g.lazy_peers(&x), vec![a]);
    assert_eq!(g.stats().tree.shortcuts_sent, 1);
    // X's next message now comes from 3; 2 is lazy, so it is only announced to 2 (in the next batch).
    let out = gossip(&mut g, 3, published_by(10, 2), 3);
    assert!(out.is_empty(), "nothing pushed in full: {out:?}");
}

#[test]
fn the_number_of_trees_is_bounded() {
    let config = Config {
        max_origins: 2,
        ..Config::default()
    };
    let mut g = node_with(config, &[2, 3]);
    for origin in 10..15 {
        formed_with_lazy(&mut g, origin, 3);
    }
    assert_eq!(g.tree_count(), 2);
    // The most recent origins are kept; the others fall back to "every link eager".
    assert_eq!(g.lazy_peers(&key(14).peer_id()), vec![key(3).peer_id()]);
    assert!(g.lazy_peers(&key(10).peer_id()).is_empty());
}

#[test]
fn a_new_neighbour_is_lazy_for_formed_trees_and_is_told_of_recent_messages() {
    let mut g = node_with(Config::default(), &[2, 3]);
    let x = key(10).peer_id();
    let message = published_by(10, 1);
    let id = message.id();
    gossip(&mut g, 2, message.clone(), 1);
    gossip(&mut g, 3, message, 1); // X's tree formed here: 3 is lazy for it.
    let newcomer = key(4).peer_id();
    support::neighbour_up(&mut g, newcomer);
    assert_eq!(g.lazy_peers(&x), vec![key(3).peer_id(), newcomer]);
    // Origin Y has no tree yet: everyone, the newcomer too, is eager for it.
    assert_eq!(g.eager_peers(&key(11).peer_id()).len(), 3);
    // The newcomer hears of X's message in the next IHave batch, so it can graft it if it missed it.
    let mut out = Vec::new();
    g.handle(Instant::ZERO, Input::Timer(Timer::FlushIHave), &mut out);
    let announced = out.iter().any(|o| {
        matches!(o, Output::Send { to, msg: Message::Tree(TreeMessage::IHave { ids }) }
            if *to == newcomer && ids.iter().any(|a| a.id == id))
    });
    assert!(announced, "{out:?}");
}

#[test]
fn after_a_crash_new_neighbours_join_trees_lazily_even_where_every_link_was_eager() {
    // X's message came on 2 and this node relayed it to 3: both links are on X's tree, none is lazy.
    let mut g = node_with(Config::default(), &[2, 3]);
    let x = key(10).peer_id();
    gossip(&mut g, 2, published_by(10, 1), 1);
    assert!(g.lazy_peers(&x).is_empty());
    // 2 crashes and 4 replaces it. Eager, 4 would push X's next message to us (and we to it) as a
    // duplicate of what the tree brings; lazy, it only announces it.
    let mut out = Vec::new();
    g.handle(Instant::ZERO, Input::PeerDown(key(2).peer_id()), &mut out);
    support::neighbour_up(&mut g, key(4).peer_id());
    assert_eq!(g.lazy_peers(&x), vec![key(4).peer_id()]);
    let out = gossip(&mut g, 3, published_by(10, 2), 2);
    assert!(
        !out.iter()
            .any(|(to, m)| *to == key(4).peer_id() && matches!(m, TreeMessage::Gossip { .. })),
        "{out:?}"
    );
}

#[test]
fn an_origin_whose_tree_links_all_left_floods_its_next_message() {
    let mut g = node_with(Config::default(), &[2, 3]);
    let me = key(1).peer_id();
    let mut out = Vec::new();
    let publish = |g: &mut Gossip, out: &mut Vec<Output<Gossip>>| {
        out.clear();
        g.handle(
            Instant::ZERO,
            Input::Command(Command::Publish(topic(), b"m".to_vec())),
            out,
        );
        support::gossip_sends(out)
    };
    assert_eq!(
        publish(&mut g, &mut out),
        vec![key(2).peer_id(), key(3).peer_id()]
    );
    // 3 got it first from 2 and pruned us; then 2 crashed, and 4 joined our formed tree lazily.
    tree(&mut g, 3, TreeMessage::Prune { origin: me });
    g.handle(Instant::ZERO, Input::PeerDown(key(2).peer_id()), &mut out);
    support::neighbour_up(&mut g, key(4).peer_id());
    assert_eq!(g.lazy_peers(&me), vec![key(3).peer_id(), key(4).peer_id()]);
    // Announced only, the message would reach nobody before a graft: it floods, and the tree re-forms.
    assert_eq!(
        publish(&mut g, &mut out),
        vec![key(3).peer_id(), key(4).peer_id()]
    );
    assert!(g.lazy_peers(&me).is_empty());
}

#[test]
fn announcements_that_came_before_a_late_message_reshape_the_tree_on_arrival() {
    let mut g = node_with(Config::default(), &[2, 3]);
    let (x, a, b) = (key(10).peer_id(), key(2).peer_id(), key(3).peer_id());
    formed_with_lazy(&mut g, 10, 3);
    let message = published_by(10, 1);
    let id = message.id();
    // 3 (lazy) announces it at 2 hops; the tree copy comes later, at 9 hops, before any graft.
    let ids = vec![support::announcement(10, id, 2)].try_into().unwrap();
    tree(&mut g, 3, TreeMessage::IHave { ids });
    let out = gossip(&mut g, 2, message, 9);
    assert!(out.contains(&(b, TreeMessage::Shortcut { origin: x })), "{out:?}");
    assert!(out.contains(&(a, TreeMessage::Prune { origin: x })), "{out:?}");
    assert_eq!(g.eager_peers(&x), vec![b]);
}

#[test]
fn prunes_and_shortcuts_naming_made_up_origins_push_no_real_tree_out() {
    let config = Config {
        max_origins: 2,
        ..Config::default()
    };
    let mut g = node_with(config, &[2, 3]);
    formed_with_lazy(&mut g, 10, 3);
    for origin in 20..120 {
        let origin = key(origin).peer_id();
        tree(&mut g, 3, TreeMessage::Prune { origin });
        tree(&mut g, 3, TreeMessage::Shortcut { origin });
    }
    assert_eq!(g.tree_count(), 1, "no tree made for a made-up origin");
    assert_eq!(g.lazy_peers(&key(10).peer_id()), vec![key(3).peer_id()]);
}

/// `tree`, at `now`.
fn tree_at(g: &mut Gossip, now: Instant, from: u8, msg: TreeMessage) -> Vec<(PeerId, TreeMessage)> {
    let mut out = Vec::new();
    let msg = Message::Tree(msg);
    let from = key(from).peer_id();
    g.handle(now, Input::Message { from, msg }, &mut out);
    support::tree_sends(out)
}

/// Fires `timer` at `now`.
fn fire(g: &mut Gossip, now: Instant, timer: Timer) -> Vec<(PeerId, TreeMessage)> {
    let mut out = Vec::new();
    g.handle(now, Input::Timer(timer), &mut out);
    support::tree_sends(out)
}

/// Origin `origin`'s message `seq` comes from 2 at 8 hops, and 3 (lazy) announces it at 1 hop, at
/// `now`: what we send in answer to the announcement.
fn claimed_nearer(g: &mut Gossip, now: Instant, origin: u8, seq: u64) -> Vec<(PeerId, TreeMessage)> {
    let message = published_by(origin, seq);
    let id = message.id();
    tree_at(g, now, 2, TreeMessage::Gossip { message, hops: 8 });
    let ids = vec![support::announcement(origin, id, 1)].try_into().unwrap();
    tree_at(g, now, 3, TreeMessage::IHave { ids })
}

/// Origin `origin`'s message `seq` is announced by 2 at `now`, and we wait for our parent on its
/// tree a second later: its copy does not come in time.
fn awaited(g: &mut Gossip, now: Instant, origin: u8, seq: u64) -> GossipMessage {
    let message = published_by(origin, seq);
    let id = message.id();
    let ids = vec![support::announcement(origin, id, 2)].try_into().unwrap();
    tree_at(g, now, 2, TreeMessage::IHave { ids });
    let second = std::time::Duration::from_secs(1);
    assert!(
        fire(g, now + second, Timer::Graft(id)).is_empty(),
        "waits for the parent"
    );
    message
}

/// Origin `origin`'s message `seq` is withheld by our parent ([`awaited`]): we graft 2 and 2's copy
/// comes. What we send when it does.
fn late_by_graft(g: &mut Gossip, now: Instant, origin: u8, seq: u64) -> Vec<(PeerId, TreeMessage)> {
    let message = awaited(g, now, origin, seq);
    let id = message.id();
    let later = now + std::time::Duration::from_secs(10);
    let out = fire(g, later, Timer::Graft(id));
    assert!(
        out.contains(&(key(2).peer_id(), TreeMessage::Graft { id })),
        "{out:?}"
    );
    tree_at(g, later, 2, TreeMessage::Gossip { message, hops: 9 })
}

/// `s` seconds into a test.
fn secs(s: u64) -> Instant {
    Instant::ZERO + std::time::Duration::from_secs(s)
}

/// A node whose trees of origins 10 (X) and 11 (Y) both moved to 3 at 0 s, on its claim of one hop.
fn claimed_on_two_trees() -> Gossip {
    let mut g = node_with(Config::default(), &[2, 3]);
    for origin in [10, 11] {
        formed_with_lazy(&mut g, origin, 3);
        assert!(shortcut(&claimed_nearer(&mut g, secs(0), origin, 1)));
    }
    g
}

/// Whether `out` takes 3's link off the trees of X and Y and gives both back to 2.
fn gives_both_trees_back(out: &[(PeerId, TreeMessage)]) -> bool {
    let (a, b) = (key(2).peer_id(), key(3).peer_id());
    [key(10).peer_id(), key(11).peer_id()].into_iter().all(|origin| {
        out.contains(&(b, TreeMessage::Prune { origin }))
            && out.contains(&(a, TreeMessage::Shortcut { origin }))
    })
}

fn shortcut(out: &[(PeerId, TreeMessage)]) -> bool {
    out.iter().any(|(_, m)| matches!(m, TreeMessage::Shortcut { .. }))
}

/// Origin `origin`'s message `seq` is late from our parent 3: we wait for it ([`awaited`]), and its
/// copy comes a second later. What we send when it does.
fn late_by_parent(g: &mut Gossip, now: Instant, origin: u8, seq: u64) -> Vec<(PeerId, TreeMessage)> {
    let message = awaited(g, now, origin, seq);
    let later = now + std::time::Duration::from_secs(2);
    tree_at(g, later, 3, TreeMessage::Gossip { message, hops: 2 })
}

#[test]
fn a_neighbour_whose_claim_of_fewer_hops_fails_is_not_believed_for_a_while() {
    let mut g = node_with(Config::default(), &[2, 3]);
    let (x, a, b) = (key(10).peer_id(), key(2).peer_id(), key(3).peer_id());
    for origin in 10..13 {
        formed_with_lazy(&mut g, origin, 3);
    }
    assert!(claimed_nearer(&mut g, secs(0), 10, 1).contains(&(b, TreeMessage::Shortcut { origin: x })));
    assert_eq!(g.eager_peers(&x), vec![b]);
    // X's next message: 3 withholds it, and it comes late, by a graft from 2, which is the tree's
    // parent from then on. A strike against 3's claim.
    late_by_graft(&mut g, secs(5), 10, 2);
    assert_eq!(g.stats().tree.shortcuts_failed, 1);
    assert!(g.eager_peers(&x).contains(&a));
    // Its claims on the other trees are not believed until the bar is over: a minute from the
    // strike at 15 s, twice that after the next.
    assert!(!shortcut(&claimed_nearer(&mut g, secs(30), 11, 1)));
    assert!(shortcut(&claimed_nearer(&mut g, secs(76), 11, 2)));
    late_by_graft(&mut g, secs(80), 11, 3);
    assert_eq!(g.stats().tree.shortcuts_failed, 2);
    assert!(!shortcut(&claimed_nearer(&mut g, secs(90 + 100), 12, 1)));
    assert!(shortcut(&claimed_nearer(&mut g, secs(90 + 121), 12, 2)));
}

#[test]
fn a_parent_late_twice_on_probation_leaves_the_tree_and_its_shortcuts_are_undone() {
    let mut g = claimed_on_two_trees();
    let (x, y, a, b) = (
        key(10).peer_id(),
        key(11).peer_id(),
        key(2).peer_id(),
        key(3).peer_id(),
    );
    // 3 pushes X's next message, but only after we waited for it: a strike, and it stays parent.
    let out = late_by_parent(&mut g, secs(5), 10, 2);
    assert!(
        out.iter().all(|(_, m)| !matches!(m, TreeMessage::Prune { .. })),
        "{out:?}"
    );
    assert_eq!(g.eager_peers(&x), vec![b]);
    // Late again: it leaves X's tree, and both trees go back to 2.
    let out = late_by_parent(&mut g, secs(10), 10, 3);
    assert!(gives_both_trees_back(&out), "{out:?}");
    assert_eq!((g.eager_peers(&x), g.eager_peers(&y)), (vec![a], vec![a]));
    let tree = g.stats().tree;
    assert_eq!((tree.shortcuts_failed, tree.shortcuts_undone), (2, 2));
}

#[test]
fn a_message_published_before_the_shortcut_is_no_strike_however_late_we_hear_of_it() {
    let mut g = node_with(Config::default(), &[2, 3]);
    formed_with_lazy(&mut g, 10, 3);
    assert!(shortcut(&claimed_nearer(&mut g, secs(0), 10, 5)));
    // Message 3 came before message 5, which prompted the shortcut: we hear of it only now (a
    // catch-up), well after the race, and 3 pushes it after we waited. Not the claim's fault.
    late_by_parent(&mut g, secs(20), 10, 3);
    assert_eq!(g.stats().tree.shortcuts_failed, 0);
    // Message 6 is the claim's: the same delay is a strike.
    late_by_parent(&mut g, secs(30), 10, 6);
    assert_eq!(g.stats().tree.shortcuts_failed, 1);
}

#[test]
fn a_shortcut_made_when_the_tree_copy_arrives_judges_only_later_messages() {
    let mut g = node_with(Config::default(), &[2, 3]);
    let x = key(10).peer_id();
    formed_with_lazy(&mut g, 10, 3);
    // 3 announces message 5 at 2 hops before the tree's copy comes at 9: the shortcut is taken on
    // the copy's arrival (`on_gossip`), with message 5 as its mark.
    let message = published_by(10, 5);
    let ids = vec![support::announcement(10, message.id(), 2)]
        .try_into()
        .unwrap();
    tree_at(&mut g, secs(0), 3, TreeMessage::IHave { ids });
    tree_at(&mut g, secs(0), 2, TreeMessage::Gossip { message, hops: 9 });
    assert_eq!(g.eager_peers(&x), vec![key(3).peer_id()]);
    late_by_parent(&mut g, secs(20), 10, 4);
    assert_eq!(
        g.stats().tree.shortcuts_failed,
        0,
        "message 4 is older than the mark"
    );
    late_by_parent(&mut g, secs(30), 10, 6);
    assert_eq!(g.stats().tree.shortcuts_failed, 1);
}

#[test]
fn a_message_on_its_way_before_the_shortcut_or_first_along_another_path_is_no_verdict() {
    let mut g = node_with(Config::default(), &[2, 3]);
    let (x, b) = (key(10).peer_id(), key(3).peer_id());
    formed_with_lazy(&mut g, 10, 3);
    assert!(shortcut(&claimed_nearer(&mut g, Instant::ZERO, 10, 1)));
    // Announced by 2 at once, before 3 could have heard of the shortcut: late, but no fault of 3's.
    late_by_graft(&mut g, Instant::ZERO, 10, 2);
    // Pushed by 2 (it had not heard our prune yet), first, with no waiting: nothing was late.
    let later = Instant::ZERO + std::time::Duration::from_secs(20);
    tree_at(
        &mut g,
        later,
        2,
        TreeMessage::Gossip {
            message: published_by(10, 3),
            hops: 9,
        },
    );
    // 3 pushes the next one itself.
    tree_at(
        &mut g,
        later,
        3,
        TreeMessage::Gossip {
            message: published_by(10, 4),
            hops: 2,
        },
    );
    assert_eq!(g.stats().tree.shortcuts_failed, 0);
    assert!(g.eager_peers(&x).contains(&b), "3 stays on the tree");
}

#[test]
fn a_neighbour_that_leaves_on_probation_is_not_blamed_and_the_old_parent_is_asked_back() {
    let mut g = node_with(Config::default(), &[2, 3]);
    let (x, a, b) = (key(10).peer_id(), key(2).peer_id(), key(3).peer_id());
    formed_with_lazy(&mut g, 10, 3);
    assert!(shortcut(&claimed_nearer(&mut g, Instant::ZERO, 10, 1)));
    let out = support::tree_sends(support::handle(&mut g, Instant::ZERO, Input::PeerDown(b)));
    assert!(out.contains(&(a, TreeMessage::Shortcut { origin: x })), "{out:?}");
    assert_eq!(g.eager_peers(&x), vec![a]);
    assert_eq!(g.stats().tree.shortcuts_failed, 0);
}

#[test]
fn a_parent_on_probation_that_prunes_its_own_link_is_still_struck() {
    let mut g = node_with(Config::default(), &[2, 3]);
    let (x, a) = (key(10).peer_id(), key(2).peer_id());
    formed_with_lazy(&mut g, 10, 3);
    assert!(shortcut(&claimed_nearer(&mut g, secs(0), 10, 1)));
    // 3 prunes its own link: there is no live parent to wait for, but it is still the one whose
    // copy did not come.
    tree_at(&mut g, secs(1), 3, TreeMessage::Prune { origin: x });
    let message = published_by(10, 2);
    let id = message.id();
    let ids = vec![support::announcement(10, id, 2)].try_into().unwrap();
    tree_at(&mut g, secs(5), 2, TreeMessage::IHave { ids });
    assert!(fire(&mut g, secs(6), Timer::Graft(id)).contains(&(a, TreeMessage::Graft { id })));
    tree_at(&mut g, secs(6), 2, TreeMessage::Gossip { message, hops: 9 });
    assert_eq!(g.stats().tree.shortcuts_failed, 1);
    assert!(
        !shortcut(&claimed_nearer(&mut g, secs(7), 10, 3)),
        "and its claims are barred"
    );
}

#[test]
fn a_parent_that_only_answers_grafts_is_evicted_at_its_second_strike() {
    let mut g = claimed_on_two_trees();
    let b = key(3).peer_id();
    let mut last = Vec::new();
    for (seq, at) in [(2, 5), (3, 10)] {
        // 3 announces X's message rather than push it, and sends it when grafted.
        let message = published_by(10, seq);
        let id = message.id();
        let ids = vec![support::announcement(10, id, 1)].try_into().unwrap();
        tree_at(&mut g, secs(at), 3, TreeMessage::IHave { ids });
        let out = fire(&mut g, secs(at + 1), Timer::Graft(id));
        assert!(out.contains(&(b, TreeMessage::Graft { id })), "{out:?}");
        last = tree_at(&mut g, secs(at + 1), 3, TreeMessage::Gossip { message, hops: 1 });
    }
    assert_eq!(g.stats().tree.shortcuts_failed, 2);
    assert!(gives_both_trees_back(&last), "{last:?}");
}
