//! An in-memory connection: streams are bounded byte pipes, closing is shared by both ends.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use meshwork_identity::PeerId;
use meshwork_wire::ProtocolId;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf, ReadHalf, WriteHalf};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::budget::{FrameBudget, GlobalBudget};
use crate::close::CloseCell;
use crate::counters::Counters;
use crate::error::{AcceptStreamError, OpenStreamError};
use crate::registry::Tracked;
use crate::stream::PipeClosed;
use crate::{CloseReason, Config, Connection, ConnectionStats, Direction, Stream, negotiate};

/// A stream on an in-memory connection.
pub type MemoryStream = Stream<MemoryWriter, MemoryReader>;

/// What both ends of one in-memory connection share: the close reason and its signal, and what went
/// each way.
#[derive(Debug)]
pub(crate) struct Link {
    close: CloseCell,
    signal: watch::Sender<bool>,
    /// Writes into stream pipes, by the end that wrote them: `[DIALER]` and `[LISTENER]`.
    flows: [Flow; 2],
}

/// The dialer's index in [`Link::flows`].
const DIALER: usize = 0;
/// The listener's index in [`Link::flows`].
const LISTENER: usize = 1;

/// What one end wrote into the stream pipes of a connection (see [`ConnectionStats`]).
#[derive(Debug, Default)]
struct Flow {
    writes: AtomicU64,
    bytes: AtomicU64,
}

impl Flow {
    fn record(&self, bytes: usize) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn read(&self) -> (u64, u64) {
        (
            self.writes.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

impl Link {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            close: CloseCell::default(),
            signal: watch::channel(false).0,
            flows: Default::default(),
        })
    }

    fn close(&self, reason: CloseReason) {
        self.close.set(reason);
        self.signal.send_replace(true);
    }

    /// Resolves once either end closed the connection.
    fn closed(&self) -> impl Future<Output = CloseReason> + Send + 'static {
        let mut rx = self.signal.subscribe();
        let close = self.close.clone();
        async move {
            // The sender lives in the link, which outlives this wait only if the link does; if it is gone
            // the connection is gone too.
            let _ = rx.wait_for(|closed| *closed).await;
            close.get().unwrap_or(CloseReason::Normal)
        }
    }
}

/// A stream's pipe ends, as handed to the accepting side.
type PipeEnds = (MemoryWriter, MemoryReader);

/// An in-memory connection to one peer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MemoryConnection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    peer: PeerId,
    remote_addr: SocketAddr,
    direction: Direction,
    config: Arc<Config>,
    counters: Arc<Counters>,
    budget: FrameBudget,
    link: Arc<Link>,
    /// This end's index in `link.flows` ([`DIALER`] or [`LISTENER`]).
    end: usize,
    /// Streams we open go here, to the peer's `accept_stream`.
    outgoing: mpsc::Sender<PipeEnds>,
    /// Streams the peer opened, answered and ready to accept.
    accepted: Mutex<mpsc::Receiver<Box<MemoryStream>>>,
    /// How many streams we may have open to the peer (its `max_streams_per_connection`).
    stream_credit: Arc<Semaphore>,
    /// Bytes buffered in one stream's pipe.
    pipe_bytes: usize,
}

/// The sending half of an in-memory stream. Fails once the connection is closed.
#[derive(Debug)]
pub struct MemoryWriter {
    half: WriteHalf<DuplexStream>,
    closed: Closed,
    /// The connection, to count what this end writes in `link.flows[end]`.
    link: Arc<Link>,
    end: usize,
}

/// The receiving half of an in-memory stream. Fails once the connection is closed.
#[derive(Debug)]
pub struct MemoryReader {
    half: ReadHalf<DuplexStream>,
    closed: Closed,
    _credit: Arc<OwnedSemaphorePermit>,
}

/// A pollable "connection closed" signal.
struct Closed(Pin<Box<dyn Future<Output = CloseReason> + Send>>);

impl std::fmt::Debug for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Closed")
    }
}

