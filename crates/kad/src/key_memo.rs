//! A memo of peer keys for a thread that runs many nodes, as the simulator does.
//!
//! A peer's [`Key`] is a blake3 hash of its id, and Kademlia needs it wherever it places a peer: every
//! contact of every answer, every routing-table check, every answer matched to its lookup. Profiling
//! `meshsim kad-lookup --nodes 3000` found the derivations a fifth of all CPU (the blake3 compression
//! alone 17%, cloning the domain's hasher 2.5% more). One node asks about a few hundred peers a minute,
//! and derives each key in about a tenth of a microsecond, so a real node leaves the memo off. A
//! simulator runs a whole network on one thread, and meets the same ids again and again across nodes.
//!
//! The memo is direct-mapped: a slot per hash of the id, overwritten by the next id that falls there, so
//! it never grows past its size and needs no eviction policy. It memoises a pure function: a hit gives
//! exactly what a derivation would (the whole id is compared), nothing observable depends on its state
//! but speed, and simulations stay deterministic. An id an attacker chooses can only evict another id
//! from its slot, which costs that id one more derivation.

use std::cell::RefCell;

use meshwork_identity::PeerId;

use crate::Key;

/// The most slots [`memoize_peer_keys`] gives a thread (64 MiB of ids and keys).
pub const MAX_MEMO_SLOTS: usize = 1 << 20;

/// One remembered derivation: an id and its key.
type Slot = Option<([u8; 32], Key)>;

thread_local! {
    /// This thread's slots; empty (the memo off) until [`memoize_peer_keys`] sizes it. Initialised
    /// as a constant, so reaching it checks no lazy state.
    static MEMO: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

/// Gives this thread a memo of at least `slots` peer keys (rounded up to a power of two, at most
/// [`MAX_MEMO_SLOTS`]); 0 turns it off. Whatever it remembered is forgotten.
///
/// A simulator running `n` nodes on one thread wants a few slots per node: each slot holds 65 bytes,
/// and a direct-mapped memo with as many slots as ids keeps only about two thirds of them.
pub fn memoize_peer_keys(slots: usize) {
    let slots = if slots == 0 {
        0
    } else {
        slots.min(MAX_MEMO_SLOTS).next_power_of_two()
    };
    MEMO.with_borrow_mut(|memo| *memo = vec![None; slots]);
}

/// `peer`'s key from this thread's memo, else from `derive` (and then remembered). Without a memo
/// (the default), or once the thread's locals are being torn down, it only derives.
pub(crate) fn peer_key(peer: &PeerId, derive: fn(&PeerId) -> Key) -> Key {
    let memoised = MEMO.try_with(|memo| {
        let mut memo = memo.try_borrow_mut().ok()?;
        if memo.is_empty() {
            return None;
        }
        let at = place(peer.as_bytes(), memo.len());
        let slot = &mut memo[at];
        Some(match slot {
            Some((id, key)) if id == peer.as_bytes() => *key,
            _ => {
                let key = derive(peer);
                *slot = Some((*peer.as_bytes(), key));
                key
            }
        })
    });
    memoised.ok().flatten().unwrap_or_else(|| derive(peer))
}

/// The slot of `id` among `slots` (a power of two): Fibonacci hashing of its first eight bytes, which
/// spreads ids with structure (a simulator's may count up) as well as random ones.
fn place(id: &[u8; 32], slots: usize) -> usize {
    let mut word = [0u8; 8];
    word.copy_from_slice(&id[..8]);
    let hashed = u64::from_le_bytes(word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // `slots` is a power of two of at most 2^20: keep that many of the top bits (none of one slot).
    hashed.checked_shr(64 - slots.trailing_zeros()).unwrap_or(0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshwork_identity::Keypair;

    use std::cell::Cell;

    thread_local! {
        /// Derivations made through [`counted`] on this (test's own) thread.
        static DERIVED: Cell<u32> = const { Cell::new(0) };
    }

    fn counted(peer: &PeerId) -> Key {
        DERIVED.set(DERIVED.get() + 1);
        Key::from_peer_uncached(peer)
    }

    /// `peer`'s key through the memo, and whether it had to be derived.
    fn lookup(peer: &PeerId) -> (Key, bool) {
        let before = DERIVED.get();
        let key = peer_key(peer, counted);
        (key, DERIVED.get() > before)
    }

    #[test]
    fn a_memoised_key_is_the_derived_key_and_a_colliding_id_evicts_it() {
        // Tests run on threads of their own, so this memo is this test's.
        memoize_peer_keys(1);
        let a = Keypair::from_seed([1; 32]).peer_id();
        let b = Keypair::from_seed([2; 32]).peer_id();
        let (key_a, key_b) = (Key::from_peer_uncached(&a), Key::from_peer_uncached(&b));
        assert_ne!(key_a, key_b);
        assert_eq!(lookup(&a), (key_a, true), "first sight: derived");
        assert_eq!(lookup(&a), (key_a, false), "then remembered");
        // One slot: `b` takes it from `a`, whose key is derived again (and right).
        assert_eq!(lookup(&b), (key_b, true));
        assert_eq!(lookup(&b), (key_b, false));
        assert_eq!(lookup(&a), (key_a, true), "evicted");
        // Off: every call derives.
        memoize_peer_keys(0);
        assert_eq!(lookup(&a), (key_a, true));
        assert_eq!(lookup(&a), (key_a, true));
        assert_eq!(Key::from_peer(&a), key_a);
    }

    #[test]
    fn slots_round_up_to_a_power_of_two_within_the_cap() {
        memoize_peer_keys(3);
        assert_eq!(MEMO.with_borrow(|m| m.len()), 4);
        memoize_peer_keys(usize::MAX);
        assert_eq!(MEMO.with_borrow(|m| m.len()), MAX_MEMO_SLOTS);
        memoize_peer_keys(0);
        assert_eq!(MEMO.with_borrow(|m| m.len()), 0);
    }

    #[test]
    fn place_stays_in_range() {
        for slots in [1usize, 2, 1024, MAX_MEMO_SLOTS] {
            for byte in [0u8, 1, 0x80, 0xff] {
                assert!(place(&[byte; 32], slots) < slots);
            }
        }
    }
}
