//! A relay for peers that cannot reach each other: circuits through a public node, with the QUIC
//! session still end to end.
//!
//! # The model
//!
//! Behind a symmetric NAT a hole punch fails (the crate docs say why), and the only path between two
//! peers goes through a node both can reach. This follows libp2p's circuit relay v2:
//!
//! 1. The peer that wants to be reachable **reserves** at a public relay ([`RelayCommand::Reserve`]):
//!    the relay keeps its connection and will accept circuits to it until the reservation's TTL runs
//!    out (the client renews at three quarters of it, and reserves again after losing the relay).
//! 2. A peer that wants to reach it asks the relay to **connect** ([`RelayCommand::Connect`]). The relay
//!    checks the target's reservation and its limits, numbers a **circuit**, and tells both ends
//!    (`Opened`, `Incoming`).
//! 3. The ends then exchange **datagrams** over the circuit: each `Send` reaches the relay, which
//!    delivers it to the other end. The datagrams are QUIC packets of a connection between the two
//!    ends, encrypted and authenticated by their own keys; the relay sees only ciphertext. The QUIC
//!    transport's relay paths (`meshwork_transport::quic::RelayPaths`) turn a circuit into a path
//!    quinn sends on, at a virtual address that marks the connection as relayed
//!    ([`meshwork_wire::relayed`]); the `driver` feature's [`bridge`](crate::bridge) joins the two.
//!
//! Unlike libp2p's relay, which splices a stream per circuit, the relay here is a pure protocol: a
//! datagram is a message, so the simulator runs relays at scale, and every bound is a count the
//! relay checks before it forwards.
//!
//! # Bounds
//!
//! A relay spends its own bandwidth on others, so everything it does for them is bounded
//! ([`RelayLimits`]): reservations, in all and per IP prefix; circuits in all, per peer, per dialer
//! network and target, and per dialer network; and each circuit's bytes, lifetime and idleness. The
//! prefixes are those the driver observed ([`RelayCommand::Connected`], the node runtime's
//! `on_connected` hook with [`Relay::on_connected`]): identities are free, networks are not. A circuit
//! one end has sent nothing on for a minute closes, and at a full end a circuit one end has not
//! spoken on gives way to a new one: a QUIC path carries traffic both ways, so neither a circuit left
//! unused nor one kept alive from one side carries a connection. A refused reservation for a full
//! relay is asked again later. A datagram that would take a circuit past its byte limit is not
//! forwarded, and the circuit closes ([`CircuitEnd::ByteLimit`]); a flood through a circuit therefore
//! costs the relay at most the limit. What the relay holds per datagram is bounded by the node
//! runtime's per-peer send queues: a flood faster than the target reads is dropped there and counted.
//! Peers holding a reservation or a circuit are protected from the connection manager while they do.

mod client;
pub mod message;
mod origins;
mod server;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::{BoundedBytes, DropReason, Input, Instant, Output, Protocol, ProtocolId};

use client::Client;
pub use message::{CircuitEnd, CircuitId, MAX_DATAGRAM, RelayMessage, RelayRefusal};
use server::Server;
pub use server::{RelayLimits, RelayStats};

/// How long an end waits for the answer to `Reserve` before asking again.
pub const RESERVE_RETRY: Duration = Duration::from_secs(30);
/// How long an end waits for the answer to `Connect` (the dial to the relay included).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How a node takes part.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Serve as a relay, with these limits. Only a publicly reachable node should.
    pub serve: Option<RelayLimits>,
    /// Circuits this node may be an end of at once; an `Incoming` past it is closed at once.
    pub max_circuits: usize,
    /// How long after losing a relay we hold a reservation at to dial it again.
    pub redial_after: Duration,
}

impl Default for RelayConfig {
    /// An end only: 64 circuits, a lost relay dialled again after 5 s.
    fn default() -> Self {
        Self {
            serve: None,
            max_circuits: 64,
            redial_after: Duration::from_secs(5),
        }
    }
}

