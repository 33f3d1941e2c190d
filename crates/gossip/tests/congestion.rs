//! Gossip on congested links: an honest neighbour whose send queue to us is full, or whose link delays
//! its answers by seconds, is never taken for a liar.
//!
//! - An announcer that cannot answer a graft says so (`Decline`): the grafter asks the next announcer at
//!   once and blames nobody.
//! - A graft answer that the driver's send queue dropped is declined ([`Protocol::undelivered`]).
//! - A promise falls due after four times the announcer's slowest recent answer, when that is longer
//!   than `Config::graft_promise`.
//! - Copies a neighbour pushed before our `Prune` reached it are dropped without blame, however many.
//! - Data the driver dropped for a full queue marks the link full for a while (`Gossip::full_links`),
//!   for an application that originates messages to hold back on.
//!
//! One node, a fake clock.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

mod support;

use std::time::Duration;

use meshwork_gossip::{
    Command, Config, Gossip, GossipMessage, Message, MessageId, Timer, TreeMessage, Verdict,
};
use meshwork_wire::{DropReason, Input, Instant, Output, PeerId, Protocol};
use support::{at, from, gossip, handle, key, message, node, timers};

/// The peers `out` sends a graft for `id` to.
fn grafted(out: &[Output<Gossip>], id: MessageId) -> Vec<PeerId> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg: Message::Tree(TreeMessage::Graft { id: g }),
            } if *g == id => Some(*to),
            _ => None,
        })
        .collect()
}

/// The promise timers `out` schedules, with their delays.
fn promises(out: &[Output<Gossip>]) -> Vec<(Duration, Timer)> {
    timers(out)
        .into_iter()
        .filter(|(_, timer)| matches!(timer, Timer::Promise { .. }))
        .collect()
}

fn announce(g: &mut Gossip, now: Instant, announcer: PeerId, id: MessageId) {
    let ids = vec![support::announcement(10, id, 1)].try_into().unwrap();
    handle(g, now, from(announcer, TreeMessage::IHave { ids }));
}

#[test]
fn a_declined_graft_moves_on_at_once_and_blames_nobody() {
    let (mut g, peers) = node(&[2, 3]);
    let (first, second) = (peers[0], peers[1]);
    let id = message(1).id();
    announce(&mut g, at(10), first, id);
    announce(&mut g, at(11), second, id);
    let out = handle(&mut g, at(20), Input::Timer(Timer::Graft(id)));
    assert_eq!(
        grafted(&out, id),
        vec![first],
        "the first announcer is grafted first"
    );
    let (_, first_promise) = promises(&out).pop().unwrap();

    // The first cannot send it now: the second is grafted at once, not after the retry.
    let out = handle(&mut g, at(21), from(first, TreeMessage::Decline { id }));
    assert_eq!(grafted(&out, id), vec![second]);
    // The first graft's retry timer is stale: it grafts nobody.
    let out = handle(&mut g, at(170), Input::Timer(Timer::Graft(id)));
    assert!(grafted(&out, id).is_empty());
    // Its promise was released: it costs the first announcer nothing.
    handle(&mut g, at(6_000), Input::Timer(first_promise));
    assert_eq!(g.score(&first, at(6_000)), 0.0);
    assert_eq!(g.stats().tree.declines_received, 1);
    assert_eq!(g.stats().tree.broken_promises, 0);
}

#[test]
fn a_neighbour_that_declined_is_grafted_after_the_others_for_a_while() {
    let (mut g, peers) = node(&[2, 3]);
    let (busy, other) = (peers[0], peers[1]);
    let first = message(1).id();
    announce(&mut g, at(10), busy, first);
    handle(&mut g, at(20), Input::Timer(Timer::Graft(first)));
    handle(&mut g, at(21), from(busy, TreeMessage::Decline { id: first }));
    // A new message both announce, the busy one first: the other is asked first.
    let next = message(2).id();
    announce(&mut g, at(30), busy, next);
    announce(&mut g, at(31), other, next);
    let out = handle(&mut g, at(40), Input::Timer(Timer::Graft(next)));
    assert_eq!(grafted(&out, next), vec![other]);
    // Seconds later its queue has drained: it is first again.
    let later = message(3).id();
    announce(&mut g, at(5_000), busy, later);
    announce(&mut g, at(5_001), other, later);
    let out = handle(&mut g, at(5_010), Input::Timer(Timer::Graft(later)));
    assert_eq!(grafted(&out, later), vec![busy]);
}

