//! Errors, one enum per operation (the way quinn has `ConnectError` and `ConnectionError`).

use std::io;

use meshwork_identity::PeerId;
use meshwork_wire::{DecodeError, ProtocolId};

use crate::CloseReason;

/// Why a transport could not be bound.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The socket could not be bound (address in use, not local, ...), or the memory address is taken.
    #[error("cannot bind: {0}")]
    Io(#[from] io::Error),
    /// The TLS identity (certificate from our key) could not be built.
    #[error("cannot build the TLS identity: {0}")]
    Tls(String),
    /// The configuration is inconsistent (e.g. a keep-alive not shorter than the idle timeout).
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Why a dial failed. Nothing is left open after an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// The peer at that address proved a different key than the one we dialed: impersonation, or a stale
    /// address. The connection was closed during the handshake.
    #[error("peer id mismatch: dialed {expected}, the peer proved {actual}")]
    PeerIdMismatch {
        /// The peer we meant to reach.
        expected: PeerId,
        /// The key the remote side actually proved.
        actual: PeerId,
    },
    /// We already hold `limit` outbound connections; no dial was attempted.
    #[error("outbound connection limit reached ({limit}); nothing was sent")]
    TooManyConnections {
        /// The configured maximum.
        limit: usize,
    },
    /// The remote side refused the connection (it is at its inbound limit, or shutting down).
    #[error("the peer refused the connection")]
    Refused,
    /// No one answered at that address (in memory: no transport is bound there).
    #[error("no peer reachable at that address")]
    Unreachable,
    /// The handshake did not finish within the configured time.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The handshake failed (TLS alert, bad certificate, protocol error).
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// We dialed our own id.
    #[error("cannot dial ourselves")]
    SelfDial,
    /// This transport has been closed.
    #[error("the transport is closed")]
    TransportClosed,
}

/// Why accepting an incoming connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// This transport has been closed; no more connections will come.
    #[error("the transport is closed")]
    TransportClosed,
}

/// Why a stream could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenStreamError {
    /// We do not speak this protocol ourselves (it is not in our `Config::protocols`); nothing was sent.
    #[error("protocol {0} is not configured locally")]
    UnknownProtocol(ProtocolId),
    /// The remote side does not speak this protocol and refused the stream.
    #[error("the peer refused protocol {0}")]
    ProtocolRefused(ProtocolId),
    /// The connection is closed.
    #[error("connection closed: {0}")]
    ConnectionClosed(CloseReason),
    /// The stream broke while exchanging its header.
    #[error("stream failed while opening: {0}")]
    Stream(String),
    /// The peer did not answer the stream header within `Timeouts::stream_open`.
    #[error("the peer did not answer the stream header in time")]
    Timeout,
}

/// Why accepting a stream failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptStreamError {
    /// The connection is closed; no more streams will come.
    #[error("connection closed: {0}")]
    ConnectionClosed(CloseReason),
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The message is larger than the protocol's maximum. Nothing was sent; the stream is still usable.
    #[error("message of {size} bytes exceeds the protocol maximum of {max} bytes; nothing was sent")]
    TooLarge {
        /// The encoded size.
        size: usize,
        /// The protocol's maximum.
        max: usize,
    },
    /// The message could not be encoded. Nothing was sent.
    #[error("cannot encode the message: {0}")]
    Encode(String),
    /// The peer stopped reading this stream (or refused it).
    #[error("the peer stopped the stream")]
    Stopped,
    /// The connection is closed.
    #[error("connection closed: {0}")]
    ConnectionClosed(CloseReason),
    /// This stream was already finished by us.
    #[error("the stream is finished")]
    Finished,
}

/// Why a message could not be received.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// The frame header announced more than the protocol's maximum. The body was **not** read and nothing
    /// was allocated for it; the stream cannot continue (its framing is lost).
    #[error(
        "frame announces {announced} bytes, over the protocol maximum of {max} bytes; refused before \
         allocating or reading the body"
    )]
    TooLarge {
        /// The length the header announced.
        announced: u64,
        /// The protocol's maximum.
        max: usize,
    },
    /// The stream ended in the middle of a frame.
    #[error("stream ended in the middle of a frame")]
    Truncated,
    /// The frame body did not arrive within `Timeouts::frame` of its header: the peer announced a frame
    /// and trickled it (or stopped). The stream cannot continue.
    #[error("frame of {announced} bytes not received within {limit:?} of its header")]
    FrameTimeout {
        /// The length the header announced.
        announced: usize,
        /// The deadline that passed.
        limit: std::time::Duration,
    },
    /// The frame body is not a valid message.
    #[error("invalid message: {0}")]
    Decode(#[from] DecodeError),
    /// The peer reset the stream.
    #[error("the peer reset the stream")]
    Reset,
    /// The connection is closed.
    #[error("connection closed: {0}")]
    ConnectionClosed(CloseReason),
}
