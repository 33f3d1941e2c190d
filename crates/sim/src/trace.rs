//! The trace hash: a blake3 digest of every event the simulator delivered, in order.
//!
//! A delivered message is recorded with its whole postcard encoding, not a digest of it: appending the
//! bytes to a large buffer that blake3 hashes in bulk is cheaper than hashing each small message alone.

use meshwork_identity::Hash;

/// What kind of event a trace record is.
#[derive(Clone, Copy, Debug)]
#[repr(u8)]
pub(crate) enum Kind {
    Message = 1,
    Timer = 2,
    Command = 3,
    PeerUp = 4,
    PeerDown = 5,
    Emit = 6,
    DecodeFailure = 7,
    Control = 8,
}

/// Records are appended to a buffer and fed to blake3 in large chunks (blake3 is much faster on big
/// inputs than on 25-byte ones).
pub(crate) struct Trace {
    hasher: blake3::Hasher,
    buf: Vec<u8>,
    records: u64,
}

const FLUSH_AT: usize = 64 * 1024;

impl Trace {
    pub(crate) fn new() -> Self {
        Self {
            hasher: blake3::Hasher::new_derive_key("meshwork-sim trace v1"),
            buf: Vec::with_capacity(FLUSH_AT + 64),
            records: 0,
        }
    }

    /// One record: time, node, kind, the other node involved (or `u32::MAX`), a digest of the payload.
    pub(crate) fn record(&mut self, time: u64, node: u32, kind: Kind, other: u32, digest: u64) {
        self.buf.extend_from_slice(&time.to_le_bytes());
        self.buf.extend_from_slice(&node.to_le_bytes());
        self.buf.push(kind as u8);
        self.buf.extend_from_slice(&other.to_le_bytes());
        self.buf.extend_from_slice(&digest.to_le_bytes());
        self.records += 1;
        if self.buf.len() >= FLUSH_AT {
            self.hasher.update(&self.buf);
            self.buf.clear();
        }
    }

    /// A delivered message: the record (with the message's channel), then the message's full encoding
    /// and its length.
    pub(crate) fn record_message<M: meshwork_wire::WireMessage>(
        &mut self,
        time: u64,
        node: u32,
        from: u32,
        msg: &M,
    ) {
        self.record(time, node, Kind::Message, from, msg.channel() as u64);
        let before = self.buf.len();
        if msg.encode_to(&mut self.buf).is_err() {
            // Cannot happen: the message was sized when it was sent. Mark it and keep going.
            self.buf.truncate(before);
            self.buf.push(0xff);
        }
        let len = u32::try_from(self.buf.len().saturating_sub(before)).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&len.to_le_bytes());
        if self.buf.len() >= FLUSH_AT {
            self.hasher.update(&self.buf);
            self.buf.clear();
        }
    }

    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// The hash of everything recorded so far (the trace can keep growing afterwards).
    pub(crate) fn hash(&self) -> Hash {
        let mut hasher = self.hasher.clone();
        hasher.update(&self.buf);
        hasher.update(&self.records.to_le_bytes());
        Hash::from_bytes(*hasher.finalize().as_bytes())
    }
}
