//! The miner: a nonce search split over scoped threads.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use meshwork_ledger::BlockHeader;

use super::target::Target;

/// Searches for a nonce that makes `header`'s id meet its own compact target.
///
/// Thread `i` of `threads` (at least one) tries `header.nonce + i + k * threads` (wrapping) for
/// `k < max_nonces_per_thread`; the first thread to succeed raises an [`AtomicBool`] stop flag and the
/// others return. There is no clock: the caller bounds the work with `max_nonces_per_thread` and calls
/// again (with a new timestamp or nonce start) if nothing was found. With one thread the result is
/// deterministic; with several, which solution wins depends on scheduling.
///
/// Returns the solved header, or `None` if no nonce in the range works or the compact target is invalid.
///
/// ```
/// use meshwork_consensus::pow::{mine, Target};
/// use meshwork_identity::Hash;
/// use meshwork_ledger::BlockHeader;
///
/// let header = BlockHeader {
///     version: 1, parent: Hash::ZERO, merkle_root: Hash::ZERO, timestamp: 1_700_000_000,
///     target: 0x2007_ffff, // one hash in 16 on average
///     nonce: 0, height: 0,
/// };
/// let solved = mine(header, 2, 10_000).expect("found");
/// assert!(Target::from_compact(solved.target).unwrap().is_met_by(&solved.id()));
/// ```
pub fn mine(header: BlockHeader, threads: usize, max_nonces_per_thread: u64) -> Option<BlockHeader> {
    let target = Target::from_compact(header.target).ok()?;
    let threads = threads.max(1);
    let stride = threads as u64;
    let stop = AtomicBool::new(false);
    let found: Mutex<Option<BlockHeader>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for lane in 0..stride {
            let (stop, found) = (&stop, &found);
            scope.spawn(move || {
                let mut candidate = header;
                for k in 0..max_nonces_per_thread {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    candidate.nonce = header
                        .nonce
                        .wrapping_add(lane)
                        .wrapping_add(k.wrapping_mul(stride));
                    if target.is_met_by(&candidate.id()) {
                        if !stop.swap(true, Ordering::Relaxed) {
                            if let Ok(mut slot) = found.lock() {
                                *slot = Some(candidate);
                            }
                        }
                        return;
                    }
                }
            });
        }
    });
    found.into_inner().ok().flatten()
}
