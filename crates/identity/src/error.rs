//! Errors, one enum per operation.

use std::path::PathBuf;

/// Why a [`PeerId`](crate::PeerId), [`Signature`](crate::Signature) or [`Hash`](crate::Hash) could not be parsed
/// from text or bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The text is not valid in its encoding (base58 for a `PeerId`, hex for a signature or hash).
    #[error("invalid {encoding} text: {reason}")]
    Encoding {
        /// The expected encoding.
        encoding: &'static str,
        /// What the decoder objected to.
        reason: String,
    },
    /// The decoded bytes have the wrong length.
    #[error("expected {expected} bytes, got {got}")]
    Length {
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        got: usize,
    },
    /// The 32 bytes are not the canonical encoding of a point on the curve.
    #[error("not a canonical ed25519 public key")]
    NotAPoint,
    /// The key has small order: anyone could forge signatures for it, so it is refused.
    #[error("weak (small-order) ed25519 public key")]
    WeakKey,
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature is not valid for this key, namespace and message (or its encoding is malformed).
    #[error("invalid signature")]
    Invalid,
    /// In a batch: the signature at this position (in push order) is the first that failed.
    #[error("invalid signature at position {index} of the batch")]
    InvalidInBatch {
        /// The index of the first failing signature.
        index: usize,
    },
}

/// Why a key file could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file could not be created, written or read.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is readable by group or others. Like ssh, we refuse to use a key others can read.
    #[error("key file {path} has mode {mode:o}; it must be readable by its owner only (chmod 600)")]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The contents are not a meshwork key file.
    #[error("key file {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
}
