//! The writer task: one per route of a connection, writing that protocol's messages to one peer.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use meshwork_transport::{Connection, OpenStreamError, SendError};
use meshwork_wire::DropReason;
use tokio::sync::mpsc;
use tracing::debug;

use super::{Queued, Streams};
use crate::metrics::ProtocolMetrics;
use crate::runtime::Inbox;

/// What a writer waits for: the peer's answer to its stream's header, or the next message.
enum Next {
    Answer(Result<Result<(), OpenStreamError>, tokio::time::error::Elapsed>),
    Queued(Option<Box<Queued>>),
}

/// The task writing one protocol's messages to one peer.
pub(super) struct Writer<C> {
    pub(super) conn: C,
    pub(super) id: u64,
    pub(super) route: usize,
    pub(super) protocol: meshwork_wire::ProtocolId,
    pub(super) metrics: ProtocolMetrics,
    pub(super) deadline: Duration,
    pub(super) inbox: mpsc::Sender<Inbox>,
    pub(super) streams: Arc<Streams>,
    /// Dropped when the writer ends: [`retire`](super::retire) waits for every writer's.
    pub(super) _guard: mpsc::Sender<()>,
}

impl<C: Connection> Writer<C> {
    /// Opens our stream for the protocol and writes every queued message to it, in order. A step that
    /// makes no progress within the deadline reports the peer as stalled and ends. When the queue ends
    /// (the connection is retiring) the stream is finished, and the writer waits until the peer's
    /// reader has read it to the end: then everything written has reached the peer's node.
    ///
    /// The stream is opened eagerly ([`Connection::open_eager`]): the first messages follow its header
    /// without waiting for the peer's answer, so a request on a connection just dialled for it takes
    /// the handshake and one round trip, not two. Until the answer comes, what was written is kept
    /// (and still counts against the budgets): if the peer refuses the protocol, it is handed back to
    /// the node task like anything else that could not be written.
    pub(super) async fn run(self, mut queue: mpsc::Receiver<Box<Queued>>) {
        let peer = self.conn.remote_peer_id();
        let protocol = self.protocol;
        let opened = tokio::time::timeout(self.deadline, self.conn.open_eager(protocol)).await;
        let mut stream = match opened {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => {
                debug!(%peer, %protocol, %err, "cannot open stream");
                let reason = self.reason_of_failure();
                return self.hand_back(&mut queue, Vec::new(), reason).await;
            }
            Err(_) => {
                self.stalled().await;
                return self
                    .hand_back(&mut queue, Vec::new(), DropReason::WriteFailed)
                    .await;
            }
        };
        let answer_by = crate::runtime::monotonic() + self.deadline;
        // Written before the peer's answer: `None` once it accepted.
        let mut unanswered = Some(Vec::new());
        loop {
            let next = match unanswered {
                Some(_) => tokio::select! {
                    answer = tokio::time::timeout_at(answer_by, stream.answered()) => Next::Answer(answer),
                    queued = queue.recv() => Next::Queued(queued),
                },
                None => Next::Queued(queue.recv().await),
            };
            let queued = match next {
                Next::Answer(answer) => {
                    let written = unanswered.take().unwrap_or_default();
                    if let Err(reason) = self.accepted(answer).await {
                        return self.hand_back(&mut queue, written, reason).await;
                    }
                    continue;
                }
                Next::Queued(Some(queued)) => queued,
                // Retiring: the answer first, so nothing written is lost to a refusal.
                Next::Queued(None) => match unanswered.take() {
                    Some(written) => {
                        let answer = tokio::time::timeout_at(answer_by, stream.answered()).await;
                        if let Err(reason) = self.accepted(answer).await {
                            return self.hand_back(&mut queue, written, reason).await;
                        }
                        break;
                    }
                    None => break,
                },
            };
            let failed = match tokio::time::timeout(self.deadline, stream.send_frame(&queued.bytes)).await {
                Ok(Ok(())) => None,
                Ok(Err(err)) => {
                    debug!(%peer, %protocol, %err, "send failed");
                    Some(match err {
                        SendError::ConnectionClosed(_) => DropReason::ConnectionClosed,
                        _ => self.reason_of_failure(),
                    })
                }
                Err(_) => {
                    self.stalled().await;
                    Some(DropReason::WriteFailed)
                }
            };
            if let Some(reason) = failed {
                // Before the answer, what was written may never be read (a refusing peer stops the
                // stream, which is why this write failed): it goes back too.
                let mut frames = unanswered.take().unwrap_or_default();
                frames.push(*queued);
                return self.hand_back(&mut queue, frames, reason).await;
            }
            self.metrics.messages_out.inc();
            self.metrics.bytes_out.inc_by(queued.bytes.len() as u64);
            match &mut unanswered {
                Some(written) => written.push(*queued),
                None => drop(queued),
            }
        }
        // Retiring. The peer's reader drops its end once it has read ours to the end, which we see
        // as the end of the (otherwise silent) reverse direction.
        let confirmed = async {
            stream.finish().await.ok()?;
            stream.recv_frame().await.ok()
        };
        if tokio::time::timeout(self.deadline, confirmed).await.is_err() {
            debug!(%peer, %protocol, "peer did not confirm the end of our stream in time");
        }
    }

    /// The peer's answer to our stream's header, or why what was written before it goes back to the
    /// node task. An accepted stream counts as opened, for a graceful close to wait on the peer's.
    async fn accepted(
        &self,
        answer: Result<Result<(), OpenStreamError>, tokio::time::error::Elapsed>,
    ) -> Result<(), DropReason> {
        match answer {
            Ok(Ok(())) => {
                self.streams.opened.fetch_add(1, Ordering::AcqRel);
                Ok(())
            }
            Ok(Err(err)) => {
                debug!(peer = %self.conn.remote_peer_id(), protocol = %self.protocol, %err, "stream not accepted");
                Err(self.reason_of_failure())
            }
            Err(_) => {
                self.stalled().await;
                Err(DropReason::WriteFailed)
            }
        }
    }

    /// Why writing failed when the error itself does not say: the connection closed, or not.
    fn reason_of_failure(&self) -> DropReason {
        if self.conn.close_reason().is_some() {
            DropReason::ConnectionClosed
        } else {
            DropReason::WriteFailed
        }
    }

    /// Hands `failed` and everything still queued back to the node task, which sends it on another
    /// connection to the peer or counts it as dropped for `reason`.
    async fn hand_back(
        &self,
        queue: &mut mpsc::Receiver<Box<Queued>>,
        mut frames: Vec<Queued>,
        reason: DropReason,
    ) {
        queue.close();
        while let Ok(queued) = queue.try_recv() {
            frames.push(*queued);
        }
        if frames.is_empty() {
            return;
        }
        let peer = self.conn.remote_peer_id();
        let unsent = Inbox::Unsent {
            peer,
            conn: self.id,
            route: self.route,
            frames,
            reason,
        };
        let _ = self.inbox.send(unsent).await;
    }

    async fn stalled(&self) {
        let peer = self.conn.remote_peer_id();
        debug!(%peer, protocol = %self.protocol, deadline = ?self.deadline, "write made no progress");
        let _ = self.inbox.send(Inbox::Stalled { peer, conn: self.id }).await;
    }
}
