//! A stream carrying one protocol's frames, over any ordered byte pipe (a QUIC stream or an in-memory one).

use std::io;
use std::sync::Arc;

use meshwork_wire::{FrameError, ProtocolId, codec, frame};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::budget::{FrameBudget, Reserved};
use crate::close::CloseCell;
use crate::counters::Counters;
use crate::error::{OpenStreamError, RecvError, SendError};
use crate::stream_header::ACCEPTED;
use crate::{CloseReason, ProtocolSpec};

/// Bodies up to this size are copied behind their header and written at once; larger ones are written
/// as they are, after the header.
const COALESCE_MAX: usize = 16 * 1024;

/// One stream of one protocol: framed, bounded messages in both directions.
///
/// Every frame is a 4-byte big-endian length and a postcard body ([`meshwork_wire::frame`]). On the way
/// out a message over the protocol's maximum is refused before anything is written; on the way in the
/// header is read and checked first, and only then is the body read into a buffer of that size.
///
/// `W` and `R` are the transport's byte pipes; code generic over a [`Transport`](crate::Transport) names
/// this type as `Stream<C::Writer, C::Reader>` for its connection type `C`.
#[derive(Debug)]
pub struct Stream<W, R> {
    spec: ProtocolSpec,
    send: W,
    recv: R,
    close: CloseCell,
    counters: Arc<Counters>,
    budget: FrameBudget,
    /// Opened eagerly ([`crate::Connection::open_eager`]): the peer's one-byte answer to our header
    /// has not been read yet.
    answer_pending: bool,
}

/// A received frame's body, holding its share of the peer's and the transport's frame budgets
/// (`Limits::max_frame_bytes_per_peer`, `Limits::max_frame_bytes`) until it is dropped: a consumer that
/// queues frames keeps them counted against the peer that sent them.
#[derive(Debug)]
pub struct Frame {
    body: Vec<u8>,
    _reserved: Reserved,
}

impl Frame {
    /// The frame's body.
    pub fn bytes(&self) -> &[u8] {
        &self.body
    }
}

impl std::ops::Deref for Frame {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.body
    }
}