#[test]
fn declines_of_nothing_grafted_are_waste() {
    let (mut g, peers) = node(&[2]);
    let liar = peers[0];
    for seq in 0..2_000 {
        let id = message(seq).id();
        handle(&mut g, at(10), from(liar, TreeMessage::Decline { id }));
    }
    assert_eq!(g.stats().tree.declines_received, 0);
    // Beyond the allowance each costs points, until the liar is banned (its score starts again).
    assert!(g.stats().rate_limited > 0);
    assert_eq!(
        g.stats().bans,
        1,
        "unsolicited declines beyond the allowance cost points"
    );
}

#[test]
fn a_graft_answer_the_send_queue_dropped_is_declined() {
    // The node relays origin 10's messages from `parent` to `grafter`, lazily once `grafter` sent a
    // duplicate: it announces the next message to `grafter`.
    let (mut g, peers) = node(&[2, 3]);
    let (parent, grafter) = (peers[0], peers[1]);
    let first = message(1);
    accepted(&mut g, at(10), parent, &first);
    handle(&mut g, at(11), from(grafter, gossip(&first)));
    let second = message(2);
    accepted(&mut g, at(20), parent, &second);
    let out = handle(&mut g, at(100), Input::Timer(Timer::FlushIHave));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send { to, msg: Message::Tree(TreeMessage::IHave { .. }) } if *to == grafter
    )));

    let out = handle(
        &mut g,
        at(120),
        from(grafter, TreeMessage::Graft { id: second.id() }),
    );
    let answer = out
        .into_iter()
        .find_map(|o| match o {
            Output::Send { to, msg }
                if to == grafter && matches!(msg, Message::Tree(TreeMessage::Gossip { .. })) =>
            {
                Some(msg)
            }
            _ => None,
        })
        .expect("the graft is answered");
    // The driver's queue to the grafter is full: the answer comes back, and a decline goes out.
    let mut out = Vec::new();
    g.undelivered(at(121), grafter, answer, DropReason::QueueFull, &mut out);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send { to, msg: Message::Tree(TreeMessage::Decline { id }) }
            if *to == grafter && *id == second.id()
    )));
    // A dropped eager push answered no graft: nothing to decline.
    let mut out = Vec::new();
    g.undelivered(
        at(122),
        parent,
        Message::Tree(gossip(&second)),
        DropReason::QueueFull,
        &mut out,
    );
    assert!(out.is_empty());
    assert_eq!(g.stats().tree.declines_sent, 1);
}

#[test]
fn a_graft_the_send_queue_dropped_binds_nobody_and_the_next_announcer_is_asked() {
    let (mut g, peers) = node(&[2, 3]);
    let id = message(1).id();
    announce(&mut g, at(10), peers[0], id);
    announce(&mut g, at(11), peers[1], id);
    let out = handle(&mut g, at(20), Input::Timer(Timer::Graft(id)));
    let (_, promise) = promises(&out).pop().unwrap();
    let mut out = Vec::new();
    let graft = Message::Tree(TreeMessage::Graft { id });
    g.undelivered(at(21), peers[0], graft, DropReason::QueueFull, &mut out);
    assert_eq!(grafted(&out, id), vec![peers[1]]);
    handle(&mut g, at(6_000), Input::Timer(promise));
    assert_eq!(g.score(&peers[0], at(6_000)), 0.0, "it never heard the graft");
}

#[test]
fn on_a_slow_link_a_promise_waits_for_an_answer_that_may_be_queued() {
    let (mut g, peers) = node(&[2]);
    let announcer = peers[0];
    // The first answer takes 3 s (a queue seconds deep).
    let slow = message(1);
    announce(&mut g, at(10), announcer, slow.id());
    handle(&mut g, at(20), Input::Timer(Timer::Graft(slow.id())));
    handle(&mut g, at(3_020), from(announcer, gossip(&slow)));

    let late = message(2);
    announce(&mut g, at(4_000), announcer, late.id());
    let out = handle(&mut g, at(4_010), Input::Timer(Timer::Graft(late.id())));
    let (after, promise) = promises(&out).pop().unwrap();
    assert_eq!(after, Config::default().graft_promise);
    // Nothing answered since: due after the longest wait, not 5 s (nor four times the slowest answer,
    // 12 s, which holds once a later graft was answered): the timer is set again for the rest.
    let config = Config::default();
    let out = handle(&mut g, at(9_010), Input::Timer(promise.clone()));
    assert_eq!(
        promises(&out),
        vec![(config.graft_promise_max - config.graft_promise, promise.clone())]
    );
    assert_eq!(g.score(&announcer, at(9_010)), 0.0);
    // The answer comes 8 s after the graft: kept.
    handle(&mut g, at(12_010), from(announcer, gossip(&late)));
    handle(&mut g, at(16_010), Input::Timer(promise));
    assert_eq!(g.score(&announcer, at(16_010)), 0.0);
    assert_eq!(g.stats().tree.broken_promises, 0);

    // A promise still unanswered when due is broken, however slow the link was.
    let never = message(3);
    announce(&mut g, at(20_000), announcer, never.id());
    let out = handle(&mut g, at(20_010), Input::Timer(Timer::Graft(never.id())));
    let (_, promise) = promises(&out).pop().unwrap();
    let out = handle(&mut g, at(25_010), Input::Timer(promise));
    let (rest, promise) = promises(&out).pop().unwrap();
    handle(&mut g, at(25_010) + rest, Input::Timer(promise));
    assert_eq!(g.stats().tree.broken_promises, 1);
    assert!(g.score(&announcer, at(25_010) + rest) < 0.0);
}

