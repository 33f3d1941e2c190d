//! A pool of transactions whose inputs are unknown, bounded in count and in bytes, shared fairly
//! between the peers that relayed them.
//!
//! Anyone can make an orphan (spend an outpoint that does not exist) for nothing, so the pool is a
//! cache, never a promise: it holds what fits, and what it holds costs at most `max_bytes` of memory
//! whatever peers send. What it must not do is let one peer's orphans push out everyone else's: a
//! single FIFO let a peer that sent a hundred made-up orphans evict the one an honest peer relayed
//! just ahead of its parent, so that transaction went no further here (a cheap way to censor it).
//!
//! Each orphan is held for its **source**: the peer that relayed it, or the node itself (wallet, RPC).
//! When the pool is over its count or byte limit it trims the source that uses the most of either,
//! measured against its share (the limit divided among the sources present), and from that source
//! its oldest orphan first. This follows Bitcoin Core's orphanage since PR #31829 (v30), which trims
//! the peer with the highest "DoS score", the larger of its announcements and its memory each over
//! its per-peer share: a peer within its share keeps its orphans however much another sends.
//!
//! When a parent comes, the mempool retries its orphans ([`Mempool::adopt_orphans`], below). A relayed
//! orphan that then breaks a rule for good is kept, with its relayer, for the driver to blame: its
//! signatures could not be checked while it waited, so this is the first moment its relay is caught.

use std::collections::{HashMap, HashSet, VecDeque};

use meshwork_identity::PeerId;

use super::pool::{Inserted, Mempool};
use crate::{ChainStore, Ledger, MempoolError, Transfer, TxId};

/// A relayed orphan that broke a rule for good once its parents came (a bad signature, most likely:
/// it could not be checked before). The peer that relayed it is to blame: an honest node relays a
/// transaction only after its own mempool took it, signatures checked. Taken with
/// [`Mempool::take_invalid_orphans`].
#[derive(Debug)]
pub struct InvalidOrphan {
    /// The orphan's id.
    pub txid: TxId,
    /// The peer that relayed it.
    pub from: PeerId,
    /// The rule it broke ([`MempoolError::is_invalid`] holds).
    pub error: MempoolError,
}

/// Who an orphan is held for: the peer that relayed it, or `None` for the node's own.
pub(crate) type Source = Option<PeerId>;

/// An orphan, its encoded size and its source.
#[derive(Debug)]
pub(crate) struct Orphan {
    pub(crate) tx: Transfer,
    pub(crate) size: usize,
    pub(crate) from: Source,
}

/// What one source holds: its orphans oldest first (with the pool's arrival count), and their bytes.
#[derive(Debug, Default)]
struct Held {
    order: VecDeque<(u64, TxId)>,
    bytes: usize,
}

/// Orphans by id, by source, and by the missing parent txids they need.
#[derive(Debug, Default)]
pub(crate) struct OrphanPool {
    max: usize,
    max_bytes: usize,
    bytes: usize,
    txs: HashMap<TxId, Orphan>,
    sources: HashMap<Source, Held>,
    by_parent: HashMap<TxId, HashSet<TxId>>,
    /// Orphans taken so far: each one's place in the order of arrival.
    arrivals: u64,
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

    /// How many orphans are held for `from`.
    pub(crate) fn count_from(&self, from: &Source) -> usize {
        self.sources.get(from).map_or(0, |held| held.order.len())
    }

    /// Adds an orphan of `size` encoded bytes for `from`, then trims the pool back within its limits
    /// (the newcomer too, if its source is the one over its share). One larger than the whole pool is
    /// not held.
    pub(crate) fn insert(&mut self, txid: TxId, tx: Transfer, size: usize, from: Source) {
        if self.max == 0 || size > self.max_bytes || self.txs.contains_key(&txid) {
            return;
        }
        for input in &tx.inputs {
            self.by_parent.entry(input.prevout.txid).or_default().insert(txid);
        }
        self.arrivals += 1;
        let held = self.sources.entry(from).or_default();
        held.order.push_back((self.arrivals, txid));
        held.bytes += size;
        self.txs.insert(txid, Orphan { tx, size, from });
        self.bytes += size;
        self.trim();
    }