impl RelayConfig {
    /// The relay role with its default limits.
    pub fn relay() -> Self {
        Self {
            serve: Some(RelayLimits::default()),
            ..Self::default()
        }
    }
}

/// What the application asks.
#[derive(Clone, Debug)]
pub enum RelayCommand {
    /// Be reachable through `relay` until `Unreserve`.
    Reserve {
        /// The relay.
        relay: PeerId,
    },
    /// Stop renewing the reservation at `relay` (it lapses at its TTL).
    Unreserve {
        /// The relay.
        relay: PeerId,
    },
    /// Open a circuit to `target` through `relay`, where `target` holds a reservation.
    Connect {
        /// The relay.
        relay: PeerId,
        /// The peer to reach.
        target: PeerId,
    },
    /// Send a datagram over a circuit.
    Send {
        /// The relay.
        relay: PeerId,
        /// The circuit.
        circuit: CircuitId,
        /// The datagram.
        payload: BoundedBytes<MAX_DATAGRAM>,
    },
    /// Close a circuit.
    Close {
        /// The relay.
        relay: PeerId,
        /// The circuit.
        circuit: CircuitId,
    },
    /// `peer`'s connection comes from `addr`, as the driver observed it ([`Relay::on_connected`]): the
    /// relay role counts reservations and circuits per IP prefix by it.
    Connected {
        /// The peer.
        peer: PeerId,
        /// Where its connection comes from.
        addr: SocketAddr,
    },
}

/// What the protocol tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayEvent {
    /// `relay` holds a reservation for us: peers can reach us through it.
    Reserved {
        /// The relay.
        relay: PeerId,
        /// How long it holds (renewed before it runs out).
        ttl: Duration,
        /// The bytes each circuit may carry.
        circuit_bytes: u64,
        /// How long each circuit may last.
        circuit_duration: Duration,
    },
    /// `relay` refused a reservation; we stop asking it.
    ReserveRefused {
        /// The relay.
        relay: PeerId,
        /// Why.
        reason: RelayRefusal,
    },
    /// A circuit to `peer` is open.
    CircuitOpened {
        /// The relay.
        relay: PeerId,
        /// The circuit.
        circuit: CircuitId,
        /// The other end.
        peer: PeerId,
        /// Whether we asked for it (else `peer` did, and will dial us over it).
        outbound: bool,
    },
    /// A `Connect` failed.
    ConnectRefused {
        /// The relay.
        relay: PeerId,
        /// The peer we wanted to reach.
        target: PeerId,
        /// Why.
        reason: RelayRefusal,
    },
    /// A datagram arrived over a circuit.
    Datagram {
        /// The relay.
        relay: PeerId,
        /// The circuit.
        circuit: CircuitId,
        /// The datagram.
        payload: Vec<u8>,
    },
    /// A circuit closed.
    CircuitClosed {
        /// The relay.
        relay: PeerId,
        /// The circuit.
        circuit: CircuitId,
        /// Why.
        reason: CircuitEnd,
    },
}

/// The protocol's timers.
#[derive(Clone, Debug)]
pub enum RelayTimer {
    /// (Relay role) end lapsed reservations and circuits past their time limit (one timer for all,
    /// every few seconds while any exist).
    Sweep,
    /// (End) the answer to our `Connect` through `relay` to `target` is due.
    ConnectDeadline {
        /// The relay.
        relay: PeerId,
        /// The peer to reach.
        target: PeerId,
        /// Which request (a later one of the same pair has its own deadline).
        generation: u64,
    },
    /// (End) renew the reservation at `relay`, dialling it first if it was lost.
    Renew {
        /// The relay.
        relay: PeerId,
        /// Which renewal: only the latest one scheduled for `relay` acts.
        generation: u64,
    },
}

/// Circuit relay as one pure protocol on `/meshwork/relay/1`: the relay role ([`RelayConfig::serve`])
/// and the end's side. See the module docs.
#[derive(Debug)]
pub struct Relay {
    config: RelayConfig,
    connected: BTreeSet<PeerId>,
    server: Option<Server>,
    client: Client,
}

