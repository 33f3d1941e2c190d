//! Signature checking: batched, split across cores, and cached per transaction.

use std::collections::{HashSet, VecDeque};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};

use meshwork_identity::{BatchVerifier, Hash, PeerId, Signature, VerifyError};

use crate::{TX_SIGNING, TxId};

/// A bounded set of transactions whose signatures are known to be valid.
///
/// The mempool verifies a transaction's signatures when it accepts it and records its id here; when a
/// block later contains it, validation skips its signatures. The id covers the whole transaction,
/// signatures included, so a changed signature is a different id and is verified. When full, the oldest
/// entry is forgotten (first in, first out): a forgotten transaction only costs a re-verification.
#[derive(Debug, Clone)]
pub struct SigCache {
    capacity: usize,
    known: HashSet<TxId>,
    order: VecDeque<TxId>,
}

impl SigCache {
    /// An empty cache holding at most `capacity` transaction ids (0 disables caching).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            known: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether `txid`'s signatures were verified.
    pub fn contains(&self, txid: &TxId) -> bool {
        self.known.contains(txid)
    }

    /// Records that `txid`'s signatures are valid, forgetting the oldest entry if full.
    pub fn insert(&mut self, txid: TxId) {
        if self.capacity == 0 || !self.known.insert(txid) {
            return;
        }
        self.order.push_back(txid);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.known.remove(&old);
            }
        }
    }

    /// How many ids are held.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.known.clear();
        self.order.clear();
    }
}

/// How much signature work a [`Ledger`](crate::Ledger) has done: counters for benchmarks and metrics.
///
/// With the cost of one batch and of one signature in it, measured on the same machine, these give the
/// CPU time verification took without a clock in the ledger (`coin-node bench` does this).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigStats {
    /// Batches verified: each block, each loose transaction and each batch of relayed transactions
    /// that had a signature to check (a batch split across cores counts once).
    pub batches: u64,
    /// Signatures verified in them.
    pub signatures: u64,
    /// Of those, the ones verified on helper threads (the chunks after the first when a batch was
    /// split across cores): CPU time the calling thread's clock does not see.
    pub off_thread: u64,
    /// Transactions whose signatures were not verified because the [`SigCache`] knew them.
    pub cached: u64,
}

/// [`SigStats`] kept in atomics, so the ledger counts from `&self` (a block is checked without being
/// connected) and stays `Sync`.
#[derive(Debug, Default)]
pub(crate) struct SigCounters {
    batches: AtomicU64,
    signatures: AtomicU64,
    off_thread: AtomicU64,
    cached: AtomicU64,
}

impl SigCounters {
    /// Counts `n` transactions the cache spared.
    pub(crate) fn cached(&self, n: u64) {
        self.cached.fetch_add(n, Ordering::Relaxed);
    }

    /// The counts so far.
    pub(crate) fn snapshot(&self) -> SigStats {
        SigStats {
            batches: self.batches.load(Ordering::Relaxed),
            signatures: self.signatures.load(Ordering::Relaxed),
            off_thread: self.off_thread.load(Ordering::Relaxed),
            cached: self.cached.load(Ordering::Relaxed),
        }
    }
}

impl Clone for SigCounters {
    fn clone(&self) -> Self {
        let stats = self.snapshot();
        Self {
            batches: AtomicU64::new(stats.batches),
            signatures: AtomicU64::new(stats.signatures),
            off_thread: AtomicU64::new(stats.off_thread),
            cached: AtomicU64::new(stats.cached),
        }
    }
}

/// One signature to check, and where it came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SigJob<'a> {
    /// The transaction's position (in the block, in a batch of loose transactions checked ahead of
    /// their inserts, or 0 for one loose transaction).
    pub(crate) tx: usize,
    /// The input's position in the transaction.
    pub(crate) input: usize,
    pub(crate) owner: PeerId,
    pub(crate) sighash: Hash,
    pub(crate) signature: &'a Signature,
}

/// Verifies `jobs`, split into one batch per core (never fewer than `min_per_thread` signatures per
/// batch), and counts them in `counters`. Returns the position in `jobs` of the first invalid signature.
///
/// The answer does not depend on the split: batch and single verification follow the same ZIP-215
/// rules, and when several chunks fail the lowest position is reported.
pub(crate) fn verify(
    jobs: &[SigJob<'_>],
    min_per_thread: usize,
    counters: &SigCounters,
) -> Result<(), usize> {
    if jobs.is_empty() {
        return Ok(());
    }
    counters.batches.fetch_add(1, Ordering::Relaxed);
    counters
        .signatures
        .fetch_add(jobs.len() as u64, Ordering::Relaxed);
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let threads = cores.min(jobs.len().div_ceil(min_per_thread.max(1))).max(1);
    let chunk_len = jobs.len().div_ceil(threads);
    if threads == 1 {
        return verify_chunk(jobs, 0);
    }
    // The calling thread checks the first chunk; the others run on helper threads.
    counters
        .off_thread
        .fetch_add((jobs.len() - chunk_len.min(jobs.len())) as u64, Ordering::Relaxed);
    let results: Vec<Result<(), usize>> = std::thread::scope(|scope| {
        let mut chunks = jobs.chunks(chunk_len).enumerate();
        let first = chunks.next();
        let handles: Vec<_> = chunks
            .map(|(i, chunk)| scope.spawn(move || verify_chunk(chunk, i * chunk_len)))
            .collect();
        // The calling thread does its share instead of waiting idle.
        let mut results = vec![first.map_or(Ok(()), |(_, chunk)| verify_chunk(chunk, 0))];
        for (i, handle) in handles.into_iter().enumerate() {
            // A panicking verifier thread is treated as a failure of its chunk, never as success.
            results.push(handle.join().unwrap_or(Err((i + 1) * chunk_len)));
        }
        results
    });
    match results.into_iter().filter_map(Result::err).min() {
        Some(position) => Err(position),
        None => Ok(()),
    }
}

fn verify_chunk(chunk: &[SigJob<'_>], offset: usize) -> Result<(), usize> {
    let mut batch = BatchVerifier::with_capacity(chunk.len());
    for job in chunk {
        batch.push(&job.owner, TX_SIGNING, job.sighash.as_bytes(), job.signature);
    }
    match batch.verify() {
        Ok(()) => Ok(()),
        Err(VerifyError::InvalidInBatch { index }) => Err(offset + index),
        Err(_) => Err(offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_is_bounded_and_forgets_the_oldest() {
        let mut cache = SigCache::new(2);
        let ids: Vec<TxId> = (0u8..3).map(|i| Hash::digest(&[i])).collect();
        for id in &ids {
            cache.insert(*id);
        }
        assert_eq!(cache.len(), 2);
        assert!(!cache.contains(&ids[0]));
        assert!(cache.contains(&ids[1]) && cache.contains(&ids[2]));
    }
}
