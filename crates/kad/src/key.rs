//! 256-bit Kademlia keys and the XOR metric.
//!
//! Peers and records live in one key space. A peer's key is the blake3 hash of its [`PeerId`] in a
//! domain of its own ([`Key::from_peer`]), so ids are spread uniformly even when the public keys are not,
//! and a record's key is whatever 32 bytes its application chose (usually a hash, see [`Key::for_record`]).

use std::fmt;
use std::sync::LazyLock;

use meshwork_identity::{Domain, Hash, PeerId};
use serde::{Deserialize, Serialize};

pub use crate::key_memo::{MAX_MEMO_SLOTS, memoize_peer_keys};

/// The blake3 key-derivation context that maps a [`PeerId`] to its [`Key`].
const PEER_KEY_CONTEXT: &str = "meshwork 2026 kad peer key v1";
/// The peer-key domain, its context hashed once: every message names peers whose keys we derive.
static PEER_KEY_DOMAIN: LazyLock<Domain> = LazyLock::new(|| Domain::new(PEER_KEY_CONTEXT));
/// The blake3 key-derivation context that maps application bytes to a record [`Key`].
const RECORD_KEY_CONTEXT: &str = "meshwork 2026 kad record key v1";

/// A point of the 256-bit Kademlia key space.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Key([u8; 32]);

impl Key {
    /// The number of bits of a key, which is also the number of k-buckets.
    pub const BITS: usize = 256;

    /// Wraps 32 bytes as a key.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key of a peer: blake3 of its id, in the kad peer-key domain (from this thread's memo if
    /// [`memoize_peer_keys`] gave it one).
    pub fn from_peer(peer: &PeerId) -> Self {
        crate::key_memo::peer_key(peer, Self::from_peer_uncached)
    }

    /// [`Key::from_peer`], derived without the memo.
    pub(crate) fn from_peer_uncached(peer: &PeerId) -> Self {
        Self(*PEER_KEY_DOMAIN.derive(peer.as_bytes()).as_bytes())
    }

    /// The key under which an application stores a record named by `name` (blake3 in the record domain).
    pub fn for_record(name: &[u8]) -> Self {
        Self(*Hash::derive(RECORD_KEY_CONTEXT, name).as_bytes())
    }

    /// The key bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The XOR distance between two keys.
    pub fn distance(&self, other: &Self) -> Distance {
        let mut d = [0u8; 32];
        for (i, byte) in d.iter_mut().enumerate() {
            *byte = self.0[i] ^ other.0[i];
        }
        Distance(d)
    }

    /// A key whose distance from `self` has exactly `leading_zeros` leading zero bits, the remaining low
    /// bits taken from `random`: a random key that falls in bucket `leading_zeros` of `self`'s table.
    /// `leading_zeros` must be below 256 (it is clamped).
    pub fn random_in_bucket(&self, leading_zeros: usize, random: [u8; 32]) -> Self {
        let bit = leading_zeros.min(Self::BITS - 1);
        let mut d = random;
        // Clear every bit above `bit`, set `bit` itself; bits below stay random.
        for (i, byte) in d.iter_mut().enumerate() {
            for b in 0..8 {
                let index = i * 8 + b;
                let mask = 0x80u8 >> b;
                if index < bit {
                    *byte &= !mask;
                } else if index == bit {
                    *byte |= mask;
                }
            }
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = self.0[i] ^ d[i];
        }
        Self(key)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(")?;
        for byte in &self.0[..6] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, ")")
    }
}

impl From<Hash> for Key {
    fn from(hash: Hash) -> Self {
        Self(*hash.as_bytes())
    }
}

/// The XOR distance between two keys, ordered as a 256-bit big-endian integer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct Distance([u8; 32]);

impl Ord for Distance {
    /// Compares four big-endian words rather than 32 bytes: the first word almost always decides, and
    /// a byte-array comparison is a `memcmp` call (a tenth of a lookup-heavy simulation's CPU).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let word = |d: &Self, i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&d.0[i * 8..i * 8 + 8]);
            u64::from_be_bytes(w)
        };
        (0..4)
            .map(|i| word(self, i).cmp(&word(other, i)))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    }
}

impl PartialOrd for Distance {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Distance {
    /// The distance bytes (big-endian).
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The number of leading zero bits: 256 for the distance zero.
    pub fn leading_zeros(&self) -> u32 {
        Hash::from_bytes(self.0).leading_zero_bits()
    }

    /// The k-bucket a key at this distance belongs to: the number of leading zero bits (bucket 0 holds the
    /// farthest half of the key space, bucket 255 the single closest key), or `None` for distance zero.
    pub fn bucket_index(&self) -> Option<usize> {
        let zeros = self.leading_zeros() as usize;
        (zeros < Key::BITS).then_some(zeros)
    }
}
