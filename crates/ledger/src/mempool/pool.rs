//! [`Mempool`]: valid unconfirmed transactions by fee rate.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use meshwork_identity::PeerId;

use super::orphans::{InvalidOrphan, OrphanPool, Source};
use crate::{
    Amount, ChainStore, CheckedTransfer, Coin, Ledger, MempoolConfig, MempoolError, OutPoint, StoreError,
    Transaction, Transfer, TxError, TxId, UtxoView,
};

/// A pool transaction and its links to other pool transactions.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) tx: Transfer,
    pub(super) fee: Amount,
    pub(super) size: usize,
    pub(super) fee_rate: u64,
    pub(super) parents: HashSet<TxId>,
    pub(super) children: HashSet<TxId>,
}

/// What happened to an inserted transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inserted {
    /// It entered the pool.
    Accepted {
        /// Its id.
        txid: TxId,
        /// Pool transactions it replaced (conflicts and their descendants).
        replaced: Vec<TxId>,
        /// Pool transactions evicted to stay under the size cap.
        evicted: Vec<TxId>,
        /// Orphans that entered the pool because of it.
        adopted: Vec<TxId>,
    },
    /// An input is unknown: it waits in the orphan pool.
    Orphan {
        /// Its id.
        txid: TxId,
    },
}

/// Valid unconfirmed transactions, ordered by fee rate; see the [module docs](crate::mempool).
#[derive(Debug)]
pub struct Mempool {
    pub(super) config: MempoolConfig,
    pub(super) entries: HashMap<TxId, Entry>,
    pub(super) by_rate: BTreeSet<(u64, TxId)>,
    pub(super) spent_by: HashMap<OutPoint, TxId>,
    pub(super) bytes: usize,
    pub(super) orphans: OrphanPool,
    /// Relayed orphans found invalid on adoption, oldest first, until taken (at most `max_orphans`).
    pub(super) invalid_orphans: VecDeque<InvalidOrphan>,
    /// Orphans that connected blocks made whole, oldest first, until taken (at most `max_orphans`).
    pub(super) adopted_by_blocks: VecDeque<TxId>,
}

/// The outputs of pool transactions, as a UTXO view for checking their children.
struct PoolOutputs<'a>(&'a HashMap<TxId, Entry>);

impl UtxoView for PoolOutputs<'_> {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StoreError> {
        let output = self.0.get(&outpoint.txid).and_then(|entry| {
            let index = usize::try_from(outpoint.index).ok()?;
            entry.tx.outputs.get(index).copied()
        });
        // Unconfirmed outputs are never coinbase outputs, so their height does not matter.
        Ok(output.map(|output| Coin {
            output,
            height: u64::MAX,
            coinbase: false,
        }))
    }
}

/// Fee per 1000 bytes (the pool's order; finer than per byte, so small fee differences still rank).
fn fee_rate(fee: Amount, size: usize) -> u64 {
    let rate = u128::from(fee.units()) * 1000 / (size.max(1) as u128);
    u64::try_from(rate).unwrap_or(u64::MAX)
}

impl Mempool {
    /// An empty pool.
    pub fn new(config: MempoolConfig) -> Self {
        let orphans = OrphanPool::new(config.max_orphans, config.max_orphan_bytes);
        Self {
            config,
            entries: HashMap::new(),
            by_rate: BTreeSet::new(),
            spent_by: HashMap::new(),
            bytes: 0,
            orphans,
            invalid_orphans: VecDeque::new(),
            adopted_by_blocks: VecDeque::new(),
        }
    }

