//! The pool and the chain: a connected block takes its transactions and their conflicts out and may
//! make orphans whole; a disconnected one gives its transactions back.

use std::collections::VecDeque;

use super::pool::{Inserted, Mempool};
use crate::{Block, ChainStore, Ledger, Transaction, TxId};

impl Mempool {
    /// Drops the transactions `block` confirms and those that conflict with it (with their descendants),
    /// then retries the orphans its transactions may have made whole (those that enter the pool are
    /// kept for [`Mempool::take_adopted_by_blocks`]). Call after connecting `block`.
    pub fn block_connected<S: ChainStore>(&mut self, block: &Block, ledger: &mut Ledger<S>) -> Vec<TxId> {
        let txids = block.txids();
        for txid in &txids {
            self.remove_entry(txid);
            self.orphans.remove(txid);
        }
        let mut dropped = Vec::new();
        for input in block.txs.iter().flat_map(Transaction::inputs) {
            if let Some(conflict) = self.spent_by.get(&input.prevout).copied() {
                dropped.extend(self.remove_with_descendants(conflict));
            }
        }
        let adopted = self.adopt_orphans(txids, ledger);
        self.note_adopted_by_block(adopted);
        dropped
    }

    /// Takes back the transactions of a block that was just disconnected (call after
    /// [`Ledger::disconnect_tip`]). Those that are no longer valid are dropped. Returns those re-added.
    ///
    /// Pool transactions that spent the disconnected coinbase become invalid; they are dropped the next
    /// time a block conflicts with them or are refused in a block; a node that reorgs deeply may rebuild
    /// its pool instead.
    pub fn block_disconnected<S: ChainStore>(&mut self, block: &Block, ledger: &mut Ledger<S>) -> Vec<TxId> {
        let mut readded = Vec::new();
        for tx in block.txs.iter() {
            let Transaction::Transfer(transfer) = tx else {
                continue;
            };
            if let Ok(Inserted::Accepted { txid, .. }) = self.insert_one(transfer.clone(), None, ledger) {
                readded.push(txid);
            }
        }
        readded
    }

    /// The orphans that entered the pool because a connected block brought their parents, since the
    /// last call, oldest first. Nothing announced them: gossip ignored each when it came (its parent
    /// unknown), and a node's own orphan waits unpublished for its parent; the driver publishes them
    /// (the coin node does, at the end of the step). At most `max_orphans` are kept.
    pub fn take_adopted_by_blocks(&mut self) -> Vec<TxId> {
        self.adopted_by_blocks.drain(..).collect()
    }

    /// Keeps `adopted` for [`Mempool::take_adopted_by_blocks`], the oldest dropped past `max_orphans`
    /// (a driver that never takes them holds no more than the orphan pool did).
    fn note_adopted_by_block(&mut self, adopted: Vec<TxId>) {
        let queue: &mut VecDeque<TxId> = &mut self.adopted_by_blocks;
        queue.extend(adopted);
        let excess = queue.len().saturating_sub(self.config.max_orphans);
        queue.drain(..excess);
    }
}
