//! The reference the `gossip_quic` benchmark measures gossip against: a plain flood over the links
//! it is given (gossip's active-view links), every new message to every link but the one it came
//! from. Optionally each copy carries a signed gossip message that is checked before it is delivered
//! and relayed (the signed flood), so the cost of a signature check can be told from the rest.

use std::collections::HashSet;

use meshwork_gossip::GossipMessage;
use meshwork_identity::PeerId;
use meshwork_sim::flood::{FloodMessage, MAX_PAYLOAD};
use meshwork_wire::{BoundedBytes, Input, Output, Protocol, ProtocolId};

/// The reference's commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FloodCommand {
    /// Flood over these peers only (gossip's active-view links).
    Links(Vec<PeerId>),
    /// Publish a message with this id.
    Publish(u64, BoundedBytes<MAX_PAYLOAD>),
    /// Whether every payload is a signed gossip message, checked before it is delivered (the signed
    /// flood), or not (the plain one).
    Verify(bool),
}

/// Flood over the links it is given: every new message goes to every link but the one it came from.
#[derive(Default)]
pub struct Reference {
    links: HashSet<PeerId>,
    up: HashSet<PeerId>,
    seen: HashSet<u64>,
    /// Payloads are signed gossip messages ([`FloodCommand::Verify`]).
    verify: bool,
}

/// Whether `payload` is a gossip message whose signature holds.
fn signed_message_valid(payload: &[u8]) -> bool {
    meshwork_wire::decode::<GossipMessage>(payload).is_ok_and(|message| message.verify().is_ok())
}

impl Reference {
    fn forward(&self, msg: &FloodMessage, except: Option<PeerId>, out: &mut Vec<Output<Self>>) {
        let next = FloodMessage {
            hops: msg.hops + 1,
            ..msg.clone()
        };
        let mut to: Vec<&PeerId> = self.links.intersection(&self.up).collect();
        to.sort(); // a stable order, not the hash set's
        for peer in to {
            if Some(*peer) != except {
                out.push(Output::Send {
                    to: *peer,
                    msg: next.clone(),
                });
            }
        }
    }
}

impl Protocol for Reference {
    type Message = FloodMessage;
    type Command = FloodCommand;
    /// A delivery: the message's id, and the links its copy crossed.
    type Event = (u64, u32);
    type Timer = ();

    const ID: ProtocolId = ProtocolId::new("/meshwork-bench/flood/1");
    const MAX_MESSAGE_SIZE: usize = MAX_PAYLOAD + 32;

    fn handle(&mut self, _now: meshwork_wire::Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        match input {
            Input::Command(FloodCommand::Links(peers)) => {
                self.links = peers.into_iter().collect();
                for peer in &self.links {
                    if !self.up.contains(peer) {
                        out.push(Output::Dial(*peer));
                    }
                }
            }
            Input::Command(FloodCommand::Verify(on)) => self.verify = on,
            Input::Command(FloodCommand::Publish(id, payload)) => {
                if self.seen.insert(id) {
                    out.push(Output::Emit((id, 0)));
                    self.forward(&FloodMessage { id, hops: 0, payload }, None, out);
                }
            }
            Input::Message { from, msg } => {
                // A copy whose signature fails is neither delivered nor relayed, nor marks its id seen.
                if self.seen.contains(&msg.id) || (self.verify && !signed_message_valid(&msg.payload)) {
                    return;
                }
                self.seen.insert(msg.id);
                out.push(Output::Emit((msg.id, msg.hops)));
                self.forward(&msg, Some(from), out);
            }
            Input::PeerUp(peer) => {
                self.up.insert(peer);
                if !self.links.contains(&peer) {
                    // Not one of gossip's links: leave the connection to gossip's use.
                    out.push(Output::Disconnect(peer));
                }
            }
            Input::PeerDown(peer) => {
                self.up.remove(&peer);
            }
            Input::Timer(()) => {}
        }
    }
}
