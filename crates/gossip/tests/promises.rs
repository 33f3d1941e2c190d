//! An `IHave` is a promise to send the message when grafted. The graft moves on to the next announcer as
//! soon as the learnt round trip allows, but the announcer grafted is held to its promise only after
//! `Config::graft_promise` once it answered a later graft (answers come in the order of the grafts, so
//! it skipped this one), and after `Config::graft_promise_max` otherwise (the answer may be queued): an
//! honest node slowed by load that answers late keeps it, and one that never answers still loses
//! points each time, and is banned when it keeps doing so. One node, a fake clock.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

mod support;

use std::time::Duration;

use meshwork_gossip::{Config, Event, Gossip, Message, MessageId, Timer, TreeMessage};
use meshwork_wire::{Input, Instant, Output, PeerId};
use support::{at, from, handle, message, timers};

/// A node (key 1) whose only neighbour is the announcer (key 2).
fn node() -> (Gossip, PeerId) {
    let (g, peers) = support::node(&[2]);
    (g, peers[0])
}

/// `announcer` announces `id`; the graft timer fires and the node grafts it. Returns the promise timer
/// and its delay.
fn announce_and_graft(g: &mut Gossip, now: Instant, announcer: PeerId, id: MessageId) -> (Duration, Timer) {
    let ids = vec![support::announcement(10, id, 1)].try_into().unwrap();
    let out = handle(g, now, from(announcer, TreeMessage::IHave { ids }));
    assert!(timers(&out).iter().any(|(_, t)| *t == Timer::Graft(id)));
    let out = handle(g, now, Input::Timer(Timer::Graft(id)));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send { to, msg: Message::Tree(TreeMessage::Graft { id: grafted }) }
            if *to == announcer && *grafted == id
    )));
    let promise = timers(&out)
        .into_iter()
        .find(|(_, t)| matches!(t, Timer::Promise { .. }))
        .expect("the graft holds the announcer to its promise");
    assert_eq!(promise.1, Timer::Promise { peer: announcer, id });
    promise
}

#[test]
fn a_late_answer_to_a_graft_keeps_the_promise() {
    let (mut g, announcer) = node();
    let msg = message(1);
    let id = msg.id();
    let (due, promise) = announce_and_graft(&mut g, at(10), announcer, id);
    assert_eq!(due, Config::default().graft_promise);
    // The retry fires long before the answer: no other announcer, so the node waits, and blames nobody.
    handle(&mut g, at(200), Input::Timer(Timer::Graft(id)));
    assert_eq!(g.score(&announcer, at(200)), 0.0);
    // The busy announcer answers a second later, well past the retry.
    handle(
        &mut g,
        at(1_200),
        from(
            announcer,
            TreeMessage::Gossip {
                message: msg,
                hops: 1,
            },
        ),
    );
    handle(&mut g, at(5_010), Input::Timer(promise));
    assert_eq!(g.score(&announcer, at(5_010)), 0.0, "no broken promise");
}

/// Fires `promise` at `now`, and again whenever it is set again; returns when it fired last and what
/// that did.
fn fire(g: &mut Gossip, mut now: Instant, mut promise: Timer) -> (Instant, Vec<Output<Gossip>>) {
    for _ in 0..10 {
        let out = handle(g, now, Input::Timer(promise.clone()));
        match timers(&out).into_iter().find(|(_, t)| *t == promise) {
            Some((rest, again)) => (now, promise) = (now + rest, again),
            None => return (now, out),
        }
    }
    panic!("the promise timer never stopped");
}

#[test]
fn an_announcer_that_never_answers_breaks_its_promise_and_is_banned_if_it_goes_on() {
    let (mut g, announcer) = node();
    let (_, promise) = announce_and_graft(&mut g, at(10), announcer, message(1).id());
    // The retry alone costs nothing.
    handle(&mut g, at(200), Input::Timer(Timer::Graft(message(1).id())));
    assert_eq!(g.score(&announcer, at(200)), 0.0);
    // Nothing came after it: the answer may still be queued, so it is due after the longest wait.
    let (fired, _) = fire(&mut g, at(5_010), promise);
    assert_eq!(fired, at(10) + Config::default().graft_promise_max);
    assert!(g.score(&announcer, fired) < 0.0, "a broken promise costs points");

    // Many unanswered announcements at once (faster than the score recovers) get it banned.
    let now = at(40_000);
    let mut banned = false;
    for seq in 2..400 {
        let (_, promise) = announce_and_graft(&mut g, now, announcer, message(seq).id());
        let (_, out) = fire(&mut g, now + Duration::from_secs(5), promise);
        if out
            .iter()
            .any(|o| matches!(o, Output::Emit(Event::PeerBanned(p)) if *p == announcer))
        {
            banned = true;
            break;
        }
    }
    assert!(banned, "an announcer that never delivers is banned");
}