/// `relay` delivers `msg` first, and the application accepts it.
fn accepted(g: &mut Gossip, now: Instant, relay: PeerId, msg: &GossipMessage) {
    handle(g, now, from(relay, gossip(msg)));
    handle(
        g,
        now,
        Input::Command(Command::Validated(msg.id(), Verdict::Accept)),
    );
}

/// `pusher` keeps pushing copies of `msg` on the link we pruned: `n` of them at `now`.
fn push_copies(g: &mut Gossip, now: Instant, pusher: PeerId, msg: &GossipMessage, n: usize) {
    for _ in 0..n {
        handle(g, now, from(pusher, gossip(msg)));
    }
}

/// A node whose parent (key 2) delivered message 1 at 10 ms; the other neighbour (key 3) will push
/// copies of it. Returns the node, that pusher and the message.
fn delivered_by_parent() -> (Gossip, PeerId, GossipMessage) {
    let (mut g, peers) = node(&[2, 3]);
    let (parent, pusher) = (peers[0], peers[1]);
    let msg = message(1);
    accepted(&mut g, at(10), parent, &msg);
    (g, pusher, msg)
}

/// Copies went past the allowance, and every one dropped was excused: the pusher is not charged.
fn all_excused(g: &Gossip, pusher: PeerId, now: Instant) {
    let stats = g.stats();
    assert!(
        stats.rate_limited > 1_000,
        "beyond the allowance they are dropped"
    );
    assert_eq!(stats.in_flight_excused, stats.rate_limited);
    assert_eq!(g.score(&pusher, now), 0.0, "in flight: not charged");
    assert_eq!(stats.bans, 0);
}

#[test]
fn copies_pushed_before_our_prune_arrived_are_dropped_without_blame() {
    let (mut g, pusher, msg) = delivered_by_parent();
    // The pusher's copy is a duplicate: we prune its link, and its queue of copies keeps coming, far
    // past the allowance.
    push_copies(&mut g, at(20), pusher, &msg, 3_000);
    all_excused(&g, pusher, at(20));

    // Long after the prune reached it, copies are its own doing: charged, until it is banned.
    push_copies(&mut g, at(60_000), pusher, &msg, 3_000);
    let stats = g.stats();
    assert!(stats.rate_limited > stats.in_flight_excused);
    assert_eq!(stats.bans, 1);
}

#[test]
fn relaying_earns_a_neighbour_room_to_waste() {
    let (mut g, peers) = node(&[2, 3]);
    let (relay, other) = (peers[0], peers[1]);
    // The relay delivers 2,000 first-seen messages.
    for seq in 0..2_000 {
        let msg = message(seq);
        accepted(&mut g, at(10), relay, &msg);
    }
    // Long after any prune, it sends 2,000 copies of a message we got from `other`: the burst (500)
    // alone would charge 1,500 of them; its relaying covers them.
    let msg = message(5_000);
    accepted(&mut g, at(60_000), other, &msg);
    handle(&mut g, at(60_000), from(relay, gossip(&msg)));
    push_copies(&mut g, at(60_000), relay, &msg, 2_000);
    assert_eq!(g.stats().rate_limited, 0);
    assert_eq!(g.score(&relay, at(60_000)), 0.0);
}

