//! The transaction rules of a block, applied in order with the coins the block itself creates, and the
//! store batch that connecting it writes.

use std::collections::{HashMap, HashSet};

use meshwork_identity::Hash;

use super::chain::{ConnectPlan, Ledger};
use super::sigcheck::{self, SigJob};
use super::validation::{check_coinbase_shape, check_transfer_shape, check_transfer_value};
use crate::{
    Amount, Block, BlockError, BlockIndexEntry, BlockUndo, ChainStore, ChainTip, Coin, OutPoint, StoreBatch,
    Transaction, Transfer, TxError, TxId, TxOut,
};

impl<S: ChainStore> Ledger<S> {
    /// The transaction rules of a block whose header rules passed, and the resulting store batch.
    pub(super) fn plan_transactions(
        &self,
        block: &Block,
        txids: &[TxId],
        height: u64,
        cumulative_work: u128,
    ) -> Result<ConnectPlan, BlockError> {
        let tx_error = |index: usize, error: TxError| BlockError::Tx {
            index,
            txid: txids[index],
            error,
        };
        let Some(Transaction::Coinbase(coinbase)) = block.txs.first() else {
            return Err(BlockError::MissingCoinbase);
        };
        let claimed = check_coinbase_shape(coinbase).map_err(|error| tx_error(0, error))?;

        // Read every coin the block spends from the store at once (one snapshot, one read transaction).
        // Outputs of the block's own transactions cannot be in the store: txids are unique.
        let own: HashSet<TxId> = txids.iter().copied().collect();
        let wanted: Vec<OutPoint> = block
            .txs
            .iter()
            .flat_map(Transaction::inputs)
            .map(|input| input.prevout)
            .filter(|outpoint| !own.contains(&outpoint.txid))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let stored: HashMap<OutPoint, Coin> = wanted
            .iter()
            .zip(self.store.coins_at(&wanted)?)
            .filter_map(|(outpoint, coin)| coin.map(|coin| (*outpoint, coin)))
            .collect();

        // Coins created by this block and not (yet) spent in it, and coins spent from the store.
        let mut created: HashMap<OutPoint, Coin> = HashMap::new();
        let mut spent_in_block: HashSet<OutPoint> = HashSet::new();
        let mut undo = BlockUndo::default();
        let mut fees = Amount::ZERO;
        let mut sighashes: Vec<(usize, Hash, Vec<Coin>)> = Vec::new();

        for (index, tx) in block.txs.iter().enumerate() {
            if let Transaction::Transfer(transfer) = tx {
                check_transfer_shape(transfer).map_err(|error| tx_error(index, error))?;
                let mut coins = Vec::with_capacity(transfer.inputs.len());
                for input in &transfer.inputs {
                    let outpoint = input.prevout;
                    if !spent_in_block.insert(outpoint) {
                        return Err(BlockError::DoubleSpendInBlock { index, outpoint });
                    }
                    let coin = match created.remove(&outpoint) {
                        Some(coin) => coin,
                        None => {
                            let coin = stored
                                .get(&outpoint)
                                .copied()
                                .ok_or(BlockError::MissingOrSpentInput { index, outpoint })?;
                            undo.spent.push((outpoint, coin));
                            coin
                        }
                    };
                    coins.push(coin);
                }
                let fee = check_transfer_value(transfer, &coins, height, &self.config)
                    .map_err(|error| tx_error(index, error))?;
                fees = fees
                    .checked_add(fee)
                    .filter(|fees| fees.in_range())
                    .ok_or(BlockError::FeesOutOfRange)?;
                if self.sig_cache.contains(&txids[index]) {
                    self.sig_counters.cached(1);
                } else {
                    let spent: Vec<TxOut> = coins.iter().map(|coin| coin.output).collect();
                    sighashes.push((index, transfer.sighash(&spent), coins));
                }
            }
            for (vout, output) in (0u32..).zip(tx.outputs()) {
                let outpoint = OutPoint {
                    txid: txids[index],
                    index: vout,
                };
                let coin = Coin {
                    output: *output,
                    height,
                    coinbase: tx.is_coinbase(),
                };
                if created.insert(outpoint, coin).is_some() {
                    return Err(BlockError::DuplicateTxid {
                        index,
                        txid: txids[index],
                    });
                }
            }
        }

        let allowed = self
            .config
            .subsidy(height)
            .checked_add(fees)
            .ok_or(BlockError::FeesOutOfRange)?;
        if claimed > allowed {
            return Err(BlockError::CoinbaseTooLarge { claimed, allowed });
        }

        let mut jobs = Vec::new();
        for (index, sighash, coins) in &sighashes {
            if let Transaction::Transfer(transfer) = &block.txs[*index] {
                jobs.extend(signature_jobs(*index, transfer, coins, *sighash));
            }
        }
        if let Err(position) = sigcheck::verify(&jobs, self.config.min_batch_per_thread, &self.sig_counters) {
            let job = &jobs[position];
            return Err(tx_error(job.tx, TxError::BadSignature { input: job.input }));
        }

        let mut commitment = self.store.utxo_commitment()?;
        for (outpoint, coin) in &undo.spent {
            commitment.remove(outpoint, coin);
        }
        for (outpoint, coin) in &created {
            commitment.insert(outpoint, coin);
        }
        let id = block.id();
        let entry = BlockIndexEntry {
            header: block.header,
            cumulative_work,
        };
        let batch = StoreBatch {
            block: Some((block.clone(), entry)),
            spend: undo.spent.iter().map(|(outpoint, _)| *outpoint).collect(),
            create: created.into_iter().collect(),
            put_undo: Some((id, undo.clone())),
            delete_undo: None,
            tip: Some(ChainTip {
                id,
                height,
                cumulative_work,
            }),
            commitment,
        };
        Ok(ConnectPlan {
            batch,
            undo,
            txids: txids.to_vec(),
        })
    }
}

/// One signature job per input of `tx` (at position `tx_index`), each against the owner of its coin.
pub(super) fn signature_jobs<'a>(
    tx_index: usize,
    tx: &'a Transfer,
    coins: &[Coin],
    sighash: Hash,
) -> Vec<SigJob<'a>> {
    tx.inputs
        .iter()
        .zip(coins)
        .enumerate()
        .map(|(input, (txin, coin))| SigJob {
            tx: tx_index,
            input,
            owner: coin.output.owner,
            sighash,
            signature: &txin.signature,
        })
        .collect()
}
