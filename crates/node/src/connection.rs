//! The tasks that own one connection: a writer per protocol, a reader per stream the peer opens, and a
//! watcher that reports the close. They talk to the node task only through bounded queues.
//!
//! What a peer can make us hold here is bounded in bytes (ARCHITECTURE.md, hostile peers): queued
//! sends count against the peer's and the node's send budgets until written or dropped ([`Held`]), and
//! received frames keep their transport budget until the node task has handled them. Every write has a
//! deadline: a peer that stops reading is disconnected, not waited for.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use meshwork_transport::{Connection, RecvError};
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::debug;

use crate::metrics::ProtocolMetrics;
use crate::runtime::Inbox;

/// Bytes waiting to be written: to one peer, and to all peers beyond each peer's reserved floor.
#[derive(Clone, Debug)]
pub(crate) struct SendBudget {
    peer: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
    gauge: Gauge,
}

impl SendBudget {
    /// A budget for a new connection, sharing the node's `total`.
    pub(crate) fn new(total: &Arc<AtomicU64>, gauge: &Gauge) -> Self {
        Self {
            peer: Arc::new(AtomicU64::new(0)),
            total: total.clone(),
            gauge: gauge.clone(),
        }
    }

    /// Reserves `len` bytes if the peer stays within `per_peer` (or has nothing queued) and the part
    /// of its queue beyond its `reserved` floor fits in the node's `total`. The floor keeps the total
    /// from being a shared resource peers that stop reading can exhaust: an honest peer can always queue
    /// that much, whatever the others hold.
    pub(crate) fn reserve(&self, len: usize, limits: SendLimits) -> Option<Held> {
        let len = len as u64;
        let before = self
            .peer
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q == 0 || q.saturating_add(len) <= limits.per_peer).then_some(q + len)
            })
            .ok()?;
        let shared = (before + len).saturating_sub(before.max(limits.reserved));
        let fits = self.total.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
            (t.saturating_add(shared) <= limits.total).then_some(t + shared)
        });
        if fits.is_err() {
            self.peer.fetch_sub(len, Ordering::AcqRel);
            return None;
        }
        self.gauge.inc_by(len as i64);
        Some(Held {
            budget: self.clone(),
            len,
            shared,
        })
    }
}

/// The send budgets, from [`NodeConfig`](crate::NodeConfig).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendLimits {
    pub(crate) per_peer: u64,
    pub(crate) reserved: u64,
    pub(crate) total: u64,
}

/// Bytes of one queued message, given back to the budget when it is written or dropped (however the
/// writer ends, the queue's contents are dropped with it).
#[derive(Debug)]
pub(crate) struct Held {
    budget: SendBudget,
    len: u64,
    /// The part of `len` drawn on the node's total (the rest is within the peer's reserved floor).
    shared: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.peer.fetch_sub(self.len, Ordering::AcqRel);
        self.budget.total.fetch_sub(self.shared, Ordering::AcqRel);
        self.budget.gauge.dec_by(self.len as i64);
    }
}

/// One encoded message waiting for a writer, holding its bytes' place in the budgets.
pub(crate) struct Queued {
    pub(crate) bytes: Vec<u8>,
    pub(crate) held: Held,
}

/// What the node task keeps of one open connection.
pub(crate) struct ConnEntry<C> {
    /// The node's own number for this connection (connections are not comparable otherwise).
    pub(crate) id: u64,
    pub(crate) conn: C,
    /// One queue of encoded messages per route (a protocol's channel), drained by its writer task.
    pub(crate) writers: Vec<mpsc::Sender<Queued>>,
    /// The bytes queued to this peer, across its routes.
    pub(crate) budget: SendBudget,
    tasks: Vec<AbortHandle>,
}

impl<C> Drop for ConnEntry<C> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Per channel of every protocol: its id, the counters its tasks update, and the protocol (slot) and
/// channel of that protocol it leads to.
pub(crate) struct Route {
    pub(crate) id: meshwork_wire::ProtocolId,
    pub(crate) metrics: ProtocolMetrics,
    pub(crate) slot: usize,
    pub(crate) channel: usize,
}

