//! A bounded pool of blocks whose parent is unknown (orphans), waiting for it.

use std::collections::{HashMap, VecDeque};

use meshwork_ledger::{Block, BlockId};

/// Orphan blocks by id, indexed by the parent they wait for; the oldest is evicted when full.
#[derive(Debug, Default)]
pub(crate) struct OrphanBlocks {
    max: usize,
    blocks: HashMap<BlockId, Block>,
    order: VecDeque<BlockId>,
    by_parent: HashMap<BlockId, Vec<BlockId>>,
}

impl OrphanBlocks {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            ..Self::default()
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.blocks.len()
    }

    pub(crate) fn contains(&self, id: &BlockId) -> bool {
        self.blocks.contains_key(id)
    }

    /// Adds an orphan (evicting the oldest when full). Returns false if it was there already.
    pub(crate) fn insert(&mut self, block: Block) -> bool {
        let id = block.id();
        if self.max == 0 || self.blocks.contains_key(&id) {
            return false;
        }
        while self.blocks.len() >= self.max {
            let Some(old) = self.order.front().copied() else {
                break;
            };
            self.remove(&old);
        }
        self.by_parent.entry(block.header.parent).or_default().push(id);
        self.blocks.insert(id, block);
        self.order.push_back(id);
        true
    }

    /// Removes an orphan.
    pub(crate) fn remove(&mut self, id: &BlockId) -> Option<Block> {
        let block = self.blocks.remove(id)?;
        if let Some(children) = self.by_parent.get_mut(&block.header.parent) {
            children.retain(|child| child != id);
            if children.is_empty() {
                self.by_parent.remove(&block.header.parent);
            }
        }
        self.order.retain(|other| other != id);
        Some(block)
    }

    /// Removes and returns the orphans whose parent is `parent`, in arrival order.
    pub(crate) fn take_children(&mut self, parent: &BlockId) -> Vec<Block> {
        let children = self.by_parent.get(parent).cloned().unwrap_or_default();
        children.iter().filter_map(|id| self.remove(id)).collect()
    }
}
