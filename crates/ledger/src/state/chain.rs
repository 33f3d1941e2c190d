//! [`Ledger`]: validates blocks against a [`ChainStore`] and connects or disconnects them.

use std::collections::HashSet;

use meshwork_identity::Hash;

use super::sigcheck::{self, SigCache, SigCounters, SigStats};
use super::validation::{check_transfer_shape, check_transfer_value};
use crate::message::merkle;
use crate::{
    Amount, Block, BlockError, BlockId, BlockUndo, ChainStore, ChainTip, Coin, LedgerConfig, OutPoint,
    StoreBatch, StoreError, Transaction, Transfer, TxError, TxId, TxOut, UtxoCommitment, UtxoView,
};

/// The ledger: consensus rules, a [`ChainStore`] and a signature cache.
///
/// It is pure apart from the store: time comes in as `now` (seconds since the Unix epoch), work comes in
/// from the consensus engine, and nothing is spawned except scoped threads that verify signatures.
#[derive(Debug, Clone)]
pub struct Ledger<S> {
    pub(super) store: S,
    pub(super) config: LedgerConfig,
    pub(super) sig_cache: SigCache,
    pub(super) sig_counters: SigCounters,
}

/// The result of checking a loose transaction against the tip's UTXO set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedTransfer {
    /// Inputs minus outputs.
    pub fee: Amount,
    /// The coins spent, one per input.
    pub coins: Vec<Coin>,
}

/// A block that passed every rule, with the changes connecting it makes.
pub(super) struct ConnectPlan {
    pub(super) batch: StoreBatch,
    pub(super) undo: BlockUndo,
    pub(super) txids: Vec<TxId>,
}

