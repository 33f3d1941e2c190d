//! A bounded pool of transactions whose inputs are unknown.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::{Transfer, TxId};

/// Orphans by id, with an index from each missing parent txid to the orphans that need it.
#[derive(Debug, Default)]
pub(crate) struct OrphanPool {
    max: usize,
    txs: HashMap<TxId, Transfer>,
    order: VecDeque<TxId>,
    by_parent: HashMap<TxId, HashSet<TxId>>,
}

impl OrphanPool {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            ..Self::default()
        }
    }

    pub(crate) fn contains(&self, txid: &TxId) -> bool {
        self.txs.contains_key(txid)
    }

    pub(crate) fn len(&self) -> usize {
        self.txs.len()
    }

    /// Adds an orphan, evicting the oldest when full.
    pub(crate) fn insert(&mut self, txid: TxId, tx: Transfer) {
        if self.max == 0 || self.txs.contains_key(&txid) {
            return;
        }
        while self.txs.len() >= self.max {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.remove(&old);
        }
        for input in &tx.inputs {
            self.by_parent.entry(input.prevout.txid).or_default().insert(txid);
        }
        self.txs.insert(txid, tx);
        self.order.push_back(txid);
    }

    /// Removes an orphan.
    pub(crate) fn remove(&mut self, txid: &TxId) -> Option<Transfer> {
        let tx = self.txs.remove(txid)?;
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