impl Closed {
    fn poll_closed(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        match self.0.as_mut().poll(cx) {
            Poll::Ready(reason) => Some(io::Error::other(PipeClosed(reason))),
            Poll::Pending => None,
        }
    }
}

impl AsyncWrite for MemoryWriter {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(err) = self.closed.poll_closed(cx) {
            return Poll::Ready(Err(err));
        }
        let written = Pin::new(&mut self.half).poll_write(cx, buf);
        if let Poll::Ready(Ok(bytes @ 1..)) = written {
            self.link.flows[self.end].record(bytes);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.half).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.half).poll_shutdown(cx)
    }
}

impl AsyncRead for MemoryReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(err) = self.closed.poll_closed(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.half).poll_read(cx, buf)
    }
}

/// The two ends of a new connection: `(dialer's, listener's)`.
pub(crate) struct Pair {
    pub(crate) dialer: MemoryConnection,
    pub(crate) listener: MemoryConnection,
}

/// One side's view, before the connection exists.
pub(crate) struct Side {
    pub(crate) peer_id: PeerId,
    /// The address this side is bound at (what the other side sees as its remote address).
    pub(crate) addr: SocketAddr,
    pub(crate) config: Arc<Config>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) budget: GlobalBudget,
}

impl Pair {
    pub(crate) fn new(dialer: &Side, listener: &Side) -> Self {
        let link = Link::new();
        // Each side's incoming queue holds at most as many streams as it allows open.
        let dialer_streams = dialer.config.limits.max_streams_per_connection as usize;
        let listener_streams = listener.config.limits.max_streams_per_connection as usize;
        let (to_listener, listener_in) = mpsc::channel(listener_streams.max(1));
        let (to_dialer, dialer_in) = mpsc::channel(dialer_streams.max(1));
        let pipe_bytes = |side: &Side| {
            let limits = &side.config.limits;
            limits
                .max_queued_bytes_per_stream
                .min(limits.max_queued_bytes_per_peer)
                .max(1) as usize
        };
        let end = |me: &Side, other: &Side, direction, outgoing, incoming, credit: usize| {
            let index = match direction {
                Direction::Outbound => DIALER,
                Direction::Inbound => LISTENER,
            };
            let budget = me.budget.for_connection();
            MemoryConnection {
                inner: Arc::new(Inner {
                    peer: other.peer_id,
                    remote_addr: other.addr,
                    direction,
                    config: me.config.clone(),
                    counters: me.counters.clone(),
                    budget: budget.clone(),
                    link: link.clone(),
                    end: index,
                    outgoing,
                    accepted: Mutex::new(accept_streams(incoming, me, &link, budget)),
                    stream_credit: Arc::new(Semaphore::new(credit)),
                    pipe_bytes: pipe_bytes(me).min(pipe_bytes(other)),
                }),
            }
        };
        Self {
            dialer: end(
                dialer,
                listener,
                Direction::Outbound,
                to_listener,
                dialer_in,
                listener_streams,
            ),
            listener: end(
                listener,
                dialer,
                Direction::Inbound,
                to_dialer,
                listener_in,
                dialer_streams,
            ),
        }
    }
}

