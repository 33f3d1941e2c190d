//! Origin signatures checked in batches under load (`TopicOptions::batch_verify`, `src/state/verify.rs`).
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

mod support;

use std::time::Duration;

use meshwork_gossip::{Config, Event, Gossip, GossipMessage, MessageId, Timer, TopicOptions, TreeMessage};
use meshwork_identity::Signature;
use meshwork_wire::{Input, Instant, Output, PeerId};
use support::{at, from, gossip, handle, key, node_subscribed, topic};

/// A node whose topic batches its checks or not, with neighbours `a` (key 2) and `b` (key 3).
fn node(config: Config, batch_verify: bool) -> (Gossip, PeerId, PeerId) {
    let options = TopicOptions::default().with_batch_verify(batch_verify);
    let (g, peers) = node_subscribed(config, options, &[2, 3]);
    (g, peers[0], peers[1])
}

/// Message `seq` of origin `key(origin)`.
fn signed(origin: u8, seq: u64) -> GossipMessage {
    GossipMessage::sign(&key(origin), topic(), seq, b"tx".to_vec().try_into().unwrap())
}

fn forged(origin: u8, seq: u64) -> GossipMessage {
    let mut message = signed(origin, seq);
    message.signature = Signature::from_bytes([7; 64]);
    message
}

fn receive(g: &mut Gossip, now: Instant, peer: PeerId, message: GossipMessage) -> Vec<Output<Gossip>> {
    handle(g, now, from(peer, gossip(&message)))
}

fn fire(g: &mut Gossip, now: Instant) -> Vec<Output<Gossip>> {
    handle(g, now, Input::Timer(Timer::Verify))
}

fn delivered(out: &[Output<Gossip>]) -> Vec<MessageId> {
    out.iter()
        .filter_map(|o| match o {
            Output::Emit(Event::Delivered { id, .. }) => Some(*id),
            _ => None,
        })
        .collect()
}

fn schedules_verify(out: &[Output<Gossip>]) -> bool {
    out.iter().any(|o| {
        matches!(o, Output::Schedule { after, timer: Timer::Verify } if *after == Duration::from_millis(2))
    })
}

#[test]
fn messages_that_come_close_together_wait_and_are_checked_in_one_batch() {
    let (mut g, a, b) = node(Config::default(), true);
    // The first comes alone: checked and delivered at once.
    let first = signed(9, 1);
    assert_eq!(
        delivered(&receive(&mut g, at(100), a, first.clone())),
        vec![first.id()]
    );
    // The next two come within 2 ms of the one before: they wait, and the first to wait sets the timer.
    let (second, third) = (signed(9, 2), signed(8, 1));
    let out = receive(&mut g, at(101), a, second.clone());
    assert!(delivered(&out).is_empty() && schedules_verify(&out));
    let out = receive(&mut g, at(102), b, third.clone());
    assert!(
        delivered(&out).is_empty() && !schedules_verify(&out),
        "one timer per batch"
    );
    let out = fire(&mut g, at(103));
    assert_eq!(
        delivered(&out),
        vec![second.id(), third.id()],
        "in the order they came"
    );
    let stats = g.stats();
    assert_eq!((stats.signature_batches, stats.signatures_batched), (1, 2));
    assert_eq!(stats.signatures_verified, 3);
    // After a quiet spell a message is alone again.
    let late = signed(9, 3);
    assert_eq!(
        delivered(&receive(&mut g, at(200), a, late.clone())),
        vec![late.id()]
    );
}