/// Starts the tasks of a new connection and returns its entry.
pub(crate) fn start<C: Connection>(
    id: u64,
    conn: C,
    routes: &Arc<Vec<Route>>,
    send_queue: usize,
    budget: SendBudget,
    deadline: Duration,
    inbox: &mpsc::Sender<Inbox>,
) -> ConnEntry<C> {
    let peer = conn.remote_peer_id();
    let mut tasks = Vec::with_capacity(routes.len() + 2);
    let mut writers = Vec::with_capacity(routes.len());
    for route in routes.iter() {
        let (tx, rx) = mpsc::channel(send_queue.max(1));
        writers.push(tx);
        let writer = Writer {
            conn: conn.clone(),
            id,
            protocol: route.id,
            metrics: route.metrics.clone(),
            deadline,
            inbox: inbox.clone(),
        };
        let task = tokio::spawn(writer.run(rx));
        tasks.push(task.abort_handle());
    }
    let readers = tokio::spawn(accept_streams(conn.clone(), id, routes.clone(), inbox.clone()));
    tasks.push(readers.abort_handle());
    let closed = {
        let (conn, inbox) = (conn.clone(), inbox.clone());
        tokio::spawn(async move {
            let reason = conn.closed().await;
            debug!(%peer, ?reason, "connection closed");
            let _ = inbox.send(Inbox::Closed { peer, conn: id }).await;
        })
    };
    tasks.push(closed.abort_handle());
    ConnEntry {
        id,
        conn,
        writers,
        budget,
        tasks,
    }
}

/// The task writing one protocol's messages to one peer.
struct Writer<C> {
    conn: C,
    id: u64,
    protocol: meshwork_wire::ProtocolId,
    metrics: ProtocolMetrics,
    deadline: Duration,
    inbox: mpsc::Sender<Inbox>,
}

impl<C: Connection> Writer<C> {
    /// Opens our stream for the protocol and writes every queued message to it, in order. A step that
    /// makes no progress within the deadline reports the peer as stalled and ends.
    async fn run(self, mut queue: mpsc::Receiver<Queued>) {
        let peer = self.conn.remote_peer_id();
        let protocol = self.protocol;
        let mut stream = match tokio::time::timeout(self.deadline, self.conn.open(protocol)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => {
                debug!(%peer, %protocol, %err, "cannot open stream");
                return;
            }
            Err(_) => return self.stalled().await,
        };
        while let Some(queued) = queue.recv().await {
            let bytes = &queued.bytes;
            match tokio::time::timeout(self.deadline, stream.send_frame(bytes)).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    debug!(%peer, %protocol, %err, "send failed");
                    return;
                }
                Err(_) => return self.stalled().await,
            }
            self.metrics.messages_out.inc();
            self.metrics.bytes_out.inc_by(bytes.len() as u64);
            drop(queued.held);
        }
    }

    async fn stalled(&self) {
        let peer = self.conn.remote_peer_id();
        debug!(%peer, protocol = %self.protocol, deadline = ?self.deadline, "write made no progress");
        let _ = self.inbox.send(Inbox::Stalled { peer, conn: self.id }).await;
    }
}

/// Accepts the streams the peer opens and starts a reader for each.
async fn accept_streams<C: Connection>(
    conn: C,
    id: u64,
    routes: Arc<Vec<Route>>,
    inbox: mpsc::Sender<Inbox>,
) {
    let peer = conn.remote_peer_id();
    while let Ok(stream) = conn.accept_stream().await {
        // The transport only accepts streams of protocols it speaks, and it speaks ours.
        let Some(route) = routes.iter().position(|route| route.id == stream.protocol()) else {
            continue;
        };
        let metrics = routes[route].metrics.clone();
        let inbox = inbox.clone();
        tokio::spawn(async move {
            let mut stream = stream;
            loop {
                match stream.recv_held().await {
                    Ok(Some(body)) => {
                        metrics.messages_in.inc();
                        metrics.bytes_in.inc_by(body.len() as u64);
                        // Waiting here when the node is busy is the back-pressure: the transport's
                        // windows fill and the peer slows down. The frame keeps its bytes counted
                        // against the peer's budget until the node task has handled it.
                        let frame = Inbox::Frame {
                            peer,
                            conn: id,
                            route,
                            bytes: body,
                        };
                        if inbox.send(frame).await.is_err() {
                            return;
                        }
                    }
                    Err(err @ RecvError::TooLarge { .. }) => {
                        metrics.invalid_frames.inc();
                        let _ = inbox
                            .send(Inbox::Invalid {
                                peer,
                                reason: err.to_string(),
                            })
                            .await;
                        return;
                    }
                    Err(RecvError::FrameTimeout { .. }) => {
                        let _ = inbox.send(Inbox::Stalled { peer, conn: id }).await;
                        return;
                    }
                    // The peer finished the stream, or the connection went away: the watcher reports it.
                    Ok(None) | Err(_) => return,
                }
            }
        });
    }
}
