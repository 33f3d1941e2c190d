//! The QUIC transport: one quinn endpoint that listens and dials, with ed25519-bound mutual TLS.

use std::collections::hash_map::RandomState;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_wire::relayed::is_relayed;
use tokio::sync::{Mutex, mpsc};

use super::connection::{QuicConnection, close_quinn, quinn_code};
use super::listener::Listener;
use super::paths::{PathSocket, RelayPaths, canonical};
use super::tls::{self, Identity};
use crate::admission::{AddrSlot, Admission};
use crate::budget::GlobalBudget;
use crate::counters::Counters;
use crate::error::{AcceptError, BindError, DialError};
use crate::registry::{Registry, Slot, watch};
use crate::{CloseReason, Config, Connection, CountersSnapshot, Direction, Transport};

/// How many authenticated inbound connections may wait for [`Transport::accept`]; handshakes beyond it
/// wait too (back-pressure), and still count against `Limits::max_inbound`.
const ACCEPT_QUEUE: usize = 64;
/// The largest UDP payload we accept (QUIC's `max_udp_payload_size` transport parameter): a full
/// Ethernet frame's. quinn's path MTU discovery never sends more than 1,452 bytes, so no meshwork node
/// sends anything larger. quinn sizes each endpoint's receive buffer by it: 32 datagrams at a time, each
/// of up to 64 segments where the kernel coalesces them (GRO), so 3 MiB of address space per endpoint
/// instead of 134 MiB at QUIC's default of 65,527 (its pages become resident only as datagrams arrive).
const MAX_UDP_PAYLOAD: u16 = 1472;

/// QUIC over UDP, both sides authenticated by their ed25519 keys (see the crate docs). Cheap to clone.
#[derive(Clone, Debug)]
pub struct QuicTransport {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    peer_id: PeerId,
    addr: SocketAddr,
    endpoint: quinn::Endpoint,
    identity: Identity,
    transport: Arc<quinn::TransportConfig>,
    config: Arc<Config>,
    counters: Arc<Counters>,
    budget: GlobalBudget,
    /// Establishment order of connections (eviction protects the long-lived).
    seq: Arc<AtomicU64>,
    registry: Arc<Registry<QuicConnection>>,
    paths: RelayPaths,
    /// The accept queue, for the losers of simultaneous dials. Weak, so the queue still ends (and
    /// `accept` fails) once the listener stops.
    to_accept: mpsc::WeakSender<QuicConnection>,
    incoming: Mutex<mpsc::Receiver<QuicConnection>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let reason = CloseReason::Shutdown;
        self.endpoint
            .close(quinn_code(&reason), reason.to_string().as_bytes());
    }
}

/// The longest [`Transport::close`] waits for closed connections to drain (three probe timeouts: about
/// 3 s for a connection without a round-trip sample, less for the rest). A connection still draining
/// then finishes in the background, and keeps the socket bound until it does.
pub const CLOSE_WAIT: Duration = Duration::from_secs(4);

