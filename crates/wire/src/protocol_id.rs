//! Versioned protocol ids: `/meshwork/kad/1`.

use std::fmt;

use crate::ProtocolIdError;

/// A protocol's name and version, written `/segment/.../version`, e.g. `/meshwork/gossip/1`.
///
/// The transport sends it as the ALPN value or stream header that routes a stream to its protocol. Two ids
/// that differ only in version are different protocols: a peer speaking `/meshwork/kad/2` never has its
/// bytes decoded by the `/meshwork/kad/1` decoder.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolId(&'static str);

impl ProtocolId {
    /// The longest id, in bytes.
    pub const MAX_LEN: usize = 64;

    /// A protocol id. Use it in a `const` so a malformed id is a compile error.
    ///
    /// # Panics
    /// If `id` is not of the form `/name/.../version` with a decimal version, printable ASCII, at most
    /// [`ProtocolId::MAX_LEN`] bytes (at compile time when used in a `const`).
    pub const fn new(id: &'static str) -> Self {
        match Self::check(id.as_bytes()) {
            Ok(()) => Self(id),
            Err(_) => {
                panic!("protocol id must look like /name/version, in printable ASCII, at most 64 bytes")
            }
        }
    }

    /// Checks the shape of an id (the rules of [`ProtocolId::new`]) without panicking.
    pub const fn check(id: &[u8]) -> Result<(), ProtocolIdError> {
        if id.is_empty() || id.len() > Self::MAX_LEN {
            return Err(ProtocolIdError::Length { len: id.len() });
        }
        if id[0] != b'/' {
            return Err(ProtocolIdError::Malformed);
        }
        let mut i = 0;
        let mut last_slash = 0;
        while i < id.len() {
            let c = id[i];
            if c <= b' ' || c > b'~' {
                return Err(ProtocolIdError::Malformed);
            }
            if c == b'/' {
                if i > 0 && id[i - 1] == b'/' {
                    return Err(ProtocolIdError::Malformed);
                }
                last_slash = i;
            }
            i += 1;
        }
        // At least one name segment before the version, and the version is decimal digits.
        if last_slash == 0 || last_slash + 1 == id.len() {
            return Err(ProtocolIdError::Malformed);
        }
        let mut j = last_slash + 1;
        while j < id.len() {
            if !id[j].is_ascii_digit() {
                return Err(ProtocolIdError::Malformed);
            }
            j += 1;
        }
        Ok(())
    }

    /// The id as text.
    pub const fn as_str(&self) -> &'static str {
        self.0
    }

    /// The id as bytes (what goes on the wire).
    pub const fn as_bytes(&self) -> &'static [u8] {
        self.0.as_bytes()
    }

    /// The name part: everything before the last `/`.
    pub fn name(&self) -> &'static str {
        self.0.rsplit_once('/').map_or(self.0, |(name, _)| name)
    }

    /// The version number (the last segment), or `None` if it does not fit a `u32`.
    pub fn version(&self) -> Option<u32> {
        self.0
            .rsplit_once('/')
            .and_then(|(_, version)| version.parse().ok())
    }

    /// Finds the id among `known` whose bytes equal `wire` (which came from a peer). Unknown or malformed
    /// bytes give an error, so a stream for a protocol we do not speak is refused with a clear reason.
    pub fn lookup(wire: &[u8], known: &[Self]) -> Result<Self, ProtocolIdError> {
        Self::check(wire)?;
        known
            .iter()
            .copied()
            .find(|id| id.as_bytes() == wire)
            .ok_or(ProtocolIdError::Unsupported)
    }
}

impl fmt::Display for ProtocolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for ProtocolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProtocolId({})", self.0)
    }
}
