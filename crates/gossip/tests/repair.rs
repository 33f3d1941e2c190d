//! After a crash, the node nearest a break in a tree mends it, and the nodes below it wait for their
//! parent rather than graft copies of their own: announcements name the tree they came on (a
//! `TreeTag`), and a node whose parent on that tree is alive gives it one more graft wait before
//! grafting. If every node below the break grafted at its own timer, each would get a copy from its
//! announcer and a second from its parent. A node whose graft brings the copy after all prunes the
//! parent it waited for, whose copy would come as a duplicate; not if the parent's copy came first,
//! nor for a message that is not the parent's to push.
//!
//! One node, a fake clock. Neighbour 2 is its parent on the tree of origin 10 (its copy of the first
//! message came first); 3 is lazy on that tree (its copy was a duplicate, which pruned it).
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

mod support;

use std::time::Duration;

use meshwork_gossip::{Config, Gossip, GossipMessage, MessageId, Timer, TreeMessage};
use meshwork_wire::{Input, Instant, Output, PeerId};
use support::{
    announcement, at, from, gossip, gossip_sends, handle, key, message, node, node_with, timers, tree_sends,
};

/// A node whose parent on origin 10's tree is `parent`, and `lazy` a lazy link of that tree.
fn node_with_parent() -> (Gossip, PeerId, PeerId) {
    let (mut g, peers) = node(&[2, 3, 4]);
    let (parent, lazy) = (peers[0], peers[1]);
    handle(&mut g, at(100), from(parent, gossip(&message(1))));
    handle(&mut g, at(110), from(lazy, gossip(&message(1))));
    handle(&mut g, at(200), Input::Timer(Timer::FlushIHave));
    (g, parent, lazy)
}

/// `announcer` announces `id` on the tree of origin `origin` at `now`; returns the graft wait set.
fn announce(g: &mut Gossip, now: Instant, announcer: PeerId, origin: u8, id: MessageId) -> Duration {
    let ids = vec![announcement(origin, id, 1)].try_into().unwrap();
    let out = handle(g, now, from(announcer, TreeMessage::IHave { ids }));
    graft_timer(&timers(&out), id).expect("a graft timer for the announced message")
}

fn graft_timer(timers: &[(Duration, Timer)], id: MessageId) -> Option<Duration> {
    timers
        .iter()
        .find(|(_, timer)| *timer == Timer::Graft(id))
        .map(|(after, _)| *after)
}

/// The peers `out` grafts `id` from.
fn grafts(out: Vec<Output<Gossip>>, id: MessageId) -> Vec<PeerId> {
    tree_sends(out)
        .into_iter()
        .filter(|(_, m)| matches!(m, TreeMessage::Graft { id: grafted } if *grafted == id))
        .map(|(to, _)| to)
        .collect()
}

/// Fires the graft timer of `id` at `now`: the peers grafted, and the wait set again, if any.
fn fire(g: &mut Gossip, now: Instant, id: MessageId) -> (Vec<PeerId>, Option<Duration>) {
    let out = handle(g, now, Input::Timer(Timer::Graft(id)));
    let again = graft_timer(&timers(&out), id);
    (grafts(out, id), again)
}

fn millis(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis()).unwrap()
}

/// What the first graft timer did after `announcer` announced `id` on origin 10's tree at 1 s.
struct FirstTimer {
    /// The wait the announcement set.
    wait: Duration,
    /// When the timer fired, in milliseconds.
    at: u64,
    grafted: Vec<PeerId>,
    again: Option<Duration>,
}

fn announce_then_fire(g: &mut Gossip, announcer: PeerId, id: MessageId) -> FirstTimer {
    let wait = announce(g, at(1_000), announcer, 10, id);
    let first = 1_000 + millis(wait);
    let (grafted, again) = fire(g, at(first), id);
    FirstTimer {
        wait,
        at: first,
        grafted,
        again,
    }
}