#[test]
fn a_forged_message_in_a_batch_is_refused_alone_and_the_others_go_through() {
    let (mut g, a, b) = node(Config::default(), true);
    receive(&mut g, at(100), a, signed(9, 1));
    let (before, after) = (signed(9, 2), signed(9, 3));
    receive(&mut g, at(101), a, before.clone());
    receive(&mut g, at(101), b, forged(8, 1));
    receive(&mut g, at(102), a, after.clone());
    let out = fire(&mut g, at(103));
    assert_eq!(delivered(&out), vec![before.id(), after.id()]);
    assert_eq!(g.stats().bad_signatures, 1);
    // One alone, three in the batch, then the forged one and the one after it alone: the batch
    // vouched for the one before the forgery.
    assert_eq!(g.stats().signatures_verified, 1 + 3 + 2);
    assert!(g.score(&b, at(103)) < 0.0, "the forger's sender pays");
    assert!(
        g.score(&a, at(103)) >= 0.0,
        "an honest sender in the same batch does not"
    );
}

#[test]
fn a_full_batch_is_checked_without_waiting_for_the_timer() {
    let config = Config {
        verify_batch: 3,
        ..Config::default()
    };
    let (mut g, a, _) = node(config, true);
    receive(&mut g, at(100), a, signed(9, 1));
    let waiting: Vec<GossipMessage> = (2..5).map(|seq| signed(9, seq)).collect();
    assert!(delivered(&receive(&mut g, at(101), a, waiting[0].clone())).is_empty());
    assert!(delivered(&receive(&mut g, at(101), a, waiting[1].clone())).is_empty());
    let out = receive(&mut g, at(101), a, waiting[2].clone());
    let ids: Vec<MessageId> = waiting.iter().map(GossipMessage::id).collect();
    assert_eq!(delivered(&out), ids);
    // The timer set for that batch is still coming: the next message waits for it without a new one.
    let next = signed(9, 5);
    let out = receive(&mut g, at(102), a, next.clone());
    assert!(delivered(&out).is_empty() && !schedules_verify(&out));
    assert_eq!(delivered(&fire(&mut g, at(103))), vec![next.id()]);
    assert_eq!(g.stats().signature_batches, 2);
}

#[test]
fn a_forger_that_fills_a_batch_costs_one_batch_and_one_check() {
    let (mut g, a, b) = node(Config::default(), true);
    receive(&mut g, at(100), a, signed(9, 1));
    for seq in 1..=10 {
        receive(&mut g, at(101), b, forged(8, seq));
    }
    let honest = signed(9, 2);
    receive(&mut g, at(101), a, honest.clone());
    let out = fire(&mut g, at(103));
    assert_eq!(delivered(&out), vec![honest.id()]);
    let stats = g.stats();
    assert_eq!(
        stats.bad_signatures, 1,
        "the forger's other messages are dropped unchecked"
    );
    // One alone before; eleven in the batch; the first forgery and the honest message alone.
    assert_eq!(stats.signatures_verified, 1 + 11 + 2);
    assert!(g.score(&b, at(103)) < 0.0 && g.score(&a, at(103)) >= 0.0);
}

#[test]
fn copies_in_one_batch_are_checked_once_and_the_later_one_is_a_duplicate() {
    let (mut g, a, b) = node(Config::default(), true);
    receive(&mut g, at(100), a, signed(9, 1));
    let message = signed(8, 1);
    receive(&mut g, at(101), a, message.clone());
    receive(&mut g, at(101), b, message.clone());
    let out = fire(&mut g, at(103));
    assert_eq!(delivered(&out), vec![message.id()], "delivered once");
    assert_eq!(g.stats().signatures_batched, 1, "one check for the two copies");
    let origin = key(8).peer_id();
    assert!(
        out.iter().any(|o| matches!(o,
            Output::Send { to, msg: meshwork_gossip::Message::Tree(TreeMessage::Prune { origin: o }) } if *to == b && *o == origin)),
        "the second copy is pruned as on arrival"
    );
}

#[test]
fn a_topic_that_does_not_batch_never_waits() {
    let (mut g, a, _) = node(Config::default(), false);
    for (seq, ms) in (1..20).zip(100..) {
        let message = signed(9, seq);
        assert_eq!(
            delivered(&receive(&mut g, at(ms / 10), a, message.clone())),
            vec![message.id()]
        );
    }
    assert_eq!(g.stats().signature_batches, 0);
}
