//! A process-wide memo of keys [`PeerId::from_bytes`](crate::PeerId::from_bytes) has already found valid.
//!
//! Checking a key means decompressing an Edwards point and compressing it again: two field
//! exponentiations, some 20 µs. Peer ids arrive far more often than new peers do: every Kademlia
//! answer lists up to twenty, mostly the same few hundred, and profiling 200 joining nodes in one
//! process (`benches/benches/kad_connections.rs`) found this check to be the largest single cost,
//! about a seventh of all CPU. The memo answers a repeat in a few tens of nanoseconds.
//!
//! It holds only keys that passed the whole check, so a hit can never admit an invalid key; a key
//! an attacker chooses can at most evict another from its slot, which costs one more check. It is
//! direct-mapped (4,096 slots in 256 independently locked shards, some 140 KiB), so it never grows and
//! needs no eviction policy. It memoises a pure function: nothing observable depends on its state
//! except speed, and simulations stay deterministic.

use std::sync::{Mutex, PoisonError};

/// Shards, each behind its own lock, chosen by a key's first byte.
const SHARDS: usize = 256;
/// Slots per shard, chosen by a key's second byte.
const SLOTS: usize = 16;

type Shard = [Option<[u8; 32]>; SLOTS];

static KNOWN: [Mutex<Shard>; SHARDS] = [const { Mutex::new([None; SLOTS]) }; SHARDS];

/// The shard and the slot of `key`. An ed25519 key's low bytes are those of a curve point's y
/// coordinate, evenly spread for honest keys.
fn place(key: &[u8; 32]) -> (usize, usize) {
    (usize::from(key[0]), usize::from(key[1]) % SLOTS)
}

/// Whether `key` was recorded by [`remember`] and not evicted since.
pub(crate) fn is_known(key: &[u8; 32]) -> bool {
    let (shard, slot) = place(key);
    // A lock is never held across code that can panic, so a poisoned one still holds valid keys.
    let shard = KNOWN[shard].lock().unwrap_or_else(PoisonError::into_inner);
    shard[slot].as_ref() == Some(key)
}

/// Records `key`, which has passed the whole check, in place of the key in its slot.
pub(crate) fn remember(key: &[u8; 32]) {
    let (shard, slot) = place(key);
    KNOWN[shard].lock().unwrap_or_else(PoisonError::into_inner)[slot] = Some(*key);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_known_once_remembered_and_forgotten_when_its_slot_is_taken() {
        // Bytes no other test parses: outside this test only `PeerId::from_bytes` writes the memo, and
        // only with keys that passed the check.
        let mut a = [7u8; 32];
        a[31] = 1;
        assert!(!is_known(&a));
        remember(&a);
        assert!(is_known(&a));
        // Same shard and slot, another key.
        let mut b = a;
        b[31] = 2;
        assert!(!is_known(&b));
        remember(&b);
        assert!(is_known(&b));
        assert!(!is_known(&a));
    }
}