#[test]
fn a_node_whose_parent_lives_leaves_the_repair_to_it() {
    let (mut g, parent, lazy) = node_with_parent();
    let next: GossipMessage = message(2);
    let FirstTimer {
        wait,
        at: first,
        grafted,
        again,
    } = announce_then_fire(&mut g, lazy, next.id());
    assert!(grafted.is_empty(), "the parent is alive: no graft yet");
    let again = again.expect("the graft waits again");
    assert_eq!(again, wait, "one graft wait more");
    assert_eq!(g.stats().tree.grafts_deferred, 1);
    // The parent mended its own link and pushes the message: nothing was grafted, nothing duplicated.
    handle(&mut g, at(first + 50), from(parent, gossip(&next)));
    let (grafted, again) = fire(&mut g, at(first + millis(again)), next.id());
    assert!(grafted.is_empty() && again.is_none());
    assert_eq!(g.stats().tree.grafts_sent, 0);
    assert_eq!(
        g.stats().tree.duplicates,
        1,
        "only the first message's, which pruned 3"
    );
}

#[test]
fn a_parent_that_sends_nothing_is_waited_for_once() {
    let (mut g, _parent, lazy) = node_with_parent();
    let id = message(2).id();
    let timer = announce_then_fire(&mut g, lazy, id);
    let second = timer.at + millis(timer.again.unwrap());
    let (grafted, _) = fire(&mut g, at(second), id);
    assert_eq!(
        grafted,
        vec![lazy],
        "after the wait for the parent, the announcer is grafted"
    );
    assert_eq!(g.stats().tree.grafts_deferred, 1);
}

#[test]
fn a_parent_that_announces_the_message_ends_the_wait() {
    let (mut g, parent, lazy) = node_with_parent();
    let id = message(2).id();
    let FirstTimer {
        at: first,
        grafted,
        again,
        ..
    } = announce_then_fire(&mut g, lazy, id);
    assert!(
        grafted.is_empty() && again.is_some(),
        "the node waits for its parent"
    );
    // Another neighbour's announcement changes nothing: the parent may still push it.
    let ids = vec![announcement(10, id, 1)].try_into().unwrap();
    let out = handle(
        &mut g,
        at(first + 5),
        from(key(4).peer_id(), TreeMessage::IHave { ids }),
    );
    assert!(grafts(out, id).is_empty(), "still waiting for the parent");
    // The parent announces it (twice in one batch): it holds the message and pushed it elsewhere,
    // no copy is coming. One graft, to the first announcer.
    let twice = announcement(10, id, 1);
    let ids = vec![twice, twice].try_into().unwrap();
    let out = handle(&mut g, at(first + 10), from(parent, TreeMessage::IHave { ids }));
    assert_eq!(
        grafts(out, id),
        vec![lazy],
        "grafted once, at the parent's announcement"
    );
    assert_eq!(g.stats().tree.grafts_sent, 1);
}

#[test]
fn a_retry_before_any_round_trip_waits_at_most_the_graft_ceiling() {
    let ceiling = Duration::from_millis(100);
    let config = Config {
        graft_timeout: ceiling,
        graft_retry: Duration::from_millis(150),
        ..Config::default()
    };
    let (mut g, peers) = node_with(config, &[2, 3]);
    let id = message(1).id();
    let wait = announce(&mut g, at(1_000), peers[0], 10, id);
    let (grafted, retry) = fire(&mut g, at(1_000 + millis(wait)), id);
    assert_eq!(grafted, vec![peers[0]]);
    assert_eq!(
        retry,
        Some(ceiling),
        "no round trip measured: the retry, within the ceiling"
    );
}