impl Relay {
    /// A node in the given role.
    pub fn new(config: RelayConfig) -> Self {
        Self {
            server: config.serve.clone().map(Server::new),
            config,
            connected: BTreeSet::new(),
            client: Client::default(),
        }
    }

    /// For the node runtime's `on_connected` hook: tells the relay role where each connection comes
    /// from, for its limits per IP prefix.
    pub fn on_connected(peer: PeerId, addr: SocketAddr) -> Option<RelayCommand> {
        Some(RelayCommand::Connected { peer, addr })
    }

    /// The relay role's counters, if this node serves as a relay.
    pub fn stats(&self) -> Option<RelayStats> {
        self.server.as_ref().map(Server::stats)
    }

    /// The relays that hold a reservation for us now.
    pub fn reservations(&self) -> impl Iterator<Item = &PeerId> {
        self.client.reserved.keys()
    }

    /// The peer at the other end of our circuit `circuit` through `relay`, if it is open.
    pub fn circuit_peer(&self, relay: &PeerId, circuit: CircuitId) -> Option<PeerId> {
        self.client.circuits.get(&(*relay, circuit)).copied()
    }

    fn command(&mut self, command: RelayCommand, out: &mut Vec<Output<Self>>) {
        let client = &mut self.client;
        match command {
            RelayCommand::Connected { peer, addr } => {
                if let Some(server) = &mut self.server {
                    server.observed(peer, &addr);
                }
            }
            RelayCommand::Reserve { relay } => {
                client.wanted.insert(relay);
                self.reserve(relay, out);
            }
            RelayCommand::Unreserve { relay } => {
                client.wanted.remove(&relay);
                client.reserved.remove(&relay);
                client.asked.remove(&relay);
                client.release(relay, out);
            }
            RelayCommand::Connect { relay, target } => {
                if client.connect(relay, target, out) {
                    self.protect_and_reach(relay, RelayMessage::Connect { target }, out);
                }
            }
            RelayCommand::Send {
                relay,
                circuit,
                payload,
            } => {
                if client.circuits.contains_key(&(relay, circuit)) {
                    out.push(Output::Send {
                        to: relay,
                        msg: RelayMessage::Send { circuit, payload },
                    });
                } else {
                    // The circuit closed under a datagram already on its way: QUIC sees a loss.
                    out.push(Output::Dropped {
                        peer: relay,
                        reason: DropReason::ConnectionClosed,
                    });
                }
            }
            RelayCommand::Close { relay, circuit } => {
                if client.circuits.remove(&(relay, circuit)).is_some() {
                    out.push(Output::Send {
                        to: relay,
                        msg: RelayMessage::Close { circuit },
                    });
                    client.release(relay, out);
                }
            }
        }
    }

    /// Asks `relay` for a reservation (dialling it first if need be), and asks again after
    /// [`RESERVE_RETRY`] unless an answer schedules the renewal first: a lost request or answer does
    /// not end the renewals.
    fn reserve(&mut self, relay: PeerId, out: &mut Vec<Output<Self>>) {
        self.client.asked.insert(relay);
        self.protect_and_reach(relay, RelayMessage::Reserve, out);
        self.client.renew_after(relay, RESERVE_RETRY, out);
    }

    /// Keeps `relay`'s connection and sends `msg` now, or dials it (`PeerUp` sends what waits).
    fn protect_and_reach(&self, relay: PeerId, msg: RelayMessage, out: &mut Vec<Output<Self>>) {
        out.push(Output::Protect {
            peer: relay,
            protect: true,
        });
        if self.connected.contains(&relay) {
            out.push(Output::Send { to: relay, msg });
        } else {
            out.push(Output::Dial(relay));
        }
    }

