//! The consensus split (ARCHITECTURE.md): the **engine** orders block ids and decides finality
//! ([`Consensus`]), a **relay** moves full blocks ([`BlockRelay`]), the **ledger** validates and applies
//! them ([`BlockValidator`]) and a **reporter** hears faults ([`FaultReporter`]). Verdicts are
//! three-valued ([`Verdict`]).

use meshwork_identity::PeerId;
use meshwork_ledger::{Block, BlockError, BlockHeader, BlockId, ChainStore, Ledger};

use crate::bft::Evidence;
use crate::certificate::Certificate;
use crate::error::{CertificateError, ChainError, CompactError};
use crate::sync::CompactBlockError;

/// What a component concluded about a header or block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It follows every rule that could be checked.
    Valid,
    /// It breaks a rule and never will be valid; whoever sent it sent invalid data.
    Invalid(InvalidReason),
    /// It cannot be judged yet: its parent is unknown, its timestamp is ahead of our clock, or its
    /// contents can only be checked once its chain becomes the best one. Not remembered as invalid, and
    /// not held against the sender.
    NotYetKnown,
}

impl Verdict {
    /// Whether the verdict is [`Verdict::Valid`].
    pub fn is_valid(&self) -> bool {
        matches!(self, Self::Valid)
    }

    /// Whether the verdict is [`Verdict::Invalid`].
    pub fn is_invalid(&self) -> bool {
        matches!(self, Self::Invalid(_))
    }
}

/// The rule a header or block breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidReason {
    /// The block was already found invalid.
    #[error("known invalid")]
    KnownInvalid,
    /// An ancestor is invalid.
    #[error("descends from an invalid block")]
    InvalidAncestor,
    /// The height is not the parent's plus one.
    #[error("height {got}, expected {expected}")]
    BadHeight {
        /// Parent height plus one.
        expected: u64,
        /// The header's.
        got: u64,
    },
    /// The compact target does not decode.
    #[error("bad compact target: {0}")]
    BadCompactTarget(CompactError),
    /// The target is not the one difficulty adjustment requires (too little work if easier, and a
    /// harder one is refused too, so that one chain has one sequence of targets).
    #[error("target {got:#010x}, required {expected:#010x}")]
    WrongTarget {
        /// The required compact target.
        expected: u32,
        /// The header's.
        got: u32,
    },
    /// The block id is above the target: no proof of work.
    #[error("block id above its target")]
    HighHash,
    /// The timestamp is not after the median time past.
    #[error("timestamp {timestamp} not after the median time past {median}")]
    TimestampTooOld {
        /// The header's.
        timestamp: u64,
        /// The median of the previous blocks' timestamps.
        median: u64,
    },
    /// A batch of headers does not link: header `index` does not name the one before it as parent.
    #[error("header {index} does not extend the previous header")]
    NotContinuous {
        /// Its position in the batch.
        index: usize,
    },
    /// The transactions do not match the header (a mutated or corrupted body). The header itself may be
    /// fine: only the copy is bad.
    #[error("body does not match the header: {0}")]
    BodyMismatch(String),
    /// The contents break a ledger rule (the ledger's error, as text).
    #[error("invalid contents: {0}")]
    Contents(String),
}

impl InvalidReason {
    /// Whether the header itself is invalid (and so is every descendant), as opposed to one copy of the
    /// block's body.
    pub fn condemns_header(&self) -> bool {
        !matches!(self, Self::BodyMismatch(_))
    }

    /// The reason for a ledger rule violation (`error.is_invalid()` must hold).
    pub fn from_ledger(error: &BlockError) -> Self {
        match error {
            BlockError::BadMerkleRoot { .. } => Self::BodyMismatch(error.to_string()),
            _ => Self::Contents(error.to_string()),
        }
    }
}

/// How final a block is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finality {
    /// Not final: it may still be reorganised away (or is not on the best chain, or is unknown).
    Pending,
    /// Final, by the engine's rule.
    Final {
        /// What makes it final.
        by: FinalityProof,
    },
}

/// Why a block is final.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinalityProof {
    /// Proof of work: the block has this many confirmations (itself included) on the best chain, at
    /// least the configured finality depth. Probabilistic: a reorg this deep needs a majority of the
    /// hash rate (Nakamoto 2008, §11).
    Depth(u64),
    /// BFT: a quorum certificate commits the block. Deterministic.
    Certificate(Certificate),
}

/// A consensus engine: it orders block ids (fork choice) and decides finality. It does not validate
/// transactions (the [`BlockValidator`] does) nor move blocks (the [`BlockRelay`] does).
///
/// The Nakamoto engine ([`Nakamoto`](crate::Nakamoto)) checks proof of work and timestamps in
/// `on_header` and picks the valid chain with the most work; a BFT engine would check the proposer and
/// certificate in `on_header` and follow certificates.
pub trait Consensus {
    /// Checks `header` (whose parent must be known) against the engine's rules at `now_secs` (Unix
    /// seconds) and, if valid, indexes it.
    fn on_header(&mut self, header: &BlockHeader, now_secs: u64) -> Verdict;
    /// Tells the engine what became of a block's body: `Valid` once it is stored and well formed (it may
    /// join fork choice), `Invalid` when it broke a rule (it and its descendants leave fork choice).
    fn on_block_verdict(&mut self, id: &BlockId, verdict: &Verdict);
    /// The block the chain should end at: the best chain whose blocks are all available and not invalid.
    fn best_tip(&self) -> Option<BlockId>;
    /// How final block `id` is.
    fn finality(&self, id: &BlockId) -> Finality;
}

