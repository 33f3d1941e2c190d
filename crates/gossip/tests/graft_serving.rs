//! Issue #14: a 35-byte `Graft` is answered with a message of up to 64 KiB, so grafts are answered only
//! for ids we announced to the grafter, once per id, within a byte budget per neighbour; grafts for ids
//! we never announced are waste. One node, a fake clock.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use std::time::Duration;

use meshwork_gossip::{
    Command, Config, Gossip, GossipMessage, MAX_PAYLOAD, MembershipMessage, Message, MessageId, Timer,
    TopicId, TopicOptions, TreeMessage,
};
use meshwork_identity::{Hash, Keypair};
use meshwork_wire::{Input, Instant, Output, PeerId, Protocol};

fn topic() -> TopicId {
    TopicId::from_name("t")
}

fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

fn at(millis: u64) -> Instant {
    Instant::from_duration(Duration::from_millis(millis))
}

/// Origin of the messages relayed.
const ORIGIN: u8 = 10;

/// A node (key 1) with neighbours 2 (which relays to it) and 3 (lazy for `ORIGIN`: it gets `IHave`s).
fn node() -> (Gossip, PeerId, PeerId) {
    let mut g = Gossip::new(key(1), Config::default(), 7);
    let mut out = Vec::new();
    let subscribe = Command::Subscribe(topic(), TopicOptions::default());
    g.handle(at(0), Input::Command(subscribe), &mut out);
    let (relay, grafter) = (key(2).peer_id(), key(3).peer_id());
    for peer in [relay, grafter] {
        g.handle(at(0), Input::PeerUp(peer), &mut out);
        let msg = Message::Membership(MembershipMessage::Neighbor { high_priority: false });
        g.handle(at(0), Input::Message { from: peer, msg }, &mut out);
    }
    let origin = key(ORIGIN).peer_id();
    send(&mut g, at(0), grafter, TreeMessage::Prune { origin });
    assert_eq!(g.lazy_peers(&origin), vec![grafter]);
    (g, relay, grafter)
}

/// A message of `ORIGIN` with a payload of `size` bytes.
fn message(seq: u64, size: usize) -> GossipMessage {
    GossipMessage::sign(&key(ORIGIN), topic(), seq, vec![7; size].try_into().unwrap())
}

fn send(g: &mut Gossip, now: Instant, from: PeerId, msg: TreeMessage) -> Vec<Output<Gossip>> {
    let mut out = Vec::new();
    g.handle(
        now,
        Input::Message {
            from,
            msg: Message::Tree(msg),
        },
        &mut out,
    );
    out
}

/// `relay` pushes each message; the announcements to the lazy neighbour go out. Returns the ids.
fn relay_and_announce(
    g: &mut Gossip,
    now: Instant,
    relay: PeerId,
    messages: Vec<GossipMessage>,
) -> Vec<MessageId> {
    let ids = messages.iter().map(GossipMessage::id).collect();
    for message in messages {
        send(g, now, relay, TreeMessage::Gossip { message, hops: 1 });
    }
    let mut out = Vec::new();
    g.handle(now, Input::Timer(Timer::FlushIHave), &mut out);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send {
            msg: Message::Tree(TreeMessage::IHave { .. }),
            ..
        }
    )));
    ids
}

/// Bytes of the full messages sent to `to`.
fn answered(out: &[Output<Gossip>], to: PeerId) -> (usize, u64) {
    let answers: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                to: t,
                msg: msg @ Message::Tree(TreeMessage::Gossip { .. }),
            } if *t == to => Some(msg),
            _ => None,
        })
        .collect();
    let bytes = answers
        .iter()
        .map(|m| meshwork_wire::encoded_len(m).unwrap() as u64)
        .sum();
    (answers.len(), bytes)
}

