//! Errors: one enum per kind of operation. Rule violations by *data* are not errors here but
//! [`Verdict::Invalid`](crate::Verdict::Invalid) with an [`InvalidReason`](crate::InvalidReason); these
//! enums are for local failures (the store, a bad configuration) and for malformed values.

use meshwork_identity::PeerId;
use meshwork_ledger::{BlockError, BlockId, StoreError};

/// Why a compact (`nBits`) target does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompactError {
    /// The sign bit is set on a non-zero mantissa.
    #[error("compact target {0:#010x} is negative")]
    Negative(u32),
    /// The value does not fit in 256 bits.
    #[error("compact target {0:#010x} overflows 256 bits")]
    Overflow(u32),
    /// The value is zero: no id could meet it.
    #[error("compact target {0:#010x} is zero")]
    Zero(u32),
}

/// Why a [`Chain`](crate::Chain) operation failed. The chain's state is unchanged by a failed store
/// batch (the store's batches are atomic), but the in-memory index may be ahead of it: reopen the chain
/// after a store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ledger failed in a way that is not a verdict on a block (a disconnect with nothing to
    /// disconnect, a connect that did not extend the tip): a bug or a corrupt store.
    #[error("ledger: {0}")]
    Ledger(#[from] BlockError),
    /// The genesis block given to [`Chain::open`](crate::Chain::open) breaks a rule.
    #[error("invalid genesis block: {0}")]
    InvalidGenesis(String),
    /// The store holds a chain that starts from another genesis block.
    #[error("the store's chain starts at {found:?}, not at the configured genesis {expected:?}")]
    WrongGenesis {
        /// The configured genesis id.
        expected: BlockId,
        /// The store's height-0 block.
        found: BlockId,
    },
    /// The store lacks a block that its index or the chain's index says it holds.
    #[error("the store is missing block {0:?}")]
    MissingBlock(BlockId),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// A call for certified chains ([`ChainRule::Certified`](crate::ChainRule::Certified)) on a
    /// proof-of-work chain.
    #[error("not a certified chain")]
    NotCertified,
    /// A finality certificate does not verify against the validator set.
    #[error("finality certificate: {0}")]
    Certificate(CertificateError),
    /// A finality certificate commits another block than the one already final at its height: more
    /// than a third of the validators signed both.
    #[error("certificate for {theirs} conflicts with final block {ours}")]
    ConflictingFinality {
        /// Our final block at that height.
        ours: BlockId,
        /// The certificate's block.
        theirs: BlockId,
    },
}

/// Why a BFT [`Certificate`](crate::Certificate) does not prove finality.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The validator set is empty.
    #[error("empty validator set")]
    NoValidators,
    /// A vote is by a key outside the validator set.
    #[error("vote by {0:?}, not a validator")]
    UnknownValidator(PeerId),
    /// A validator voted twice.
    #[error("{0:?} voted twice")]
    DuplicateVote(PeerId),
    /// A vote's signature does not verify.
    #[error("vote by {0:?} has a bad signature")]
    BadSignature(PeerId),
    /// A validator set larger than a certificate can carry
    /// ([`MAX_CERTIFICATE_VOTES`](crate::MAX_CERTIFICATE_VOTES)).
    #[error("{0} validators, at most 256")]
    TooManyValidators(usize),
    /// Fewer distinct validators voted than a quorum.
    #[error("{have} votes, a quorum is {need}")]
    NoQuorum {
        /// Valid votes.
        have: usize,
        /// Votes needed: more than two thirds of the validators.
        need: usize,
    },
}
