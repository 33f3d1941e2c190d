//! One gossip node driven by hand: signatures, validation before forwarding, prune, graft, golden bytes.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use std::time::Duration;

use meshwork_gossip::{
    Announcement, Command, Config, Event, Gossip, GossipMessage, MAX_SHUFFLE, MembershipMessage, Message,
    MessageId, PeerEntry, TopicId, TopicOptions, TreeMessage, TreeRef, TreeTag, Verdict,
};
use meshwork_identity::{Hash, Keypair, Signature};
use meshwork_wire::{Input, Instant, Output, PeerId, Protocol, golden};

fn topic() -> TopicId {
    TopicId::from_name("t")
}

fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

/// A node with `validate` on its topic, with peers 2 and 3 in its active view.
fn node(validate: bool) -> (Gossip, PeerId, PeerId) {
    let mut g = Gossip::new(key(1), Config::default(), 7);
    let mut out = Vec::new();
    let options = TopicOptions::default().with_validate(validate);
    g.handle(
        Instant::ZERO,
        Input::Command(Command::Subscribe(topic(), options)),
        &mut out,
    );
    let (a, b) = (key(2).peer_id(), key(3).peer_id());
    for peer in [a, b] {
        g.handle(Instant::ZERO, Input::PeerUp(peer), &mut out);
        let msg = Message::Membership(MembershipMessage::Neighbor { high_priority: true });
        g.handle(Instant::ZERO, Input::Message { from: peer, msg }, &mut out);
    }
    assert_eq!(g.active_view().len(), 2);
    (g, a, b)
}

fn gossip(seq: u64) -> GossipMessage {
    GossipMessage::sign(&key(9), topic(), seq, b"hi".to_vec().try_into().unwrap())
}

fn sends(out: &[Output<Gossip>]) -> Vec<(PeerId, TreeMessage)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg: Message::Tree(m),
            } => Some((*to, m.clone())),
            _ => None,
        })
        .collect()
}

fn receive(g: &mut Gossip, from: PeerId, message: GossipMessage) -> Vec<Output<Gossip>> {
    let mut out = Vec::new();
    let msg = Message::Tree(TreeMessage::Gossip { message, hops: 1 });
    g.handle(Instant::ZERO, Input::Message { from, msg }, &mut out);
    out
}

#[test]
fn a_bad_signature_is_rejected_and_scores_down() {
    let (mut g, a, _) = node(false);
    let mut forged = gossip(1);
    forged.signature = Signature::from_bytes([0; 64]);
    let out = receive(&mut g, a, forged);
    assert!(sends(&out).is_empty(), "not forwarded");
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Emit(Event::Delivered { .. })))
    );
    assert!(g.score(&a, Instant::ZERO) < 0.0);
    assert_eq!(g.stats().bad_signatures, 1);
    assert_eq!(g.stats().signatures_verified, 1);
    // Enough of them and the peer is banned and disconnected.
    let mut out = Vec::new();
    for seq in 2..6 {
        let mut forged = gossip(seq);
        forged.signature = Signature::from_bytes([0; 64]);
        out.extend(receive(&mut g, a, forged));
    }
    assert!(g.is_banned(&a));
    assert!(!g.active_view().contains(&a));
    assert!(out.iter().any(|o| matches!(o, Output::Disconnect(p) if *p == a)));
}

#[test]
fn a_message_is_forwarded_only_after_accept() {
    let (mut g, a, b) = node(true);
    let out = receive(&mut g, a, gossip(1));
    assert!(sends(&out).is_empty(), "nothing goes out before the verdict");
    let id = out
        .iter()
        .find_map(|o| match o {
            Output::Emit(Event::Validate { id, .. }) => Some(*id),
            _ => None,
        })
        .unwrap();
    assert_eq!(g.pending_validations(), 1);
    let mut out = Vec::new();
    g.handle(
        Instant::ZERO,
        Input::Command(Command::Validated(id, Verdict::Accept)),
        &mut out,
    );
    let sent = sends(&out);
    assert_eq!(sent.len(), 1);
    assert!(matches!(&sent[0], (to, TreeMessage::Gossip { hops: 2, .. }) if *to == b));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Emit(Event::Delivered { .. })))
    );
}

