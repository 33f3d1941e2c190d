//! Postcard encoding with the rules in ARCHITECTURE.md: bounded, and no trailing bytes.
//!
//! Postcard itself reads lengths as varints and never allocates more than the input could fill, but it would
//! happily accept extra bytes after a value, overlong varints (`ff 00` for `7f`), and collections of any
//! length. [`decode`] refuses the first two, so every value has exactly one encoding (content addresses
//! such as message ids stay unique); the types in [`crate::bounded`] refuse the third.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{DecodeError, EncodeError};

/// Encodes `value` with postcard.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    postcard::to_stdvec(value).map_err(|err| EncodeError::Serialize(err.to_string()))
}

/// Appends the encoding of `value` to `out`, keeping what `out` already holds: a caller that encodes many
/// values (a frame after its header, the simulator's trace) reuses one buffer.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    postcard::serialize_with_flavor(value, AppendFlavor(out))
        .map_err(|err| EncodeError::Serialize(err.to_string()))
}

/// A postcard output that appends whole slices to a `Vec` (postcard's generic `Extend` output goes byte by
/// byte, which shows in profiles).
struct AppendFlavor<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendFlavor<'_> {
    type Output = ();

    // Inlined across crates: a fixed-size array such as a peer id is serialised a byte at a time, and
    // an outlined call per byte was a tenth of a simulation's CPU (its trace encodes every message).
    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// The size of `value` once encoded, without allocating the encoding (the simulator charges bandwidth by it).
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, EncodeError> {
    postcard::experimental::serialized_size(value).map_err(|err| EncodeError::Serialize(err.to_string()))
}

/// Decodes exactly one `T` from `bytes`: every byte must belong to the value, and `bytes` must be the
/// value's canonical encoding (the one [`encode`] produces).
pub fn decode<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    // Clear a violation left by an earlier decode that failed for another reason.
    let _ = crate::bounded::take_violation();
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(map_postcard_error)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes { count: rest.len() });
    }
    // Postcard's only non-canonical forms are overlong varints, which are longer than the canonical
    // encoding: comparing lengths finds them without allocating. The fuzz target checks full re-encoding.
    let canonical = encoded_len(&value).map_err(|err| DecodeError::Invalid(err.to_string()))?;
    if canonical != bytes.len() {
        return Err(DecodeError::NonCanonical {
            len: bytes.len(),
            canonical,
        });
    }
    Ok(value)
}

fn map_postcard_error(err: postcard::Error) -> DecodeError {
    if let Some(violation) = crate::bounded::take_violation() {
        return DecodeError::OverBound {
            max: violation.max,
            len: violation.len,
        };
    }
    match err {
        postcard::Error::DeserializeUnexpectedEnd => DecodeError::Truncated,
        other => DecodeError::Invalid(other.to_string()),
    }
}
