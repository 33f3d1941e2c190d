//! Domain-separated signatures and their verification, one at a time or in batches.

use std::fmt;
use std::str::FromStr;

use ed25519_consensus::batch;
use rand_core::SeedableRng;
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{ParseError, PeerId, VerifyError};

/// What every signed byte string starts with, so a meshwork signature can never be replayed as a signature
/// of some other system that uses the same key.
const SIGNING_PREFIX: &[u8] = b"meshwork-sig-v1";

/// The kind of message a signature is for, e.g. `Namespace::new(b"meshwork/gossip/message/2")`.
///
/// It is signed together with the message (after a fixed prefix and its own length), so a signature made for
/// one namespace never verifies in another. Give each message kind its own `const` namespace and put the
/// version in it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Namespace(&'static [u8]);

impl Namespace {
    /// The longest namespace: its length is encoded in one byte.
    pub const MAX_LEN: usize = 255;

    /// A namespace. Use it in a `const` so an over-long name is a compile error.
    ///
    /// # Panics
    /// If `name` is longer than [`Namespace::MAX_LEN`] bytes (at compile time when used in a `const`).
    pub const fn new(name: &'static [u8]) -> Self {
        assert!(
            name.len() <= Self::MAX_LEN,
            "a signing namespace is at most 255 bytes"
        );
        Self(name)
    }

    /// The namespace's bytes.
    pub const fn as_bytes(&self) -> &'static [u8] {
        self.0
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Namespace({})", String::from_utf8_lossy(self.0))
    }
}

/// The exact bytes that are signed for `msg` in `namespace`: `prefix || len(namespace) || namespace || msg`.
pub(crate) fn signed_bytes(namespace: Namespace, msg: &[u8]) -> Vec<u8> {
    let ns = namespace.as_bytes();
    let mut out = Vec::with_capacity(SIGNING_PREFIX.len() + 1 + ns.len() + msg.len());
    out.extend_from_slice(SIGNING_PREFIX);
    // Cannot truncate: `Namespace::new` bounds the length to 255.
    out.push(ns.len() as u8);
    out.extend_from_slice(ns);
    out.extend_from_slice(msg);
    out
}

/// An ed25519 signature (64 bytes).
///
/// Binary serde formats carry the 64 raw bytes; human-readable ones (and `Display`/`FromStr`) use 128 hex
/// digits. A `Signature` is only bytes: whether it is valid is decided by [`PeerId::verify`] or
/// [`BatchVerifier`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; 64]);

impl Signature {
    /// The length of a signature in bytes.
    pub const LEN: usize = 64;

    /// Wraps 64 bytes.
    pub const fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    /// Wraps a slice, which must be exactly 64 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ParseError> {
        let array: [u8; 64] = bytes.try_into().map_err(|_| ParseError::Length {
            expected: Self::LEN,
            got: bytes.len(),
        })?;
        Ok(Self(array))
    }

    /// The signature bytes.
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", &hex::encode(&self.0[..6]))
    }
}

/// Parses exactly `N` bytes of hex, refusing longer text before decoding it.
pub(crate) fn parse_hex<const N: usize>(text: &str) -> Result<[u8; N], ParseError> {
    if text.len() != 2 * N {
        return Err(ParseError::Length {
            expected: N,
            got: text.len() / 2,
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|err| ParseError::Encoding {
        encoding: "hex",
        reason: err.to_string(),
    })?;
    Ok(out)
}

impl FromStr for Signature {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex(s).map(Self)
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return serializer.collect_str(self);
        }
        // serde implements arrays only up to 32 elements; a 64-tuple of bytes is what `[u8; 64]` would be.
        let mut tuple = serializer.serialize_tuple(Self::LEN)?;
        for byte in &self.0 {
            tuple.serialize_element(byte)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Signature, A::Error> {
                let mut out = [0u8; 64];
                for (i, byte) in out.iter_mut().enumerate() {
                    *byte = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature(out))
            }
        }
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            text.parse().map_err(de::Error::custom)
        } else {
            deserializer.deserialize_tuple(Self::LEN, BytesVisitor)
        }
    }
}

/// Verifies one signature under the ZIP-215 rules (see the crate docs).
pub(crate) fn verify_one(
    peer: &PeerId,
    namespace: Namespace,
    msg: &[u8],
    signature: &Signature,
) -> Result<(), VerifyError> {
    let key =
        ed25519_consensus::VerificationKey::try_from(peer.to_bytes()).map_err(|_| VerifyError::Invalid)?;
    key.verify(
        &ed25519_consensus::Signature::from(signature.0),
        &signed_bytes(namespace, msg),
    )
    .map_err(|_| VerifyError::Invalid)
}

/// Verifies many signatures at once.
///
/// A batch accepts exactly when every signature in it would verify alone (the rules are ZIP-215's, under
/// which grouping never changes the answer). Signatures by the same key are combined, so a batch of one
/// signer's signatures is faster still. When a batch fails, each signature is then checked alone to report
/// the first bad one, so a caller can tell which transaction or message to reject.
///
/// The batch's random coefficients come from a ChaCha20 stream seeded by a blake3 hash of everything pushed
/// (Fiat-Shamir): the result is deterministic, which the simulator relies on, and an attacker cannot choose
/// signatures that cancel out, because the coefficients depend on them.
pub struct BatchVerifier {
    items: Vec<batch::Item>,
    transcript: blake3::Hasher,
}

impl Default for BatchVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for BatchVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchVerifier")
            .field("len", &self.items.len())
            .finish()
    }
}

impl BatchVerifier {
    /// An empty batch.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty batch with room for `n` signatures.
    pub fn with_capacity(n: usize) -> Self {
        let mut transcript = blake3::Hasher::new();
        transcript.update(b"meshwork batch verification v1");
        Self {
            items: Vec::with_capacity(n),
            transcript,
        }
    }

    /// Adds a signature to check.
    pub fn push(&mut self, peer: &PeerId, namespace: Namespace, msg: &[u8], signature: &Signature) {
        let signed = signed_bytes(namespace, msg);
        self.transcript.update(peer.as_bytes());
        self.transcript.update(&signature.0);
        self.transcript.update(&(signed.len() as u64).to_le_bytes());
        self.transcript.update(&signed);
        let key = ed25519_consensus::VerificationKeyBytes::from(peer.to_bytes());
        self.items.push(batch::Item::from((
            key,
            ed25519_consensus::Signature::from(signature.0),
            &signed,
        )));
    }

    /// How many signatures have been pushed.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing has been pushed.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Checks every pushed signature. An empty batch is valid.
    pub fn verify(self) -> Result<(), VerifyError> {
        let Self { items, transcript } = self;
        let mut verifier = batch::Verifier::new();
        for item in &items {
            verifier.queue(item.clone());
        }
        let rng = rand_chacha::ChaCha20Rng::from_seed(*transcript.finalize().as_bytes());
        if verifier.verify(rng).is_ok() {
            return Ok(());
        }
        // Find the culprit. Under ZIP-215 some single check must fail when the batch did.
        match items.into_iter().position(|item| item.verify_single().is_err()) {
            Some(index) => Err(VerifyError::InvalidInBatch { index }),
            None => Err(VerifyError::Invalid),
        }
    }
}
