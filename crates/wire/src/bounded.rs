//! Collections whose maximum length is part of their type and is checked while decoding.
//!
//! A `Vec<T>` in a wire type lets a peer announce four billion elements. Postcard would not allocate for all
//! of them up front, but it would still loop (a `Vec<()>` costs no input bytes per element). Every collection
//! in a meshwork message is therefore one of these instead: the announced length is compared with `N` before
//! any element is decoded or any memory reserved, and the error says which bound was broken.
//!
//! ```
//! use meshwork_wire::{BoundedVec, decode, encode};
//! let three: BoundedVec<u8, 3> = vec![1, 2, 3].try_into()?;
//! let bytes = encode(&three)?;
//! assert!(decode::<BoundedVec<u8, 2>>(&bytes).is_err()); // three elements do not fit in two
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::{Serialize, Serializer};

/// A value had more elements than its bound allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{len} elements exceed the maximum of {max}")]
pub struct LengthError {
    /// The bound.
    pub max: usize,
    /// The length found. For a decoded value: the length the peer announced, or `max + 1` where the
    /// decoder stopped at the first element past the bound (postcard does not report an announced length
    /// longer than the input that is left).
    pub len: usize,
}

thread_local! {
    // Postcard drops the text of custom serde errors, so the bound that was broken is passed to
    // `codec::decode` on this side channel to give the peer-facing error a precise reason.
    static LAST_VIOLATION: Cell<Option<LengthError>> = const { Cell::new(None) };
}

/// Takes the last bound violation recorded on this thread (used by the codec to build its error).
pub(crate) fn take_violation() -> Option<LengthError> {
    LAST_VIOLATION.with(Cell::take)
}

fn violation<E: de::Error>(max: usize, len: usize) -> E {
    let err = LengthError { max, len };
    LAST_VIOLATION.with(|cell| cell.set(Some(err)));
    E::custom(err)
}

/// How much to reserve up front for `hint` elements of `T`: never more than 64 KiB, whatever the peer claims,
/// so a short frame announcing many elements cannot make us reserve much.
fn cautious_capacity<T>(hint: Option<usize>, max: usize) -> usize {
    const BUDGET: usize = 64 * 1024;
    let per_item = size_of::<T>().max(1);
    hint.unwrap_or(0).min(max).min(BUDGET / per_item)
}

macro_rules! bounded_common {
    ($name:ident, $inner:ty, [$($gen:tt)*], [$($arg:tt)*]) => {
        impl<$($gen)*> Deref for $name<$($arg)*> {
            type Target = $inner;
            fn deref(&self) -> &$inner {
                &self.0
            }
        }
        impl<$($gen)*> fmt::Debug for $name<$($arg)*> where $inner: fmt::Debug {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

/// A `Vec<T>` of at most `N` elements.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BoundedVec<T, const N: usize>(Vec<T>);

bounded_common!(BoundedVec, Vec<T>, [T, const N: usize], [T, N]);

impl<T, const N: usize> BoundedVec<T, N> {
    /// The bound.
    pub const MAX: usize = N;

    /// An empty vector.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Appends `value`, or gives it back if the vector is full.
    pub fn push(&mut self, value: T) -> Result<(), T> {
        if self.0.len() >= N {
            return Err(value);
        }
        self.0.push(value);
        Ok(())
    }

    /// The elements.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T, const N: usize> Default for BoundedVec<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> TryFrom<Vec<T>> for BoundedVec<T, N> {
    type Error = LengthError;
    fn try_from(value: Vec<T>) -> Result<Self, LengthError> {
        if value.len() > N {
            return Err(LengthError {
                max: N,
                len: value.len(),
            });
        }
        Ok(Self(value))
    }
}

impl<T, const N: usize> From<BoundedVec<T, N>> for Vec<T> {
    fn from(value: BoundedVec<T, N>) -> Self {
        value.0
    }
}

impl<'a, T, const N: usize> IntoIterator for &'a BoundedVec<T, N> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T, const N: usize> IntoIterator for BoundedVec<T, N> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<T: Serialize, const N: usize> Serialize for BoundedVec<T, N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for BoundedVec<T, N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SeqVisitor<T, const N: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for SeqVisitor<T, N> {
            type Value = BoundedVec<T, N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a sequence of at most {N} elements")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                if let Some(len) = seq.size_hint().filter(|&len| len > N) {
                    return Err(violation(N, len));
                }
                let mut out = Vec::with_capacity(cautious_capacity::<T>(seq.size_hint(), N));
                while let Some(value) = seq.next_element()? {
                    if out.len() == N {
                        return Err(violation(N, N + 1));
                    }
                    out.push(value);
                }
                Ok(BoundedVec(out))
            }
        }
        deserializer.deserialize_seq(SeqVisitor::<T, N>(PhantomData))
    }
}

