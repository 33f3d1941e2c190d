//! # meshwork-chat: a gossip chat in the terminal
//!
//! The smallest useful meshwork application. [`ChatApp`] is one pure protocol composed of two
//! ([`meshwork_wire::compose`]): **Kademlia** bootstraps from the one address a user gives and finds
//! peers; **gossip** joins through the peers Kademlia found and carries chat lines on one topic
//! ([`chat_topic`]). Gossip signs every message by its publisher and verifies the signature before
//! anything else, so a line's sender is authenticated; the chat checks each line ([`ChatLine::check`]:
//! nickname of 1 to 32 bytes, at most 1 KiB of text, no control characters) before gossip relays it, and
//! a bad line counts against the peer that sent it.
//!
//! The `chat` binary runs a [`ChatApp`] on the node runtime over QUIC:
//!
//! ```text
//! chat --listen 127.0.1.1:7001 --nick ada
//! # prints: <peer-id>@127.0.1.1:7001
//! chat --listen 127.0.2.1:0 --nick bob --bootstrap <peer-id>@127.0.1.1:7001
//! ```
//!
//! Driving it by hand, with no network (a real driver is the node runtime):
//!
//! ```
//! use meshwork_chat::{ChatApp, ChatCommand, ChatConfig, ChatEvent};
//! use meshwork_identity::Keypair;
//! use meshwork_wire::{Input, Instant, Output, Protocol};
//!
//! let mut chat = ChatApp::new(Keypair::from_seed([1; 32]), &ChatConfig::default(), 1);
//! let mut out = Vec::new();
//! let say = ChatCommand::Say { nick: "a nickname longer than thirty-two bytes".into(), text: "hi".into() };
//! chat.handle(Instant::ZERO, Input::Command(say), &mut out);
//! assert!(matches!(&out[..], [Output::Emit(ChatEvent::NotSent(_))]));
//! ```
#![deny(missing_docs)]

mod app;
mod line;

pub use app::{ChatApp, ChatCommand, ChatConfig, ChatEvent, ChatMessage, ChatTimer, chat_topic};
pub use line::{ChatLine, LineError, MAX_LINE_PAYLOAD, MAX_NICK, MAX_TEXT};

/// The node runtime's hooks for a [`ChatApp`]: where to dial a peer (gossip's or Kademlia's address
/// for it), the observed address of each new connection handed to both children, and its measured
/// round trip handed to gossip.
pub fn hooks() -> meshwork_node::Hooks<ChatApp> {
    meshwork_node::Hooks {
        address_of: Some(|chat: &ChatApp, peer| chat.address_of(peer)),
        on_connected: Some(|peer, addr| Some(ChatCommand::PeerAddress { peer, addr })),
        on_round_trip: Some(|peer, rtt| Some(ChatCommand::PeerRoundTrip { peer, rtt })),
    }
}
