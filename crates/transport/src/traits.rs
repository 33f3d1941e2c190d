//! The `Transport` and `Connection` traits.

use std::future::Future;
use std::net::SocketAddr;

use meshwork_identity::PeerId;
use meshwork_wire::ProtocolId;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{AcceptError, AcceptStreamError, DialError, OpenStreamError};
use crate::{CloseReason, ConnectionStats, CountersSnapshot, Stream};

/// Which side started a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We dialed.
    Outbound,
    /// The peer dialed us.
    Inbound,
}

/// A set of authenticated connections to peers: dial, accept, and close.
///
/// Both implementations ([`QuicTransport`](crate::QuicTransport), [`MemoryTransport`](crate::MemoryTransport))
/// keep **one connection per peer**: dialing a peer we are already connected to returns that connection,
/// and when two peers dial each other at once the connection dialed by the smaller `PeerId` is kept on
/// both sides (the other is closed with [`CloseReason::Duplicate`]).
pub trait Transport: Send + Sync + 'static {
    /// A connection to one peer.
    type Connection: Connection;

    /// Our own identity, proven to every peer we connect to.
    fn peer_id(&self) -> PeerId;

    /// The address peers dial to reach us.
    fn local_addr(&self) -> SocketAddr;

    /// Connects to `peer` at `addr`. Fails with [`DialError::PeerIdMismatch`] if whoever answers there
    /// proves a different key.
    ///
    /// An open connection to `peer` is returned as it is, unless it runs over a relay circuit
    /// ([`meshwork_wire::relayed`]) and `addr` is direct: then the dial goes ahead, and a direct
    /// connection replaces the relayed one (which retires like a simultaneous dial's loser).
    fn dial(
        &self,
        peer: PeerId,
        addr: SocketAddr,
    ) -> impl Future<Output = Result<Self::Connection, DialError>> + Send;

    /// The next inbound connection, already authenticated. Connections refused for limits or failed
    /// handshakes never appear here; they are counted.
    ///
    /// The loser of a simultaneous dial also appears here (inbound, or outbound if our own dial lost):
    /// it closes as [`CloseReason::Duplicate`](crate::CloseReason::Duplicate) after
    /// [`DUPLICATE_GRACE`](crate::DUPLICATE_GRACE), and until then carries whatever the peer sent on it
    /// before it learned of the winner, so a reader should drain it rather than drop it.
    fn accept(&self) -> impl Future<Output = Result<Self::Connection, AcceptError>> + Send;

    /// The open connection to `peer`, if any.
    fn connection(&self, peer: &PeerId) -> Option<Self::Connection>;

    /// The counters: connections held, everything refused, the traffic of every connection ever held
    /// (closed ones included) and why connections closed. Reads each live connection's statistics.
    fn counters(&self) -> CountersSnapshot;

    /// Closes every connection with `reason` and stops listening. Later dials and accepts fail.
    fn close(&self, reason: CloseReason) -> impl Future<Output = ()> + Send;
}

/// An authenticated connection to one peer, carrying streams of several protocols at once.
///
/// Handles are cheap clones of one connection. The connection stays open until either side closes it,
/// its transport closes, or it idles out (keep-alives stop a healthy quiet connection from idling out).
pub trait Connection: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The sending half of this transport's byte pipe.
    type Writer: AsyncWrite + std::fmt::Debug + Unpin + Send + 'static;
    /// The receiving half of this transport's byte pipe.
    type Reader: AsyncRead + std::fmt::Debug + Unpin + Send + 'static;

    /// The peer, as proven by the handshake.
    fn remote_peer_id(&self) -> PeerId;

    /// The peer's address as we see it. Both implementations dial and listen from one socket, so this
    /// is also where the peer accepts connections (a driver's address book learns it from here); behind
    /// a NAT it would be the translated address.
    fn remote_addr(&self) -> SocketAddr;

    /// Who dialed.
    fn direction(&self) -> Direction;

    /// Opens a stream for `protocol`. Takes one round trip: the peer's transport answers the stream header
    /// (accepted or refused) without waiting for its application to call `accept_stream`. Waits while the
    /// peer's stream limit is reached (back-pressure). Fails with [`OpenStreamError::ProtocolRefused`] if
    /// the peer does not speak it.
    fn open(
        &self,
        protocol: ProtocolId,
    ) -> impl Future<Output = Result<Stream<Self::Writer, Self::Reader>, OpenStreamError>> + Send;

    /// Opens a stream for `protocol` without waiting for the peer's answer: frames written now follow
    /// the header, a round trip sooner than [`Connection::open`] allows, which matters on a connection
    /// dialled for one request. [`Stream::answered`] waits for the answer (receiving on the stream
    /// reads it first). If the peer refuses the protocol, whatever was written is lost: a caller that
    /// must not lose it keeps it until the answer, as the node runtime's writers do.
    fn open_eager(
        &self,
        protocol: ProtocolId,
    ) -> impl Future<Output = Result<Stream<Self::Writer, Self::Reader>, OpenStreamError>> + Send;

    /// The next stream the peer opened for a protocol we speak (others are refused and counted).
    fn accept_stream(
        &self,
    ) -> impl Future<Output = Result<Stream<Self::Writer, Self::Reader>, AcceptStreamError>> + Send;

    /// Closes the connection: both sides see `reason` on every later operation.
    fn close(&self, reason: CloseReason);

    /// Why the connection closed, or `None` while it is open.
    fn close_reason(&self) -> Option<CloseReason>;

    /// Resolves once the connection is closed, with the reason.
    fn closed(&self) -> impl Future<Output = CloseReason> + Send;

    /// What this connection has carried so far: datagrams and bytes each way, losses, round-trip time
    /// (see [`ConnectionStats`] for what each transport counts). Still answers once closed.
    fn stats(&self) -> ConnectionStats;
}