impl<W, R> Stream<W, R>
where
    W: AsyncWrite + Unpin + Send,
    R: AsyncRead + Unpin + Send,
{
    pub(crate) fn new(
        spec: ProtocolSpec,
        send: W,
        recv: R,
        close: CloseCell,
        counters: Arc<Counters>,
        budget: FrameBudget,
    ) -> Self {
        Self {
            spec,
            send,
            recv,
            close,
            counters,
            budget,
            answer_pending: false,
        }
    }

    /// The stream of an eager open: its header is sent, the peer's answer not yet read.
    pub(crate) fn answer_pending(mut self) -> Self {
        self.answer_pending = true;
        self
    }

    /// Waits for the peer's answer to the header of a stream opened with
    /// [`Connection::open_eager`](crate::Connection::open_eager); returns at once for any other
    /// stream, or once the answer has been read. Fails with [`OpenStreamError::ProtocolRefused`] if
    /// the peer does not speak the protocol: what was sent on the stream is lost.
    ///
    /// Cancel-safe: dropped before it returns, it has read nothing.
    pub async fn answered(&mut self) -> Result<(), OpenStreamError> {
        if !self.answer_pending {
            return Ok(());
        }
        let mut status = [0u8; 1];
        let read = self.recv.read(&mut status).await;
        self.answer_pending = false;
        let refused = OpenStreamError::ProtocolRefused(self.spec.id);
        match read {
            Ok(1) if status[0] == ACCEPTED => Ok(()),
            Ok(_) => Err(refused),
            Err(err) => Err(match classify(err, &self.close) {
                Failure::Closed(reason) => OpenStreamError::ConnectionClosed(reason),
                Failure::Reset | Failure::Finished => refused,
            }),
        }
    }

    /// The protocol this stream carries.
    pub fn protocol(&self) -> ProtocolId {
        self.spec.id
    }

    /// The largest frame body this stream sends or accepts.
    pub fn max_message_size(&self) -> usize {
        self.spec.max_message_size
    }

    /// Encodes `msg` as one frame and sends it. Waits while the peer's receive window is full
    /// (back-pressure); a message over the protocol's maximum is refused and nothing is sent.
    pub async fn send<T: Serialize + ?Sized>(&mut self, msg: &T) -> Result<(), SendError> {
        let bytes = frame::encode(msg, self.spec.max_message_size).map_err(|err| match err {
            FrameError::Encode(meshwork_wire::EncodeError::TooLarge { size, max }) => {
                SendError::TooLarge { size, max }
            }
            other => SendError::Encode(other.to_string()),
        })?;
        self.write(&bytes).await
    }

    /// Sends `body` (an already encoded message) as one frame.
    pub async fn send_frame(&mut self, body: &[u8]) -> Result<(), SendError> {
        let header =
            frame::header(body.len(), self.spec.max_message_size).map_err(|_| SendError::TooLarge {
                size: body.len(),
                max: self.spec.max_message_size,
            })?;
        if body.len() <= COALESCE_MAX {
            // One write, so a small message leaves in one packet instead of header and body apart.
            let mut frame = Vec::with_capacity(header.len() + body.len());
            frame.extend_from_slice(&header);
            frame.extend_from_slice(body);
            return self.write(&frame).await;
        }
        self.write(&header).await?;
        self.write(body).await
    }

    /// Receives and decodes the next message; `Ok(None)` once the peer has finished the stream.
    pub async fn recv<T: Serialize + DeserializeOwned>(&mut self) -> Result<Option<T>, RecvError> {
        let mut body = Vec::new();
        if !self.recv_frame_into(&mut body).await? {
            return Ok(None);
        }
        Ok(Some(codec::decode(&body)?))
    }

    /// Receives the next frame's body; `Ok(None)` once the peer has finished the stream.
    pub async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>, RecvError> {
        let mut body = Vec::new();
        Ok(self.recv_frame_into(&mut body).await?.then_some(body))
    }

    /// Receives the next frame's body into `body` (cleared first; its capacity is reused, so a loop that
    /// receives many frames allocates once). Returns `false` once the peer has finished the stream.
    ///
    /// The 4-byte header is read and checked against the protocol's maximum before `body` grows: a frame
    /// that announces too much is refused with [`RecvError::TooLarge`] having cost four bytes of reading.
    /// The frame's bytes are reserved from the peer's budget while it is read, and released on return; use
    /// [`Stream::recv_held`] to keep them reserved until the frame is handled.
    pub async fn recv_frame_into(&mut self, body: &mut Vec<u8>) -> Result<bool, RecvError> {
        Ok(self.recv_reserved(body).await?.is_some())
    }

    /// Receives the next frame, which keeps its bytes reserved from the peer's and the transport's
    /// budgets until dropped; `Ok(None)` once the peer has finished the stream.
    pub async fn recv_held(&mut self) -> Result<Option<Frame>, RecvError> {
        let mut body = Vec::new();
        Ok(self.recv_reserved(&mut body).await?.map(|reserved| Frame {
            body,
            _reserved: reserved,
        }))
    }

    /// Reads one frame into `body`: header, bound, reservation, then the body within the frame deadline.
    async fn recv_reserved(&mut self, body: &mut Vec<u8>) -> Result<Option<Reserved>, RecvError> {
        body.clear();
        self.answered().await.map_err(|err| match err {
            OpenStreamError::ConnectionClosed(reason) => RecvError::ConnectionClosed(reason),
            _ => RecvError::Reset,
        })?;
        let mut header = [0u8; frame::HEADER_LEN];
        let first = self
            .recv
            .read(&mut header)
            .await
            .map_err(|err| self.recv_error(err))?;
        if first == 0 {
            return Ok(None);
        }
        let deadline = self.budget.deadline;
        let timeout = |announced| RecvError::FrameTimeout {
            announced,
            limit: deadline,
        };
        if first < header.len() {
            let rest = self.read_exact(&mut header[first..]);
            tokio::time::timeout(deadline, rest)
                .await
                .map_err(|_| timeout(0))??;
        }
        let len = frame::parse_header(header, self.spec.max_message_size).map_err(|err| {
            Counters::bump(&self.counters.frames_refused);
            match err {
                FrameError::TooLarge { announced, max } => RecvError::TooLarge { announced, max },
                _ => RecvError::Truncated,
            }
        })?;
        // Waiting for budget is back-pressure (this stream is not read meanwhile), not the peer's time.
        let reserved = self.budget.reserve(len).await.ok_or(RecvError::Reset)?;
        // Only now, with `len` within bounds and reserved, make room for the body.
        body.reserve_exact(len);
        let read_body = async {
            while body.len() < len {
                let want = (len - body.len()) as u64;
                let read = (&mut self.recv).take(want).read_buf(body).await;
                match read.map_err(|err| self.recv_error(err))? {
                    0 => return Err(RecvError::Truncated),
                    _ => continue,
                }
            }
            Ok(())
        };
        match tokio::time::timeout(deadline, read_body).await {
            Ok(result) => result?,
            Err(_) => {
                Counters::bump(&self.counters.frames_timed_out);
                return Err(timeout(len));
            }
        }
        Ok(Some(reserved))
    }

    /// Finishes our side of the stream: the peer's `recv` returns `None` after the frames already sent.
    pub async fn finish(&mut self) -> Result<(), SendError> {
        self.send.shutdown().await.map_err(|err| self.send_error(err))
    }

    /// Writes `bytes` as they are, past the framing and its size check: lets a test play a peer that
    /// sends a hostile header.
    #[cfg(feature = "test-utils")]
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        self.write(bytes).await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        self.send
            .write_all(bytes)
            .await
            .map_err(|err| self.send_error(err))
    }

    async fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), RecvError> {
        match self.recv.read_exact(buf).await {
            Ok(_) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Err(RecvError::Truncated),
            Err(err) => Err(self.recv_error(err)),
        }
    }

    fn send_error(&self, err: io::Error) -> SendError {
        match classify(err, &self.close) {
            Failure::Closed(reason) => SendError::ConnectionClosed(reason),
            Failure::Reset => SendError::Stopped,
            Failure::Finished => SendError::Finished,
        }
    }

    fn recv_error(&self, err: io::Error) -> RecvError {
        match classify(err, &self.close) {
            Failure::Closed(reason) => RecvError::ConnectionClosed(reason),
            Failure::Reset | Failure::Finished => RecvError::Reset,
        }
    }
}