#[test]
fn a_rejected_message_is_dropped_and_counts_against_the_sender() {
    let (mut g, a, _) = node(true);
    let message = gossip(1);
    let id = message.id();
    receive(&mut g, a, message);
    let mut out = Vec::new();
    g.handle(
        Instant::ZERO,
        Input::Command(Command::Validated(id, Verdict::Reject)),
        &mut out,
    );
    assert!(sends(&out).is_empty());
    assert!(g.score(&a, Instant::ZERO) < 0.0);
}

/// A message the application finds invalid only later (a coin's orphan, once its parent comes) is
/// blamed on its relay with `Command::Blame`: charged as a rejection, so five ban it, as five
/// rejected messages do; its neighbour is not charged.
#[test]
fn blame_charges_a_rejection_after_the_fact_and_enough_of_it_bans() {
    let (mut g, a, b) = node(true);
    let mut out = Vec::new();
    g.handle(Instant::ZERO, Input::Command(Command::Blame(a)), &mut out);
    let once = g.score(&a, Instant::ZERO);
    assert!(once < 0.0 && !g.is_banned(&a));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Emit(Event::PeerBanned(_))))
    );
    for _ in 0..4 {
        g.handle(Instant::ZERO, Input::Command(Command::Blame(a)), &mut out);
    }
    assert!(g.is_banned(&a), "score {}", g.score(&a, Instant::ZERO));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Emit(Event::PeerBanned(p)) if *p == a))
    );
    assert!(!g.active_view().contains(&a));
    assert_eq!(g.score(&b, Instant::ZERO), 0.0);
    // Told before it is released, so that its view does not keep us (in a composite the connection
    // stays up for the other protocols).
    let told = out.iter().position(|o| {
        let disconnect = Message::Membership(MembershipMessage::Disconnect { alternative: None });
        matches!(o, Output::Send { to, msg } if *to == a && *msg == disconnect)
    });
    let released = out
        .iter()
        .position(|o| matches!(o, Output::Disconnect(p) if *p == a));
    assert!(
        told.is_some() && told < released,
        "told {told:?}, released {released:?}"
    );
}

#[test]
fn a_duplicate_triggers_prune() {
    let (mut g, a, b) = node(false);
    receive(&mut g, a, gossip(1));
    let out = receive(&mut g, b, gossip(1));
    let origin = key(9).peer_id();
    assert_eq!(sends(&out), vec![(b, TreeMessage::Prune { origin })]);
    assert_eq!(g.lazy_peers(&origin), vec![b]);
    assert_eq!(g.eager_peers(&origin), vec![a]);
    // The exact copy was not verified again.
    assert_eq!(g.stats().signatures_verified, 1);
}

#[test]
fn a_missing_message_triggers_graft_after_the_timeout() {
    let (mut g, a, _) = node(false);
    let id = gossip(1).id();
    let mut out = Vec::new();
    let ids = vec![Announcement {
        id,
        hops: 1,
        tree: TreeTag::of(&key(9).peer_id()),
    }]
    .try_into()
    .unwrap();
    let msg = Message::Tree(TreeMessage::IHave { ids });
    g.handle(Instant::ZERO, Input::Message { from: a, msg }, &mut out);
    let timer = out
        .iter()
        .find_map(|o| match o {
            Output::Schedule { after, timer } if *after == Config::default().graft_timeout => {
                Some(timer.clone())
            }
            _ => None,
        })
        .unwrap();
    let mut out = Vec::new();
    g.handle(
        Instant::from_duration(Duration::from_millis(300)),
        Input::Timer(timer),
        &mut out,
    );
    assert_eq!(sends(&out), vec![(a, TreeMessage::Graft { id })]);
}