#[test]
fn an_announcer_that_answered_a_later_graft_skipped_this_one() {
    let (mut g, announcer) = node();
    let (skipped, answered) = (message(1), message(2));
    let (_, promise) = announce_and_graft(&mut g, at(10), announcer, skipped.id());
    announce_and_graft(&mut g, at(20), announcer, answered.id());
    handle(&mut g, at(1_000), from(announcer, support::gossip(&answered)));
    // Its answers come in the order of our grafts: the first was skipped, and is due at the usual time.
    let (fired, _) = fire(&mut g, at(5_010), promise);
    assert_eq!(fired, at(5_010));
    assert!(g.score(&announcer, fired) < 0.0);
    assert_eq!(g.stats().tree.broken_promises, 1);
}

/// The bench's case: a link whose queue fills at once holds the answers to a hundred grafts for longer
/// than the usual wait. They come, in order, and nobody is blamed.
#[test]
fn answers_queued_behind_a_full_link_keep_every_promise() {
    let (mut g, announcer) = node();
    let messages: Vec<_> = (1..=100).map(message).collect();
    let promises: Vec<Timer> = messages
        .iter()
        .map(|msg| announce_and_graft(&mut g, at(10), announcer, msg.id()).1)
        .collect();
    for promise in &promises {
        handle(&mut g, at(5_010), Input::Timer(promise.clone()));
    }
    assert_eq!(g.score(&announcer, at(5_010)), 0.0, "none is due yet");
    for msg in &messages {
        handle(&mut g, at(6_000), from(announcer, support::gossip(msg)));
    }
    for promise in promises {
        fire(&mut g, at(30_010), promise);
    }
    assert_eq!(g.stats().tree.broken_promises, 0);
    assert_eq!(g.score(&announcer, at(30_010)), 0.0);
    assert!(!g.is_banned(&announcer));
}

/// A neighbour whose link went down and came back forgot what it had announced to us (its offers went
/// with the link): it is not grafted for those ids, so it is not held to promises it no longer knows.
#[test]
fn a_neighbour_that_came_back_is_not_grafted_for_what_it_announced_before() {
    let (mut g, announcer) = node();
    let id = message(1).id();
    let ids = vec![support::announcement(10, id, 1)].try_into().unwrap();
    handle(&mut g, at(10), from(announcer, TreeMessage::IHave { ids }));
    handle(&mut g, at(20), Input::PeerDown(announcer));
    support::neighbour_up(&mut g, announcer);
    let out = handle(&mut g, at(400), Input::Timer(Timer::Graft(id)));
    assert!(
        !out.iter().any(|o| matches!(
            o,
            Output::Send {
                msg: Message::Tree(TreeMessage::Graft { .. }),
                ..
            }
        )),
        "no graft for an announcement made on the old link"
    );
    assert!(
        timers(&out)
            .iter()
            .all(|(_, t)| !matches!(t, Timer::Promise { .. }))
    );
}

#[test]
fn an_answer_to_a_graft_on_a_topic_we_do_not_take_keeps_the_promise() {
    let (mut g, announcer) = node();
    // The announcer told of a message of a topic we did not subscribe to (an announcement names no
    // topic), and answers our graft with it: dropped unread, but the promise was kept.
    let other = meshwork_gossip::TopicId::from_name("not ours");
    let key = meshwork_identity::Keypair::from_seed([10; 32]);
    let msg = meshwork_gossip::GossipMessage::sign(&key, other, 1, b"x".to_vec().try_into().unwrap());
    let id = msg.id();
    let (_, promise) = announce_and_graft(&mut g, at(10), announcer, id);
    let answer = TreeMessage::Gossip {
        message: msg,
        hops: 1,
    };
    handle(&mut g, at(60), from(announcer, answer));
    assert_eq!(g.stats().off_topic, 1);
    let (last, _) = fire(&mut g, at(5_010), promise);
    assert_eq!(g.score(&announcer, last), 0.0, "no broken promise");
}