/// A byte string of at most `N` bytes, encoded compactly (a length, then the raw bytes).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BoundedBytes<const N: usize>(Vec<u8>);

bounded_common!(BoundedBytes, Vec<u8>, [const N: usize], [N]);

impl<const N: usize> BoundedBytes<N> {
    /// The bound.
    pub const MAX: usize = N;

    /// An empty byte string.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// The bytes.
    pub fn into_inner(self) -> Vec<u8> {
        self.0
    }
}

impl<const N: usize> TryFrom<Vec<u8>> for BoundedBytes<N> {
    type Error = LengthError;
    fn try_from(value: Vec<u8>) -> Result<Self, LengthError> {
        if value.len() > N {
            return Err(LengthError {
                max: N,
                len: value.len(),
            });
        }
        Ok(Self(value))
    }
}

impl<const N: usize> TryFrom<&[u8]> for BoundedBytes<N> {
    type Error = LengthError;
    fn try_from(value: &[u8]) -> Result<Self, LengthError> {
        if value.len() > N {
            return Err(LengthError {
                max: N,
                len: value.len(),
            });
        }
        Ok(Self(value.to_vec()))
    }
}

impl<const N: usize> AsRef<[u8]> for BoundedBytes<N> {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl<const N: usize> Serialize for BoundedBytes<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de, const N: usize> Deserialize<'de> for BoundedBytes<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor<const N: usize>;
        impl<'de, const N: usize> Visitor<'de> for BytesVisitor<N> {
            type Value = BoundedBytes<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {N} bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                if v.len() > N {
                    return Err(violation(N, v.len()));
                }
                Ok(BoundedBytes(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
                if v.len() > N {
                    return Err(violation(N, v.len()));
                }
                Ok(BoundedBytes(v))
            }
            // Human-readable formats (JSON) write bytes as a sequence of numbers.
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let vec = SeqVisitorBytes::<N>.visit_seq(seq)?;
                Ok(BoundedBytes(vec))
            }
        }
        struct SeqVisitorBytes<const N: usize>;
        impl<const N: usize> SeqVisitorBytes<N> {
            fn visit_seq<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                if let Some(len) = seq.size_hint().filter(|&len| len > N) {
                    return Err(violation(N, len));
                }
                let mut out = Vec::with_capacity(cautious_capacity::<u8>(seq.size_hint(), N));
                while let Some(byte) = seq.next_element::<u8>()? {
                    if out.len() == N {
                        return Err(violation(N, N + 1));
                    }
                    out.push(byte);
                }
                Ok(out)
            }
        }
        deserializer.deserialize_byte_buf(BytesVisitor::<N>)
    }
}

/// A UTF-8 string of at most `N` bytes.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BoundedString<const N: usize>(String);

bounded_common!(BoundedString, String, [const N: usize], [N]);

impl<const N: usize> BoundedString<N> {
    /// The bound, in bytes.
    pub const MAX: usize = N;

    /// The string.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl<const N: usize> TryFrom<String> for BoundedString<N> {
    type Error = LengthError;
    fn try_from(value: String) -> Result<Self, LengthError> {
        if value.len() > N {
            return Err(LengthError {
                max: N,
                len: value.len(),
            });
        }
        Ok(Self(value))
    }
}

impl<const N: usize> TryFrom<&str> for BoundedString<N> {
    type Error = LengthError;
    fn try_from(value: &str) -> Result<Self, LengthError> {
        Self::try_from(value.to_owned())
    }
}

impl<const N: usize> fmt::Display for BoundedString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const N: usize> Serialize for BoundedString<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de, const N: usize> Deserialize<'de> for BoundedString<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor<const N: usize>;
        impl<const N: usize> Visitor<'_> for StrVisitor<N> {
            type Value = BoundedString<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a string of at most {N} bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v.len() > N {
                    return Err(violation(N, v.len()));
                }
                Ok(BoundedString(v.to_owned()))
            }
        }
        deserializer.deserialize_str(StrVisitor::<N>)
    }
}