/// What an IO error on a stream means.
pub(crate) enum Failure {
    /// The whole connection is gone.
    Closed(CloseReason),
    /// The peer reset or stopped this stream (or, in memory, dropped its end).
    Reset,
    /// We used a stream we had already finished.
    Finished,
}

/// An in-memory pipe broke because its connection was closed.
#[derive(Debug, thiserror::Error)]
#[error("connection closed: {0}")]
pub(crate) struct PipeClosed(pub(crate) CloseReason);

/// Maps an IO error from either transport's pipes onto what it means.
pub(crate) fn classify(err: io::Error, close: &CloseCell) -> Failure {
    let kind = err.kind();
    let Some(inner) = err.into_inner() else {
        return match kind {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => Failure::Reset,
            _ => Failure::Closed(close.get().unwrap_or_else(|| CloseReason::Lost(kind.to_string()))),
        };
    };
    let inner = match inner.downcast::<quinn::ReadError>() {
        Ok(read) => {
            return match *read {
                quinn::ReadError::ConnectionLost(err) => {
                    Failure::Closed(crate::quic::close_reason(&err, close))
                }
                quinn::ReadError::ClosedStream => Failure::Finished,
                _ => Failure::Reset,
            };
        }
        Err(inner) => inner,
    };
    let inner = match inner.downcast::<quinn::WriteError>() {
        Ok(write) => {
            return match *write {
                quinn::WriteError::ConnectionLost(err) => {
                    Failure::Closed(crate::quic::close_reason(&err, close))
                }
                quinn::WriteError::ClosedStream => Failure::Finished,
                _ => Failure::Reset,
            };
        }
        Err(inner) => inner,
    };
    match inner.downcast::<PipeClosed>() {
        Ok(closed) => Failure::Closed(closed.0),
        Err(other) => Failure::Closed(
            close
                .get()
                .unwrap_or_else(|| CloseReason::Lost(other.to_string())),
        ),
    }
}
