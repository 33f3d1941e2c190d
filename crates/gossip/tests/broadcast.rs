//! The `Broadcast` capability as a parent protocol calls it in its own step: a publication returns its
//! message id (or why it was refused) and pushes the sends; a verdict given with `validated` forwards or
//! drops the message at once.
#![allow(clippy::unwrap_used)]

mod support;

use meshwork_gossip::{
    Broadcast, Config, Event, Gossip, GossipMessage, MembershipMessage, Message, PublishError, TopicId,
    TopicOptions, TreeMessage, Verdict,
};
use meshwork_identity::Keypair;
use meshwork_wire::{BoundedBytes, Input, Instant, Output, PeerId, Protocol};

fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

/// A validating node on `topic` with peers 2 and 3 in its active view.
fn node(topic: TopicId) -> (Gossip, PeerId, PeerId) {
    let mut gossip = Gossip::new(key(1), Config::default(), 7);
    gossip.subscribe(topic, TopicOptions::default().with_validation());
    let mut out = Vec::new();
    let (a, b) = (key(2).peer_id(), key(3).peer_id());
    for peer in [a, b] {
        gossip.handle(Instant::ZERO, Input::PeerUp(peer), &mut out);
        let msg = Message::Membership(MembershipMessage::Neighbor { high_priority: true });
        gossip.handle(Instant::ZERO, Input::Message { from: peer, msg }, &mut out);
    }
    (gossip, a, b)
}

#[test]
fn publish_answers_with_the_message_id_and_sends_in_the_same_step() {
    let topic = TopicId::from_name("broadcast");
    let (mut gossip, a, b) = node(topic);
    let mut out = Vec::new();
    let id = gossip
        .publish(Instant::ZERO, topic, b"hello".to_vec(), &mut out)
        .unwrap();
    assert!(gossip.has_seen(&id));
    let mut sent = support::gossip_sends(&out);
    sent.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(sent, expected, "pushed to both neighbours in the same step");
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Emit(Event::Published { .. }))),
        "the answer is the return value, not an event"
    );

    let other = TopicId::from_name("not subscribed");
    let refused = gossip.publish(Instant::ZERO, other, b"x".to_vec(), &mut Vec::new());
    assert_eq!(refused, Err(PublishError::NotSubscribed(other)));
}

#[test]
fn a_verdict_given_in_the_step_forwards_or_drops_the_message() {
    let topic = TopicId::from_name("broadcast");
    for (verdict, forwarded) in [
        (Verdict::Accept, true),
        (Verdict::Ignore, false),
        (Verdict::Reject, false),
    ] {
        let (mut gossip, a, b) = node(topic);
        let payload = BoundedBytes::try_from(b"relay me".to_vec()).unwrap();
        let message = GossipMessage::sign(&key(9), topic, 1, payload);
        let msg = Message::Tree(TreeMessage::Gossip { message, hops: 0 });
        let mut out = Vec::new();
        gossip.handle(Instant::ZERO, Input::Message { from: a, msg }, &mut out);
        let Some(id) = out.iter().find_map(|o| match o {
            Output::Emit(Event::Validate { id, .. }) => Some(*id),
            _ => None,
        }) else {
            panic!("a validating topic asks first");
        };
        assert!(
            support::gossip_sends(&out).is_empty(),
            "nothing is forwarded before the verdict"
        );
        let mut out = Vec::new();
        gossip.validated(Instant::ZERO, id, verdict, &mut out);
        assert_eq!(support::gossip_sends(&out) == vec![b], forwarded, "{verdict:?}");
    }
}
