//! Errors, one enum per operation. Every rule of the crate docs has its own variant.
//!
//! A validation error is one of three kinds:
//!
//! - **invalid forever**: the transaction or block breaks a rule and no later data can fix it;
//!   a peer that relays it may be penalised ([`MempoolError::is_invalid`]);
//! - **missing data**: it cannot be judged yet (an unknown parent block, an unknown input); it may become
//!   valid once the missing piece arrives, so it must not be marked invalid (`is_missing_data()`);
//! - **premature**: a loose transaction that spends a coinbase output not yet mature
//!   ([`TxError::ImmatureCoinbase`]). It becomes valid as the chain grows, and a peer one block ahead
//!   of us takes it honestly, so relaying it costs nothing; it is not held as an orphan either (no
//!   missing piece will come), but asked again (Bitcoin Core's `TX_PREMATURE_SPEND`).

use meshwork_identity::Hash;

use crate::{Amount, BlockId, OutPoint, TxId};

/// Why a transaction breaks a rule (alone, or against the UTXO set it is checked with).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// A transfer with no inputs.
    #[error("transaction has no inputs")]
    NoInputs,
    /// A transaction with no outputs.
    #[error("transaction has no outputs")]
    NoOutputs,
    /// An output amount, or the sum of the outputs or of the inputs, is above the maximum supply.
    #[error("amount out of range")]
    AmountOutOfRange,
    /// The same outpoint is spent twice by one transaction.
    #[error("input {outpoint:?} is spent twice")]
    DuplicateInput {
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// An input is not in the UTXO set checked against. For a loose transaction this is **missing
    /// data** (its parent may not have arrived yet); in a block it becomes
    /// [`BlockError::MissingOrSpentInput`], which is final.
    #[error("input {outpoint:?} is unknown or spent")]
    UnknownInput {
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// An input spends a coinbase output that is not yet mature.
    #[error("input {outpoint:?} spends a coinbase of height {created}, spendable from height {spendable}")]
    ImmatureCoinbase {
        /// The outpoint.
        outpoint: OutPoint,
        /// Height of the coinbase.
        created: u64,
        /// First height at which it may be spent.
        spendable: u64,
    },
    /// The outputs are worth more than the inputs.
    #[error("outputs ({outputs}) exceed inputs ({inputs})")]
    Overspend {
        /// Total of the inputs.
        inputs: Amount,
        /// Total of the outputs.
        outputs: Amount,
    },
    /// An input's signature is not the spent output owner's signature over the sighash of the
    /// transaction and the outputs it spends (a signature made over another amount fails here).
    #[error("input {input} has an invalid signature")]
    BadSignature {
        /// The position of the input.
        input: usize,
    },
    /// An input's signature can never be valid, whatever it spends: its scalar `s` is not below the
    /// group order ℓ (ZIP-215 refuses such signatures). Checked with the transaction's shape, so an
    /// orphan carrying one is refused before it is held.
    #[error("input {input} has a malformed signature")]
    MalformedSignature {
        /// The position of the input.
        input: usize,
    },
    /// A coinbase was given where a transfer was expected (outside a block's first position).
    #[error("unexpected coinbase")]
    UnexpectedCoinbase,
}

impl TxError {
    /// Whether the transaction could become valid once missing data arrives (see the module docs).
    pub fn is_missing_data(&self) -> bool {
        matches!(self, Self::UnknownInput { .. })
    }

    /// Whether a loose transaction could become valid later, by missing data or by the chain
    /// growing (see the module docs); if not, it breaks a rule for good.
    pub fn may_become_valid(&self) -> bool {
        matches!(self, Self::UnknownInput { .. } | Self::ImmatureCoinbase { .. })
    }
}

/// Why a block could not be validated or connected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// The parent block is unknown: **missing data**.
    #[error("unknown parent block {parent:?}")]
    UnknownParent {
        /// The parent named by the header.
        parent: BlockId,
    },
    /// The parent is known but is not the current tip: the caller must disconnect down to the fork point
    /// first. Says nothing about the block's validity.
    #[error("block's parent {parent:?} is not the tip {tip:?}")]
    NotOnTip {
        /// The parent named by the header.
        parent: BlockId,
        /// The current tip.
        tip: Option<BlockId>,
    },
    /// The header's height is not its parent's plus one.
    #[error("block height {got}, expected {expected}")]
    BadHeight {
        /// Parent height plus one.
        expected: u64,
        /// The header's.
        got: u64,
    },
    /// The encoded block is larger than the limit.
    #[error("block of {size} bytes exceeds {max}")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The block has no transactions, or its first is not a coinbase.
    #[error("the first transaction is not a coinbase")]
    MissingCoinbase,
    /// A coinbase other than the first transaction.
    #[error("transaction {index} is a second coinbase")]
    ExtraCoinbase {
        /// Its position.
        index: usize,
    },
    /// The coinbase names another height than the block's.
    #[error("coinbase height {got}, block height {expected}")]
    BadCoinbaseHeight {
        /// The block's height.
        expected: u64,
        /// The coinbase's.
        got: u64,
    },
    /// The header's merkle root is not that of the transactions. The *body* is wrong (mutated or
    /// corrupted in transit); the header itself may still be fine.
    #[error("merkle root mismatch: header {header:?}, transactions {computed:?}")]
    BadMerkleRoot {
        /// The header's.
        header: Hash,
        /// The transactions'.
        computed: Hash,
    },
    /// The timestamp is not after the median of the previous blocks'.
    #[error("timestamp {timestamp} is not after the median time past {median}")]
    TimestampTooOld {
        /// The header's.
        timestamp: u64,
        /// The median of the last blocks.
        median: u64,
    },
    /// The timestamp is too far ahead of the validating node's clock.
    #[error("timestamp {timestamp} is after the latest allowed {max}")]
    TimestampTooFarAhead {
        /// The header's.
        timestamp: u64,
        /// `now` plus the allowed drift.
        max: u64,
    },
    /// An input is neither in the UTXO set nor created earlier in the block: it never existed or was
    /// already spent (a double spend across blocks). Final, because the parent's state is complete.
    #[error("transaction {index} spends {outpoint:?}, which is missing or spent")]
    MissingOrSpentInput {
        /// The transaction's position.
        index: usize,
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// Two transactions of the block spend the same outpoint.
    #[error("transaction {index} spends {outpoint:?}, already spent earlier in the block")]
    DoubleSpendInBlock {
        /// The position of the second spender.
        index: usize,
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// A transaction creates an output that already exists (a repeated txid).
    #[error("transaction {index} repeats txid {txid:?}")]
    DuplicateTxid {
        /// Its position.
        index: usize,
        /// The id.
        txid: TxId,
    },
    /// The fees of the block overflow the valid range.
    #[error("the block's fees are out of range")]
    FeesOutOfRange,
    /// The coinbase claims more than the subsidy plus the fees.
    #[error("coinbase claims {claimed}, at most {allowed} allowed")]
    CoinbaseTooLarge {
        /// What the coinbase outputs add up to.
        claimed: Amount,
        /// Subsidy plus fees.
        allowed: Amount,
    },
    /// A transaction breaks a transaction rule.
    #[error("transaction {index} ({txid:?}): {error}")]
    Tx {
        /// Its position.
        index: usize,
        /// Its id.
        txid: TxId,
        /// The rule.
        error: TxError,
    },
    /// There is no block to disconnect (the store is empty).
    #[error("no block to disconnect")]
    NothingToDisconnect,
    /// The store failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BlockError {
    /// Whether the block could become valid once missing data arrives (an unknown parent).
    pub fn is_missing_data(&self) -> bool {
        matches!(self, Self::UnknownParent { .. })
    }

    /// Whether the block breaks a rule and is invalid forever (as opposed to missing data, a block that
    /// does not extend the tip, or a store failure).
    pub fn is_invalid(&self) -> bool {
        !matches!(
            self,
            Self::UnknownParent { .. } | Self::NotOnTip { .. } | Self::NothingToDisconnect | Self::Store(_)
        )
    }
}

/// Why the chain store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (IO, corruption detected by the database).
    #[error("database: {0}")]
    Database(String),
    /// Stored bytes do not decode: the store is corrupt.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The store lacks data the ledger relies on (undo data of a connected block, say).
    #[error("store is missing {0}")]
    Missing(&'static str),
}

/// Why the mempool refused a transaction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MempoolError {
    /// The transaction is already in the pool (or the orphan pool).
    #[error("already known")]
    AlreadyKnown,
    /// A coinbase cannot be relayed.
    #[error("coinbase transactions are only valid in blocks")]
    Coinbase,
    /// Larger than the mempool's transaction limit.
    #[error("transaction of {size} bytes exceeds {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The transaction breaks a rule. `UnknownInput` is never returned: such a transaction goes to the
    /// orphan pool instead.
    #[error(transparent)]
    Invalid(#[from] TxError),
    /// The fee is below the minimum relay fee for the transaction's size
    /// ([`MempoolConfig::min_relay_fee_rate`](crate::MempoolConfig::min_relay_fee_rate)).
    #[error("fee {fee} for {size} bytes is below the minimum relay fee {min_fee}")]
    FeeRateTooLow {
        /// The transaction's fee.
        fee: Amount,
        /// Its encoded size.
        size: usize,
        /// The least it must pay at that size.
        min_fee: Amount,
    },
    /// It conflicts with pool transactions (spends an outpoint they spend) and does not pay for
    /// replacing them: the fees of everything it would evict plus the incremental relay fee for its own
    /// size (BIP125 rules 3 and 4).
    #[error("replacement pays {fee}, at least {required} required")]
    ReplacementTooCheap {
        /// The replacement's fee.
        fee: Amount,
        /// The evicted transactions' fees plus the incremental relay fee of the replacement.
        required: Amount,
    },
    /// It conflicts with a pool transaction whose fee rate is at least its own (a replacement must pay
    /// a higher rate than each transaction it directly conflicts with, so the pool's best rates never
    /// fall).
    #[error("replacement fee rate {fee_rate} is not above the conflicting {conflict_fee_rate}")]
    ReplacementFeeRateTooLow {
        /// The replacement's fee rate, in units per 1000 bytes.
        fee_rate: u64,
        /// The highest fee rate among the direct conflicts, in units per 1000 bytes.
        conflict_fee_rate: u64,
    },
    /// It spends an output of a transaction it would replace.
    #[error("replacement spends {txid:?}, which it would replace")]
    ReplacementSpendsConflict {
        /// The pool transaction both spent and replaced.
        txid: TxId,
    },
    /// It would evict more pool transactions (conflicts and their descendants) than one replacement may
    /// (BIP125 rule 5).
    #[error("replacement would evict {count} transactions, at most {max} allowed")]
    TooManyReplacements {
        /// How many it would evict.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// With it, its in-pool ancestry (itself included) would hold more transactions than allowed.
    #[error("more than {max} transactions in its in-pool ancestry")]
    TooManyAncestors {
        /// The limit.
        max: usize,
    },
    /// With it, its in-pool ancestry (itself included) would weigh more bytes than allowed.
    #[error("its in-pool ancestry exceeds {max} bytes")]
    AncestorsTooLarge {
        /// The limit.
        max: usize,
    },
    /// With it, a pool ancestor's descendancy (the ancestor included) would hold more transactions than
    /// allowed.
    #[error("pool transaction {ancestor:?} would have more than {max} transactions in its descendancy")]
    TooManyDescendants {
        /// The ancestor whose limit it breaks.
        ancestor: TxId,
        /// The limit.
        max: usize,
    },
    /// With it, a pool ancestor's descendancy (the ancestor included) would weigh more bytes than allowed.
    #[error("pool transaction {ancestor:?} would have more than {max} bytes in its descendancy")]
    DescendantsTooLarge {
        /// The ancestor whose limit it breaks.
        ancestor: TxId,
        /// The limit.
        max: usize,
    },
    /// An orphan (well formed, with an unknown input) larger than the whole orphan pool; not held.
    #[error("orphan of {size} bytes exceeds the orphan pool's {max}")]
    OrphanTooLarge {
        /// Its size.
        size: usize,
        /// The orphan pool's byte limit.
        max: usize,
    },
    /// The pool is full and the transaction's fee rate is too low to make room.
    #[error("mempool full")]
    Full,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MempoolError {
    /// Whether the transaction could become acceptable later (never the case for a rule violation).
    /// Policy refusals (fees, limits, a full pool) are neither missing data nor invalid: an honest
    /// peer may relay such a transaction (its pool differs from ours), so they must not be held against it;
    /// only [`MempoolError::Invalid`] is.
    pub fn is_missing_data(&self) -> bool {
        match self {
            Self::Invalid(error) => error.is_missing_data(),
            _ => false,
        }
    }

    /// Whether the transaction breaks a rule for good, so that a peer relaying it may be penalised:
    /// [`MempoolError::Invalid`], but neither missing data nor a premature spend (module docs).
    pub fn is_invalid(&self) -> bool {
        matches!(self, Self::Invalid(error) if !error.may_become_valid())
    }
}
