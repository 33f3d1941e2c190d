//! Persistence behind a trait: [`ChainStore`], with an in-memory store for tests and a redb store for nodes.

mod memory;
mod redb;
mod types;

pub use self::memory::MemoryStore;
pub use self::redb::{OwnedCoins, RedbReader, RedbStore};
pub use self::types::{BlockIndexEntry, ChainStore, ChainTip, StoreBatch};
