//! Flooding: the reference broadcast every smarter protocol is measured against.
//!
//! Each node eagerly pushes every new message to all its neighbours except the one it came from, and
//! drops copies it has already seen (by message id). On a connected overlay it reaches every node along
//! the shortest paths, so its latency and hop counts are the best possible, at the price of sending every
//! message over every link about once in each direction: RMR ≈ average degree − 2. Gossip protocols
//! (Plumtree) aim to keep the reach and latency while bringing RMR near zero.
//!
//! ```
//! use meshwork_sim::flood::{Flood, FloodCommand, FloodEvent};
//! use meshwork_sim::{Sim, SimConfig, topology};
//! use meshwork_wire::Instant;
//!
//! let mut sim = Sim::new(SimConfig::new(1));
//! sim.add_nodes(50, |_| Flood::new()).unwrap();
//! topology::connect_random_regular(&mut sim, 4).unwrap();
//! sim.run_until(Instant::MAX, |_, _, _| {});
//!
//! let origin = meshwork_sim::NodeId(0);
//! sim.command(origin, FloodCommand::publish(7, b"hello".to_vec()).unwrap()).unwrap();
//! let mut reached = 0;
//! sim.run_for(1_000_000, |_, _, event| if let FloodEvent::Delivered { id: 7, .. } = event { reached += 1 });
//! assert_eq!(reached, 50);
//! ```

use std::collections::HashSet;
use std::hash::BuildHasherDefault;

use meshwork_wire::{BoundedBytes, Input, Instant, LengthError, Output, PeerId, Protocol, ProtocolId};
use serde::{Deserialize, Serialize};

/// The largest payload a flood message carries, in bytes.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// A flooded message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloodMessage {
    /// The message id, chosen by the publisher; copies with a seen id are dropped.
    pub id: u64,
    /// How many links it has crossed.
    pub hops: u32,
    /// The application's bytes.
    pub payload: BoundedBytes<MAX_PAYLOAD>,
}

/// What the application asks of [`Flood`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FloodCommand {
    /// Send a new message to everyone.
    Publish {
        /// Its id (must be fresh).
        id: u64,
        /// Its payload.
        payload: BoundedBytes<MAX_PAYLOAD>,
    },
}

impl FloodCommand {
    /// A publish command, if the payload fits [`MAX_PAYLOAD`].
    pub fn publish(id: u64, payload: Vec<u8>) -> Result<Self, LengthError> {
        Ok(Self::Publish {
            id,
            payload: payload.try_into()?,
        })
    }
}

/// What [`Flood`] tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FloodEvent {
    /// A message was delivered here for the first time (at the origin too, with `hops == 0`).
    Delivered {
        /// The message id.
        id: u64,
        /// Links crossed on the first path that reached this node.
        hops: u32,
        /// The payload size in bytes.
        payload_len: usize,
    },
}

/// A flooding node: its neighbours and the ids it has seen.
///
/// The seen set grows with every message (a baseline does not need to forget); long runs with many
/// messages cost 8–16 bytes per message per node.
#[derive(Clone, Debug, Default)]
pub struct Flood {
    neighbours: Vec<PeerId>,
    seen: HashSet<u64, BuildHasherDefault<crate::fast_hash::FoldHasher>>,
}

impl Flood {
    /// A node with no neighbours yet; `PeerUp` adds them.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current neighbours.
    pub fn neighbours(&self) -> &[PeerId] {
        &self.neighbours
    }

    /// True if message `id` was delivered here.
    pub fn has_seen(&self, id: u64) -> bool {
        self.seen.contains(&id)
    }

    fn forward(&self, msg: &FloodMessage, except: Option<&PeerId>, out: &mut Vec<Output<Self>>) {
        for peer in &self.neighbours {
            if Some(peer) != except {
                out.push(Output::Send {
                    to: *peer,
                    msg: FloodMessage {
                        id: msg.id,
                        hops: msg.hops + 1,
                        payload: msg.payload.clone(),
                    },
                });
            }
        }
    }
}

impl Protocol for Flood {
    type Message = FloodMessage;
    type Command = FloodCommand;
    type Event = FloodEvent;
    type Timer = ();

    const ID: ProtocolId = ProtocolId::new("/meshwork/flood/1");
    const MAX_MESSAGE_SIZE: usize = MAX_PAYLOAD + 32;

    fn handle(&mut self, _now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        match input {
            Input::Command(FloodCommand::Publish { id, payload }) => {
                if self.seen.insert(id) {
                    let msg = FloodMessage { id, hops: 0, payload };
                    out.push(Output::Emit(FloodEvent::Delivered {
                        id,
                        hops: 0,
                        payload_len: msg.payload.as_ref().len(),
                    }));
                    self.forward(&msg, None, out);
                }
            }
            Input::Message { from, msg } => {
                if self.seen.insert(msg.id) {
                    out.push(Output::Emit(FloodEvent::Delivered {
                        id: msg.id,
                        hops: msg.hops,
                        payload_len: msg.payload.as_ref().len(),
                    }));
                    self.forward(&msg, Some(&from), out);
                }
            }
            Input::PeerUp(peer) => {
                if !self.neighbours.contains(&peer) {
                    self.neighbours.push(peer);
                }
            }
            Input::PeerDown(peer) => self.neighbours.retain(|p| *p != peer),
            Input::Timer(()) => {}
        }
    }
}
