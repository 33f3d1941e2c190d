//! The wire types of `/meshwork/sync/1`. Every collection is bounded (ARCHITECTURE.md).

use meshwork_ledger::{Block, BlockHeader, BlockId};
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
}
