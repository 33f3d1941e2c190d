//! Blocks received but not connected yet (ahead of the tip, or on a side branch), bounded in bytes.
//!
//! They wait in memory because the ledger offers no way to store a block without connecting it (see the
//! crate docs, *Limits*). Once connected, a block lives in the store.

use std::collections::HashMap;

use meshwork_ledger::{Block, BlockId};

/// Waiting block bodies and their total encoded size.
#[derive(Debug, Default)]
pub(crate) struct Bodies {
    blocks: HashMap<BlockId, (Block, usize)>,
    bytes: usize,
}

impl Bodies {
    pub(crate) fn get(&self, id: &BlockId) -> Option<&Block> {
        self.blocks.get(id).map(|(block, _)| block)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn len(&self) -> usize {
        self.blocks.len()
    }

    pub(crate) fn insert(&mut self, id: BlockId, block: Block) {
        let size = block.encoded_len();
        if let Some((_, old)) = self.blocks.insert(id, (block, size)) {
            self.bytes -= old;
        }
        self.bytes += size;
    }

    pub(crate) fn remove(&mut self, id: &BlockId) -> Option<Block> {
        let (block, size) = self.blocks.remove(id)?;
        self.bytes -= size;
        Some(block)
    }

    /// The ids held, sorted (for deterministic eviction).
    pub(crate) fn ids(&self) -> Vec<BlockId> {
        let mut ids: Vec<BlockId> = self.blocks.keys().copied().collect();
        ids.sort_unstable();
        ids
    }
}
