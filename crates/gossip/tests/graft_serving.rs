//! Issue #14: a 35-byte `Graft` is answered with a message of up to 64 KiB, so grafts are answered only
//! for ids we announced to the grafter, once per id, within a byte budget per neighbour; grafts for ids
//! we never announced are waste, and declined (we may have announced them and forgotten). A decline a
//! full send queue dropped is sent again with the next announcements. One node, a fake clock.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use std::time::Duration;

use meshwork_gossip::{
    Command, Config, Gossip, GossipMessage, MAX_PAYLOAD, MembershipMessage, Message, MessageId, Timer,
    TopicId, TopicOptions, TreeMessage,
};
use meshwork_identity::{Hash, Keypair};
use meshwork_wire::{DropReason, Input, Instant, Output, PeerId, Protocol};

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
    node_with(Config::default())
}

/// [`node`] with `config`.
fn node_with(config: Config) -> (Gossip, PeerId, PeerId) {
    let mut g = Gossip::new(key(1), config, 7);
    let mut out = Vec::new();
    let subscribe = Command::Subscribe(topic(), TopicOptions::default());
    g.handle(at(0), Input::Command(subscribe), &mut out);
    let (relay, grafter) = (key(2).peer_id(), key(3).peer_id());
    for peer in [relay, grafter] {
        g.handle(at(0), Input::PeerUp(peer), &mut out);
        let msg = Message::Membership(MembershipMessage::Neighbor { high_priority: false });
        g.handle(at(0), Input::Message { from: peer, msg }, &mut out);
    }
    // `ORIGIN`'s tree forms here (a message of its own comes through), and the grafter prunes its
    // link (a prune naming an origin we hold no tree for changes nothing).
    let origin = key(ORIGIN).peer_id();
    let first = TreeMessage::Gossip {
        message: message(1_000_000, 1),
        hops: 1,
    };
    send(&mut g, at(0), relay, first);
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

/// The ids of the declines `out` sends to `to`.
fn declined(out: &[Output<Gossip>], to: PeerId) -> Vec<MessageId> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                to: t,
                msg: Message::Tree(TreeMessage::Decline { id }),
            } if *t == to => Some(*id),
            _ => None,
        })
        .collect()
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
    // The relay never got an `IHave` for it: its graft is for free bytes, and so are random ids. Each
    // is declined (a 19-byte answer to a 19-byte graft), for the grafter that had its announcement
    // from us and was left waiting once we forgot it.
    let out = send(&mut g, at(1), relay, TreeMessage::Graft { id: held_id });
    assert_eq!(answered(&out, relay).0, 0);
    assert_eq!(declined(&out, relay), vec![held_id]);
    let allowance = Config::default().score.rate_burst as u64;
    let mut out = Vec::new();
    for i in 1..allowance {
        let id = MessageId::from_hash(&Hash::digest(&i.to_le_bytes()));
        out.extend(send(&mut g, at(1), grafter, TreeMessage::Graft { id }));
    }
    assert_eq!(answered(&out, grafter).0, 0);
    assert_eq!(declined(&out, grafter).len() as u64, allowance - 1);
    // Within the allowance: no points lost (the relay's one graft and the grafter's 499 are separate).
    assert_eq!(g.score(&grafter, at(1)), 0.0);
    assert_eq!(g.stats().rate_limited, 0);
    // Beyond it each costs `flood` points, and twenty more reach the ban threshold.
    let flood = Config::default().score.flood;
    let threshold = Config::default().score.ban_threshold;
    let over = (-threshold / flood) as u64;
    let mut out = Vec::new();
    for i in 0..=over {
        let id = MessageId::from_hash(&Hash::digest(&(u64::MAX - i).to_le_bytes()));
        out.extend(send(&mut g, at(1), grafter, TreeMessage::Graft { id }));
    }
    assert_eq!(g.stats().rate_limited, over);
    // Past the allowance, no courtesy either: only the first of these, the allowance's last, is declined.
    assert_eq!(declined(&out, grafter).len(), 1);
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