#[test]
fn publishing_over_the_topic_limit_fails_clearly() {
    let mut g = Gossip::new(key(1), Config::default(), 7);
    let mut out = Vec::new();
    let options = TopicOptions::default().with_max_payload(4);
    g.handle(
        Instant::ZERO,
        Input::Command(Command::Subscribe(topic(), options)),
        &mut out,
    );
    g.handle(
        Instant::ZERO,
        Input::Command(Command::Publish(topic(), vec![0; 5])),
        &mut out,
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Emit(Event::PublishFailed(_))))
    );
}

#[test]
fn golden_vectors() {
    golden::check(&Message::Membership(MembershipMessage::Join), "0000");
    golden::check(
        &Message::Membership(MembershipMessage::Neighbor { high_priority: true }),
        "000201",
    );
    // Changed with per-origin trees and eviction hints: `Disconnect`, `Prune` and `Graft` gained fields and
    // `Shortcut` is new (the peer id is key(2)'s, the message id blake3 of "m"). Changed again when
    // addresses came to travel with peers: a named peer is a `PeerEntry` (id, then an optional address:
    // tag 0 for IPv4 with 4 bytes, 1 for IPv6 with 16, then the port as a varint).
    let peer = key(2).peer_id();
    let disconnect = |alternative| Message::Membership(MembershipMessage::Disconnect { alternative });
    golden::check(&disconnect(None), "000400");
    golden::check(
        &disconnect(Some(PeerEntry::id_only(peer))),
        "0004018139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b39400",
    );
    let reply = |alternative| {
        Message::Membership(MembershipMessage::NeighborReply {
            accepted: false,
            alternative,
        })
    };
    golden::check(&reply(None), "00030000");
    golden::check(
        &reply(Some(PeerEntry::id_only(peer))),
        "00030001 8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394 00",
    );
    let v4 = PeerEntry {
        id: peer,
        addr: Some("127.1.2.1:4001".parse().unwrap()),
    };
    golden::check(
        &Message::Membership(MembershipMessage::ForwardJoin { joiner: v4, ttl: 6 }),
        "00018139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394 01 00 7f010201 a11f 06",
    );
    let v6 = PeerEntry {
        id: peer,
        addr: Some("[2001:db8::1]:443".parse().unwrap()),
    };
    golden::check(
        &Message::Membership(MembershipMessage::ShuffleReply {
            peers: vec![v6].try_into().unwrap(),
            nonce: 300,
        }),
        "0006 01 8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394 01 01 \
         20010db8000000000000000000000001 bb03 ac02",
    );
    golden::check(
        &Message::Tree(TreeMessage::Prune { origin: peer }),
        "01038139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394",
    );
    golden::check(
        &Message::Tree(TreeMessage::Shortcut { origin: peer }),
        "01048139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394",
    );
    // New with the shared tree (`Trees::Shared`); the variants before it keep their bytes.
    golden::check(&Message::Tree(TreeMessage::PruneShared), "0105");
    // Ids and topics are the first 16 bytes of their hashes since `/meshwork/gossip/3`.
    let id = MessageId::from_hash(&Hash::digest(b"m"));
    golden::check(
        &Message::Tree(TreeMessage::Graft { id }),
        "0102 83d9dab06011479163c7c4d5fa735f91",
    );
    // New with declines; the variants before it keep their bytes.
    golden::check(
        &Message::Tree(TreeMessage::Decline { id }),
        "0106 83d9dab06011479163c7c4d5fa735f91",
    );
    // New with borrowed trees, which name their tree by eight bytes of its origin since
    // `/meshwork/gossip/3`.
    let message = GossipMessage {
        origin: peer,
        topic: TopicId::from_hash(&Hash::digest(b"t")),
        seq: 1,
        payload: b"tx".to_vec().try_into().unwrap(),
        signature: Signature::from_bytes([7; 64]),
    };
    golden::check(
        &Message::Tree(TreeMessage::Borrowed {
            tree: TreeRef::of(&peer),
            message,
            hops: 2,
        }),
        "0107 8139770ea87d175f 8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394 \
         0538661423236a5d8df6286a8633369e 01 02 7478 07070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707070707 \
         02",
    );
    // An announcement names the 16-byte id.
    let announced = Announcement {
        id,
        hops: 3,
        tree: TreeTag::of(&peer),
    };
    golden::check(
        &Message::Tree(TreeMessage::IHave {
            ids: vec![announced].try_into().unwrap(),
        }),
        "0101 01 83d9dab06011479163c7c4d5fa735f91 03 8139770e",
    );
    // A real signature pins the signed content (its layout and namespace) and the id derived from it.
    let signed = GossipMessage::sign(&key(9), topic(), 1, b"tx".to_vec().try_into().unwrap());
    golden::check(
        &signed,
        "fd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f618 da87377a34e6a7fdd22ad908ad94ec8b 01 02 7478 \
         c46197f81dd355a39473c71507dc2d7ab0fa1c7ddb24577861739618becc922875a7b487816e3ac60c7f77af7ed0d852471c87190ecf407820a5db5b221b0f0e",
    );
    assert_eq!(signed.id().to_string(), "3f115a0218dd8d13c6ac5d26ad025c86");
}

