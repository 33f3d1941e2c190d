//! A blake3 digest: the content address of messages, transactions and blocks.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ParseError;

/// A 32-byte blake3 digest.
///
/// On the wire (binary serde formats) it is 32 raw bytes; in human-readable formats (JSON) it is 64 lowercase
/// hex digits, which is also its `Display`/`FromStr` form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash([u8; 32]);

impl Hash {
    /// The length of a digest in bytes.
    pub const LEN: usize = 32;
    /// The all-zero digest, used where "no parent" must be written down (a genesis block).
    pub const ZERO: Self = Self([0; 32]);

    /// The blake3 digest of `data`.
    pub fn digest(data: &[u8]) -> Self {
        Self(*blake3::hash(data).as_bytes())
    }

    /// The blake3 digest of several parts, fed in order (same as hashing their concatenation).
    pub fn digest_parts(parts: &[&[u8]]) -> Self {
        let mut hasher = blake3::Hasher::new();
        for part in parts {
            hasher.update(part);
        }
        Self(*hasher.finalize().as_bytes())
    }

    /// A digest in a named domain: blake3's key-derivation mode keyed by `context`, so hashes of different
    /// kinds of object can never collide with each other (a leaf and an inner node of a merkle tree, say).
    pub fn derive(context: &str, data: &[u8]) -> Self {
        Self(blake3::derive_key(context, data))
    }

    /// Wraps 32 bytes that already are a digest.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The number of leading zero bits (used by puzzles and proof of work).
    pub fn leading_zero_bits(&self) -> u32 {
        let mut bits = 0;
        for byte in self.0 {
            if byte == 0 {
                bits += 8;
            } else {
                return bits + byte.leading_zeros();
            }
        }
        bits
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Twelve hex digits are plenty to tell hashes apart in logs.
        write!(f, "Hash({})", &hex::encode(self.0)[..12])
    }
}

impl FromStr for Hash {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(crate::signature::parse_hex(s)?))
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(Self)
        }
    }
}

/// A domain of [`Hash::derive`] whose context string is hashed once, not on every call.
///
/// blake3's key-derivation mode first hashes the context string into a key, then the data under that
/// key: for 32 bytes of data (a peer id) that is two compressions, one of them the same every time.
/// [`Domain::derive`] keeps the first and does only the second, and gives exactly
/// `Hash::derive(context, data)`. Kademlia derives a key from every peer id it reads, which made the
/// context hash a tenth of a simulated network's CPU.
#[derive(Clone)]
pub struct Domain(blake3::Hasher);

impl Domain {
    /// The domain named `context` (what [`Hash::derive`] takes as its `context`).
    pub fn new(context: &str) -> Self {
        Self(blake3::Hasher::new_derive_key(context))
    }

    /// The digest of `data` in this domain: `Hash::derive(context, data)`.
    pub fn derive(&self, data: &[u8]) -> Hash {
        let mut hasher = self.0.clone();
        hasher.update(data);
        Hash(*hasher.finalize().as_bytes())
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Domain(..)")
    }
}
