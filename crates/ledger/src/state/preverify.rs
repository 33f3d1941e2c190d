//! Verifying the signatures of many loose transactions in one batch, ahead of their one-by-one checks.
//!
//! A relayed transaction is checked alone when it arrives ([`Ledger::check_transfer`], through the
//! mempool's insert), and one signature checked alone costs what two or three cost in a batch (ed25519
//! batch verification shares the scalar multiplications; `cargo bench -p meshwork-benches --bench
//! identity` measures both, `verify` and `batch_verify_N`). A node that relays thousands of
//! transactions a second can gather those that arrive within a few milliseconds, verify their
//! signatures together here, then insert them one by one: each insert finds its transaction in the
//! signature cache and skips the verification.

use std::collections::{HashMap, HashSet};

use super::chain::Ledger;
use super::connect::signature_jobs;
use super::sigcheck;
use crate::{
    ChainStore, CheckedTransfer, Coin, OutPoint, StoreError, Transaction, Transfer, TxId, TxOut, UtxoView,
};

/// `first`, then `then`: the outputs of earlier transactions of a batch before the caller's view.
struct Chained<'a, V> {
    first: &'a HashMap<OutPoint, Coin>,
    then: &'a V,
}

impl<V: UtxoView> UtxoView for Chained<'_, V> {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StoreError> {
        match self.first.get(outpoint) {
            Some(coin) => Ok(Some(*coin)),
            None => self.then.coin(outpoint),
        }
    }
}

impl<S: ChainStore> Ledger<S> {
    /// Verifies the signatures of `txs` together, in one batch (split across cores as a block's are), and
    /// caches the transactions found valid, so that checking each afterwards
    /// ([`check_transfer`](Self::check_transfer)) skips its signatures. Returns how many were cached.
    ///
    /// The coins a transaction spends are looked up in an earlier transaction of `txs`, then in `extra`
    /// (unconfirmed outputs: the mempool's), then in the store, so a chain of transactions that arrive
    /// together is verified together. A transaction is left out, for its own check to judge, if the
    /// caller holds it already (`known`: the mempool's transactions and orphans), it came earlier in
    /// `txs`, it spends a coin none of these holds, it breaks a rule that needs no signature, or the
    /// caller does not want it (`wanted`, given its encoded size: the mempool's policy refuses it); and
    /// its signatures are left out if it is cached. Only the outputs of what is not left out are
    /// offered to later transactions.
    ///
    /// What is cached is what [`check_transfer`](Self::check_transfer) would have cached: a
    /// transaction's signatures cover its id's inputs, and the coins those inputs name are fixed by the
    /// ids of the transactions that made them, so a valid signature stays valid wherever the coin is
    /// found. If the batch fails, the signatures before the first bad one have been checked (in
    /// batches that passed, or one by one in the search for it): their transactions are cached, and
    /// the rest are left to their own checks. A bad transaction so costs one batch and never stops the
    /// others; the peer that relayed it is blamed by its own check.
    pub fn preverify_transfers(
        &mut self,
        txs: &[Transfer],
        extra: &impl UtxoView,
        known: impl Fn(&TxId) -> bool,
        wanted: impl Fn(&Transfer, &CheckedTransfer, usize) -> bool,
    ) -> Result<usize, StoreError> {
        let mut made: HashMap<OutPoint, Coin> = HashMap::new();
        let mut seen: HashSet<TxId> = HashSet::new();
        let mut candidates: Vec<(TxId, &Transfer, Vec<Coin>)> = Vec::new();
        for tx in txs {
            let as_tx = Transaction::Transfer(tx.clone());
            let (txid, size) = (as_tx.txid(), as_tx.encoded_len());
            if known(&txid) || !seen.insert(txid) {
                continue;
            }
            let view = Chained {
                first: &made,
                then: extra,
            };
            // A cached transaction too: its signatures were good once, but the coins it spends may be
            // gone (spent since, or it was replaced). Its outputs are offered to later transactions
            // only if it could still be taken: a child of a transaction that spends unknown coins
            // would otherwise be verified (and could spoil the batch) while both are judged orphans,
            // without blame, and a replaced transaction, cached for good, would vouch for as many
            // children with bad signatures as a peer cares to send.
            let Ok(checked) = self.check_transfer_unsigned(tx, &view)? else {
                continue;
            };
            if !wanted(tx, &checked, size) {
                continue;
            }
            if !self.sig_cache.contains(&txid) {
                candidates.push((txid, tx, checked.coins));
            }
            for (index, output) in tx.outputs.iter().enumerate() {
                let Ok(index) = u32::try_from(index) else {
                    break;
                };
                // Unconfirmed outputs are never coinbase outputs; their height does not matter.
                let coin = Coin {
                    output: *output,
                    height: u64::MAX,
                    coinbase: false,
                };
                made.insert(OutPoint { txid, index }, coin);
            }
        }
        let mut jobs = Vec::new();
        for (position, (_, tx, coins)) in candidates.iter().enumerate() {
            let spent: Vec<TxOut> = coins.iter().map(|coin| coin.output).collect();
            jobs.extend(signature_jobs(position, tx, coins, tx.sighash(&spent)));
        }
        let valid = match sigcheck::verify(&jobs, self.config.min_batch_per_thread, &self.sig_counters) {
            Ok(()) => candidates.len(),
            Err(position) => jobs[position].tx,
        };
        for (txid, ..) in &candidates[..valid] {
            self.sig_cache.insert(*txid);
        }
        Ok(valid)
    }
}
