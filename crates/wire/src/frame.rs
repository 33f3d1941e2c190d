//! Length-prefixed frames: `u32` big-endian body length, then the postcard body.
//!
//! ```text
//! +----------------+----------------------------+
//! | len: u32 (BE)  | body: len bytes (postcard) |
//! +----------------+----------------------------+
//! ```
//!
//! The receiver reads the 4-byte header, checks `len` against the protocol's maximum with
//! [`parse_header`], and only then reserves `len` bytes and reads the body. The sender checks the same
//! maximum, so a local caller who tries to send an oversized message gets [`EncodeError::TooLarge`] instead
//! of a peer dropping the connection.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{EncodeError, FrameError, codec};

/// The length of the header.
pub const HEADER_LEN: usize = 4;

/// The largest body any frame may have, whatever a protocol says: 64 MiB.
pub const ABSOLUTE_MAX: usize = 64 * 1024 * 1024;

/// Encodes `msg` as one frame, refusing a body larger than `max` bytes.
pub fn encode<T: Serialize + ?Sized>(msg: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let max = max.min(ABSOLUTE_MAX);
    // Serialize straight after a placeholder header, then fill it in: no second buffer, no copy.
    let mut buf = Vec::with_capacity(HEADER_LEN + 128);
    buf.extend_from_slice(&[0; HEADER_LEN]);
    codec::encode_into(msg, &mut buf)?;
    let size = buf.len() - HEADER_LEN;
    if size > max {
        return Err(EncodeError::TooLarge { size, max }.into());
    }
    // `size <= ABSOLUTE_MAX < u32::MAX`, so the cast cannot truncate.
    buf[..HEADER_LEN].copy_from_slice(&(size as u32).to_be_bytes());
    Ok(buf)
}

/// The header for a body of `len` bytes.
pub fn header(len: usize, max: usize) -> Result<[u8; HEADER_LEN], EncodeError> {
    let max = max.min(ABSOLUTE_MAX);
    if len > max {
        return Err(EncodeError::TooLarge { size: len, max });
    }
    Ok((len as u32).to_be_bytes())
}

/// Reads a header and checks the announced body length against `max`. Call this before allocating.
pub fn parse_header(header: [u8; HEADER_LEN], max: usize) -> Result<usize, FrameError> {
    let announced = u32::from_be_bytes(header);
    let max = max.min(ABSOLUTE_MAX);
    if announced as usize > max {
        return Err(FrameError::TooLarge {
            announced: u64::from(announced),
            max,
        });
    }
    Ok(announced as usize)
}

/// Splits the first complete frame off `bytes`: its body, and how many bytes it took in all. `Ok(None)` if
/// more bytes are needed; an error as soon as the header announces too much.
pub fn split(bytes: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(head) = bytes.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let len = parse_header(*head, max)?;
    let end = HEADER_LEN + len;
    Ok(bytes.get(HEADER_LEN..end).map(|body| (body, end)))
}

/// Decodes exactly one frame from `bytes`: the header, a body within `max`, and nothing after it.
pub fn decode<T: Serialize + DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, FrameError> {
    let Some(head) = bytes.first_chunk::<HEADER_LEN>() else {
        return Err(FrameError::Truncated {
            needed: HEADER_LEN,
            have: bytes.len(),
        });
    };
    let len = parse_header(*head, max)?;
    let rest = &bytes[HEADER_LEN..];
    match rest.len().cmp(&len) {
        std::cmp::Ordering::Less => Err(FrameError::Truncated {
            needed: HEADER_LEN + len,
            have: bytes.len(),
        }),
        std::cmp::Ordering::Greater => Err(FrameError::TrailingBytes {
            count: rest.len() - len,
        }),
        std::cmp::Ordering::Equal => Ok(codec::decode(rest)?),
    }
}