#[test]
fn a_graft_for_an_id_whose_announcement_was_forgotten_is_declined_not_left_waiting() {
    // Announcements are remembered for the seen cache's time to live: a graft that comes later (its
    // grafter's link held it up) is for an id we announced but no longer know we did.
    let (mut g, relay, grafter) = node();
    let [id] = relay_and_announce(&mut g, at(0), relay, vec![message(1, 100)])[..] else {
        unreachable!()
    };
    let late = at(Config::default().seen_ttl.as_millis() as u64 + 1);
    let out = send(&mut g, late, grafter, TreeMessage::Graft { id });
    // Silence would leave the grafter waiting out its promise, and blaming us at the end of it.
    assert_eq!(answered(&out, grafter).0, 0);
    assert_eq!(declined(&out, grafter), vec![id]);
    assert_eq!(g.stats().tree.declines_sent, 1);
}

/// Announces one message to the grafter, takes its graft, and drops the answer and then the decline
/// that replaced it in the driver's full queue, at 100 ms. Returns the message's id.
fn answer_and_decline_dropped(g: &mut Gossip, relay: PeerId, grafter: PeerId) -> MessageId {
    let [id] = relay_and_announce(g, at(0), relay, vec![message(1, 100)])[..] else {
        unreachable!()
    };
    let out = send(g, at(10), grafter, TreeMessage::Graft { id });
    let answer = out
        .into_iter()
        .find_map(|o| match o {
            Output::Send { to, msg } if to == grafter => Some(msg),
            _ => None,
        })
        .expect("the graft is answered");
    let mut out = Vec::new();
    g.undelivered(at(100), grafter, answer, DropReason::QueueFull, &mut out);
    assert_eq!(declined(&out, grafter), vec![id]);
    let decline = Message::Tree(TreeMessage::Decline { id });
    let mut out = Vec::new();
    g.undelivered(at(100), grafter, decline, DropReason::QueueFull, &mut out);
    // Owed: the next flush of announcements is scheduled to carry it.
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Schedule {
            timer: Timer::FlushIHave,
            ..
        }
    )));
    id
}

#[test]
fn a_decline_the_send_queue_dropped_is_sent_again_with_the_next_announcements() {
    let (mut g, relay, grafter) = node();
    let id = answer_and_decline_dropped(&mut g, relay, grafter);
    let mut out = Vec::new();
    g.handle(at(150), Input::Timer(Timer::FlushIHave), &mut out);
    assert_eq!(declined(&out, grafter), vec![id]);
    // Once delivered it is owed no more.
    let mut out = Vec::new();
    g.handle(at(200), Input::Timer(Timer::FlushIHave), &mut out);
    assert!(declined(&out, grafter).is_empty());
    assert_eq!(g.stats().tree.declines_sent, 1);
    assert_eq!(g.stats().tree.declines_resent, 1);
}

#[test]
fn a_decline_dropped_again_and_again_is_given_up_once_no_grafter_still_waits() {
    let (mut g, relay, grafter) = node();
    let id = answer_and_decline_dropped(&mut g, relay, grafter);
    let decline = || Message::Tree(TreeMessage::Decline { id });
    // The queue stays full: every resend is dropped too, and owed from when the first was.
    let give_up = Config::default().graft_promise_max.as_millis() as u64 / 2;
    let mut resent = 0;
    for ms in (150..give_up + 200).step_by(50) {
        let mut out = Vec::new();
        g.handle(at(ms), Input::Timer(Timer::FlushIHave), &mut out);
        if declined(&out, grafter).is_empty() {
            break;
        }
        resent += 1;
        g.undelivered(at(ms), grafter, decline(), DropReason::QueueFull, &mut Vec::new());
    }
    // Sent every 50 ms until half the grafter's longest wait after the first drop, then given up.
    assert_eq!(resent, (100 + give_up - 150) / 50);
    assert_eq!(g.stats().tree.declines_resent, resent);
}

#[test]
fn declines_owed_to_a_neighbour_that_left_are_forgotten() {
    let (mut g, relay, grafter) = node();
    answer_and_decline_dropped(&mut g, relay, grafter);
    let mut out = Vec::new();
    g.handle(at(120), Input::PeerDown(grafter), &mut out);
    let mut out = Vec::new();
    g.handle(at(150), Input::Timer(Timer::FlushIHave), &mut out);
    assert!(declined(&out, grafter).is_empty());
}

