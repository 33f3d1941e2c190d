//! The stream header: how a new stream names its protocol, and how the other side answers.
//!
//! ```text
//! opener -> accepter:  | len: u8 (1..=64) | protocol id: len bytes, e.g. "/meshwork/kad/1" |
//! accepter -> opener:  | status: u8 (0 = accepted, 1 = refused) |
//! ```
//!
//! The accepter checks `len` before reading the id, then looks the id up among the protocols it speaks
//! ([`ProtocolId::lookup`]). An unknown or malformed id is refused (status 1) and the stream is closed, so
//! no bytes of an unknown protocol ever reach a decoder. After the status byte the stream carries frames
//! (`meshwork_wire::frame`) in both directions.
//!
//! The opener may write frames right behind its header, before the status arrives
//! ([`Connection::open_eager`](crate::Connection::open_eager)): the accepter reads nothing past a
//! header it refuses, so those frames are lost on a refusal, and the opener learns of it from the
//! status it reads before anything else the accepter sent.

use meshwork_wire::{ProtocolId, ProtocolIdError};

/// The status byte for an accepted stream.
pub const ACCEPTED: u8 = 0;
/// The status byte for a refused stream.
pub const REFUSED: u8 = 1;

/// Why a stream header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamHeaderError {
    /// The length byte is 0 or above [`ProtocolId::MAX_LEN`]; nothing more was read.
    #[error("stream header announces a protocol id of {len} bytes (must be 1 to 64)")]
    Length {
        /// The announced length.
        len: u8,
    },
    /// The id is malformed or not one we speak.
    #[error("stream header: {0}")]
    Protocol(#[from] ProtocolIdError),
}

/// The header that opens a stream for `id`.
pub fn encode(id: ProtocolId) -> Vec<u8> {
    let bytes = id.as_bytes();
    let mut out = Vec::with_capacity(1 + bytes.len());
    // `ProtocolId::MAX_LEN` is 64, so the length fits a byte.
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
    out
}

/// Checks the length byte: the number of id bytes to read next.
pub fn parse_len(len: u8) -> Result<usize, StreamHeaderError> {
    if len == 0 || usize::from(len) > ProtocolId::MAX_LEN {
        return Err(StreamHeaderError::Length { len });
    }
    Ok(usize::from(len))
}

/// Decodes a header at the start of `bytes` against the protocols in `known`: the protocol and the number
/// of bytes the header took, or `Ok(None)` if more bytes are needed.
pub fn decode(bytes: &[u8], known: &[ProtocolId]) -> Result<Option<(ProtocolId, usize)>, StreamHeaderError> {
    let Some((&len, rest)) = bytes.split_first() else {
        return Ok(None);
    };
    let len = parse_len(len)?;
    let Some(id) = rest.get(..len) else {
        return Ok(None);
    };
    Ok(Some((ProtocolId::lookup(id, known)?, 1 + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KAD: ProtocolId = ProtocolId::new("/meshwork/kad/1");
    const GOSSIP: ProtocolId = ProtocolId::new("/meshwork/gossip/1");

    #[test]
    fn round_trip_and_golden() {
        let bytes = encode(KAD);
        assert_eq!(bytes[0], 15);
        assert_eq!(&bytes[1..], b"/meshwork/kad/1");
        assert_eq!(decode(&bytes, &[GOSSIP, KAD]), Ok(Some((KAD, 16))));
    }

    #[test]
    fn partial_input_needs_more() {
        let bytes = encode(KAD);
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut], &[KAD]), Ok(None));
        }
    }

    #[test]
    fn refuses_unknown_bad_and_oversized() {
        assert_eq!(
            decode(&encode(KAD), &[GOSSIP]),
            Err(StreamHeaderError::Protocol(ProtocolIdError::Unsupported))
        );
        assert_eq!(decode(&[0], &[KAD]), Err(StreamHeaderError::Length { len: 0 }));
        assert_eq!(decode(&[65], &[KAD]), Err(StreamHeaderError::Length { len: 65 }));
        assert!(decode(b"\x03abc", &[KAD]).is_err());
        // A newer version of a known protocol is a different protocol.
        let v2 = encode(ProtocolId::new("/meshwork/kad/2"));
        assert!(decode(&v2, &[KAD]).is_err());
    }
}