#[test]
fn a_node_whose_parent_left_grafts_at_once() {
    let (mut g, parent, lazy) = node_with_parent();
    let usual = announce(&mut g, at(300), lazy, 10, message(5).id());
    handle(&mut g, at(500), Input::PeerDown(parent));
    let id = message(2).id();
    let wait = announce(&mut g, at(1_000), lazy, 10, id);
    assert_eq!(
        wait,
        Config::default().graft_timeout_min,
        "no copy comes from above: only the floor, not the learnt {usual:?}"
    );
    let (grafted, _) = fire(&mut g, at(1_000 + millis(wait)), id);
    assert_eq!(grafted, vec![lazy], "the node nearest the break mends it");
    assert_eq!(g.stats().tree.grafts_deferred, 0);
    // Its answer makes the announcer the parent: the tree's next message waits for it.
    handle(&mut g, at(1_200), from(lazy, gossip(&message(2))));
    let wait = announce(&mut g, at(2_000), key(4).peer_id(), 10, message(3).id());
    assert!(wait > Config::default().graft_timeout_min, "{wait:?}");
}

#[test]
fn a_shortcut_moves_the_parent_to_the_announcer() {
    let (mut g, parent, lazy) = node_with_parent();
    // The lazy neighbour announces the next message far sooner than the tree delivers it (§3.8).
    let next = message(2);
    let ids = vec![announcement(10, next.id(), 1)].try_into().unwrap();
    handle(&mut g, at(1_000), from(lazy, TreeMessage::IHave { ids }));
    let far = TreeMessage::Gossip {
        message: next,
        hops: 9,
    };
    let out = handle(&mut g, at(1_010), from(parent, far));
    // The link to the announcer is on the tree now, but the announcer holds the message: it is
    // pushed to the other neighbours only.
    assert_eq!(
        gossip_sends(&out),
        vec![key(4).peer_id()],
        "no copy back to the announcer"
    );
    assert_eq!(g.stats().tree.pushes_spared, 1);
    let out = tree_sends(out);
    assert!(out.contains(&(
        lazy,
        TreeMessage::Shortcut {
            origin: key(10).peer_id()
        }
    )));
    // The old parent announces the one after: the node does not wait for it, it waits for the new one.
    let id = message(3).id();
    let wait = announce(&mut g, at(2_000), parent, 10, id);
    let (grafted, again) = fire(&mut g, at(2_000 + millis(wait)), id);
    assert!(
        grafted.is_empty() && again.is_some(),
        "the new parent is waited for"
    );
}

#[test]
fn an_announcement_on_another_tree_or_from_the_parent_is_grafted_at_the_first_timer() {
    let (mut g, parent, lazy) = node_with_parent();
    // Origin 11 has no tree here, so no parent: the announcement is all the node has.
    let other = GossipMessage::sign(&key(11), support::topic(), 1, vec![7; 64].try_into().unwrap());
    let wait = announce(&mut g, at(1_000), lazy, 11, other.id());
    let (grafted, _) = fire(&mut g, at(1_000 + millis(wait)), other.id());
    assert_eq!(grafted, vec![lazy]);
    // The parent announced the message rather than pushing it: no copy is coming from it.
    let id = message(2).id();
    let wait = announce(&mut g, at(2_000), lazy, 10, id);
    let ids = vec![announcement(10, id, 1)].try_into().unwrap();
    handle(&mut g, at(2_000), from(parent, TreeMessage::IHave { ids }));
    let (grafted, _) = fire(&mut g, at(2_000 + millis(wait)), id);
    assert_eq!(grafted.len(), 1, "grafted at once: {grafted:?}");
    assert_eq!(g.stats().tree.grafts_deferred, 0);
}

#[test]
fn announcers_that_name_different_trees_are_not_trusted_to_wait() {
    let (mut g, _parent, lazy) = node_with_parent();
    // A neighbour names origin 10's tree (whose parent lives here) for a message the lazy link
    // says is of origin 11's: the node waits for no parent.
    let id = message(2).id();
    let wait = announce(&mut g, at(1_000), key(4).peer_id(), 10, id);
    let ids = vec![announcement(11, id, 1)].try_into().unwrap();
    handle(&mut g, at(1_000), from(lazy, TreeMessage::IHave { ids }));
    let (grafted, _) = fire(&mut g, at(1_000 + millis(wait)), id);
    assert_eq!(grafted.len(), 1, "grafted at the first timer: {grafted:?}");
    assert_eq!(g.stats().tree.grafts_deferred, 0);
}

