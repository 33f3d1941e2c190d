//! Opening and accepting a stream: the header exchange of [`crate::stream_header`], over any byte pipe.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::budget::FrameBudget;
use crate::close::CloseCell;
use crate::counters::Counters;
use crate::error::OpenStreamError;
use crate::stream::{Failure, classify};
use crate::stream_header::{self, ACCEPTED, REFUSED};
use crate::{Config, ProtocolSpec, Stream};

/// Waits at most `deadline` for the peer's answer to an eagerly opened stream's header: a peer that
/// never answers must not hold the opener (and whatever waits to be written behind it).
pub(crate) async fn answered_within<W, R>(
    mut stream: Stream<W, R>,
    deadline: Duration,
) -> Result<Stream<W, R>, OpenStreamError>
where
    W: AsyncWrite + Unpin + Send,
    R: AsyncRead + Unpin + Send,
{
    match tokio::time::timeout(deadline, stream.answered()).await {
        Ok(answer) => answer.map(|()| stream),
        Err(_) => Err(OpenStreamError::Timeout),
    }
}

/// Sends the header for `spec` and returns the stream at once: frames may follow the header before the
/// peer answers it ([`Stream::answered`]).
pub(crate) async fn open_eager<W, R>(
    mut send: W,
    recv: R,
    spec: ProtocolSpec,
    close: CloseCell,
    counters: Arc<Counters>,
    budget: FrameBudget,
) -> Result<Stream<W, R>, OpenStreamError>
where
    W: AsyncWrite + Unpin + Send,
    R: AsyncRead + Unpin + Send,
{
    match send.write_all(&stream_header::encode(spec.id)).await {
        Ok(()) => Ok(Stream::new(spec, send, recv, close, counters, budget).answer_pending()),
        Err(err) => Err(match classify(err, &close) {
            Failure::Closed(reason) => OpenStreamError::ConnectionClosed(reason),
            Failure::Reset | Failure::Finished => OpenStreamError::ProtocolRefused(spec.id),
        }),
    }
}

/// Reads a stream header within `timeout` and answers it: the stream if we speak its protocol, `None`
/// (counted in `streams_refused`) if not, or if the opener was too slow or the stream broke.
async fn accept<W, R>(
    mut send: W,
    mut recv: R,
    config: &Config,
    timeout: Duration,
    close: CloseCell,
    counters: Arc<Counters>,
    budget: FrameBudget,
) -> Option<Stream<W, R>>
where
    W: AsyncWrite + Unpin + Send,
    R: AsyncRead + Unpin + Send,
{
    let ids = config.protocol_ids();
    let read_header = async {
        let mut len = [0u8; 1];
        recv.read_exact(&mut len).await.ok()?;
        // The length is checked before the id is read.
        let len = stream_header::parse_len(len[0]).ok()?;
        let mut id = [0u8; meshwork_wire::ProtocolId::MAX_LEN];
        recv.read_exact(&mut id[..len]).await.ok()?;
        meshwork_wire::ProtocolId::lookup(&id[..len], &ids).ok()
    };
    let found = tokio::time::timeout(timeout, read_header).await.ok().flatten();
    let spec = found.and_then(|id| config.protocol(id));
    let Some(spec) = spec else {
        Counters::bump(&counters.streams_refused);
        tracing::debug!("refused a stream with an unknown or malformed protocol header");
        // Best effort: the opener learns "refused" from this byte or from the end of the stream.
        let refuse = async {
            send.write_all(&[REFUSED]).await?;
            send.shutdown().await
        };
        let _ = tokio::time::timeout(timeout, refuse).await;
        return None;
    };
    // The answer is one byte into a fresh stream's window; the deadline covers a peer whose window
    // is zero all the same.
    tokio::time::timeout(timeout, send.write_all(&[ACCEPTED]))
        .await
        .ok()?
        .ok()?;
    Some(Stream::new(spec, send, recv, close, counters, budget))
}

/// The queue of a connection's answered inbound streams, for at most `streams` at once.
///
/// It holds boxes: tokio allocates a channel's first block of 32 slots when the channel is made, so
/// every connection pays 32 × the slot's size before any stream arrives. A QUIC stream is 144 bytes,
/// a box 8: about 4.4 KB less per idle connection.
pub(crate) fn stream_queue<W, R>(streams: u32) -> (StreamQueue<W, R>, AcceptedStreams<W, R>) {
    mpsc::channel(streams.max(1) as usize)
}

/// Where [`accept_in_background`] puts a connection's answered inbound streams ([`stream_queue`]).
pub(crate) type StreamQueue<W, R> = mpsc::Sender<Box<Stream<W, R>>>;

/// Where `accept_stream` takes them from.
pub(crate) type AcceptedStreams<W, R> = mpsc::Receiver<Box<Stream<W, R>>>;

/// Answers a new inbound stream's header in the background and queues it for `accept_stream` if we speak
/// its protocol. The queue is bounded: when the application does not accept, streams wait here and the
/// peer's stream limit stops it from opening more.
pub(crate) fn accept_in_background<W, R>(
    send: W,
    recv: R,
    config: Arc<Config>,
    close: CloseCell,
    counters: Arc<Counters>,
    budget: FrameBudget,
    queue: StreamQueue<W, R>,
) where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let timeout = config.timeouts.handshake;
        if let Some(stream) = accept(send, recv, &config, timeout, close, counters, budget).await {
            // An error means the connection is gone; the stream goes with it.
            let _ = queue.send(Box::new(stream)).await;
        }
    });
}
