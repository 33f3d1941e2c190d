//! Where a node keeps the records and provider announcements it is responsible for.
//!
//! [`RecordStore`] is the seam for persistent stores; [`MemoryStore`] is the bounded in-memory default,
//! and `RedbRecordStore` (cargo feature `redb`) keeps the same across restarts. Stores only keep;
//! checking signatures is the caller's job ([`crate::Record::verify`]), and expiry is by driver time
//! passed in.

use meshwork_wire::Instant;
use serde::{Deserialize, Serialize};

use crate::{Address, IpPrefix, Key, PeerInfo, Record, RecordError};

mod memory;
mod shares;

pub use memory::MemoryStore;

/// A provider announcement: `provider` serves the content of some key until `expires`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderRecord {
    /// Who provides, and where.
    pub provider: PeerInfo,
    /// When the announcement lapses (driver time).
    pub expires: Instant,
}

/// Who asked a store to keep a record or a provider announcement, as its shares per IP prefix count
/// it ([`MemoryStore::with_prefix_share`]): identities cost little, and without a share per prefix a
/// few made-up publishers on one host fill a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Sender {
    /// This node itself (its own records): counted against no prefix.
    Local,
    /// A peer the driver observed at an address in this prefix.
    Prefix(IpPrefix),
    /// A peer the driver observed at no IP address (a relay circuit's, or none told). All of them
    /// share one prefix's share: exempt, they would let any host escape its prefix's share by
    /// connecting through a relay.
    Unobserved,
}

impl Sender {
    /// How a peer the driver observed at `observed` (`None`: nowhere yet) counts.
    pub fn observed(observed: Option<&Address>) -> Self {
        match observed.and_then(Address::prefix) {
            Some(prefix) => Self::Prefix(prefix),
            None => Self::Unobserved,
        }
    }
}

/// Storage of records and providers.
pub trait RecordStore {
    /// The unexpired record under `key`.
    fn get(&self, key: &Key, now: Instant) -> Option<Record>;
    /// Stores a verified record that `from` sent. The store refuses a record whose key does not
    /// admit its publisher ([`RecordError::ForeignKey`]), a record of another publisher while the
    /// stored one is unexpired (so only under a shared name, [`Key::for_name`]), and an older record
    /// of the same publisher; a store with shares also a record past the publisher's or the sender's.
    fn put(&mut self, record: Record, from: Sender, now: Instant) -> Result<(), RecordError>;
    /// Removes the record under `key`.
    fn remove(&mut self, key: &Key);
    /// Adds or refreshes a provider of `key`, announced by `from` (the provider itself, as the driver
    /// observed it: the address the provider names is what we serve, not what we count).
    fn add_provider(&mut self, key: Key, provider: ProviderRecord, from: Sender) -> Result<(), RecordError>;
    /// The unexpired providers of `key`.
    fn providers(&self, key: &Key, now: Instant) -> Vec<ProviderRecord>;
    /// Drops everything expired at `now`.
    fn expire(&mut self, now: Instant);
}
