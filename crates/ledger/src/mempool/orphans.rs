//! A pool of transactions whose inputs are unknown, bounded in count and in bytes.
//!
//! Anyone can make an orphan (spend an outpoint that does not exist) for nothing, so the pool is a
//! cache, never a promise: it holds what fits, forgets the oldest first, and what it holds costs at most
//! `max_bytes` of memory whatever peers send.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::{Transfer, TxId};

/// Orphans by id, with an index from each missing parent txid to the orphans that need it.
#[derive(Debug, Default)]
pub(crate) struct OrphanPool {
    max: usize,
    max_bytes: usize,
    bytes: usize,
    /// Each orphan with its encoded size.
    txs: HashMap<TxId, (Transfer, usize)>,
    order: VecDeque<TxId>,
    by_parent: HashMap<TxId, HashSet<TxId>>,
}

impl OrphanPool {
    pub(crate) fn new(max: usize, max_bytes: usize) -> Self {
        Self {
            max,
            max_bytes,
            ..Self::default()
        }
    }

    pub(crate) fn contains(&self, txid: &TxId) -> bool {
        self.txs.contains_key(txid)
    }

    pub(crate) fn len(&self) -> usize {
        self.txs.len()
    }

    /// The total encoded size of the orphans held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds an orphan of `size` encoded bytes, evicting the oldest until it fits (one larger than the
    /// whole pool is not held).
    pub(crate) fn insert(&mut self, txid: TxId, tx: Transfer, size: usize) {
        if self.max == 0 || size > self.max_bytes || self.txs.contains_key(&txid) {
            return;
        }
        while self.txs.len() >= self.max || self.bytes + size > self.max_bytes {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.remove(&old);
        }
        for input in &tx.inputs {
            self.by_parent.entry(input.prevout.txid).or_default().insert(txid);
        }
        self.txs.insert(txid, (tx, size));
        self.bytes += size;
        self.order.push_back(txid);
    }

    /// Removes an orphan.
    pub(crate) fn remove(&mut self, txid: &TxId) -> Option<Transfer> {
        let (tx, size) = self.txs.remove(txid)?;
        self.bytes -= size;
        for input in &tx.inputs {
            if let Some(children) = self.by_parent.get_mut(&input.prevout.txid) {
                children.remove(txid);
                if children.is_empty() {
                    self.by_parent.remove(&input.prevout.txid);
                }
            }
        }
        self.order.retain(|id| id != txid);
        Some(tx)
    }

    /// Removes and returns the orphans that spend an output of `parent`.
    pub(crate) fn take_children(&mut self, parent: &TxId) -> Vec<(TxId, Transfer)> {
        let Some(children) = self.by_parent.get(parent).cloned() else {
            return Vec::new();
        };
        let mut children: Vec<TxId> = children.into_iter().collect();
        children.sort_unstable();
        children
            .into_iter()
            .filter_map(|txid| self.remove(&txid).map(|tx| (txid, tx)))
            .collect()
    }
}