    fn timer(&mut self, now: Instant, timer: RelayTimer, out: &mut Vec<Output<Self>>) {
        match timer {
            RelayTimer::Sweep => {
                if let Some(server) = &mut self.server {
                    server.sweep(now, out);
                }
            }
            RelayTimer::ConnectDeadline {
                relay,
                target,
                generation,
            } => self.client.connect_deadline((relay, target), generation, out),
            RelayTimer::Renew { relay, generation } => {
                // A renewal scheduled before an `Unreserve`, or superseded by a later one, does nothing.
                let latest = self.client.renewals.get(&relay) == Some(&generation);
                if self
                    .client
                    .reserved
                    .get(&relay)
                    .is_some_and(|&until| until <= now)
                {
                    // Lapsed without a renewal: circuits to us through it are no longer accepted.
                    self.client.reserved.remove(&relay);
                }
                if self.client.wanted.contains(&relay) && latest {
                    self.reserve(relay, out);
                }
            }
        }
    }

    fn serve(&mut self, now: Instant, from: PeerId, msg: RelayMessage, out: &mut Vec<Output<Self>>) {
        let Some(server) = &mut self.server else {
            let reason = RelayRefusal::NotARelay;
            let answer = match msg {
                RelayMessage::Reserve => Some(RelayMessage::ReserveRefused { reason }),
                RelayMessage::Connect { target } => Some(RelayMessage::ConnectRefused { target, reason }),
                _ => None,
            };
            out.push(match answer {
                Some(msg) => Output::Send { to: from, msg },
                None => Output::Dropped {
                    peer: from,
                    reason: DropReason::Unsolicited,
                },
            });
            return;
        };
        match msg {
            RelayMessage::Reserve => server.reserve(now, from, out),
            RelayMessage::Connect { target } => server.connect(now, from, target, &self.connected, out),
            RelayMessage::Send { circuit, payload } => server.carry(now, from, circuit, payload, out),
            RelayMessage::Close { circuit } => server.close_from(from, circuit, out),
            _ => {}
        }
    }
}

impl Protocol for Relay {
    type Message = RelayMessage;
    type Command = RelayCommand;
    type Event = RelayEvent;
    type Timer = RelayTimer;
    const ID: ProtocolId = ProtocolId::new("/meshwork/relay/1");
    /// A `Send` or `Deliver` of a full datagram, with its circuit number and length prefix.
    const MAX_MESSAGE_SIZE: usize = MAX_DATAGRAM + 32;

    fn handle(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        let start = out.len();
        self.step(now, input, out);
        // The node keeps one protection per peer and protocol, and both roles use it (a relay that
        // is also an end: two relays holding reservations at each other). A role's release stands only
        // if the other role does not need the peer either.
        let mut mine = out.split_off(start);
        mine.retain(|o| !matches!(o, Output::Protect { peer, protect: false } if self.needs(peer)));
        out.append(&mut mine);
    }
}

impl Relay {
    /// Whether either role needs `peer`'s connection kept.
    fn needs(&self, peer: &PeerId) -> bool {
        self.client.uses(peer) || self.server.as_ref().is_some_and(|s| s.holds(peer))
    }

    fn step(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        match input {
            Input::PeerUp(peer) => {
                self.connected.insert(peer);
                self.client.peer_up(peer, out);
            }
            Input::PeerDown(peer) => {
                self.connected.remove(&peer);
                if let Some(server) = &mut self.server {
                    server.peer_down(peer, out);
                }
                self.client.peer_down(peer, self.config.redial_after, out);
            }
            Input::Command(command) => self.command(command, out),
            Input::Timer(timer) => self.timer(now, timer, out),
            Input::Message { from, msg } => match msg {
                RelayMessage::Reserve
                | RelayMessage::Connect { .. }
                | RelayMessage::Send { .. }
                | RelayMessage::Close { .. } => self.serve(now, from, msg, out),
                RelayMessage::Reserved { .. }
                | RelayMessage::ReserveRefused { .. }
                | RelayMessage::Opened { .. }
                | RelayMessage::Incoming { .. }
                | RelayMessage::ConnectRefused { .. }
                | RelayMessage::Deliver { .. }
                | RelayMessage::Closed { .. } => {
                    let max = self.config.max_circuits;
                    self.client.answer(now, from, msg, max, out);
                }
            },
        }
    }
}
