//! [`PeerId`]: a peer is its ed25519 public key.

use std::fmt;
use std::str::FromStr;

use curve25519_dalek::edwards::CompressedEdwardsY;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Namespace, ParseError, Signature, VerifyError};

/// A peer's identity: its 32-byte ed25519 public key.
///
/// A `PeerId` always holds a canonical, full-order key: every constructor from untrusted bytes or text
/// checks it, so a value of this type can be used to verify without further checks.
///
/// - Text form (`Display`/`FromStr`, and serde in human-readable formats such as JSON): base58, 43 or 44
///   characters, e.g. `8qbHbw2BbbTHBW1sbeqakYXVKRQM8Ne7pLK7m6CVfeR`.
/// - Binary form (serde in binary formats such as postcard): the 32 key bytes.
/// - `Debug` shows the first 8 characters of the text form, enough to tell peers apart in logs.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId([u8; 32]);

impl PeerId {
    /// The length of a `PeerId` in bytes.
    pub const LEN: usize = 32;

    /// Checks `bytes` as an ed25519 public key: it must decode to a point, be its canonical encoding, and
    /// not have small order. A key that passed recently is recognised from a memo instead of checked
    /// again (the check costs two field exponentiations, and the same ids arrive over and over).
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, ParseError> {
        if crate::known_keys::is_known(&bytes) {
            return Ok(Self(bytes));
        }
        let point = CompressedEdwardsY(bytes)
            .decompress()
            .ok_or(ParseError::NotAPoint)?;
        if point.compress().to_bytes() != bytes {
            return Err(ParseError::NotAPoint);
        }
        if point.is_small_order() {
            return Err(ParseError::WeakKey);
        }
        crate::known_keys::remember(&bytes);
        Ok(Self(bytes))
    }

    /// Like [`PeerId::from_bytes`] for a slice, which must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ParseError> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| ParseError::Length {
            expected: Self::LEN,
            got: bytes.len(),
        })?;
        Self::from_bytes(array)
    }

    /// Wraps the public key of a key we hold; no check is needed because we derived it ourselves.
    pub(crate) fn from_verified(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key bytes, by value.
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// Checks that `signature` was made by this peer over `msg` in `namespace`.
    pub fn verify(&self, namespace: Namespace, msg: &[u8], signature: &Signature) -> Result<(), VerifyError> {
        crate::signature::verify_one(self, namespace, msg, signature)
    }

    /// The first 8 characters of the text form, for logs and tables.
    pub fn short(&self) -> String {
        let mut text = self.to_string();
        text.truncate(8);
        text
    }
}

impl AsRef<[u8]> for PeerId {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).into_string())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.short())
    }
}

impl FromStr for PeerId {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // A 32-byte key is at most 44 base58 characters; refuse longer text before decoding it.
        const MAX_TEXT: usize = 44;
        if s.len() > MAX_TEXT {
            return Err(ParseError::Encoding {
                encoding: "base58",
                reason: format!("{} characters", s.len()),
            });
        }
        let mut bytes = [0u8; 32];
        let written = bs58::decode(s).onto(&mut bytes[..]).map_err(|err| match err {
            bs58::decode::Error::BufferTooSmall => ParseError::Length {
                expected: Self::LEN,
                got: Self::LEN + 1,
            },
            other => ParseError::Encoding {
                encoding: "base58",
                reason: other.to_string(),
            },
        })?;
        if written != Self::LEN {
            return Err(ParseError::Length {
                expected: Self::LEN,
                got: written,
            });
        }
        Self::from_bytes(bytes)
    }
}

impl Serialize for PeerId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for PeerId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            let bytes = <[u8; 32]>::deserialize(deserializer)?;
            Self::from_bytes(bytes).map_err(serde::de::Error::custom)
        }
    }
}
