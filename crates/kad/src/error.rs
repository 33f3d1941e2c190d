//! Errors of the Kademlia crate.

use thiserror::Error;

/// Why a record was refused (by [`crate::Record::verify`] or a [`crate::RecordStore`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The publisher's signature does not verify over the record.
    #[error("record signature does not verify")]
    BadSignature,
    /// The record's expiry has passed.
    #[error("record expired")]
    Expired,
    /// The record's expiry is further in the future than this node accepts.
    #[error("record expiry too far in the future")]
    TooFarInFuture,
    /// The value is larger than [`crate::message::MAX_VALUE`].
    #[error("record value of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The value's length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The key is another publisher's own: its tail is neither a shared name's nor the publisher's
    /// ([`crate::Key::admits_publisher`]), so nobody can take or shadow a key before its owner does.
    #[error("the record key belongs to another publisher")]
    ForeignKey,
    /// Another publisher already holds this key, or ours is older than the stored one.
    #[error("a conflicting or newer record is already stored")]
    Conflict,
    /// The store is full.
    #[error("record store is full")]
    StoreFull,
    /// The publisher (or provider) already holds its share of the store
    /// ([`crate::MemoryStore::with_share`]): one peer cannot fill a store for everyone.
    #[error("the publisher holds its share of the record store")]
    ShareFull,
    /// The peers of the sender's IP prefix already hold their share of the store
    /// ([`crate::MemoryStore::with_prefix_share`]): one host cannot fill a store with many identities.
    #[error("the sender's IP prefix holds its share of the record store")]
    PrefixShareFull,
    /// A persistent store could not read or write its database.
    #[error("record store failed: {0}")]
    Store(String),
}

/// Why a lookup or command failed; carried by [`crate::Event::Failed`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A query with this id is already running.
    #[error("query id already in use")]
    DuplicateId,
    /// The routing table is empty, so there is nobody to ask (bootstrap first).
    #[error("no peers to ask: the routing table is empty")]
    NoPeers,
    /// The record could not be created or was refused locally.
    #[error("record refused: {0}")]
    Record(#[from] RecordError),
}
