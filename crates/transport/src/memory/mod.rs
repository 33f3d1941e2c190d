//! The in-memory transport: the same identities, streams, limits and close semantics as QUIC, over
//! bounded in-process pipes.

mod connection;
mod network;

pub use connection::{MemoryConnection, MemoryReader, MemoryStream, MemoryWriter};
pub use network::{MemoryNetwork, MemoryTransport};