#[test]
fn a_neighbour_that_declined_lately_has_the_longest_promise() {
    let (mut g, peers) = node(&[2]);
    let busy = peers[0];
    let first = message(1).id();
    announce(&mut g, at(10), busy, first);
    handle(&mut g, at(20), Input::Timer(Timer::Graft(first)));
    handle(&mut g, at(21), from(busy, TreeMessage::Decline { id: first }));
    // What it does queue for us is late: due after `graft_promise_max`, not `graft_promise`.
    let late = message(2);
    announce(&mut g, at(100), busy, late.id());
    let out = handle(&mut g, at(110), Input::Timer(Timer::Graft(late.id())));
    let (after, promise) = promises(&out).pop().unwrap();
    let config = Config::default();
    let out = handle(&mut g, at(110) + after, Input::Timer(promise.clone()));
    assert_eq!(
        promises(&out),
        vec![(config.graft_promise_max - config.graft_promise, promise.clone())]
    );
    handle(&mut g, at(20_110), from(busy, gossip(&late)));
    handle(&mut g, at(30_110), Input::Timer(promise));
    assert_eq!(g.stats().tree.broken_promises, 0);
    assert_eq!(g.score(&busy, at(30_110)), 0.0);
}

#[test]
fn a_window_excuses_a_few_queues_of_copies_not_a_flood() {
    let (mut g, pusher, msg) = delivered_by_parent();
    // 70,000 copies within the window: 65,536 excused, the rest beyond the allowance charged.
    push_copies(&mut g, at(20), pusher, &msg, 70_000);
    let stats = g.stats();
    assert_eq!(stats.in_flight_excused, 65_536);
    assert_eq!(stats.bans, 1);
}

#[test]
fn a_link_whose_queue_outlasts_the_first_window_stays_excused_while_we_prune_it() {
    let (mut g, pusher, msg) = delivered_by_parent();
    // The first duplicate prunes the link and opens the window (`graft_promise`, 5 s).
    push_copies(&mut g, at(20), pusher, &msg, 1);
    // Its queue is seconds deep: copies keep coming, and each we see answers another `Prune`.
    push_copies(&mut g, at(4_000), pusher, &msg, 10);
    push_copies(&mut g, at(8_000), pusher, &msg, 10);
    // 12 s after the first prune, a burst far past the allowance: still copies queued before our
    // prunes reached it.
    push_copies(&mut g, at(12_000), pusher, &msg, 3_000);
    all_excused(&g, pusher, at(12_000));
    // Once the copies stop long enough for a prune to have reached it, the window closes for good.
    push_copies(&mut g, at(60_000), pusher, &msg, 3_000);
    assert_eq!(g.stats().bans, 1);
}

#[test]
fn data_dropped_for_a_full_queue_marks_the_link_full_for_a_while() {
    let (mut g, peers) = node(&[2, 3, 4]);
    let hold = Duration::from_millis(500);
    let data = |seq| Message::Tree(gossip(&message(seq)));
    let mut out = Vec::new();
    g.undelivered(at(100), peers[0], data(1), DropReason::QueueFull, &mut out);
    // An announcement is data too.
    let ids = vec![support::announcement(10, message(2).id(), 1)]
        .try_into()
        .unwrap();
    let ihave = Message::Tree(TreeMessage::IHave { ids });
    g.undelivered(at(150), peers[1], ihave, DropReason::QueueFull, &mut out);
    assert_eq!(g.full_links(at(200), hold), 2);
    // A control message dropped from the reserve, a message to a peer that closed, the node's whole
    // budget spent (by others), a peer that is no neighbour: none says a neighbour reads slower than
    // we send.
    let graft = Message::Tree(TreeMessage::Graft { id: message(3).id() });
    g.undelivered(at(160), peers[2], graft, DropReason::QueueFull, &mut out);
    g.undelivered(at(160), peers[2], data(3), DropReason::ConnectionClosed, &mut out);
    g.undelivered(at(160), peers[2], data(3), DropReason::BudgetSpent, &mut out);
    let stranger = key(9).peer_id();
    g.undelivered(at(160), stranger, data(3), DropReason::QueueFull, &mut out);
    assert_eq!(g.full_links(at(200), hold), 2);
    // Each link is full for `within` after its last drop.
    assert_eq!(g.full_links(at(620), hold), 1);
    assert_eq!(g.full_links(at(650), hold), 0);
    // A neighbour that left is forgotten with its link.
    g.undelivered(at(700), peers[0], data(4), DropReason::QueueFull, &mut out);
    handle(&mut g, at(710), Input::PeerDown(peers[0]));
    assert_eq!(g.full_links(at(720), hold), 0);
}