    /// How many transactions are in the pool (orphans not counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The total encoded size of the pool's transactions.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many orphans wait.
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }

    /// Whether `txid` is in the pool.
    pub fn contains(&self, txid: &TxId) -> bool {
        self.entries.contains_key(txid)
    }

    /// The ids of the transactions in the pool (not the orphans), in no particular order.
    pub fn txids(&self) -> impl Iterator<Item = &TxId> + '_ {
        self.entries.keys()
    }

    /// The total encoded size of the orphans that wait.
    pub fn orphan_bytes(&self) -> usize {
        self.orphans.bytes()
    }

    /// Whether `txid` waits in the orphan pool.
    pub fn contains_orphan(&self, txid: &TxId) -> bool {
        self.orphans.contains(txid)
    }

    /// The pool transaction that spends `outpoint`, if any.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<TxId> {
        self.spent_by.get(outpoint).copied()
    }

    /// A pool transaction.
    pub fn get(&self, txid: &TxId) -> Option<&Transfer> {
        self.entries.get(txid).map(|entry| &entry.tx)
    }

    /// The fee of a pool transaction.
    pub fn fee(&self, txid: &TxId) -> Option<Amount> {
        self.entries.get(txid).map(|entry| entry.fee)
    }

    /// Checks `tx`, the node's own (wallet, RPC), against the ledger's tip and the pool and adds it (see
    /// the [module docs](crate::mempool)). Orphans that spend its outputs are retried after it.
    pub fn insert<S: ChainStore>(
        &mut self,
        tx: Transfer,
        ledger: &mut Ledger<S>,
    ) -> Result<Inserted, MempoolError> {
        self.insert_from(tx, None, ledger)
    }

    /// [`Mempool::insert`] for a transaction `from` relayed: an orphan is held in `from`'s share of the
    /// orphan pool, and blamed on it if it proves invalid ([`Mempool::take_invalid_orphans`]).
    pub fn insert_relayed<S: ChainStore>(
        &mut self,
        tx: Transfer,
        from: PeerId,
        ledger: &mut Ledger<S>,
    ) -> Result<Inserted, MempoolError> {
        self.insert_from(tx, Some(from), ledger)
    }

    fn insert_from<S: ChainStore>(
        &mut self,
        tx: Transfer,
        from: Source,
        ledger: &mut Ledger<S>,
    ) -> Result<Inserted, MempoolError> {
        let outcome = self.insert_one(tx, from, ledger)?;
        if let Inserted::Accepted { txid, adopted, .. } = &outcome {
            let mut adopted_now = self.adopt_orphans(vec![*txid], ledger);
            let mut outcome = outcome.clone();
            if let Inserted::Accepted { adopted: list, .. } = &mut outcome {
                list.extend(adopted.iter().copied());
                list.append(&mut adopted_now);
            }
            return Ok(outcome);
        }
        Ok(outcome)
    }

    /// Verifies the signatures of `txs` in one batch before they are inserted one by one, so that each
    /// insert finds them cached ([`Ledger::preverify_transfers`], with the pool's outputs as
    /// unconfirmed coins; what the pool holds already, and what its fee floor, replacement or package
    /// rules refuse, is skipped). Returns how many transactions were verified and cached; the others
    /// are checked by their inserts as usual.
    pub fn preverify<S: ChainStore>(
        &self,
        txs: &[Transfer],
        ledger: &mut Ledger<S>,
    ) -> Result<usize, StoreError> {
        let known = |txid: &TxId| self.entries.contains_key(txid) || self.orphans.contains(txid);
        // As the insert checks its signatures last, a transaction the policy refuses is not verified
        // here either (judged against the pool as it is: the batch's earlier ones are not in it yet).
        let wanted = |tx: &Transfer, checked: &CheckedTransfer, size: usize| {
            self.check_policy(tx, checked.fee, size).is_ok()
        };
        ledger.preverify_transfers(txs, &PoolOutputs(&self.entries), known, wanted)
    }

    /// The pool's rules that need the fee but no signature: the relay fee floor, replacement (BIP125)
    /// and package limits. Gives the fee rate and the transactions it would replace.
    fn check_policy(
        &self,
        tx: &Transfer,
        fee: Amount,
        size: usize,
    ) -> Result<(u64, HashSet<TxId>), MempoolError> {
        let min_fee = self.config.min_relay_fee(size);
        if fee < min_fee {
            return Err(MempoolError::FeeRateTooLow { fee, size, min_fee });
        }
        let rate = fee_rate(fee, size);
        let replaced = self.check_replacement(tx, fee, size, rate)?;
        self.check_package_limits(tx, size, &replaced)?;
        Ok((rate, replaced))
    }

    pub(super) fn insert_one<S: ChainStore>(
        &mut self,
        tx: Transfer,
        from: Source,
        ledger: &mut Ledger<S>,
    ) -> Result<Inserted, MempoolError> {
        let as_tx = Transaction::Transfer(tx);
        let size = as_tx.encoded_len();
        if size > self.config.max_tx_bytes {
            return Err(MempoolError::TooLarge {
                size,
                max: self.config.max_tx_bytes,
            });
        }
        let txid = as_tx.txid();
        let Transaction::Transfer(tx) = as_tx else {
            return Err(MempoolError::Coinbase);
        };
        if self.entries.contains_key(&txid) || self.orphans.contains(&txid) {
            return Err(MempoolError::AlreadyKnown);
        }
        let checked = match ledger.check_transfer_unsigned(&tx, &PoolOutputs(&self.entries))? {
            Ok(checked) => checked,
            // Only a well-formed orphan gets here: `check_transfer_unsigned` applies every rule that
            // needs no spent output (shape, amounts, signature encoding) before it looks the inputs up.
            Err(TxError::UnknownInput { .. }) => {
                if size > self.config.max_orphan_bytes {
                    return Err(MempoolError::OrphanTooLarge {
                        size,
                        max: self.config.max_orphan_bytes,
                    });
                }
                self.orphans.insert(txid, tx, size, from);
                return Ok(Inserted::Orphan { txid });
            }
            Err(error) => return Err(error.into()),
        };
        let (rate, replaced) = self.check_policy(&tx, checked.fee, size)?;
        // Signatures last, as Bitcoin Core does: a transaction the policy refuses costs no verification.
        ledger.verify_transfer_signatures(&tx, &checked)?;
        // Refused now rather than evicted after: nothing has changed yet.
        if !self.makes_room(&tx, size, rate, &replaced) {
            return Err(MempoolError::Full);
        }
        let mut replaced: Vec<TxId> = replaced.into_iter().collect();
        replaced.sort_unstable();
        for id in &replaced {
            self.remove_entry(id);
        }
        self.add_entry(txid, tx, checked.fee, size, rate);
        let evicted = self.enforce_size_cap();
        if !self.entries.contains_key(&txid) {
            return Err(MempoolError::Full);
        }
        Ok(Inserted::Accepted {
            txid,
            replaced,
            evicted,
            adopted: Vec::new(),
        })
    }

    fn add_entry(&mut self, txid: TxId, tx: Transfer, fee: Amount, size: usize, fee_rate: u64) {
        let mut parents = HashSet::new();
        for input in &tx.inputs {
            self.spent_by.insert(input.prevout, txid);
            if let Some(parent) = self.entries.get_mut(&input.prevout.txid) {
                parent.children.insert(txid);
                parents.insert(input.prevout.txid);
            }
        }
        // Pool transactions may already spend our outputs (we are back from a disconnected block).
        let mut children = HashSet::new();
        for index in 0..tx.outputs.len() {
            let outpoint = OutPoint {
                txid,
                index: u32::try_from(index).unwrap_or(u32::MAX),
            };
            let Some(child) = self.spent_by.get(&outpoint).copied() else {
                continue;
            };
            if let Some(entry) = self.entries.get_mut(&child) {
                entry.parents.insert(txid);
                children.insert(child);
            }
        }
        self.by_rate.insert((fee_rate, txid));
        self.bytes += size;
        self.entries.insert(
            txid,
            Entry {
                tx,
                fee,
                size,
                fee_rate,
                parents,
                children,
            },
        );
    }

    /// Removes one entry and unlinks it (its children stay, now spending a confirmed or missing parent).
    pub(super) fn remove_entry(&mut self, txid: &TxId) -> Option<Entry> {
        let entry = self.entries.remove(txid)?;
        self.by_rate.remove(&(entry.fee_rate, *txid));
        self.bytes -= entry.size;
        for input in &entry.tx.inputs {
            if self.spent_by.get(&input.prevout) == Some(txid) {
                self.spent_by.remove(&input.prevout);
            }
        }
        for parent in &entry.parents {
            if let Some(parent) = self.entries.get_mut(parent) {
                parent.children.remove(txid);
            }
        }
        for child in &entry.children {
            if let Some(child) = self.entries.get_mut(child) {
                child.parents.remove(txid);
            }
        }
        Some(entry)
    }

    /// `roots` and every pool transaction that descends from them.
    pub(super) fn with_descendants(&self, roots: impl IntoIterator<Item = TxId>) -> HashSet<TxId> {
        let mut found = HashSet::new();
        let mut stack: Vec<TxId> = roots.into_iter().collect();
        while let Some(id) = stack.pop() {
            if !found.insert(id) {
                continue;
            }
            if let Some(entry) = self.entries.get(&id) {
                stack.extend(entry.children.iter().copied());
            }
        }
        found
    }

    pub(super) fn remove_with_descendants(&mut self, txid: TxId) -> Vec<TxId> {
        let mut removed: Vec<TxId> = self.with_descendants([txid]).into_iter().collect();
        removed.sort_unstable();
        removed.retain(|id| self.remove_entry(id).is_some());
        removed
    }

    /// Evicts the lowest fee rates (with their descendants) until the pool fits its cap.
    fn enforce_size_cap(&mut self) -> Vec<TxId> {
        let mut evicted = Vec::new();
        while self.bytes > self.config.max_bytes {
            let Some(&(_, lowest)) = self.by_rate.first() else {
                break;
            };
            evicted.extend(self.remove_with_descendants(lowest));
        }
        evicted
    }
}
