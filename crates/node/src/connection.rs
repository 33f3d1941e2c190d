//! The tasks that own one connection: a writer per protocol, a reader per stream the peer opens, and a
//! watcher that reports the close. They talk to the node task only through bounded queues.
//!
//! What a peer can make us hold here is bounded in bytes (ARCHITECTURE.md, hostile peers): queued
//! sends count against the peer's and the node's send budgets until written or dropped
//! ([`Held`]), and received frames keep their transport budget until the
//! node task has handled them. Every write has a deadline: a peer that stops reading is disconnected,
//! not waited for.
//!
//! Nothing written is lost silently (ARCHITECTURE.md, "nothing lost silently"):
//! - a writer that cannot write hands what it could not write back to the node task
//!   ([`Inbox::Unsent`]), which sends it on another connection to the peer or counts the drop;
//! - a connection that closes is reported only after its readers have ended, each having handed
//!   over every frame it read, so no frame reaches the node after its connection's `Closed` (what the
//!   transport still held unread when the connection closed is lost with it);
//! - writers are never aborted: one that fails hands its frames back even after its connection was
//!   reported closed;
//! - a connection we retire (the loser of a simultaneous dial, one no protocol wants, or one the
//!   connection manager closes) is closed gracefully ([`retire`]): its writers finish their streams and
//!   wait until the peer's readers have read them to the end before the connection closes; the end of
//!   our streams tells the peer, which retires its side too ([`Retire::Mirrored`]), and unless no
//!   protocol wants the peer we also wait for the peer's streams to end, so what it wrote is read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use meshwork_transport::{CloseReason, Connection, RecvError};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;
use tracing::debug;

use crate::metrics::ProtocolMetrics;
use crate::runtime::Inbox;
use crate::send_budget::{Held, SendBudget};

mod writer;
use writer::Writer;

/// One encoded message waiting for a writer, holding its bytes' place in the budgets.
///
/// Writers' queues hold it boxed: tokio allocates a channel's first block of 32 slots when the
/// channel is made, so every route of every connection pays 32 slots before its first message; a box
/// is 8 bytes to this struct's 64, about 1.8 KB less per route of an idle connection.
pub(crate) struct Queued {
    pub(crate) bytes: Vec<u8>,
    pub(crate) held: Held,
    /// A control message ([`meshwork_wire::Protocol::is_control`]): it may use the queue's reserve.
    pub(crate) control: bool,
}

/// What the node task keeps of one open connection.
pub(crate) struct ConnEntry<C> {
    /// The node's own number for this connection (connections are not comparable otherwise).
    pub(crate) id: u64,
    pub(crate) conn: C,
    /// One queue of encoded messages per route (a protocol's channel), drained by its writer task.
    /// Empty once the connection is retiring: nothing new is written to it.
    pub(crate) writers: Vec<mpsc::Sender<Box<Queued>>>,
    /// The bytes queued to this peer, across its routes.
    pub(crate) budget: SendBudget,
    /// How far the streams in each direction are from done, for a graceful close.
    streams: Arc<Streams>,
    /// Ends (`None`) once every writer task has ended; taken by [`retire`].
    writers_done: Option<mpsc::Receiver<()>>,
    /// How the connection is being retired, once it is.
    retire: Option<Retire>,
    tasks: Vec<AbortHandle>,
}

impl<C> ConnEntry<C> {
    /// Whether the connection is being closed gracefully (it takes no new messages).
    pub(crate) fn retiring(&self) -> bool {
        self.retire.is_some()
    }

    /// Whether the connection closes because no protocol wants the peer: what the peer still sends
    /// on it is not wanted.
    pub(crate) fn released(&self) -> bool {
        self.retire == Some(Retire::OurWrites)
    }
}

impl<C: Connection> ConnEntry<C> {
    /// Whether new messages may go to this connection: open, and not being retired.
    pub(crate) fn takes_messages(&self) -> bool {
        !self.retiring() && self.conn.close_reason().is_none()
    }

