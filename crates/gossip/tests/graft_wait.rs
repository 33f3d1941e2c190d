//! The wait before grafting an announced message learns how late the tree's copies come, besides the
//! round trips (`plumtree/rtt.rs`): a copy the tree delivered after our graft lengthens the next wait,
//! a message the tree lost does not, and copies that come first bring it back down.
//!
//! One node, a fake clock. Neighbour 2 is the tree link for origin 10 (its copies come first until a
//! test delays them), neighbour 3 a lazy one that announces.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

mod support;

use std::time::Duration;

use meshwork_gossip::{Command, Gossip, GossipMessage, MessageId, Timer, TreeMessage};
use meshwork_wire::{Input, Instant, PeerId};
use support::{at, from, gossip, handle, message, node, timers};

const MS: Duration = Duration::from_millis(1);

/// A node whose two neighbours are 20 ms away, as the driver measured.
fn measured_node() -> (Gossip, PeerId, PeerId) {
    let (mut g, peers) = node(&[2, 3]);
    for peer in &peers {
        let rtt = Command::PeerRoundTrip {
            peer: *peer,
            rtt: 20 * MS,
        };
        handle(&mut g, at(0), Input::Command(rtt));
    }
    (g, peers[0], peers[1])
}

/// `announcer` announces `id` at `now`; returns the wait the node set before grafting it.
fn announce(g: &mut Gossip, now: Instant, announcer: PeerId, id: MessageId) -> Duration {
    let ids = vec![support::announcement(10, id, 1)].try_into().unwrap();
    let out = handle(g, now, from(announcer, TreeMessage::IHave { ids }));
    timers(&out)
        .into_iter()
        .find(|(_, timer)| *timer == Timer::Graft(id))
        .map(|(after, _)| after)
        .unwrap()
}

/// `msg` announced at `start` by the lazy neighbour, grafted from it when the wait runs out, and
/// answered one round trip later. Returns the wait, and when the answer came.
fn repair(g: &mut Gossip, start: u64, announcer: PeerId, msg: &GossipMessage) -> (Duration, u64) {
    let wait = announce(g, at(start), announcer, msg.id());
    let grafted = start + wait.as_millis() as u64;
    handle(g, at(grafted), Input::Timer(Timer::Graft(msg.id())));
    let answered = grafted + 20;
    handle(g, at(answered), from(announcer, gossip(msg)));
    (wait, answered)
}

#[test]
fn a_tree_copy_that_came_after_the_graft_lengthens_the_next_wait() {
    let (mut g, parent, lazy) = measured_node();
    let (first_wait, answered) = repair(&mut g, 1_000, lazy, &message(1));
    assert!(first_wait < 100 * MS, "20 ms round trips: {first_wait:?}");
    // The tree's own copy, 150 ms after the announcement: the graft was too early.
    handle(&mut g, at(answered.max(1_150)), from(parent, gossip(&message(1))));
    let next_wait = announce(&mut g, at(2_000), lazy, message(2).id());
    assert!(
        next_wait >= 150 * MS,
        "the next wait covers a copy that late: {next_wait:?}"
    );
    assert!(
        next_wait <= Duration::from_millis(300),
        "never past the ceiling: {next_wait:?}"
    );
}

#[test]
fn a_message_the_tree_lost_does_not_lengthen_the_wait() {
    let (mut g, _parent, lazy) = measured_node();
    let (first_wait, _) = repair(&mut g, 1_000, lazy, &message(1));
    // No tree copy ever comes: the graft was needed.
    let next_wait = announce(&mut g, at(2_000), lazy, message(2).id());
    assert!(next_wait <= first_wait, "{next_wait:?} after {first_wait:?}");
}

#[test]
fn late_copies_from_the_tree_lengthen_the_wait_and_timely_ones_shorten_it_again() {
    let (mut g, parent, lazy) = measured_node();
    let mut seq = 0;
    let mut next = || {
        seq += 1;
        message(seq)
    };
    // The tree is slow for a while: each copy comes 120 ms after the lazy neighbour's announcement,
    // within the wait (the timer fires after the copy, so nothing is grafted).
    let mut waits = Vec::new();
    for round in 0..6_u64 {
        let msg = next();
        let start = 1_000 + round * 1_000;
        waits.push(announce(&mut g, at(start), lazy, msg.id()));
        let copy = start + 120;
        handle(&mut g, at(copy), from(parent, gossip(&msg)));
        handle(&mut g, at(start + 300), Input::Timer(Timer::Graft(msg.id())));
    }
    let slow = *waits.last().unwrap();
    assert!(slow > waits[0], "the wait grew with late copies: {waits:?}");
    assert!(slow >= 120 * MS, "and covers them: {waits:?}");
    // Then the tree is fast again: copies come before any announcement.
    for round in 0..40_u64 {
        let msg = next();
        handle(&mut g, at(10_000 + round * 100), from(parent, gossip(&msg)));
    }
    let fast = announce(&mut g, at(20_000), lazy, next().id());
    assert!(
        fast < slow / 2,
        "timely copies bring the wait back down: {fast:?} after {slow:?}"
    );
}
