//! [`MemoryStore`]: a [`ChainStore`] in hash maps, for tests and simulations.

use std::collections::HashMap;

use crate::{
    Block, BlockId, BlockIndexEntry, BlockUndo, ChainStore, ChainTip, Coin, OutPoint, StoreBatch, StoreError,
    UtxoCommitment,
};

/// A [`ChainStore`] held in memory. Batches are trivially atomic; nothing survives the process.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    blocks: HashMap<BlockId, Block>,
    index: HashMap<BlockId, BlockIndexEntry>,
    utxos: HashMap<OutPoint, Coin>,
    undo: HashMap<BlockId, BlockUndo>,
    tip: Option<ChainTip>,
    commitment: UtxoCommitment,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ChainStore for MemoryStore {
    fn tip(&self) -> Result<Option<ChainTip>, StoreError> {
        Ok(self.tip)
    }

    fn block(&self, id: &BlockId) -> Result<Option<Block>, StoreError> {
        Ok(self.blocks.get(id).cloned())
    }

    fn index_entry(&self, id: &BlockId) -> Result<Option<BlockIndexEntry>, StoreError> {
        Ok(self.index.get(id).copied())
    }

    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StoreError> {
        Ok(self.utxos.get(outpoint).copied())
    }

    fn undo(&self, id: &BlockId) -> Result<Option<BlockUndo>, StoreError> {
        Ok(self.undo.get(id).cloned())
    }

    fn utxo_commitment(&self) -> Result<UtxoCommitment, StoreError> {
        Ok(self.commitment)
    }

    fn coins(&self) -> Result<Vec<(OutPoint, Coin)>, StoreError> {
        Ok(self
            .utxos
            .iter()
            .map(|(outpoint, coin)| (*outpoint, *coin))
            .collect())
    }

    fn put_block(&mut self, block: &Block, entry: BlockIndexEntry) -> Result<(), StoreError> {
        let id = block.id();
        self.blocks.insert(id, block.clone());
        self.index.insert(id, entry);
        Ok(())
    }

    fn commit(&mut self, batch: StoreBatch) -> Result<(), StoreError> {
        if let Some((block, entry)) = batch.block {
            let id = block.id();
            self.blocks.insert(id, block);
            self.index.insert(id, entry);
        }
        for outpoint in &batch.spend {
            self.utxos.remove(outpoint);
        }
        self.utxos.extend(batch.create);
        if let Some((id, undo)) = batch.put_undo {
            self.undo.insert(id, undo);
        }
        if let Some(id) = batch.delete_undo {
            self.undo.remove(&id);
        }
        self.tip = batch.tip;
        self.commitment = batch.commitment;
        Ok(())
    }
}
