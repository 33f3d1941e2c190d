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
//!
//! Two tasks: one carries quinn's datagrams to the relay (waiting on the node's inbox when it is
//! full), the other reads the protocol's events, so a busy path never delays a circuit's opening or
//! closing. A circuit whose connection closed (a direct connection replaced it, say), or that no
//! connection uses for [`IDLE_PATH`] (its connection never came), is closed, so circuits do not
//! outlive what they carry.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

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

/// How long a circuit may carry no connection before the bridge closes it: longer than a handshake
/// takes (the node runtime's dial timeout), so a connection still being dialled over it is not cut.
pub const IDLE_PATH: Duration = Duration::from_secs(40);

/// How often paths are checked for a connection.
const CHECK_EVERY: Duration = Duration::from_secs(5);

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
    let by_addr = Arc::new(Mutex::new(HashMap::new()));
    tokio::spawn(forward(outbound, by_addr.clone(), relay.clone()));
    let bridge = Bridge {
        transport,
        paths,
        relay,
        tx,
        by_circuit: HashMap::new(),
        by_addr,
    };
    tokio::spawn(bridge.run(events));
    rx
}

/// The circuit of each open path, shared by the two tasks.
type ByAddr = Arc<Mutex<HashMap<SocketAddr, (PeerId, CircuitId)>>>;

/// Carries quinn's datagrams on relay paths to their circuits until the node or the transport stops.
async fn forward(mut outbound: mpsc::Receiver<(SocketAddr, Vec<u8>)>, by_addr: ByAddr, relay: Handle<Relay>) {
    while let Some((addr, datagram)) = outbound.recv().await {
        let circuit = by_addr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&addr)
            .copied();
        let Some((relay_peer, circuit)) = circuit else {
            continue;
        };
        // quinn never sends more than a relay datagram holds; anything larger is lost.
        let Ok(payload) = datagram.try_into() else {
            continue;
        };
        let send = RelayCommand::Send {
            relay: relay_peer,
            circuit,
            payload,
        };
        if relay.command(send).await.is_err() {
            break;
        }
    }
}

/// A circuit's path, as the idle check sees it.
struct Path {
    /// The virtual address.
    addr: SocketAddr,
    /// How many checks in a row found no connection on it.
    misses: u32,
}

struct Bridge {
    transport: QuicTransport,
    paths: RelayPaths,
    relay: Handle<Relay>,
    tx: mpsc::Sender<BridgeEvent>,
    /// Each circuit's path.
    by_circuit: HashMap<(PeerId, CircuitId), Path>,
    by_addr: ByAddr,
}

impl Bridge {
    async fn run(mut self, mut events: Events<Relay>) {
        let mut check = tokio::time::interval(CHECK_EVERY);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.on_event(event).await,
                    None => break,
                },
                _ = check.tick() => self.close_idle().await,
            }
        }
    }

    /// Closes the circuits no connection has used for [`IDLE_PATH`], and at once those whose
    /// connection closed (a direct connection replaced it, or it ended): a circuit carries one
    /// connection, and the relay's limits are better spent on others.
    async fn close_idle(&mut self) {
        let limit = u32::try_from(IDLE_PATH.as_secs() / CHECK_EVERY.as_secs()).unwrap_or(u32::MAX);
        let mut idle = Vec::new();
        for (&key, path) in &mut self.by_circuit {
            if self.transport.path_in_use(path.addr) {
                path.misses = 0;
            } else if self.transport.path_done(path.addr) {
                idle.push(key);
            } else {
                path.misses += 1;
                if path.misses >= limit {
                    idle.push(key);
                }
            }
        }
        for (relay, circuit) in idle {
            tracing::debug!(%relay, circuit, "relay circuit unused: closed");
            let _ = self.relay.command(RelayCommand::Close { relay, circuit }).await;
            self.forget(relay, circuit, "unused");
        }
    }

    /// Drops the circuit's path and closes any connection over it.
    fn forget(&mut self, relay: PeerId, circuit: CircuitId, why: &str) {
        if let Some(Path { addr, .. }) = self.by_circuit.remove(&(relay, circuit)) {
            self.by_addr
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&addr);
            self.transport
                .close_path(addr, CloseReason::Lost(format!("relay circuit closed: {why}")));
        }
    }

    async fn on_event(&mut self, event: RelayEvent) {
        match event {
            RelayEvent::Datagram {
                relay,
                circuit,
                payload,
            } => {
                if let Some(path) = self.by_circuit.get(&(relay, circuit)) {
                    self.paths.deliver(path.addr, payload);
                }
            }
            RelayEvent::CircuitOpened {
                relay,
                circuit,
                peer,
                outbound,
            } => {
                if self.by_circuit.contains_key(&(relay, circuit)) {
                    return;
                }
                let Some(addr) = self.paths.open(peer) else {
                    tracing::warn!(%peer, "relay bridge: no virtual address left; circuit closed");
                    let _ = self.relay.command(RelayCommand::Close { relay, circuit }).await;
                    return;
                };
                let path = Path { addr, misses: 0 };
                self.by_circuit.insert((relay, circuit), path);
                self.by_addr
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(addr, (relay, circuit));
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
                self.forget(relay, circuit, &reason.to_string());
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
