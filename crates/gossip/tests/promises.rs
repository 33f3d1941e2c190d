//! An `IHave` is a promise to send the message when grafted. The graft moves on to the next announcer as
//! soon as the learnt round trip allows, but the announcer grafted is held to its promise only after
//! `Config::graft_promise`: an honest node slowed by load that answers late keeps it, and one that
//! never answers still loses points each time, and is banned when it keeps doing so. One node, a fake
//! clock.
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

#[test]
fn an_announcer_that_never_answers_breaks_its_promise_and_is_banned_if_it_goes_on() {
    let (mut g, announcer) = node();
    let (_, promise) = announce_and_graft(&mut g, at(10), announcer, message(1).id());
    // The retry alone costs nothing.
    handle(&mut g, at(200), Input::Timer(Timer::Graft(message(1).id())));
    assert_eq!(g.score(&announcer, at(200)), 0.0);
    handle(&mut g, at(5_010), Input::Timer(promise));
    assert!(
        g.score(&announcer, at(5_010)) < 0.0,
        "a broken promise costs points"
    );

    // Many unanswered announcements at once (faster than the score recovers) get it banned.
    let now = at(6_000);
    let mut banned = false;
    for seq in 2..400 {
        let (_, promise) = announce_and_graft(&mut g, now, announcer, message(seq).id());
        let out = handle(&mut g, now + Duration::from_secs(5), Input::Timer(promise));
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
