//! The chain store the node runs on: redb, charged with the time its calls take.
//!
//! The ledger is pure apart from its store and keeps no clock, so what storage costs is measured here,
//! around each call the ledger makes: the calling thread's CPU time (what the node task spends in
//! redb: encoding, B-tree pages, checksums) and the wall time (which adds waiting for the disk, fsync
//! above all). `coin-node bench` reports both as its storage share.
// The driver's side of the store: it owns the clocks (README.md, "Principles").
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meshwork_identity::PeerId;
use meshwork_ledger::{
    Block, BlockId, BlockIndexEntry, BlockUndo, ChainStore, ChainTip, Coin, OutPoint, StoreBatch, StoreError,
    UtxoCommitment,
};

/// What the store's calls cost so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreMeter {
    /// Calls that read (a coin, a block, the tip...).
    pub reads: u64,
    /// Calls that write: commits (one per block connected or disconnected) and blocks stored
    /// unconnected.
    pub writes: u64,
    /// CPU time of the calling thread inside all of them (zero where the platform has no thread CPU
    /// clock).
    pub cpu: Duration,
    /// Wall time inside all of them.
    pub wall: Duration,
}

/// The meter's counts, in atomics: reads take `&self`.
#[derive(Debug, Default)]
struct Counts {
    reads: AtomicU64,
    writes: AtomicU64,
    cpu_nanos: AtomicU64,
    wall_nanos: AtomicU64,
}

/// A [`ChainStore`] that measures the calls made to `S`.
#[derive(Debug)]
pub struct MeteredStore<S> {
    inner: S,
    counts: Counts,
}

impl<S> MeteredStore<S> {
    /// Measures `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            counts: Counts::default(),
        }
    }

    /// What the calls cost so far.
    pub fn meter(&self) -> StoreMeter {
        let c = &self.counts;
        StoreMeter {
            reads: c.reads.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            cpu: Duration::from_nanos(c.cpu_nanos.load(Ordering::Relaxed)),
            wall: Duration::from_nanos(c.wall_nanos.load(Ordering::Relaxed)),
        }
    }

    /// The store being measured.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Runs `call`, counting it as a read or a write and adding its CPU and wall time.
    fn charge<R>(counts: &Counts, write: bool, call: impl FnOnce() -> R) -> R {
        let (cpu, wall) = (meshwork_node::thread_cpu_time(), Instant::now());
        let result = call();
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        if let Some((start, end)) = cpu.zip(meshwork_node::thread_cpu_time()) {
            counts
                .cpu_nanos
                .fetch_add(nanos(end.saturating_sub(start)), Ordering::Relaxed);
        }
        counts
            .wall_nanos
            .fetch_add(nanos(wall.elapsed()), Ordering::Relaxed);
        let count = if write { &counts.writes } else { &counts.reads };
        count.fetch_add(1, Ordering::Relaxed);
        result
    }
}

impl<S: ChainStore> ChainStore for MeteredStore<S> {
    fn tip(&self) -> Result<Option<ChainTip>, StoreError> {
        Self::charge(&self.counts, false, || self.inner.tip())
    }

    fn block(&self, id: &BlockId) -> Result<Option<Block>, StoreError> {
        Self::charge(&self.counts, false, || self.inner.block(id))
    }

    fn index_entry(&self, id: &BlockId) -> Result<Option<BlockIndexEntry>, StoreError> {
        Self::charge(&self.counts, false, || self.inner.index_entry(id))
    }

    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StoreError> {
        Self::charge(&self.counts, false, || self.inner.coin(outpoint))
    }

    fn coins_at(&self, outpoints: &[OutPoint]) -> Result<Vec<Option<Coin>>, StoreError> {
        Self::charge(&self.counts, false, || self.inner.coins_at(outpoints))
    }

    fn undo(&self, id: &BlockId) -> Result<Option<BlockUndo>, StoreError> {
        Self::charge(&self.counts, false, || self.inner.undo(id))
    }

    fn utxo_commitment(&self) -> Result<UtxoCommitment, StoreError> {
        Self::charge(&self.counts, false, || self.inner.utxo_commitment())
    }

    fn coins(&self) -> Result<Vec<(OutPoint, Coin)>, StoreError> {
        Self::charge(&self.counts, false, || self.inner.coins())
    }

    fn coins_of(&self, owner: &PeerId) -> Result<Vec<(OutPoint, Coin)>, StoreError> {
        Self::charge(&self.counts, false, || self.inner.coins_of(owner))
    }

    fn put_block(&mut self, block: &Block, entry: BlockIndexEntry) -> Result<(), StoreError> {
        Self::charge(&self.counts, true, || self.inner.put_block(block, entry))
    }

    fn commit(&mut self, batch: StoreBatch) -> Result<(), StoreError> {
        Self::charge(&self.counts, true, || self.inner.commit(batch))
    }
}

#[cfg(test)]
mod tests {
    use meshwork_ledger::MemoryStore;

    use super::*;

    #[test]
    fn every_call_is_counted_as_a_read_or_a_write_and_timed() {
        let mut store = MeteredStore::new(MemoryStore::new());
        assert_eq!(store.meter(), StoreMeter::default());
        assert_eq!(store.tip().unwrap(), None);
        assert!(store.coins().unwrap().is_empty());
        store.commit(StoreBatch::default()).unwrap();
        let meter = store.meter();
        assert_eq!((meter.reads, meter.writes), (2, 1));
        assert!(meter.wall > Duration::ZERO, "three calls took no time at all");
        assert!(meter.cpu <= meter.wall * 2, "{meter:?}");
    }
}
