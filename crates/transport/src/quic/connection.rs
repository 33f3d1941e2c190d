//! A QUIC connection to one authenticated peer.

use std::net::SocketAddr;
use std::sync::Arc;

use meshwork_identity::PeerId;
use meshwork_wire::ProtocolId;
use tokio::sync::{Mutex, mpsc};

use crate::budget::FrameBudget;
use crate::close::CloseCell;
use crate::counters::Counters;
use crate::error::{AcceptStreamError, OpenStreamError};
use crate::registry::Tracked;
use crate::{CloseReason, Config, Connection, ConnectionStats, Direction, Stream, negotiate};

/// A stream on a QUIC connection.
pub type QuicStream = Stream<quinn::SendStream, quinn::RecvStream>;

/// A QUIC connection whose remote key was proven in the TLS 1.3 handshake. Cheap to clone.
#[derive(Clone, Debug)]
pub struct QuicConnection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    conn: quinn::Connection,
    peer: PeerId,
    direction: Direction,
    config: Arc<Config>,
    close: CloseCell,
    counters: Arc<Counters>,
    budget: FrameBudget,
    /// The order this connection was established in, among this transport's (older is smaller).
    seq: u64,
    accepted: Mutex<mpsc::Receiver<Box<QuicStream>>>,
}

impl QuicConnection {
    pub(crate) fn new(
        conn: quinn::Connection,
        peer: PeerId,
        direction: Direction,
        config: Arc<Config>,
        counters: Arc<Counters>,
        budget: FrameBudget,
        seq: u64,
    ) -> Self {
        let close = CloseCell::default();
        let (queue, accepted) = negotiate::stream_queue(config.limits.max_streams_per_connection);
        tokio::spawn(accept_streams(
            conn.clone(),
            config.clone(),
            close.clone(),
            counters.clone(),
            budget.clone(),
            queue,
        ));
        let accepted = Mutex::new(accepted);
        let inner = Inner {
            conn,
            peer,
            direction,
            config,
            close,
            counters,
            budget,
            seq,
            accepted,
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The order this connection was established in among the transport's connections (older is
    /// smaller): eviction protects long-lived peers.
    pub(crate) fn seq(&self) -> u64 {
        self.inner.seq
    }

    /// The underlying quinn connection (round-trip time, statistics, datagrams).
    pub fn quinn(&self) -> &quinn::Connection {
        &self.inner.conn
    }

    fn closed_error(&self, err: &quinn::ConnectionError) -> CloseReason {
        close_reason(err, &self.inner.close)
    }
}

/// Takes the peer's new streams as they come and answers their headers, until the connection closes.
async fn accept_streams(
    conn: quinn::Connection,
    config: Arc<Config>,
    close: CloseCell,
    counters: Arc<Counters>,
    budget: FrameBudget,
    queue: mpsc::Sender<Box<QuicStream>>,
) {
    while let Ok((send, recv)) = conn.accept_bi().await {
        negotiate::accept_in_background(
            send,
            recv,
            config.clone(),
            close.clone(),
            counters.clone(),
            budget.clone(),
            queue.clone(),
        );
    }
}

/// The QUIC close code that carries `reason`.
pub(crate) fn quinn_code(reason: &CloseReason) -> quinn::VarInt {
    quinn::VarInt::from_u64(reason.code()).unwrap_or(quinn::VarInt::from_u32(0))
}

/// Closes a quinn connection with `reason`'s code and text.
pub(crate) fn close_quinn(conn: &quinn::Connection, reason: &CloseReason) {
    conn.close(quinn_code(reason), reason.to_string().as_bytes());
}

/// What a quinn connection error means for us; the first reason seen is kept for the connection.
pub(crate) fn close_reason(err: &quinn::ConnectionError, close: &CloseCell) -> CloseReason {
    let reason = match err {
        quinn::ConnectionError::ApplicationClosed(app) => CloseReason::from_code(app.error_code.into_inner()),
        quinn::ConnectionError::LocallyClosed => close.get().unwrap_or(CloseReason::Normal),
        quinn::ConnectionError::TimedOut => CloseReason::TimedOut,
        other => CloseReason::Lost(other.to_string()),
    };
    close.set(reason)
}

impl Connection for QuicConnection {
    type Writer = quinn::SendStream;
    type Reader = quinn::RecvStream;

    fn remote_peer_id(&self) -> PeerId {
        self.inner.peer
    }

    fn remote_addr(&self) -> SocketAddr {
        self.inner.conn.remote_address()
    }

    fn direction(&self) -> Direction {
        self.inner.direction
    }

    async fn open(&self, protocol: ProtocolId) -> Result<QuicStream, OpenStreamError> {
        let stream = self.open_eager(protocol).await?;
        negotiate::answered_within(stream, self.inner.config.timeouts.stream_open).await
    }

    async fn open_eager(&self, protocol: ProtocolId) -> Result<QuicStream, OpenStreamError> {
        let spec = self
            .inner
            .config
            .protocol(protocol)
            .ok_or(OpenStreamError::UnknownProtocol(protocol))?;
        let (send, recv) = self
            .inner
            .conn
            .open_bi()
            .await
            .map_err(|err| OpenStreamError::ConnectionClosed(self.closed_error(&err)))?;
        let (close, counters) = (self.inner.close.clone(), self.inner.counters.clone());
        negotiate::open_eager(send, recv, spec, close, counters, self.inner.budget.clone()).await
    }

    async fn accept_stream(&self) -> Result<QuicStream, AcceptStreamError> {
        let next = self.inner.accepted.lock().await.recv().await;
        match next {
            Some(stream) => Ok(*stream),
            None => Err(AcceptStreamError::ConnectionClosed(self.closed().await)),
        }
    }

    fn close(&self, reason: CloseReason) {
        let reason = self.inner.close.set(reason);
        close_quinn(&self.inner.conn, &reason);
    }

    fn close_reason(&self) -> Option<CloseReason> {
        self.inner.conn.close_reason().map(|err| self.closed_error(&err))
    }

    async fn closed(&self) -> CloseReason {
        let err = self.inner.conn.closed().await;
        self.closed_error(&err)
    }

    fn stats(&self) -> ConnectionStats {
        // quinn keeps its connection state (and so these counts) for as long as a handle lives.
        let stats = self.inner.conn.stats();
        ConnectionStats {
            datagrams_sent: stats.udp_tx.datagrams,
            bytes_sent: stats.udp_tx.bytes,
            datagrams_received: stats.udp_rx.datagrams,
            bytes_received: stats.udp_rx.bytes,
            packets_lost: stats.path.lost_packets,
            bytes_lost: stats.path.lost_bytes,
            congestion_events: stats.path.congestion_events,
            rtt: stats.path.rtt,
        }
    }
}

impl Tracked for QuicConnection {
    fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}