/// Moves full blocks between peers.
pub trait BlockRelay {
    /// Asks `peer` for the blocks `ids`.
    fn request_blocks(&mut self, peer: PeerId, ids: &[BlockId]);
    /// Tells peers about a new best block, so that those who lack it fetch it.
    fn announce(&mut self, header: &BlockHeader);
}

/// Validates blocks and applies them to the chain state: the ledger's side of consensus.
pub trait BlockValidator {
    /// A failure that is not a verdict (the store broke, a block that does not extend the tip).
    type Error;
    /// Checks every rule for `block` on the current tip at `now_secs`, changing nothing.
    fn validate(&self, block: &Block, now_secs: u64) -> Result<Verdict, Self::Error>;
    /// Validates `block` and, if valid, connects it on the tip with the engine's `cumulative_work`.
    fn connect(
        &mut self,
        block: &Block,
        cumulative_work: u128,
        now_secs: u64,
    ) -> Result<Verdict, Self::Error>;
    /// Disconnects the tip block and returns it.
    fn disconnect(&mut self) -> Result<Block, Self::Error>;
}

/// The ledger's verdict for a result of `validate_block` or `connect_block`. A timestamp too far ahead of
/// `now` is *not yet known* (it becomes valid as the clock advances), not invalid forever.
pub(crate) fn ledger_verdict<T>(result: Result<T, BlockError>) -> Result<Verdict, ChainError> {
    match result {
        Ok(_) => Ok(Verdict::Valid),
        Err(error) if error.is_missing_data() => Ok(Verdict::NotYetKnown),
        Err(BlockError::TimestampTooFarAhead { .. }) => Ok(Verdict::NotYetKnown),
        Err(error) if error.is_invalid() => Ok(Verdict::Invalid(InvalidReason::from_ledger(&error))),
        Err(BlockError::Store(error)) => Err(ChainError::Store(error)),
        Err(error) => Err(ChainError::Ledger(error)),
    }
}

impl<S: ChainStore> BlockValidator for Ledger<S> {
    type Error = ChainError;

    fn validate(&self, block: &Block, now_secs: u64) -> Result<Verdict, ChainError> {
        ledger_verdict(self.validate_block(block, now_secs))
    }

    fn connect(
        &mut self,
        block: &Block,
        cumulative_work: u128,
        now_secs: u64,
    ) -> Result<Verdict, ChainError> {
        ledger_verdict(self.connect_block(block, cumulative_work, now_secs))
    }

    fn disconnect(&mut self) -> Result<Block, ChainError> {
        self.disconnect_tip().map_err(|error| match error {
            BlockError::Store(error) => ChainError::Store(error),
            error => ChainError::Ledger(error),
        })
    }
}

/// A peer's misbehaviour, as heard by a [`FaultReporter`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// It sent a header or block that breaks a rule.
    InvalidData(InvalidReason),
    /// It did not answer a request in time.
    Stalled,
    /// It sent more headers than allowed that do not add up to enough work to be worth storing.
    LowWorkHeaders {
        /// The headers held for it when the bound was hit.
        headers: usize,
    },
    /// It sent too many headers that connect to nothing we know.
    UnconnectingHeaders {
        /// How many such messages within the counting window.
        count: u32,
    },
    /// It claimed a chain with more work than ours, was asked for its headers for that reason, and its
    /// answer ended (an empty or short reply, no more to come) without delivering that work.
    WorkNotDelivered {
        /// The cumulative work its status claimed.
        claimed: u128,
        /// The cumulative work of the chain its headers ended (0: it sent none).
        delivered: u128,
    },
    /// It sent a BFT vote or certificate that does not verify: a bad signature, a vote by a key outside
    /// the validator set (or relayed by someone other than its signer), too few votes for a quorum.
    BadVote(CertificateError),
    /// A validator signed two votes no honest validator signs together; the evidence proves it to
    /// anyone.
    Equivocation(Box<Evidence>),
    /// It answered our request for a compact block with one whose positions break the rules, or with
    /// the wrong number of missing transactions.
    BadCompactBlock(CompactBlockError),
    /// It announced a block as its new tip (`NewTip`, sent only once a node has connected the block)
    /// and then answered `NotFound` when asked for it. A peer that announces blocks first and then
    /// denies them delayed each block by a round trip, every time.
    DeniedTip {
        /// The block it announced.
        block: BlockId,
    },
}

/// Hears about peers that misbehave (the sync protocol reports; the application may score or ban).
pub trait FaultReporter {
    /// `peer` committed `fault`.
    fn report(&mut self, peer: PeerId, fault: Fault);
}

#[cfg(test)]
mod tests {
    use meshwork_identity::Hash;

    use super::*;

    #[test]
    fn ledger_errors_map_to_three_valued_verdicts() {
        let verdict = |error| ledger_verdict::<()>(Err(error)).unwrap();
        assert_eq!(
            verdict(BlockError::UnknownParent { parent: Hash::ZERO }),
            Verdict::NotYetKnown
        );
        assert_eq!(
            verdict(BlockError::TimestampTooFarAhead {
                timestamp: 10,
                max: 5
            }),
            Verdict::NotYetKnown
        );
        assert!(matches!(
            verdict(BlockError::MissingCoinbase),
            Verdict::Invalid(InvalidReason::Contents(_))
        ));
        assert!(matches!(
            verdict(BlockError::BadMerkleRoot {
                header: Hash::ZERO,
                computed: Hash::ZERO
            }),
            Verdict::Invalid(InvalidReason::BodyMismatch(_))
        ));
        assert!(
            ledger_verdict::<()>(Err(BlockError::NotOnTip {
                parent: Hash::ZERO,
                tip: None
            }))
            .is_err()
        );
        assert_eq!(ledger_verdict(Ok(())).unwrap(), Verdict::Valid);
    }
}
