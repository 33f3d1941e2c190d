//! Errors, one enum per operation.

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded message is larger than the protocol allows. Nothing was sent.
    #[error("message of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The encoded size.
        size: usize,
        /// The protocol's maximum.
        max: usize,
    },
    /// The serializer failed (a value serde cannot express in postcard, such as a map of unknown length).
    #[error("encoding failed: {0}")]
    Serialize(String),
}

/// Why bytes from the network could not be decoded. Every variant means the bytes were bad; none means we
/// ran out of memory or crashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("input ended before the value was complete")]
    Truncated,
    /// A whole value was decoded but bytes were left over: a different encoding of the same value could
    /// otherwise be made by appending junk, which breaks content addressing.
    #[error("{count} trailing bytes after the value")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// The value decoded, but from a longer encoding than its canonical one (an overlong varint). Accepting
    /// it would give one value several encodings and so several content addresses.
    #[error("non-canonical encoding: {len} bytes where the canonical encoding has {canonical}")]
    NonCanonical {
        /// The length of the input.
        len: usize,
        /// The length of the canonical encoding.
        canonical: usize,
    },
    /// A collection announced more elements (or a byte string more bytes) than its bound; nothing was
    /// allocated for it.
    #[error("collection of {len} elements exceeds its maximum of {max}")]
    OverBound {
        /// The bound.
        max: usize,
        /// The announced length.
        len: usize,
    },
    /// The bytes arrived on a channel the protocol does not speak (a driver bug, or a composite whose
    /// channel list and message enum disagree).
    #[error("no channel {0} in this protocol")]
    UnknownChannel(usize),
    /// The bytes do not form a valid value (bad tag, bad varint, invalid key, a collection over its bound, ...).
    #[error("invalid encoding: {0}")]
    Invalid(String),
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame's header announces more bytes than the protocol allows; nothing was allocated for it.
    #[error("frame announces {announced} bytes, over the maximum of {max} bytes")]
    TooLarge {
        /// The length the header announced.
        announced: u64,
        /// The protocol's maximum.
        max: usize,
    },
    /// Fewer bytes than the header (4 bytes) or than the announced body.
    #[error("frame truncated: needed {needed} bytes, have {have}")]
    Truncated {
        /// Bytes needed to finish the frame.
        needed: usize,
        /// Bytes available.
        have: usize,
    },
    /// Bytes follow the end of the frame where none were expected.
    #[error("{count} trailing bytes after the frame")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// The body is not a valid message.
    #[error("frame body: {0}")]
    Body(#[from] DecodeError),
    /// The message could not be encoded.
    #[error("frame body: {0}")]
    Encode(#[from] EncodeError),
}

/// Why a protocol id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolIdError {
    /// Empty, or longer than [`ProtocolId::MAX_LEN`](crate::ProtocolId::MAX_LEN).
    #[error("protocol id of {len} bytes (must be 1 to 64)")]
    Length {
        /// The length found.
        len: usize,
    },
    /// Not of the form `/name/version` in printable ASCII.
    #[error("protocol id is not of the form /name/version")]
    Malformed,
    /// Well formed, but not a protocol we speak.
    #[error("unsupported protocol id")]
    Unsupported,
}
