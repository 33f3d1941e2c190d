//! The checks a chat node makes on received lines, on the pure composite (no network): a good line is
//! delivered with its sender, nick and text; a forged signature, an oversized nickname, control
//! characters or a payload that is no line are not delivered. And the driver's round trips reach gossip.
#![allow(clippy::unwrap_used)]

use meshwork_chat::{ChatApp, ChatConfig, ChatEvent, ChatLine, ChatMessage, LineError, chat_topic};
use meshwork_gossip::{GossipMessage, Message, TreeMessage};
use meshwork_identity::Keypair;
use meshwork_wire::{Input, Instant, Output, Protocol};

/// A chat node with one connected peer, `sender`.
fn node_with_peer(sender: &Keypair) -> ChatApp {
    let mut chat = ChatApp::new(Keypair::from_seed([1; 32]), &ChatConfig::default(), 1);
    chat.handle(Instant::ZERO, Input::PeerUp(sender.peer_id()), &mut Vec::new());
    chat
}

/// Hands `chat` a gossip message from `sender` and returns the lines it delivered.
fn receive(chat: &mut ChatApp, sender: &Keypair, message: GossipMessage) -> Vec<ChatEvent> {
    let msg = ChatMessage::Gossip(Message::Tree(TreeMessage::Gossip { message, hops: 1 }));
    let mut out = Vec::new();
    chat.handle(
        Instant::ZERO,
        Input::Message {
            from: sender.peer_id(),
            msg,
        },
        &mut out,
    );
    out.into_iter()
        .filter_map(|output| match output {
            Output::Emit(event @ ChatEvent::Line { .. }) => Some(event),
            _ => None,
        })
        .collect()
}

fn signed(key: &Keypair, seq: u64, payload: Vec<u8>) -> GossipMessage {
    GossipMessage::sign(key, chat_topic(), seq, payload.try_into().unwrap())
}

fn line(nick: &str, text: &str) -> Vec<u8> {
    ChatLine {
        nick: nick.into(),
        text: text.into(),
    }
    .encode()
}

#[test]
fn a_good_line_is_delivered_with_its_sender_nick_and_text() {
    let bob = Keypair::from_seed([2; 32]);
    let mut chat = node_with_peer(&bob);
    let got = receive(&mut chat, &bob, signed(&bob, 1, line("bob", "hello")));
    let expected = ChatEvent::Line {
        from: bob.peer_id(),
        nick: "bob".into(),
        text: "hello".into(),
    };
    assert_eq!(got, vec![expected]);
}

#[test]
fn a_forged_signature_is_not_delivered() {
    let bob = Keypair::from_seed([2; 32]);
    let mallory = Keypair::from_seed([3; 32]);
    let mut chat = node_with_peer(&bob);
    // Mallory signs a line and claims Bob published it.
    let mut forged = signed(&mallory, 1, line("bob", "send me your coins"));
    forged.origin = bob.peer_id();
    assert!(receive(&mut chat, &bob, forged).is_empty());
    assert_eq!(chat.gossip().stats().bad_signatures, 1);
    // A tampered text under Bob's real signature is forged too.
    let mut tampered = signed(&bob, 2, line("bob", "hello"));
    tampered.payload = line("bob", "goodbye").try_into().unwrap();
    assert!(receive(&mut chat, &bob, tampered).is_empty());
    assert_eq!(chat.gossip().stats().bad_signatures, 2);
}

#[test]
fn bad_lines_are_not_delivered_and_good_ones_still_are() {
    let bob = Keypair::from_seed([2; 32]);
    let carol = Keypair::from_seed([4; 32]);
    let mut chat = node_with_peer(&bob);
    let long_nick = "n".repeat(33);
    let bad = [
        line(&long_nick, "hi"),
        line("", "hi"),
        line("bob", "\u{1b}[2Jcleared your screen"),
        line("bob", &"x".repeat(1025)),
        b"not a line".to_vec(),
    ];
    for (seq, payload) in bad.into_iter().enumerate() {
        let got = receive(&mut chat, &bob, signed(&bob, seq as u64, payload));
        assert!(got.is_empty(), "bad line {seq} was delivered: {got:?}");
    }
    // Each rejection cost the peer that relayed the line (gossip's default: 20 points each); the
    // fifth reached the ban threshold (-100).
    assert!(chat.gossip().is_banned(&bob.peer_id()));
    // The same node still delivers a good line from another peer.
    chat.handle(Instant::ZERO, Input::PeerUp(carol.peer_id()), &mut Vec::new());
    let got = receive(&mut chat, &carol, signed(&carol, 9, line("carol", "still here")));
    assert_eq!(got.len(), 1);
}

#[test]
fn the_line_rules() {
    assert_eq!(ChatLine::new(&"n".repeat(33), "hi"), Err(LineError::BadNick(33)));
    assert_eq!(ChatLine::new("", "hi"), Err(LineError::BadNick(0)));
    assert_eq!(
        ChatLine::new("ada", &"x".repeat(1025)),
        Err(LineError::TooLong(1025))
    );
    assert_eq!(ChatLine::new("ada", "a\nb"), Err(LineError::ControlCharacter));
    let ok = ChatLine::new(&"n".repeat(32), &"x".repeat(1024)).unwrap();
    assert!(ok.encode().len() <= meshwork_chat::MAX_LINE_PAYLOAD);
    assert_eq!(ChatLine::decode(&ok.encode()), Ok(ok));
    assert_eq!(ChatLine::decode(b"\xff\xff"), Err(LineError::Malformed));
}

#[test]
fn a_measured_round_trip_reaches_gossip() {
    let mut chat = ChatApp::new(Keypair::from_seed([1; 32]), &ChatConfig::default(), 1);
    assert_eq!(chat.gossip().graft_rtt(), None);
    let (peer, rtt) = (
        Keypair::from_seed([2; 32]).peer_id(),
        std::time::Duration::from_millis(40),
    );
    let command = meshwork_chat::ChatCommand::PeerRoundTrip { peer, rtt };
    chat.handle(Instant::from_nanos(1), Input::Command(command), &mut Vec::new());
    assert_eq!(chat.gossip().graft_rtt(), Some(rtt));
    // The node runtime's hook builds that command from each connection's handshake.
    let hook = meshwork_chat::hooks().on_round_trip.unwrap();
    assert!(matches!(
        hook(peer, rtt),
        Some(meshwork_chat::ChatCommand::PeerRoundTrip { peer: p, rtt: r }) if p == peer && r == rtt
    ));
}