/// Drops `msg` to `to` in the driver's queue for `reason` at `ms`; what the node does about it.
fn drop_at(g: &mut Gossip, ms: u64, to: PeerId, msg: TreeMessage, reason: DropReason) -> Vec<Output<Gossip>> {
    let mut out = Vec::new();
    g.undelivered(at(ms), to, Message::Tree(msg), reason, &mut out);
    out
}

#[test]
fn only_declines_of_announced_ids_dropped_by_a_full_queue_are_owed_and_at_most_64_a_neighbour() {
    let (mut g, relay, grafter) = node();
    let messages: Vec<GossipMessage> = (1..=80).map(|seq| message(seq, 100)).collect();
    let ids = relay_and_announce(&mut g, at(0), relay, messages.clone());
    // The grafter asks for all 80; every answer, then every decline, is dropped by the full queue.
    for (id, message) in ids.iter().zip(messages) {
        let out = send(&mut g, at(10), grafter, TreeMessage::Graft { id: *id });
        assert_eq!(answered(&out, grafter).0, 1);
        let answer = TreeMessage::Gossip { message, hops: 2 };
        assert_eq!(
            declined(
                &drop_at(&mut g, 20, grafter, answer, DropReason::QueueFull),
                grafter
            ),
            vec![*id]
        );
        drop_at(
            &mut g,
            20,
            grafter,
            TreeMessage::Decline { id: *id },
            DropReason::QueueFull,
        );
    }
    // A decline for an id never announced (a courtesy to a wasteful graft), or one that met a closed
    // connection, is not owed.
    let never = MessageId::from_hash(&Hash::digest(b"never announced"));
    drop_at(
        &mut g,
        20,
        grafter,
        TreeMessage::Decline { id: never },
        DropReason::QueueFull,
    );
    drop_at(
        &mut g,
        20,
        relay,
        TreeMessage::Decline { id: ids[0] },
        DropReason::ConnectionClosed,
    );
    let mut out = Vec::new();
    g.handle(at(50), Input::Timer(Timer::FlushIHave), &mut out);
    let again = declined(&out, grafter);
    assert_eq!(again, ids[..64].to_vec(), "the first 64, once each, in order");
    assert!(declined(&out, relay).is_empty());
}

#[test]
fn an_owed_decline_is_not_sent_after_the_graft_was_answered() {
    // A budget of one 100-byte answer, so the second graft is declined for it.
    let config = Config {
        graft_burst_bytes: 400,
        graft_bytes_per_sec: 400,
        ..Config::default()
    };
    let (mut g, relay, grafter) = node_with(config);
    let ids = relay_and_announce(&mut g, at(0), relay, vec![message(1, 100), message(2, 100)]);
    let first = send(&mut g, at(10), grafter, TreeMessage::Graft { id: ids[0] });
    assert_eq!(answered(&first, grafter).0, 1);
    // Over budget: declined, and the decline is dropped, so it is owed.
    let second = send(&mut g, at(10), grafter, TreeMessage::Graft { id: ids[1] });
    assert_eq!(declined(&second, grafter), vec![ids[1]]);
    drop_at(
        &mut g,
        10,
        grafter,
        TreeMessage::Decline { id: ids[1] },
        DropReason::QueueFull,
    );
    // The grafter asks again once the budget refilled, and is answered before the next flush.
    let again = send(&mut g, at(2_000), grafter, TreeMessage::Graft { id: ids[1] });
    assert_eq!(answered(&again, grafter).0, 1);
    let mut out = Vec::new();
    g.handle(at(2_010), Input::Timer(Timer::FlushIHave), &mut out);
    assert!(
        declined(&out, grafter).is_empty(),
        "a decline after the message would be waste"
    );
}