/// `lazy` announces `next` on origin 10's tree at 1 s; the node waits for its parent, then grafts
/// `lazy`. Returns the tree messages of the graft, and when it was sent (ms).
fn graft_after_waiting(
    g: &mut Gossip,
    lazy: PeerId,
    next: &GossipMessage,
) -> (Vec<(PeerId, TreeMessage)>, u64) {
    let timer = announce_then_fire(g, lazy, next.id());
    let again = timer.again.expect("the node waits for its parent");
    let grafted_at = timer.at + millis(again);
    let out = handle(g, at(grafted_at), Input::Timer(Timer::Graft(next.id())));
    (tree_sends(out), grafted_at)
}

/// Whether `sent` prunes `parent`'s link on any tree.
fn prunes(sent: &[(PeerId, TreeMessage)], parent: PeerId) -> bool {
    sent.iter()
        .any(|(to, m)| *to == parent && matches!(m, TreeMessage::Prune { .. }))
}

/// Nothing pruned `parent`: no `Prune` to it in `sent`, none counted, and the tree's next message,
/// announced by `announcer` at `now` (ms), waits for a parent.
fn assert_parent_kept(
    g: &mut Gossip,
    sent: &[(PeerId, TreeMessage)],
    parent: PeerId,
    now: u64,
    announcer: PeerId,
) {
    assert!(!prunes(sent, parent), "{sent:?}");
    assert_eq!(g.stats().tree.silent_parents_pruned, 0);
    assert!(
        waits_for_a_parent(g, now, announcer),
        "the parent is still the tree link"
    );
}

/// The next message of origin 10's tree, announced by `announcer` at `now`, waits for a parent.
fn waits_for_a_parent(g: &mut Gossip, now: u64, announcer: PeerId) -> bool {
    let id = message(9).id();
    let wait = announce(g, at(now), announcer, 10, id);
    let (grafted, again) = fire(g, at(now + millis(wait)), id);
    grafted.is_empty() && again.is_some()
}

#[test]
fn a_parent_waited_for_in_vain_leaves_the_tree_when_the_graft_answers() {
    let (mut g, parent, lazy) = node_with_parent();
    let next = message(2);
    let (sent, t) = graft_after_waiting(&mut g, lazy, &next);
    assert!(
        sent.contains(&(lazy, TreeMessage::Graft { id: next.id() })),
        "{sent:?}"
    );
    assert!(
        !prunes(&sent, parent),
        "which tree the id is on is the announcer's word until it comes"
    );
    // The answer comes: the parent's copy would be a duplicate, and ours is not pushed up to it.
    let out = handle(&mut g, at(t + 100), from(lazy, gossip(&next)));
    assert_eq!(gossip_sends(&out), vec![key(4).peer_id()]);
    let origin = key(10).peer_id();
    assert!(tree_sends(out).contains(&(parent, TreeMessage::Prune { origin })));
    assert_eq!(g.stats().tree.silent_parents_pruned, 1);
    // The parent's copy, pushed before it heard the prune, is the only duplicate.
    handle(&mut g, at(t + 120), from(parent, gossip(&next)));
    assert_eq!(
        g.stats().tree.duplicates,
        2,
        "the first message's, and the parent's late copy"
    );
    // The announcer is the parent now: the next message waits for it, not for the old parent.
    assert!(waits_for_a_parent(&mut g, t + 1_000, parent));
}

#[test]
fn a_parent_whose_copy_beats_the_graft_answer_stays_on_the_tree() {
    let (mut g, parent, lazy) = node_with_parent();
    let next = message(2);
    let (_, t) = graft_after_waiting(&mut g, lazy, &next);
    let first = tree_sends(handle(&mut g, at(t + 10), from(parent, gossip(&next))));
    // The graft's answer is the duplicate, and it prunes the announcer's link.
    let out = tree_sends(handle(&mut g, at(t + 100), from(lazy, gossip(&next))));
    assert!(
        out.contains(&(
            lazy,
            TreeMessage::Prune {
                origin: key(10).peer_id()
            }
        )),
        "{out:?}"
    );
    assert_parent_kept(&mut g, &first, parent, t + 1_000, lazy);
}

