//! An in-memory network of transports, for tests and examples: no sockets, same semantics.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use meshwork_identity::{Keypair, PeerId};
use tokio::sync::{mpsc, watch};

use super::connection::{MemoryConnection, Pair, Side};
use crate::budget::GlobalBudget;
use crate::counters::Counters;
use crate::error::{AcceptError, BindError, DialError};
use crate::registry::{Registry, Slot, watch as watch_connection};
use crate::{CloseReason, Config, Connection, CountersSnapshot, Transport};

/// How many connections may wait for [`Transport::accept`]; a dial beyond it waits (within its handshake
/// timeout).
const ACCEPT_QUEUE: usize = 64;

/// A set of in-memory transports that can dial each other by address. Cheap to clone.
///
/// Binding registers a transport's key at an address; a dial to that address reaches it, and the key the
/// network holds for it is the identity proven to the dialer (the in-memory stand-in for the TLS
/// handshake, which cannot be faked from outside the process). A transport stays bound, and reachable,
/// until [`Transport::close`] is called on it. Idle timeouts and keep-alives are not modelled: an
/// in-memory link never loses packets.
#[derive(Clone, Debug, Default)]
pub struct MemoryNetwork {
    listeners: Arc<Mutex<Listeners>>,
}

#[derive(Debug, Default)]
struct Listeners {
    by_addr: HashMap<SocketAddr, Arc<Shared>>,
    next_port: u16,
}

impl MemoryNetwork {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Listeners> {
        self.listeners.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A transport on a [`MemoryNetwork`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MemoryTransport {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    side: Side,
    addr: SocketAddr,
    network: MemoryNetwork,
    registry: Arc<Registry<MemoryConnection>>,
    to_accept: mpsc::Sender<MemoryConnection>,
    incoming: tokio::sync::Mutex<mpsc::Receiver<MemoryConnection>>,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Side").field("peer_id", &self.peer_id).finish()
    }
}

impl MemoryTransport {
    /// Binds at `addr` on `network`. Port 0 picks a free port. The address is only a name: no socket is
    /// opened.
    pub fn bind(
        network: &MemoryNetwork,
        keypair: &Keypair,
        addr: SocketAddr,
        config: Config,
    ) -> Result<Self, BindError> {
        let mut listeners = network.lock();
        let addr = if addr.port() == 0 {
            let ip = if addr.ip().is_unspecified() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                addr.ip()
            };
            loop {
                listeners.next_port = listeners.next_port.wrapping_add(1).max(1);
                let candidate = SocketAddr::new(ip, listeners.next_port);
                if !listeners.by_addr.contains_key(&candidate) {
                    break candidate;
                }
            }
        } else {
            addr
        };
        if listeners.by_addr.contains_key(&addr) {
            return Err(BindError::Io(std::io::ErrorKind::AddrInUse.into()));
        }
        let counters = Arc::new(Counters::default());
        let budget = GlobalBudget::new(&config.limits, config.timeouts.frame);
        let peer_id = keypair.peer_id();
        let (to_accept, incoming) = mpsc::channel(ACCEPT_QUEUE);
        let shared = Arc::new(Shared {
            side: Side {
                peer_id,
                addr,
                config: Arc::new(config),
                counters: counters.clone(),
                budget,
            },
            addr,
            network: network.clone(),
            registry: Arc::new(Registry::new(peer_id, counters)),
            to_accept,
            incoming: tokio::sync::Mutex::new(incoming),
            shutdown: watch::channel(false).0,
        });
        listeners.by_addr.insert(addr, shared.clone());
        Ok(Self { shared })
    }
}

impl Shared {
    fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// The listener's half of a dial: its limit, its registry, its accept queue.
    async fn take_inbound(self: &Arc<Self>, conn: MemoryConnection) -> Result<(), DialError> {
        let limit = self.side.config.limits.max_inbound;
        let Some(slot) = Slot::acquire(&self.side.counters, |c| &c.inbound, limit) else {
            Counters::bump(&self.side.counters.inbound_refused);
            return Err(DialError::Refused);
        };
        watch_connection(self.registry.clone(), conn.clone(), slot);
        // Kept or not, the application gets it: a connection that lost a simultaneous-dial tie-break
        // still carries what the peer sent before it learned of the winner, until it closes.
        self.registry.offer(conn.clone());
        if self.to_accept.send(conn).await.is_err() {
            return Err(DialError::Refused);
        }
        Ok(())
    }
}

impl MemoryTransport {
    /// Dials `peer` even if a connection to it is open, as a dial that crossed the peer's own dial would:
    /// both peers end up with two connections, and keep one by the simultaneous-dial rule. Lets a test
    /// play a simultaneous dial, which in memory otherwise takes two threads meeting within microseconds.
    #[cfg(feature = "test-utils")]
    pub async fn dial_crossing(&self, peer: PeerId, addr: SocketAddr) -> Result<MemoryConnection, DialError> {
        if self.shared.is_shut_down() {
            return Err(DialError::TransportClosed);
        }
        if peer == self.shared.side.peer_id {
            return Err(DialError::SelfDial);
        }
        self.connect(peer, addr).await
    }