#[test]
fn a_thousand_grafts_for_one_announced_id_get_one_answer_and_no_blame() {
    let (mut g, relay, grafter) = node();
    let [id] = relay_and_announce(&mut g, at(0), relay, vec![message(1, MAX_PAYLOAD)])[..] else {
        unreachable!()
    };
    let mut out = Vec::new();
    for i in 0..1_000 {
        out.extend(send(&mut g, at(1 + i), grafter, TreeMessage::Graft { id }));
    }
    let (answers, bytes) = answered(&out, grafter);
    // Before: 1,000 answers of 65.6 KB each (65.6 MB for 35 KB of grafts). Now one.
    println!("1,000 grafts for one 64 KiB message: {answers} answer(s), {bytes} bytes");
    assert_eq!(answers, 1);
    assert!(bytes > MAX_PAYLOAD as u64);
    assert_eq!(g.stats().tree.grafts_answered, 1);
    assert_eq!(g.stats().tree.grafts_refused, 999);
    // Repeats of an announced id are no fault: an honest peer grafts again after a timeout.
    assert_eq!(g.score(&grafter, at(1_000)), 0.0);
    assert_eq!(g.stats().rate_limited, 0);
    assert!(g.eager_peers(&key(ORIGIN).peer_id()).contains(&grafter));
}

#[test]
fn grafts_for_ids_never_announced_get_nothing_and_draw_on_the_waste_allowance() {
    let (mut g, relay, grafter) = node();
    // A message we hold, never announced to the relay (it sent it to us).
    let held = message(1, 1_000);
    let held_id = held.id();
    send(
        &mut g,
        at(0),
        relay,
        TreeMessage::Gossip {
            message: held,
            hops: 1,
        },
    );
    assert!(g.has_seen(&held_id));
    // The relay never got an `IHave` for it: its graft is for free bytes, and so are random ids.
    let out = send(&mut g, at(1), relay, TreeMessage::Graft { id: held_id });
    assert_eq!(answered(&out, relay).0, 0);
    let allowance = Config::default().score.rate_burst as u64;
    let mut out = Vec::new();
    for i in 1..allowance {
        let id = MessageId::from_hash(&Hash::digest(&i.to_le_bytes()));
        out.extend(send(&mut g, at(1), grafter, TreeMessage::Graft { id }));
    }
    assert_eq!(answered(&out, grafter).0, 0);
    // Within the allowance: no points lost (the relay's one graft and the grafter's 499 are separate).
    assert_eq!(g.score(&grafter, at(1)), 0.0);
    assert_eq!(g.stats().rate_limited, 0);
    // Beyond it each costs `flood` points, and twenty more reach the ban threshold.
    let flood = Config::default().score.flood;
    let threshold = Config::default().score.ban_threshold;
    let over = (-threshold / flood) as u64;
    for i in 0..=over {
        let id = MessageId::from_hash(&Hash::digest(&(u64::MAX - i).to_le_bytes()));
        send(&mut g, at(1), grafter, TreeMessage::Graft { id });
    }
    assert_eq!(g.stats().rate_limited, over);
    assert!(g.is_banned(&grafter));
    assert!(!g.is_banned(&relay));
}

#[test]
fn grafts_for_many_announced_ids_are_answered_within_the_byte_budget() {
    let (mut g, relay, grafter) = node();
    let config = Config::default();
    let messages: Vec<_> = (1..=200).map(|seq| message(seq, 60_000)).collect();
    let size = meshwork_wire::encoded_len(&messages[0]).unwrap() as u64;
    let ids = relay_and_announce(&mut g, at(0), relay, messages);
    assert!(ids.len() > 64, "several IHave messages");
    let mut out = Vec::new();
    for id in &ids {
        out.extend(send(&mut g, at(1), grafter, TreeMessage::Graft { id: *id }));
    }
    let (first, bytes) = answered(&out, grafter);
    // At once: the burst's worth (4 MiB: 69 messages of 60 KB), not 200 (12 MB).
    println!("200 grafts of 60 KB messages at once: {first} answered, {bytes} bytes");
    assert!(bytes <= config.graft_burst_bytes, "{bytes}");
    assert_eq!(first as u64, config.graft_burst_bytes / size);
    // Dropped grafts are still owed: grafted again two seconds later, two seconds' refill is answered.
    let mut out = Vec::new();
    for id in &ids {
        out.extend(send(&mut g, at(2_001), grafter, TreeMessage::Graft { id: *id }));
    }
    let (second, _) = answered(&out, grafter);
    // The burst's remainder and two seconds' refill, nothing more.
    let budget = config.graft_burst_bytes - first as u64 * size + 2 * config.graft_bytes_per_sec;
    assert_eq!(second as u64, budget / size);
    // Nothing was blamed: every graft was for an id we announced.
    assert_eq!(g.score(&grafter, at(2_001)), 0.0);
    assert_eq!(g.stats().rate_limited, 0);
    assert_eq!(g.stats().tree.grafts_answered as usize, first + second);
}