#[test]
fn an_announcement_never_answered_prunes_no_parent() {
    let (mut g, parent, lazy) = node_with_parent();
    // `lazy` announces an id on origin 10's tree and never sends it.
    let made_up = message(2);
    let (mut sent, t) = graft_after_waiting(&mut g, lazy, &made_up);
    let retry = Input::Timer(Timer::Graft(made_up.id()));
    sent.extend(tree_sends(handle(&mut g, at(t + 1_000), retry)));
    assert_parent_kept(&mut g, &sent, parent, t + 2_000, lazy);
}

#[test]
fn a_message_announced_on_another_trees_tag_prunes_no_parent() {
    let (mut g, parent, lazy) = node_with_parent();
    // `lazy` names origin 10's tree for a message of origin 11, and answers the graft with it.
    let other = GossipMessage::sign(&key(11), support::topic(), 1, vec![7; 64].try_into().unwrap());
    let (sent, t) = graft_after_waiting(&mut g, lazy, &other);
    assert!(
        sent.contains(&(lazy, TreeMessage::Graft { id: other.id() })),
        "{sent:?}"
    );
    let out = tree_sends(handle(&mut g, at(t + 100), from(lazy, gossip(&other))));
    assert_parent_kept(&mut g, &out, parent, t + 1_000, lazy);
}

#[test]
fn a_parent_grafted_after_the_wait_is_not_pruned_by_its_own_answer() {
    let (mut g, parent, lazy) = node_with_parent();
    let next = message(2);
    let (_, t) = graft_after_waiting(&mut g, lazy, &next);
    // The parent announces it (it pushed elsewhere); `lazy` does not answer by the retry, so the
    // parent is grafted, and answers.
    let ids = vec![announcement(10, next.id(), 1)].try_into().unwrap();
    handle(&mut g, at(t + 5), from(parent, TreeMessage::IHave { ids }));
    let (grafted, _) = fire(&mut g, at(t + 1_000), next.id());
    assert_eq!(grafted, vec![parent]);
    let out = tree_sends(handle(&mut g, at(t + 1_100), from(parent, gossip(&next))));
    assert_parent_kept(&mut g, &out, parent, t + 2_000, lazy);
}

#[test]
fn an_old_message_replayed_through_a_graft_prunes_no_parent() {
    // A seen cache of one message: the first leaves it when the second comes.
    let config = Config {
        seen_capacity: 1,
        ..Config::default()
    };
    let (mut g, peers) = node_with(config, &[2, 3, 4]);
    let (parent, lazy) = (peers[0], peers[1]);
    handle(&mut g, at(100), from(parent, gossip(&message(1))));
    handle(&mut g, at(110), from(lazy, gossip(&message(1))));
    handle(&mut g, at(200), Input::Timer(Timer::FlushIHave));
    handle(&mut g, at(500), from(parent, gossip(&message(2))));
    assert!(!g.has_seen(&message(1).id()), "the first message left the cache");
    // `lazy` announces the first message again and answers the graft with it: a genuine copy,
    // but not one the parent owed us.
    let old = message(1);
    let (sent, t) = graft_after_waiting(&mut g, lazy, &old);
    assert!(
        sent.contains(&(lazy, TreeMessage::Graft { id: old.id() })),
        "{sent:?}"
    );
    let out = tree_sends(handle(&mut g, at(t + 100), from(lazy, gossip(&old))));
    // Nor did the replayer become the parent: the next message, announced by it, still waits for
    // the old parent (an announcement from the parent itself is grafted at once).
    assert_parent_kept(&mut g, &out, parent, t + 1_000, lazy);
}
