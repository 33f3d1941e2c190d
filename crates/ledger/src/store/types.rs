//! The [`ChainStore`] trait and the records it keeps.

use serde::{Deserialize, Serialize};

use crate::{Block, BlockHeader, BlockId, BlockUndo, Coin, OutPoint, StoreError, UtxoCommitment};

/// The block at the end of the connected chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainTip {
    /// Its id.
    pub id: BlockId,
    /// Its height.
    pub height: u64,
    /// The chain's cumulative work up to and including it (as supplied by consensus).
    pub cumulative_work: u128,
}

/// What the store knows about a block, connected or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockIndexEntry {
    /// The header (its height, parent and timestamp are what the ledger reads).
    pub header: BlockHeader,
    /// The cumulative work of the chain ending at this block. The ledger does not compute work: the
    /// consensus engine supplies it (a proof-of-work engine sums the work of each target; a BFT engine may
    /// use the height).
    pub cumulative_work: u128,
}

/// Everything one block connect or disconnect changes. A store applies a batch **atomically**: after a
/// crash it holds either all of it or none of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreBatch {
    /// A block to store, with its index entry (the block being connected).
    pub block: Option<(Block, BlockIndexEntry)>,
    /// Coins to remove from the UTXO set.
    pub spend: Vec<OutPoint>,
    /// Coins to add to the UTXO set.
    pub create: Vec<(OutPoint, Coin)>,
    /// Undo data to record for a block.
    pub put_undo: Option<(BlockId, BlockUndo)>,
    /// Undo data to drop (of the block being disconnected).
    pub delete_undo: Option<BlockId>,
    /// The tip afterwards (`None`: the chain is empty).
    pub tip: Option<ChainTip>,
    /// The UTXO commitment afterwards.
    pub commitment: UtxoCommitment,
}

/// Where the ledger keeps blocks, the block index, the best tip, the UTXO set and undo data.
///
/// Reads see the last committed state. Writes happen only through [`ChainStore::commit`] (one batch per
/// block connect or disconnect, atomic) and [`ChainStore::put_block`] (a block not connected yet, e.g. on
/// a side chain). The store does not validate: the [`Ledger`](crate::Ledger) does.
pub trait ChainStore {
    /// The connected tip, `None` before the genesis block is connected.
    fn tip(&self) -> Result<Option<ChainTip>, StoreError>;
    /// A stored block.
    fn block(&self, id: &BlockId) -> Result<Option<Block>, StoreError>;
    /// A stored block's index entry.
    fn index_entry(&self, id: &BlockId) -> Result<Option<BlockIndexEntry>, StoreError>;
    /// An unspent coin.
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StoreError>;
    /// Several coins at once, `None` for each outpoint that is not unspent. Stores with transactions read
    /// them from one snapshot; the default asks [`ChainStore::coin`] one by one.
    fn coins_at(&self, outpoints: &[OutPoint]) -> Result<Vec<Option<Coin>>, StoreError> {
        outpoints.iter().map(|outpoint| self.coin(outpoint)).collect()
    }
    /// The undo data of a connected block.
    fn undo(&self, id: &BlockId) -> Result<Option<BlockUndo>, StoreError>;
    /// The commitment to the UTXO set, as recorded with the last batch.
    fn utxo_commitment(&self) -> Result<UtxoCommitment, StoreError>;
    /// Every unspent coin (reads the whole set: for tools, audits and tests).
    fn coins(&self) -> Result<Vec<(OutPoint, Coin)>, StoreError>;

    /// The unspent outputs `owner` holds, in outpoint order. The default scans [`ChainStore::coins`]; a
    /// store that indexes owners answers faster.
    fn coins_of(&self, owner: &meshwork_identity::PeerId) -> Result<Vec<(OutPoint, Coin)>, StoreError> {
        Ok(owned_by(self.coins()?, owner))
    }
    /// Stores a block and its index entry without connecting it.
    fn put_block(&mut self, block: &Block, entry: BlockIndexEntry) -> Result<(), StoreError>;
    /// Applies `batch` atomically.
    fn commit(&mut self, batch: StoreBatch) -> Result<(), StoreError>;
}

/// The coins of `coins` that `owner` holds, in outpoint order.
pub(crate) fn owned_by(
    coins: Vec<(OutPoint, Coin)>,
    owner: &meshwork_identity::PeerId,
) -> Vec<(OutPoint, Coin)> {
    let mut owned: Vec<(OutPoint, Coin)> = coins
        .into_iter()
        .filter(|(_, coin)| coin.output.owner == *owner)
        .collect();
    owned.sort_unstable_by_key(|(outpoint, _)| *outpoint);
    owned
}
