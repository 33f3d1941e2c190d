//! (Feature `driver`.) Joins the [`Relay`] protocol, running in a node, to the QUIC transport's relay
//! paths, so a relay circuit carries a QUIC connection.
//!
//! The protocol is pure: it hands the application each datagram a circuit brings
//! ([`RelayEvent::Datagram`]) and takes each one to send ([`RelayCommand::Send`]). The transport's
//! [`RelayPaths`] give quinn a path per circuit at a virtual address. The bridge is the task in between:
//! it opens a path when a circuit opens, moves datagrams both ways, and closes the path, and the
//! connection over it, when the circuit closes. The application dials a peer at the address
//! [`BridgeEvent::Opened`] gives (when it asked for the circuit); the other end's transport accepts
//! the connection from that address as from any other.

use std::collections::HashMap;
use std::net::SocketAddr;

use meshwork_identity::PeerId;
use meshwork_node::{Events, Handle};
use meshwork_transport::CloseReason;
use meshwork_transport::quic::{QuicTransport, RelayPaths};
use tokio::sync::mpsc;

use crate::relay::{CircuitId, Relay, RelayCommand, RelayEvent};

/// Events the bridge passes on, beyond the ones it handles itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BridgeEvent {
    /// A circuit is open and has a path: dial `peer` at `addr` if `outbound` (the other end dials us
    /// otherwise).
    Opened {
        /// The relay.
        relay: PeerId,
        /// The circuit.
        circuit: CircuitId,
        /// The other end.
        peer: PeerId,
        /// The path's virtual address.
        addr: SocketAddr,
        /// Whether we asked for the circuit.
        outbound: bool,
    },
    /// Any other event of the protocol but datagrams (reservations, refusals, closed circuits).
    Relay(RelayEvent),
}

/// How many events wait for the application; past it they are dropped and logged.
const EVENTS: usize = 256;

/// Starts the bridge for the node whose relay protocol is `relay`/`events` and whose transport is
/// `transport` (a clone of the one the node runs on). Returns what the application should see; the
/// bridge ends when the node does.
pub fn spawn_bridge(
    transport: QuicTransport,
    relay: Handle<Relay>,
    events: Events<Relay>,
) -> mpsc::Receiver<BridgeEvent> {
    let (tx, rx) = mpsc::channel(EVENTS);
    let paths = transport.relay_paths().clone();
    let Some(outbound) = paths.outbound() else {
        tracing::warn!("relay bridge: the transport's relay paths already have a driver");
        return rx;
    };
    let bridge = Bridge {
        transport,
        paths,
        relay,
        tx,
        by_circuit: HashMap::new(),
        by_addr: HashMap::new(),
    };
    tokio::spawn(bridge.run(events, outbound));
    rx
}

struct Bridge {
    transport: QuicTransport,
    paths: RelayPaths,
    relay: Handle<Relay>,
    tx: mpsc::Sender<BridgeEvent>,
    by_circuit: HashMap<(PeerId, CircuitId), SocketAddr>,
    by_addr: HashMap<SocketAddr, (PeerId, CircuitId)>,
}

impl Bridge {
    async fn run(mut self, mut events: Events<Relay>, mut outbound: mpsc::Receiver<(SocketAddr, Vec<u8>)>) {
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.on_event(event).await,
                    None => break,
                },
                Some((addr, datagram)) = outbound.recv() => {
                    let Some(&(relay, circuit)) = self.by_addr.get(&addr) else { continue };
                    // quinn never sends more than a relay datagram holds; anything larger is lost.
                    let Ok(payload) = datagram.try_into() else { continue };
                    if self.relay.command(RelayCommand::Send { relay, circuit, payload }).await.is_err() {
                        break;
                    }
                }
            }
        }
    }

    async fn on_event(&mut self, event: RelayEvent) {
        match event {
            RelayEvent::Datagram {
                relay,
                circuit,
                payload,
            } => {
                if let Some(&addr) = self.by_circuit.get(&(relay, circuit)) {
                    self.paths.deliver(addr, payload);
                }
            }
            RelayEvent::CircuitOpened {
                relay,
                circuit,
                peer,
                outbound,
            } => {
                let Some(addr) = self.paths.open() else {
                    tracing::warn!(%peer, "relay bridge: no virtual address left; circuit closed");
                    let _ = self.relay.command(RelayCommand::Close { relay, circuit }).await;
                    return;
                };
                self.by_circuit.insert((relay, circuit), addr);
                self.by_addr.insert(addr, (relay, circuit));
                tracing::debug!(%relay, %peer, %addr, outbound, "relay circuit open");
                self.tell(BridgeEvent::Opened {
                    relay,
                    circuit,
                    peer,
                    addr,
                    outbound,
                });
            }
            RelayEvent::CircuitClosed {
                relay,
                circuit,
                reason,
            } => {
                if let Some(addr) = self.by_circuit.remove(&(relay, circuit)) {
                    self.by_addr.remove(&addr);
                    self.transport
                        .close_path(addr, CloseReason::Lost(format!("relay circuit closed: {reason}")));
                }
                self.tell(BridgeEvent::Relay(event));
            }
            other => self.tell(BridgeEvent::Relay(other)),
        }
    }

    fn tell(&self, event: BridgeEvent) {
        if self.tx.try_send(event).is_err() {
            tracing::debug!("relay bridge: the application's event queue is full; event dropped");
        }
    }
}
