//! The wire types of `/meshwork/sync/1`. Every collection is bounded (ARCHITECTURE.md).

use meshwork_ledger::{Block, BlockHeader, BlockId, MAX_BLOCK_TXS, Transaction};
use meshwork_wire::BoundedVec;
use serde::{Deserialize, Serialize};

/// The most headers one [`Message::Headers`] carries.
pub const MAX_HEADERS: usize = 2000;
/// The most ids in a block locator.
pub const MAX_LOCATOR: usize = 64;
/// The most blocks one [`Message::GetBlocks`] (or [`Message::NotFound`]) names.
pub const MAX_BLOCKS_PER_REQUEST: usize = 16;

/// A message between two sync peers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Sent to a peer when the connection comes up: our best chain.
    Status {
        /// Its tip.
        tip: BlockId,
        /// The tip's height.
        height: u64,
        /// Its cumulative work.
        work: u128,
    },
    /// Asks for the headers after the first locator id the receiver has on its best chain.
    GetHeaders {
        /// Ids from the asker's best header back to genesis, exponentially spaced (see
        /// [`Nakamoto::locator`](crate::Nakamoto::locator)).
        locator: BoundedVec<BlockId, MAX_LOCATOR>,
        /// Stop after this header (`None`: send as many as fit).
        stop: Option<BlockId>,
    },
    /// Consecutive headers of the sender's best chain, each the parent of the next; empty if it has
    /// nothing after the locator.
    Headers(BoundedVec<BlockHeader, MAX_HEADERS>),
    /// Asks for full blocks.
    GetBlocks(BoundedVec<BlockId, MAX_BLOCKS_PER_REQUEST>),
    /// A full block, answering `GetBlocks`.
    Block(Block),
    /// The blocks of a `GetBlocks` the sender does not have.
    NotFound(BoundedVec<BlockId, MAX_BLOCKS_PER_REQUEST>),
    /// The sender's best chain has a new tip: fetch it (and its ancestors) if you lack it.
    NewTip(BlockHeader),
    /// Asks for a block as a [`CompactBlock`]: sent for the block that extends the asker's tip, whose
    /// transactions it probably holds already (see `compact.rs`).
    GetCompactBlock(BlockId),
    /// A block as its header and the short ids of its transactions, answering `GetCompactBlock`.
    CompactBlock(CompactBlock),
    /// Asks for the transactions of a block that a compact block left missing, by position.
    GetBlockTxs {
        /// The block.
        block: BlockId,
        /// Positions in the block, strictly increasing.
        indexes: BoundedVec<u32, MAX_BLOCK_TXS>,
    },
    /// The transactions a `GetBlockTxs` asked for, in its order.
    BlockTxs {
        /// The block.
        block: BlockId,
        /// The transactions.
        txs: BoundedVec<Transaction, MAX_BLOCK_TXS>,
    },
}

/// A transaction's short id in a [`CompactBlock`]: the first six bytes of a hash keyed by the block,
/// as in BIP152 (see [`short_id`](super::short_id)).
pub type ShortId = [u8; 6];

/// A block announced by its header and the short ids of its transactions, after BIP152: the receiver
/// rebuilds the block from its mempool and asks only for what it lacks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactBlock {
    /// The block's header.
    pub header: BlockHeader,
    /// The short ids of the transactions not prefilled, in block order.
    pub short_ids: BoundedVec<ShortId, MAX_BLOCK_TXS>,
    /// Transactions sent whole (the coinbase, which no mempool holds), by position, strictly
    /// increasing.
    pub prefilled: BoundedVec<PrefilledTx, MAX_BLOCK_TXS>,
}

/// A transaction sent whole inside a [`CompactBlock`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefilledTx {
    /// Its position in the block.
    pub index: u32,
    /// The transaction.
    pub tx: Transaction,
}