/// A node whose seen cache holds two messages' bytes (announcements are remembered by count):
/// message 1 is announced to the grafter, forgotten, and comes again, now awaiting the verdict of
/// an application that validates the topic. Returns the node, the grafter and the message's id.
fn announced_forgotten_and_back() -> (Gossip, PeerId, MessageId) {
    let config = Config {
        seen_max_bytes: 2 * (100 + 320),
        ..Config::default()
    };
    let (mut g, relay, grafter) = node_with(config);
    let [id] = relay_and_announce(&mut g, at(0), relay, vec![message(1, 100)])[..] else {
        unreachable!()
    };
    relay_and_announce(&mut g, at(1), relay, vec![message(2, 100), message(3, 100)]);
    let validated = TopicOptions::default().with_validation();
    g.handle(
        at(2),
        Input::Command(Command::Subscribe(topic(), validated)),
        &mut Vec::new(),
    );
    let again = TreeMessage::Gossip {
        message: message(1, 100),
        hops: 1,
    };
    let out = send(&mut g, at(3), relay, again);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Emit(meshwork_gossip::Event::Validate { .. }))),
        "{out:?}"
    );
    (g, grafter, id)
}

/// The application ignores message `id` this time (it holds it already), at 5 ms.
fn ignore(g: &mut Gossip, id: MessageId) -> Vec<Output<Gossip>> {
    let mut out = Vec::new();
    let verdict = Command::Validated(id, meshwork_gossip::Verdict::Ignore);
    g.handle(at(5), Input::Command(verdict), &mut out);
    out
}

#[test]
fn a_graft_taken_while_the_message_awaits_its_verdict_is_declined_if_it_is_not_accepted() {
    let (mut g, grafter, id) = announced_forgotten_and_back();
    let out = send(&mut g, at(4), grafter, TreeMessage::Graft { id });
    assert_eq!(answered(&out, grafter).0, 0);
    assert!(
        declined(&out, grafter).is_empty(),
        "the verdict may still be Accept"
    );
    // Nothing will follow: the grafter is told so.
    assert_eq!(declined(&ignore(&mut g, id), grafter), vec![id]);
}

#[test]
fn a_graft_for_a_message_the_application_refused_after_it_came_again_is_declined_at_once() {
    let (mut g, grafter, id) = announced_forgotten_and_back();
    assert!(
        declined(&ignore(&mut g, id), grafter).is_empty(),
        "nobody grafted it"
    );
    let out = send(&mut g, at(6), grafter, TreeMessage::Graft { id });
    assert_eq!(answered(&out, grafter).0, 0);
    assert_eq!(declined(&out, grafter), vec![id]);
}

#[test]
fn a_neighbour_that_leaves_and_comes_back_takes_up_the_answer_budget_it_left() {
    // A budget of one answer, refilled slowly.
    let config = Config {
        graft_burst_bytes: 600,
        graft_bytes_per_sec: 1,
        ..Config::default()
    };
    let (mut g, relay, grafter) = node_with(config);
    let messages = vec![message(1, 200), message(2, 200)];
    let ids = relay_and_announce(&mut g, at(0), relay, messages);
    let out = send(&mut g, at(1), grafter, TreeMessage::Graft { id: ids[0] });
    assert_eq!(answered(&out, grafter).0, 1);
    let out = send(&mut g, at(2), grafter, TreeMessage::Graft { id: ids[1] });
    assert_eq!(declined(&out, grafter), vec![ids[1]], "over the budget");
    // It leaves and comes back: told of the recent messages again, it grafts the second once more.
    let mut out = Vec::new();
    g.handle(at(3), Input::PeerDown(grafter), &mut out);
    g.handle(at(4), Input::PeerUp(grafter), &mut out);
    let msg = Message::Membership(MembershipMessage::Neighbor { high_priority: true });
    g.handle(at(4), Input::Message { from: grafter, msg }, &mut out);
    assert!(g.active_view().contains(&grafter));
    g.handle(at(5), Input::Timer(Timer::FlushIHave), &mut out);
    let out = send(&mut g, at(6), grafter, TreeMessage::Graft { id: ids[1] });
    assert_eq!(answered(&out, grafter).0, 0, "the budget it left, not a full one");
    assert_eq!(declined(&out, grafter), vec![ids[1]]);
}