#[test]
fn named_peers_decode_within_their_bounds_and_nothing_else() {
    let entry = PeerEntry {
        id: key(2).peer_id(),
        addr: Some("[2001:db8::1]:65535".parse().unwrap()),
    };
    let reply = |n: usize| {
        let mut bytes = meshwork_wire::encode(&Message::Membership(MembershipMessage::ShuffleReply {
            peers: vec![entry; 1].try_into().unwrap(),
            nonce: 0,
        }))
        .unwrap();
        // Announce `n` entries and repeat the one entry's bytes (after the tags and the length byte,
        // before the nonce, one byte at the end).
        let nonce = bytes.pop();
        let one = bytes.split_off(3);
        bytes[2] = n as u8;
        for _ in 0..n {
            bytes.extend_from_slice(&one);
        }
        bytes.extend(nonce);
        bytes
    };
    let full = reply(MAX_SHUFFLE);
    assert!(meshwork_wire::decode::<Message>(&full).is_ok());
    assert!(
        meshwork_wire::decode::<Message>(&reply(MAX_SHUFFLE + 1)).is_err(),
        "over the bound"
    );
    let mut trailing = full;
    trailing.push(0);
    assert!(
        meshwork_wire::decode::<Message>(&trailing).is_err(),
        "trailing bytes"
    );
    // An address tag other than none (0) or some (1), and an address family other than 4 (0) or 6 (1).
    let one = reply(1);
    let mut bad_option = one.clone();
    bad_option[3 + 32] = 2;
    assert!(meshwork_wire::decode::<Message>(&bad_option).is_err());
    let mut bad_family = one;
    bad_family[3 + 33] = 2;
    assert!(meshwork_wire::decode::<Message>(&bad_family).is_err());
    // The largest membership message is far below the frame limit.
    let shuffle = Message::Membership(MembershipMessage::Shuffle {
        origin: entry,
        ttl: u8::MAX,
        peers: vec![entry; MAX_SHUFFLE].try_into().unwrap(),
        nonce: u64::MAX,
    });
    assert!(meshwork_wire::encoded_len(&shuffle).unwrap() < 1024);
}

#[test]
fn the_largest_message_fits_the_frame_limit() {
    let payload = vec![0u8; meshwork_gossip::MAX_PAYLOAD];
    let message = GossipMessage::sign(&key(9), topic(), u64::MAX, payload.try_into().unwrap());
    let msg = Message::Tree(TreeMessage::Gossip {
        message,
        hops: u16::MAX,
    });
    assert!(meshwork_wire::encoded_len(&msg).unwrap() <= Gossip::MAX_MESSAGE_SIZE);
}