/// Takes the peer's new streams as they come and answers their headers, until the connection closes.
fn accept_streams(
    mut incoming: mpsc::Receiver<PipeEnds>,
    me: &Side,
    link: &Arc<Link>,
    budget: FrameBudget,
) -> mpsc::Receiver<Box<MemoryStream>> {
    let (queue, accepted) = negotiate::stream_queue(me.config.limits.max_streams_per_connection);
    let (config, counters, close) = (me.config.clone(), me.counters.clone(), link.close.clone());
    let closed = link.closed();
    tokio::spawn(async move {
        tokio::pin!(closed);
        loop {
            let (send, recv) = tokio::select! {
                ends = incoming.recv() => match ends { Some(ends) => ends, None => break },
                _ = &mut closed => break,
            };
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
    });
    accepted
}

impl Connection for MemoryConnection {
    type Writer = MemoryWriter;
    type Reader = MemoryReader;

    fn remote_peer_id(&self) -> PeerId {
        self.inner.peer
    }

    fn remote_addr(&self) -> SocketAddr {
        self.inner.remote_addr
    }

    fn direction(&self) -> Direction {
        self.inner.direction
    }

    async fn open(&self, protocol: ProtocolId) -> Result<MemoryStream, OpenStreamError> {
        let stream = self.open_eager(protocol).await?;
        negotiate::answered_within(stream, self.inner.config.timeouts.stream_open).await
    }

    async fn open_eager(&self, protocol: ProtocolId) -> Result<MemoryStream, OpenStreamError> {
        let inner = &self.inner;
        let spec = inner
            .config
            .protocol(protocol)
            .ok_or(OpenStreamError::UnknownProtocol(protocol))?;
        let closed = |reason| OpenStreamError::ConnectionClosed(reason);
        let reason_now = || inner.link.close.get().unwrap_or(CloseReason::Normal);
        // A closed connection always reports its reason, even when stream credit is also available:
        // `biased` makes the close branch win when both are ready.
        if let Some(reason) = inner.link.close.get() {
            return Err(closed(reason));
        }
        // Wait for stream credit (the peer's stream limit), unless the connection closes first.
        let credit = tokio::select! {
            biased;
            reason = inner.link.closed() => return Err(closed(reason)),
            permit = inner.stream_credit.clone().acquire_owned() => permit.map_err(|_| closed(reason_now()))?,
        };
        let credit = Arc::new(credit);
        let (ours, theirs) = tokio::io::duplex(inner.pipe_bytes);
        let pipe = |stream: DuplexStream, credit: Arc<OwnedSemaphorePermit>, end: usize| {
            let (read, write) = tokio::io::split(stream);
            let writer = MemoryWriter {
                half: write,
                closed: Closed(Box::pin(inner.link.closed())),
                link: inner.link.clone(),
                end,
            };
            let reader = MemoryReader {
                half: read,
                closed: Closed(Box::pin(inner.link.closed())),
                _credit: credit,
            };
            (writer, reader)
        };
        let (send, recv) = pipe(ours, credit.clone(), inner.end);
        tokio::select! {
            biased;
            reason = inner.link.closed() => return Err(closed(reason)),
            sent = inner.outgoing.send(pipe(theirs, credit, 1 - inner.end)) => sent.map_err(|_| closed(reason_now()))?,
        }
        let (close, counters) = (inner.link.close.clone(), inner.counters.clone());
        negotiate::open_eager(send, recv, spec, close, counters, inner.budget.clone()).await
    }

    async fn accept_stream(&self) -> Result<MemoryStream, AcceptStreamError> {
        let inner = &self.inner;
        let mut accepted = inner.accepted.lock().await;
        tokio::select! {
            stream = accepted.recv() => stream.map(|stream| *stream).ok_or_else(|| {
                AcceptStreamError::ConnectionClosed(inner.link.close.get().unwrap_or(CloseReason::Normal))
            }),
            reason = inner.link.closed() => Err(AcceptStreamError::ConnectionClosed(reason)),
        }
    }

    fn close(&self, reason: CloseReason) {
        self.inner.link.close(reason);
    }

    fn close_reason(&self) -> Option<CloseReason> {
        self.inner.link.close.get()
    }

    async fn closed(&self) -> CloseReason {
        self.inner.link.closed().await
    }

    fn stats(&self) -> ConnectionStats {
        let flows = &self.inner.link.flows;
        let (datagrams_sent, bytes_sent) = flows[self.inner.end].read();
        let (datagrams_received, bytes_received) = flows[1 - self.inner.end].read();
        ConnectionStats {
            datagrams_sent,
            bytes_sent,
            datagrams_received,
            bytes_received,
            ..ConnectionStats::default()
        }
    }
}

impl Tracked for MemoryConnection {
    fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner.link, &other.inner.link)
    }
}