    /// Evicts the oldest orphan of the source furthest over its share until the pool fits.
    fn trim(&mut self) {
        while self.txs.len() > self.max || self.bytes > self.max_bytes {
            let Some((_, txid)) = self.heaviest().and_then(|held| held.order.front().copied()) else {
                return;
            };
            self.remove(&txid);
        }
    }

    /// The source that uses the most of the pool against its share. Every source present has the same
    /// share (limit ÷ sources), so the larger of count ÷ `max` and bytes ÷ `max_bytes` ranks them;
    /// compared as cross products, in integers. Ties go to the source whose oldest orphan came first,
    /// so the choice never depends on hash-map order.
    fn heaviest(&self) -> Option<&Held> {
        let weight = |held: &Held| {
            let count = held.order.len() as u128 * self.max_bytes.max(1) as u128;
            let bytes = held.bytes as u128 * self.max.max(1) as u128;
            count.max(bytes)
        };
        self.sources.values().max_by(|a, b| {
            weight(a)
                .cmp(&weight(b))
                .then_with(|| b.order.front().cmp(&a.order.front()))
        })
    }

    /// Removes an orphan.
    pub(crate) fn remove(&mut self, txid: &TxId) -> Option<Orphan> {
        let orphan = self.txs.remove(txid)?;
        self.bytes -= orphan.size;
        for input in &orphan.tx.inputs {
            if let Some(children) = self.by_parent.get_mut(&input.prevout.txid) {
                children.remove(txid);
                if children.is_empty() {
                    self.by_parent.remove(&input.prevout.txid);
                }
            }
        }
        if let Some(held) = self.sources.get_mut(&orphan.from) {
            held.order.retain(|(_, id)| id != txid);
            held.bytes -= orphan.size;
            if held.order.is_empty() {
                self.sources.remove(&orphan.from);
            }
        }
        Some(orphan)
    }

    /// Removes and returns the orphans that spend an output of `parent`, in txid order.
    pub(crate) fn take_children(&mut self, parent: &TxId) -> Vec<(TxId, Orphan)> {
        let Some(children) = self.by_parent.get(parent).cloned() else {
            return Vec::new();
        };
        let mut children: Vec<TxId> = children.into_iter().collect();
        children.sort_unstable();
        children
            .into_iter()
            .filter_map(|txid| self.remove(&txid).map(|orphan| (txid, orphan)))
            .collect()
    }
}

impl Mempool {
    /// How many orphans wait that `from` relayed (`None`: the node's own, from its wallet or RPC).
    pub fn orphan_count_from(&self, from: Option<PeerId>) -> usize {
        self.orphans.count_from(&from)
    }

    /// The relayed orphans found invalid when their parents came, since the last call: the driver
    /// blames their relayers (the coin node's gossip charges each as a rejected message).
    pub fn take_invalid_orphans(&mut self) -> Vec<InvalidOrphan> {
        self.invalid_orphans.drain(..).collect()
    }

    /// Retries the orphans waiting on `parents` (and, transitively, on what they bring in). One that
    /// breaks a rule for good is kept for [`Mempool::take_invalid_orphans`] if a peer relayed it.
    pub(super) fn adopt_orphans<S: ChainStore>(
        &mut self,
        mut parents: Vec<TxId>,
        ledger: &mut Ledger<S>,
    ) -> Vec<TxId> {
        let mut adopted = Vec::new();
        while let Some(parent) = parents.pop() {
            for (txid, orphan) in self.orphans.take_children(&parent) {
                match self.insert_one(orphan.tx, orphan.from, ledger) {
                    Ok(Inserted::Accepted { txid, .. }) => {
                        adopted.push(txid);
                        parents.push(txid);
                    }
                    Err(error) if error.is_invalid() => self.note_invalid_orphan(txid, orphan.from, error),
                    // Back in the orphan pool (another input still unknown), or refused by policy.
                    _ => {}
                }
            }
        }
        adopted
    }

    /// Keeps a relayed orphan found invalid for its relayer's blame; the oldest is dropped beyond
    /// `max_orphans` (a driver that never takes them holds no more than the orphan pool did).
    fn note_invalid_orphan(&mut self, txid: TxId, from: Source, error: MempoolError) {
        let Some(from) = from else {
            return;
        };
        if self.invalid_orphans.len() >= self.config.max_orphans {
            self.invalid_orphans.pop_front();
        }
        if self.config.max_orphans > 0 {
            self.invalid_orphans
                .push_back(InvalidOrphan { txid, from, error });
        }
    }
}