    /// A new connection to `peer` at `addr`: limits, the listener's half, the tie-break.
    async fn connect(&self, peer: PeerId, addr: SocketAddr) -> Result<MemoryConnection, DialError> {
        let shared = &self.shared;
        let limit = shared.side.config.limits.max_outbound;
        let Some(slot) = Slot::acquire(&shared.side.counters, |c| &c.outbound, limit) else {
            Counters::bump(&shared.side.counters.dials_refused);
            return Err(DialError::TooManyConnections { limit });
        };
        let remote = shared.network.lock().by_addr.get(&addr).cloned();
        let Some(remote) = remote.filter(|remote| !remote.is_shut_down()) else {
            return Err(DialError::Unreachable);
        };
        if remote.side.peer_id != peer {
            Counters::bump(&shared.side.counters.handshake_failures);
            return Err(DialError::PeerIdMismatch {
                expected: peer,
                actual: remote.side.peer_id,
            });
        }
        let pair = Pair::new(&shared.side, &remote.side);
        let timeout = shared.side.config.timeouts.handshake;
        match tokio::time::timeout(timeout, remote.take_inbound(pair.listener)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                Counters::bump(&shared.side.counters.handshake_failures);
                Connection::close(&pair.dialer, CloseReason::Normal);
                return Err(err);
            }
            Err(_) => {
                Counters::bump(&shared.side.counters.handshake_failures);
                Connection::close(&pair.dialer, CloseReason::Normal);
                return Err(DialError::HandshakeTimeout);
            }
        }
        watch_connection(shared.registry.clone(), pair.dialer.clone(), slot);
        let (kept, is_new) = shared.registry.offer(pair.dialer.clone());
        if !is_new {
            // We lost a simultaneous-dial tie-break: the caller gets the winner, and `accept` the loser,
            // whose last messages are still to be read. If the accept queue is full nobody would read
            // it: close it now, so the peer's writes to it fail at once and go to the winner.
            if let Err(full) = shared.to_accept.try_send(pair.dialer) {
                let loser = full.into_inner();
                tracing::debug!(peer = %loser.remote_peer_id(), "simultaneous-dial loser not accepted (queue full): closed at once");
                loser.close(CloseReason::Duplicate);
            }
        }
        Ok(kept)
    }
}

impl Transport for MemoryTransport {
    type Connection = MemoryConnection;

    fn peer_id(&self) -> PeerId {
        self.shared.side.peer_id
    }

    fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    async fn dial(&self, peer: PeerId, addr: SocketAddr) -> Result<MemoryConnection, DialError> {
        let shared = &self.shared;
        if shared.is_shut_down() {
            return Err(DialError::TransportClosed);
        }
        if peer == shared.side.peer_id {
            return Err(DialError::SelfDial);
        }
        if let Some(conn) = shared.registry.get(&peer) {
            return Ok(conn);
        }
        self.connect(peer, addr).await
    }

    async fn accept(&self) -> Result<MemoryConnection, AcceptError> {
        let mut shutdown = self.shared.shutdown.subscribe();
        let mut incoming = self.shared.incoming.lock().await;
        tokio::select! {
            conn = incoming.recv() => conn.ok_or(AcceptError::TransportClosed),
            _ = shutdown.wait_for(|down| *down) => Err(AcceptError::TransportClosed),
        }
    }

    fn connection(&self, peer: &PeerId) -> Option<MemoryConnection> {
        self.shared.registry.get(peer)
    }

    fn counters(&self) -> CountersSnapshot {
        self.shared.registry.snapshot()
    }

    async fn close(&self, reason: CloseReason) {
        self.shared.shutdown.send_replace(true);
        let mut listeners = self.shared.network.lock();
        if listeners
            .by_addr
            .get(&self.shared.addr)
            .is_some_and(|held| Arc::ptr_eq(held, &self.shared))
        {
            listeners.by_addr.remove(&self.shared.addr);
        }
        drop(listeners);
        for conn in self.shared.registry.all() {
            Connection::close(&conn, reason.clone());
        }
    }
}