impl<S: ChainStore> Ledger<S> {
    /// A ledger over `store` (which may already hold a chain).
    pub fn new(store: S, config: LedgerConfig) -> Self {
        let sig_cache = SigCache::new(config.signature_cache_capacity);
        Self {
            store,
            config,
            sig_cache,
            sig_counters: SigCounters::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// The consensus parameters.
    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    /// The signature cache.
    pub fn sig_cache(&self) -> &SigCache {
        &self.sig_cache
    }

    /// The signature work done so far: batches, signatures, and transactions the cache spared.
    pub fn sig_stats(&self) -> SigStats {
        self.sig_counters.snapshot()
    }

    /// The connected tip.
    pub fn tip(&self) -> Result<Option<ChainTip>, StoreError> {
        self.store.tip()
    }

    /// The commitment to the current UTXO set.
    pub fn utxo_commitment(&self) -> Result<UtxoCommitment, StoreError> {
        self.store.utxo_commitment()
    }

    /// Checks every rule for connecting `block` on the current tip, without changing anything.
    pub fn validate_block(&self, block: &Block, now: u64) -> Result<(), BlockError> {
        self.plan_connect(block, now, 0).map(|_| ())
    }

    /// Validates `block` and connects it on the tip in one atomic store batch. `cumulative_work` is the
    /// chain's work up to and including this block, as computed by consensus; it is stored, not checked.
    /// Returns the undo data (also stored) that [`Ledger::disconnect_tip`] uses.
    pub fn connect_block(
        &mut self,
        block: &Block,
        cumulative_work: u128,
        now: u64,
    ) -> Result<BlockUndo, BlockError> {
        let plan = self.plan_connect(block, now, cumulative_work)?;
        self.store.commit(plan.batch)?;
        // Their signatures are valid: a reorg that returns them to the mempool need not verify them again.
        for txid in plan.txids {
            self.sig_cache.insert(txid);
        }
        Ok(plan.undo)
    }

    /// Disconnects the tip block, restoring the UTXO set from its undo data, in one atomic store batch.
    /// Returns the block, whose transactions a mempool may take back.
    pub fn disconnect_tip(&mut self) -> Result<Block, BlockError> {
        let tip = self.store.tip()?.ok_or(BlockError::NothingToDisconnect)?;
        let block = self
            .store
            .block(&tip.id)?
            .ok_or(StoreError::Missing("the tip block"))?;
        let undo = self
            .store
            .undo(&tip.id)?
            .ok_or(StoreError::Missing("undo data of the tip"))?;
        let mut commitment = self.store.utxo_commitment()?;
        let spent_in_block: HashSet<OutPoint> = block
            .txs
            .iter()
            .flat_map(|tx| tx.inputs().iter().map(|input| input.prevout))
            .collect();
        let mut remove = Vec::new();
        for tx in block.txs.iter() {
            let txid = tx.txid();
            for (index, output) in (0u32..).zip(tx.outputs()) {
                let outpoint = OutPoint { txid, index };
                if spent_in_block.contains(&outpoint) {
                    continue;
                }
                let coin = Coin {
                    output: *output,
                    height: block.header.height,
                    coinbase: tx.is_coinbase(),
                };
                commitment.remove(&outpoint, &coin);
                remove.push(outpoint);
            }
        }
        for (outpoint, coin) in &undo.spent {
            commitment.insert(outpoint, coin);
        }
        let parent_tip = if tip.height == 0 {
            None
        } else {
            let entry = self
                .store
                .index_entry(&block.header.parent)?
                .ok_or(StoreError::Missing("the index entry of the tip's parent"))?;
            Some(ChainTip {
                id: block.header.parent,
                height: entry.header.height,
                cumulative_work: entry.cumulative_work,
            })
        };
        self.store.commit(StoreBatch {
            block: None,
            spend: remove,
            create: undo.spent,
            put_undo: None,
            delete_undo: Some(tip.id),
            tip: parent_tip,
            commitment,
        })?;
        Ok(block)
    }

    /// Checks a loose transaction (for the mempool) against the tip's UTXO set plus `extra` (outputs of
    /// unconfirmed parents), as if it were in the next block. Verifies its signatures unless cached, and
    /// caches them when valid: [`check_transfer_unsigned`](Self::check_transfer_unsigned) then
    /// [`verify_transfer_signatures`](Self::verify_transfer_signatures).
    pub fn check_transfer(
        &mut self,
        tx: &Transfer,
        extra: &impl UtxoView,
    ) -> Result<Result<CheckedTransfer, TxError>, StoreError> {
        let checked = match self.check_transfer_unsigned(tx, extra)? {
            Ok(checked) => checked,
            Err(error) => return Ok(Err(error)),
        };
        Ok(self.verify_transfer_signatures(tx, &checked).map(|()| checked))
    }

    /// Every rule of [`check_transfer`](Self::check_transfer) except the signatures (their encoding is
    /// checked): cheap lookups and arithmetic, so a caller can apply its own policy (a fee floor, say)
    /// before it spends a signature verification on the transaction.
    pub fn check_transfer_unsigned(
        &self,
        tx: &Transfer,
        extra: &impl UtxoView,
    ) -> Result<Result<CheckedTransfer, TxError>, StoreError> {
        if let Err(error) = check_transfer_shape(tx) {
            return Ok(Err(error));
        }
        let spend_height = self.store.tip()?.map_or(0, |tip| tip.height + 1);
        let mut coins = Vec::with_capacity(tx.inputs.len());
        for input in &tx.inputs {
            let coin = match extra.coin(&input.prevout)? {
                Some(coin) => coin,
                None => match self.store.coin(&input.prevout)? {
                    Some(coin) => coin,
                    None => {
                        return Ok(Err(TxError::UnknownInput {
                            outpoint: input.prevout,
                        }));
                    }
                },
            };
            coins.push(coin);
        }
        Ok(check_transfer_value(tx, &coins, spend_height, &self.config)
            .map(|fee| CheckedTransfer { fee, coins }))
    }

    /// Verifies `tx`'s signatures against the coins `checked` found for it (unless the signature cache
    /// knows the transaction), and caches them when valid.
    pub fn verify_transfer_signatures(
        &mut self,
        tx: &Transfer,
        checked: &CheckedTransfer,
    ) -> Result<(), TxError> {
        let txid = Transaction::Transfer(tx.clone()).txid();
        if self.sig_cache.contains(&txid) {
            self.sig_counters.cached(1);
            return Ok(());
        }
        let spent: Vec<TxOut> = checked.coins.iter().map(|coin| coin.output).collect();
        let sighash = tx.sighash(&spent);
        let jobs = super::connect::signature_jobs(0, tx, &checked.coins, sighash);
        if let Err(position) = sigcheck::verify(&jobs, self.config.min_batch_per_thread, &self.sig_counters) {
            return Err(TxError::BadSignature {
                input: jobs[position].input,
            });
        }
        self.sig_cache.insert(txid);
        Ok(())
    }

    /// The median timestamp of `parent` and the blocks before it (`None` for the genesis block).
    fn median_time_past(&self, parent: BlockId) -> Result<Option<u64>, StoreError> {
        let mut times = Vec::with_capacity(self.config.median_time_span);
        let mut cursor = parent;
        while times.len() < self.config.median_time_span {
            let Some(entry) = self.store.index_entry(&cursor)? else {
                break;
            };
            times.push(entry.header.timestamp);
            if entry.header.height == 0 {
                break;
            }
            cursor = entry.header.parent;
        }
        times.sort_unstable();
        Ok(times.get(times.len() / 2).copied())
    }

    /// Every block rule, in order from cheapest to dearest; signatures last.
    fn plan_connect(
        &self,
        block: &Block,
        now: u64,
        cumulative_work: u128,
    ) -> Result<ConnectPlan, BlockError> {
        let header = &block.header;
        let size = block.encoded_len();
        if size > self.config.max_block_bytes {
            return Err(BlockError::TooLarge {
                size,
                max: self.config.max_block_bytes,
            });
        }
        let Some(Transaction::Coinbase(coinbase)) = block.txs.first() else {
            return Err(BlockError::MissingCoinbase);
        };
        if let Some(index) = block.txs.iter().skip(1).position(Transaction::is_coinbase) {
            return Err(BlockError::ExtraCoinbase { index: index + 1 });
        }
        let txids = block.txids();
        let computed = merkle::root(&txids);
        if computed != header.merkle_root {
            return Err(BlockError::BadMerkleRoot {
                header: header.merkle_root,
                computed,
            });
        }

        let tip = self.store.tip()?;
        let extends_tip = match tip {
            None => header.parent == Hash::ZERO,
            Some(tip) => header.parent == tip.id,
        };
        if !extends_tip {
            let known = header.parent == Hash::ZERO || self.store.index_entry(&header.parent)?.is_some();
            return Err(if known {
                BlockError::NotOnTip {
                    parent: header.parent,
                    tip: tip.map(|tip| tip.id),
                }
            } else {
                BlockError::UnknownParent {
                    parent: header.parent,
                }
            });
        }
        let height = tip.map_or(0, |tip| tip.height + 1);
        if header.height != height {
            return Err(BlockError::BadHeight {
                expected: height,
                got: header.height,
            });
        }
        if coinbase.height != height {
            return Err(BlockError::BadCoinbaseHeight {
                expected: height,
                got: coinbase.height,
            });
        }
        let median = match tip {
            Some(_) => self.median_time_past(header.parent)?,
            None => None,
        };
        let may_equal = self.config.timestamp_may_equal_median;
        if let Some(median) =
            median.filter(|median| header.timestamp < *median || header.timestamp == *median && !may_equal)
        {
            return Err(BlockError::TimestampTooOld {
                timestamp: header.timestamp,
                median,
            });
        }
        let latest = now.saturating_add(self.config.max_future_secs);
        if header.timestamp > latest {
            return Err(BlockError::TimestampTooFarAhead {
                timestamp: header.timestamp,
                max: latest,
            });
        }
        self.plan_transactions(block, &txids, height, cumulative_work)
    }
}