/// The UDP receive and send buffer we ask the kernel for (it caps the request at `net.core.rmem_max` /
/// `wmem_max`). Linux's default of about 208 KiB overflows when dozens of handshakes or a fast stream arrive at
/// once; every datagram dropped there costs QUIC a probe timeout, and several in a row back off for seconds.
pub const UDP_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// A non-blocking UDP socket bound to `addr`, with [`UDP_BUFFER_BYTES`] buffers: the socket the transport
/// gives quinn (public so a raw-quinn baseline can be configured the same way).
pub fn udp_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a kernel that refuses larger buffers still gives a working (if lossier) socket.
    if let Err(err) = socket.set_recv_buffer_size(UDP_BUFFER_BYTES) {
        tracing::debug!(%err, "could not enlarge the UDP receive buffer");
    }
    if let Err(err) = socket.set_send_buffer_size(UDP_BUFFER_BYTES) {
        tracing::debug!(%err, "could not enlarge the UDP send buffer");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

impl QuicTransport {
    /// Binds a UDP socket at `addr` (use port 0 for any free port) and starts listening.
    pub async fn bind(keypair: &Keypair, addr: SocketAddr, config: Config) -> Result<Self, BindError> {
        Self::with_socket(keypair, udp_socket(addr)?, config).await
    }

    /// Listens on a UDP socket the caller bound: one made inside another network namespace (the NAT
    /// testbed's hosts), or with options [`udp_socket`] does not set. It must be non-blocking; its
    /// buffers are left as they are.
    pub async fn with_socket(
        keypair: &Keypair,
        socket: std::net::UdpSocket,
        config: Config,
    ) -> Result<Self, BindError> {
        let identity = Identity::new(keypair)?;
        let transport = Arc::new(tls::transport_config(&config)?);
        let server = tls::server_config(&identity, transport.clone())?;
        let runtime = Arc::new(quinn::TokioRuntime);
        let mut endpoint_config = quinn::EndpointConfig::default();
        endpoint_config
            .max_udp_payload_size(MAX_UDP_PAYLOAD)
            .map_err(|err| BindError::Config(err.to_string()))?;
        let paths = RelayPaths::new();
        let socket = Arc::new(PathSocket::new(
            quinn::Runtime::wrap_udp_socket(&*runtime, socket)?,
            paths.clone(),
        )?);
        let endpoint =
            quinn::Endpoint::new_with_abstract_socket(endpoint_config, Some(server), socket, runtime)?;
        let addr = endpoint.local_addr()?;
        let counters = Arc::new(Counters::default());
        let peer_id = keypair.peer_id();
        let registry = Arc::new(Registry::new(peer_id, counters.clone()));
        let budget = GlobalBudget::new(&config.limits, config.timeouts.frame);
        let seq = Arc::new(AtomicU64::new(0));
        let admission = Admission::new(
            config.limits.max_inbound_per_ip,
            config.limits.max_inbound_per_prefix,
            config.limits.max_inbound_per_ipv6_block,
        );
        let config = Arc::new(config);
        let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
        let listener = Listener {
            endpoint: endpoint.clone(),
            config: config.clone(),
            counters: counters.clone(),
            budget: budget.clone(),
            seq: seq.clone(),
            admission,
            salt: RandomState::new(),
            registry: registry.clone(),
            paths: paths.clone(),
            tx: tx.clone(),
            handshakes: Arc::default(),
        };
        tokio::spawn(listener.run());
        let shared = Shared {
            peer_id,
            addr,
            endpoint,
            identity,
            transport,
            config,
            counters,
            budget,
            seq,
            registry,
            paths,
            to_accept: tx.downgrade(),
            incoming: Mutex::new(rx),
        };
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// The quinn endpoint (statistics, or to rebind).
    pub fn endpoint(&self) -> &quinn::Endpoint {
        &self.shared.endpoint
    }

    /// The relay paths of this transport's socket ([`RelayPaths`]): a relay driver opens one per
    /// circuit, and peers are then dialled (or dial us) at its virtual address like any other.
    pub fn relay_paths(&self) -> &RelayPaths {
        &self.shared.paths
    }

    /// Whether a connection uses the relay path at `addr` (one being handshaken does not count yet;
    /// one retiring after a direct connection replaced it does, until it closes).
    pub fn path_in_use(&self, addr: SocketAddr) -> bool {
        let addr = canonical(addr);
        self.shared
            .registry
            .find_live(|conn| conn.close_reason().is_none() && canonical(conn.remote_addr()) == addr)
            .is_some()
    }

    /// Whether the relay path at `addr` is done: a connection over it was established and none is
    /// open now (it closed, or a direct connection replaced it). Its circuit can close.
    pub fn path_done(&self, addr: SocketAddr) -> bool {
        self.shared.paths.carried_a_connection(addr) && !self.path_in_use(addr)
    }

    /// Closes the relay path at `addr` and every connection over it (with `reason`): its circuit is
    /// gone, so the connection could only idle out.
    pub fn close_path(&self, addr: SocketAddr, reason: CloseReason) {
        self.shared.paths.close(addr);
        for conn in self.shared.registry.live() {
            if canonical(conn.remote_addr()) == canonical(addr) {
                Connection::close(&conn, reason.clone());
            }
        }
    }
}

impl Transport for QuicTransport {
    type Connection = QuicConnection;

    fn peer_id(&self) -> PeerId {
        self.shared.peer_id
    }

    fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    async fn dial(&self, peer: PeerId, addr: SocketAddr) -> Result<QuicConnection, DialError> {
        let shared = &self.shared;
        if peer == shared.peer_id {
            return Err(DialError::SelfDial);
        }
        // The open connection serves, unless it runs over a relay circuit and this dial is direct: a
        // direct connection then replaces it (the registry keeps the direct one).
        if let Some(conn) = shared.registry.get(&peer)
            && (!is_relayed(&conn.remote_addr()) || is_relayed(&addr))
        {
            return Ok(conn);
        }
        let limit = shared.config.limits.max_outbound;
        let Some(slot) = Slot::acquire(&shared.counters, |c| &c.outbound, limit) else {
            Counters::bump(&shared.counters.dials_refused);
            return Err(DialError::TooManyConnections { limit });
        };
        let seen = tls::new_slot();
        let client = tls::client_config(&shared.identity, shared.transport.clone(), peer, seen.clone())
            .map_err(DialError::Handshake)?;
        let connecting = shared
            .endpoint
            .connect_with(client, addr, tls::SERVER_NAME)
            .map_err(|err| match err {
                quinn::ConnectError::EndpointStopping => DialError::TransportClosed,
                other => DialError::Handshake(other.to_string()),
            })?;
        let result = tokio::time::timeout(shared.config.timeouts.handshake, connecting).await;
        let conn = match result {
            Ok(Ok(conn)) => conn,
            Ok(Err(err)) => {
                Counters::bump(&shared.counters.handshake_failures);
                let actual = *seen.lock().unwrap_or_else(PoisonError::into_inner);
                return Err(match (actual, err) {
                    (Some(actual), _) if actual != peer => DialError::PeerIdMismatch {
                        expected: peer,
                        actual,
                    },
                    (_, quinn::ConnectionError::ConnectionClosed(close))
                        if close.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED =>
                    {
                        DialError::Refused
                    }
                    (_, quinn::ConnectionError::TimedOut) => DialError::Unreachable,
                    (_, other) => DialError::Handshake(other.to_string()),
                });
            }
            Err(_) => {
                Counters::bump(&shared.counters.handshake_failures);
                return Err(DialError::HandshakeTimeout);
            }
        };
        if is_relayed(&addr) && !shared.paths.admits(addr, peer) {
            // The path closed during the handshake (the handshake verified `peer` itself).
            Counters::bump(&shared.counters.handshake_failures);
            close_quinn(&conn, &CloseReason::Lost("relay path closed".into()));
            return Err(DialError::Unreachable);
        }
        let seq = shared.seq.fetch_add(1, Ordering::Relaxed);
        let conn = QuicConnection::new(
            conn,
            peer,
            Direction::Outbound,
            shared.config.clone(),
            shared.counters.clone(),
            shared.budget.for_connection(),
            seq,
        );
        watch(shared.registry.clone(), conn.clone(), (slot, None::<AddrSlot>));
        if is_relayed(&addr) {
            shared.paths.established(addr);
        }
        let (kept, is_new) = shared.registry.offer(conn.clone());
        if !is_new {
            // We lost a simultaneous-dial tie-break: the caller gets the winner, and `accept` the loser,
            // whose last messages are still to be read. If nobody can take it (the accept queue is
            // full, or gone), nobody would read it: close it now, so the peer's writes to it fail at
            // once and go to the winner, rather than wait for `DUPLICATE_GRACE`.
            let queued = shared
                .to_accept
                .upgrade()
                .is_some_and(|to_accept| to_accept.try_send(conn.clone()).is_ok());
            if !queued {
                tracing::debug!(%peer, "simultaneous-dial loser not accepted (queue full): closed at once");
                Connection::close(&conn, CloseReason::Duplicate);
            }
        }
        Ok(kept)
    }

    async fn accept(&self) -> Result<QuicConnection, AcceptError> {
        self.shared
            .incoming
            .lock()
            .await
            .recv()
            .await
            .ok_or(AcceptError::TransportClosed)
    }

    fn connection(&self, peer: &PeerId) -> Option<QuicConnection> {
        self.shared.registry.get(peer)
    }

    fn counters(&self) -> CountersSnapshot {
        let mut snapshot = self.shared.registry.snapshot();
        snapshot.endpoint_connections = self.shared.endpoint.open_connections() as u64;
        snapshot
    }

    async fn close(&self, reason: CloseReason) {
        for conn in self.shared.registry.all() {
            Connection::close(&conn, reason.clone());
        }
        self.shared
            .endpoint
            .close(quinn_code(&reason), reason.to_string().as_bytes());
        // Waiting lets quinn repeat its close to peers that lost it; a connection whose peer vanished
        // mid-handshake would hold the wait until its idle timeout (seen after a hole punch: the other
        // side's close of its half-open dial reaches us as a new Initial), so the wait has a deadline.
        let _ = tokio::time::timeout(CLOSE_WAIT, self.shared.endpoint.wait_idle()).await;
    }
}

/// The quinn server configuration this transport uses for `keypair`: TLS 1.3, client certificate required
/// and checked as an ed25519 peer id, transport parameters from `config`. For embedding the same security
/// in another quinn endpoint, and for measuring against raw quinn.
pub fn quinn_server_config(keypair: &Keypair, config: &Config) -> Result<quinn::ServerConfig, BindError> {
    let identity = Identity::new(keypair)?;
    tls::server_config(&identity, Arc::new(tls::transport_config(config)?))
}

/// The quinn client configuration this transport uses to dial `expected` as `keypair`.
pub fn quinn_client_config(
    keypair: &Keypair,
    config: &Config,
    expected: PeerId,
) -> Result<quinn::ClientConfig, BindError> {
    let identity = Identity::new(keypair)?;
    let transport = Arc::new(tls::transport_config(config)?);
    tls::client_config(&identity, transport, expected, tls::new_slot()).map_err(BindError::Tls)
}

/// The server name to pass to `quinn::Endpoint::connect_with` with [`quinn_client_config`].
pub const QUINN_SERVER_NAME: &str = tls::SERVER_NAME;