    /// Whether the connection is closing for a reason that says nothing against the peer (a trim, ours
    /// or the peer's, or a lost simultaneous dial), so a message for the peer waits for its next
    /// connection rather than being dropped.
    pub(crate) fn reopens(&self) -> bool {
        let why = matches!(
            self.retire,
            Some(Retire::BothWays | Retire::Managed | Retire::Mirrored)
        );
        why && self.conn.close_reason().is_none()
    }
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

/// Clears a channel's reading flag ([`accept_streams`]) when its reader ends.
struct ReadingDone(Arc<Vec<AtomicBool>>, usize);

impl Drop for ReadingDone {
    fn drop(&mut self) {
        self.0[self.1].store(false, Ordering::Release);
    }
}

/// The streams of one connection, counted so a graceful close knows when both directions are done.
#[derive(Default)]
struct Streams {
    /// Our streams the peer accepted (it speaks the protocol, so it opens its own stream for it too).
    opened: AtomicUsize,
    /// The peer's streams we accepted.
    accepted: AtomicUsize,
    /// The peer's streams it finished and we read to the end.
    finished: AtomicUsize,
    /// Woken whenever `finished` grows.
    changed: Notify,
}

impl Streams {
    /// Waits until the peer has finished as many streams as we opened, and every stream it opened: it
    /// stopped writing to this connection and we have read everything it wrote.
    async fn peer_finished(&self) {
        loop {
            let (opened, accepted) = (
                self.opened.load(Ordering::Acquire),
                self.accepted.load(Ordering::Acquire),
            );
            if self.finished.load(Ordering::Acquire) >= opened.max(accepted) {
                return;
            }
            // `notify_one` keeps a permit for the one waiter, so a finish between the check and this
            // wait is not missed.
            self.changed.notified().await;
        }
    }
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
    let streams = Arc::new(Streams::default());
    let mut tasks = Vec::with_capacity(routes.len() + 2);
    let mut writers = Vec::with_capacity(routes.len());
    let (writer_guard, writers_done) = mpsc::channel(1);
    for (index, route) in routes.iter().enumerate() {
        let (tx, rx) = mpsc::channel(send_queue.max(1));
        writers.push(tx);
        let writer = Writer {
            conn: conn.clone(),
            id,
            route: index,
            protocol: route.id,
            metrics: route.metrics.clone(),
            deadline,
            inbox: inbox.clone(),
            streams: streams.clone(),
            _guard: writer_guard.clone(),
        };
        // Not aborted with the entry: a writer ends on its own (its queue ends with the entry, and
        // every write has a deadline), and must be able to hand back what it could not write.
        tokio::spawn(writer.run(rx));
    }
    drop(writer_guard);
    // Every reader holds a clone of `reader_guard`; the watcher reports the close once all are gone.
    let (reader_guard, mut readers_done) = mpsc::channel::<()>(1);
    let readers = tokio::spawn(accept_streams(
        conn.clone(),
        id,
        routes.clone(),
        inbox.clone(),
        streams.clone(),
        reader_guard,
    ));
    tasks.push(readers.abort_handle());
    let closed = {
        let (conn, inbox) = (conn.clone(), inbox.clone());
        tokio::spawn(async move {
            let reason = conn.closed().await;
            // Readers end once the connection is closed (reads fail), after handing over what they
            // had read; so this wait is bounded, and no frame of this connection follows `Closed`.
            while readers_done.recv().await.is_some() {}
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
        streams,
        writers_done: Some(writers_done),
        retire: None,
        tasks,
    }
}

/// How a retired connection closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retire {
    /// Once our writers are done and the peer has finished its streams too: the loser of a
    /// simultaneous dial, which both sides retire.
    BothWays,
    /// Once our writers are done: a peer no protocol wants (what it still sends is not wanted).
    OurWrites,
    /// Once our writers are done and the peer has finished its streams too: a connection the
    /// connection manager closes (idle, or trimmed). The peer learns of the close when our streams
    /// end, and retires its side ([`Retire::Mirrored`]), so a request it wrote before then is still
    /// read here, and handed to the protocols, which may still want the peer: it is answered on
    /// another connection if there is one, and otherwise the peer hears the close and asks again.
    /// Without that wait, a frame the peer wrote just before our close would be lost with the
    /// connection, unnoticed by a peer that has a second connection to us.
    Managed,
    /// As [`Retire::BothWays`]: the peer ended its streams on this connection, which it does only to
    /// close it; our writers finish too (what they hold is still written), and nothing new goes to it.
    Mirrored,
}

/// Closes `entry`'s connection gracefully with `reason`: no new message is queued to it, its writers
/// write what is queued, finish their streams and wait until the peer has read them to the end; then
/// (unless [`Retire::OurWrites`], once the peer has finished its own streams too) the connection closes.
/// Whatever happens, it closes within `deadline`; if that is what closes it, `undrained` counts it.
pub(crate) fn retire<C: Connection>(
    entry: &mut ConnEntry<C>,
    reason: CloseReason,
    how: Retire,
    deadline: Duration,
    undrained: Counter,
) {
    let Some(mut writers_done) = entry.writers_done.take() else {
        return;
    };
    entry.retire = Some(how);
    // Dropping the senders ends each writer's queue once it is empty.
    entry.writers.clear();
    let (conn, streams) = (entry.conn.clone(), entry.streams.clone());
    tokio::spawn(async move {
        let drained = async {
            while writers_done.recv().await.is_some() {}
            if how != Retire::OurWrites {
                streams.peer_finished().await;
            }
        };
        tokio::select! {
            // Closed by someone else (the peer, a stall, the transport): nothing left to do.
            _ = conn.closed() => {}
            drained = tokio::time::timeout(deadline, drained) => {
                if drained.is_err() {
                    debug!(peer = %conn.remote_peer_id(), ?deadline, "connection not drained in time: closing");
                    undrained.inc();
                }
                conn.close(reason);
            }
        }
    });
}

/// Accepts the streams the peer opens and starts a reader for each. `guard` (and each reader's clone)
/// is dropped when it ends: the watcher reports the close only after.
///
/// One stream per protocol channel at a time: a second one while the first is read is refused (reset,
/// and counted as an invalid frame of the channel). Read, a peer could open every stream the
/// transport lets it (16) for one protocol, and its readers would take as many places in the node's
/// inbox as an honest peer's one reader. Refused, not penalised: an honest node's writers open a
/// channel's stream twice on one connection when a dial already under way hands the runtime a
/// connection it is retiring, and what they write on the refused stream comes back to the runtime,
/// as from any stream a peer refuses (`Inbox::Unsent`).
async fn accept_streams<C: Connection>(
    conn: C,
    id: u64,
    routes: Arc<Vec<Route>>,
    inbox: mpsc::Sender<Inbox>,
    streams: Arc<Streams>,
    guard: mpsc::Sender<()>,
) {
    let peer = conn.remote_peer_id();
    let reading: Arc<Vec<AtomicBool>> = Arc::new(routes.iter().map(|_| AtomicBool::new(false)).collect());
    while let Ok(stream) = conn.accept_stream().await {
        // The transport only accepts streams of protocols it speaks, and it speaks ours.
        let Some(route) = routes.iter().position(|route| route.id == stream.protocol()) else {
            continue;
        };
        if reading[route].swap(true, Ordering::AcqRel) {
            routes[route].metrics.invalid_frames.inc();
            debug!(%peer, protocol = %routes[route].id, "a second stream while the first is read: refused");
            continue;
        }
        streams.accepted.fetch_add(1, Ordering::AcqRel);
        let metrics = routes[route].metrics.clone();
        let (inbox, streams, guard) = (inbox.clone(), streams.clone(), guard.clone());
        let reading = reading.clone();
        tokio::spawn(async move {
            let _guard = guard;
            // However the reader ends, the channel may carry a stream again.
            let _done = ReadingDone(reading, route);
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
                    // The peer finished the stream and we have handed over all of it. Dropping the
                    // stream ends our side too, which tells the peer's writer so. A peer ends its
                    // streams only to close the connection: the node task retires our side too
                    // (`Retire::Mirrored`).
                    Ok(None) => {
                        streams.finished.fetch_add(1, Ordering::AcqRel);
                        streams.changed.notify_one();
                        let _ = inbox.send(Inbox::PeerFinished { peer, conn: id }).await;
                        return;
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
                    // The connection went away: the watcher reports it.
                    Err(_) => return,
                }
            }
        });
    }
}
