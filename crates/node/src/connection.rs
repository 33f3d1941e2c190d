//! The tasks that own one connection: a writer per protocol, a reader per stream the peer opens, and a
//! watcher that reports the close. They talk to the node task only through bounded queues.

use std::sync::Arc;

use meshwork_transport::{Connection, RecvError};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::debug;

use crate::metrics::ProtocolMetrics;
use crate::runtime::Inbox;

/// What the node task keeps of one open connection.
pub(crate) struct ConnEntry<C> {
    /// The node's own number for this connection (connections are not comparable otherwise).
    pub(crate) id: u64,
    pub(crate) conn: C,
    /// One queue of encoded messages per route (a protocol's channel), drained by its writer task.
    pub(crate) writers: Vec<mpsc::Sender<Vec<u8>>>,
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
    inbox: &mpsc::Sender<Inbox>,
) -> ConnEntry<C> {
    let peer = conn.remote_peer_id();
    let mut tasks = Vec::with_capacity(routes.len() + 2);
    let mut writers = Vec::with_capacity(routes.len());
    for route in routes.iter() {
        let (tx, rx) = mpsc::channel(send_queue.max(1));
        writers.push(tx);
        let task = tokio::spawn(write(conn.clone(), route.id, route.metrics.clone(), rx));
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
        tasks,
    }
}

/// Opens our stream for one protocol and writes every queued message to it, in order.
async fn write<C: Connection>(
    conn: C,
    protocol: meshwork_wire::ProtocolId,
    metrics: ProtocolMetrics,
    mut queue: mpsc::Receiver<Vec<u8>>,
) {
    let mut stream = match conn.open(protocol).await {
        Ok(stream) => stream,
        Err(err) => {
            debug!(peer = %conn.remote_peer_id(), %protocol, %err, "cannot open stream");
            return;
        }
    };
    while let Some(bytes) = queue.recv().await {
        if let Err(err) = stream.send_frame(&bytes).await {
            debug!(peer = %conn.remote_peer_id(), %protocol, %err, "send failed");
            return;
        }
        metrics.messages_out.inc();
        metrics.bytes_out.inc_by(bytes.len() as u64);
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
                let mut body = Vec::new();
                match stream.recv_frame_into(&mut body).await {
                    Ok(true) => {
                        metrics.messages_in.inc();
                        metrics.bytes_in.inc_by(body.len() as u64);
                        // Waiting here when the node is busy is the back-pressure: the transport's
                        // windows fill and the peer slows down.
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
                    // The peer finished the stream, or the connection went away: the watcher reports it.
                    Ok(false) | Err(_) => return,
                }
            }
        });
    }
}
