//! 256-bit Kademlia keys and the XOR metric.
//!
//! Peers and records live in one key space. A peer's key is the blake3 hash of its [`PeerId`] in a
//! domain of its own ([`Key::from_peer`]), so ids are spread uniformly even when the public keys are not.
//!
//! ## Record keys: whose they are
//!
//! A record key's first half places the record (which peers store it); its second half, the
//! **tail**, says who may publish under it, and every node that stores or returns a record checks it
//! ([`crate::Record::verify`]):
//! - **a publisher's own key** ([`Key::for_record`]): the tail is a hash of the publisher, so no other
//!   peer can store a record under it, nor answer a lookup with one. Nobody can take a key before its
//!   owner publishes (squatting), nor shadow the owner's record with one of its own. This is how IPNS
//!   makes names self-certifying: the reader names the publisher, and any record that verifies is
//!   the publisher's. Not always its latest: a peer that missed an update serves the older one
//!   until it expires, so a lookup counts every answer and takes the latest
//!   ([`crate::Command::GetValue`]);
//! - **a shared name** ([`Key::for_name`]): the tail is zero, and the first publisher to store a
//!   record under it at a peer holds it there for as long as it republishes it (the store refuses
//!   others, [`crate::RecordError::Conflict`]); a lookup takes the publisher the most answers
//!   carry. That is a first-come naming system: whoever knows a name before its intended owner
//!   publishes can take it. Use it where that is the point.
//!
//! Any other tail is refused ([`crate::RecordError::ForeignKey`]). Forging a tail means finding a key
//! pair whose id hashes to 128 given bits: about 2^128 key generations for one target. The head keeps
//! 128 uniform bits, far more than Kademlia's placement reads (about log₂ N of them).
//!
//! What binding does not do:
//! - **It does not hide whose key it is.** The tail is the same for all of a publisher's keys, and
//!   anyone can compute it from the id: a peer on a lookup's path learns whose record is looked up,
//!   and can link a publisher's keys.
//! - **It does not make room.** Nobody checks that a head was hashed from a name, so a peer can choose
//!   keys that land at the same `k` peers as a victim's and fill their stores, one share of each
//!   store per identity it has ([`crate::MemoryStore::with_share`]); the identity puzzle's
//!   difficulty ([`crate::Config`]) sets what an identity costs.

use std::fmt;
use std::sync::LazyLock;

use meshwork_identity::{Domain, Hash, PeerId};
use serde::{Deserialize, Serialize};

pub use crate::key_memo::{MAX_MEMO_SLOTS, memoize_peer_keys};

/// The blake3 key-derivation context that maps a [`PeerId`] to its [`Key`].
const PEER_KEY_CONTEXT: &str = "meshwork 2026 kad peer key v1";
/// The peer-key domain, its context hashed once: every message names peers whose keys we derive.
static PEER_KEY_DOMAIN: LazyLock<Domain> = LazyLock::new(|| Domain::new(PEER_KEY_CONTEXT));
/// The blake3 key-derivation context that places a record: its key's head, from the publisher (or
/// nobody, for a shared name) and the name.
const RECORD_KEY_CONTEXT: &str = "meshwork 2026 kad record key v2";
/// The blake3 key-derivation context of a publisher's key tail.
const RECORD_OWNER_CONTEXT: &str = "meshwork 2026 kad record owner v1";
/// Where a record key's tail begins: its last 16 bytes say whose it is (module docs).
const TAIL_START: usize = 16;

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

    /// The key of the record `publisher` names `name`: only `publisher` can store a record under it
    /// (module docs). A reader names the publisher too, as it names the name.
    pub fn for_record(publisher: &PeerId, name: &[u8]) -> Self {
        Self::record_key(publisher.as_bytes(), name, owner_tail(publisher))
    }

    /// The key of the shared name `name`: the first publisher to store a record under it holds it
    /// until the record expires (module docs). Its head is hashed apart from every publisher's own keys.
    pub fn for_name(name: &[u8]) -> Self {
        // A zero-filled id stands for "nobody": no peer's own key hashes from it, and the name keeps
        // the same encoding as in `for_record`.
        Self::record_key(&[0; 32], name, [0; 32 - TAIL_START])
    }

    /// A record key: its head hashed from `id` (32 bytes) and `name`, then `tail`.
    fn record_key(id: &[u8; 32], name: &[u8], tail: [u8; 32 - TAIL_START]) -> Self {
        let mut bytes = Vec::with_capacity(32 + name.len());
        bytes.extend_from_slice(id);
        bytes.extend_from_slice(name);
        let mut key = *Hash::derive(RECORD_KEY_CONTEXT, &bytes).as_bytes();
        key[TAIL_START..].copy_from_slice(&tail);
        Self(key)
    }

    /// Whether `publisher` may store a record under this key: under its own keys
    /// ([`Key::for_record`]) and under shared names ([`Key::for_name`]), nowhere else.
    pub fn admits_publisher(&self, publisher: &PeerId) -> bool {
        let tail = &self.0[TAIL_START..];
        tail.iter().all(|b| *b == 0) || tail == owner_tail(publisher)
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

/// The tail of `publisher`'s own record keys: the first 16 bytes of its hash in the owner domain.
fn owner_tail(publisher: &PeerId) -> [u8; 32 - TAIL_START] {
    let hash = Hash::derive(RECORD_OWNER_CONTEXT, publisher.as_bytes());
    let mut tail = [0; 32 - TAIL_START];
    tail.copy_from_slice(&hash.as_bytes()[..32 - TAIL_START]);
    tail
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
