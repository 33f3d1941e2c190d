//! Where a node keeps the records and provider announcements it is responsible for.
//!
//! [`RecordStore`] is the seam for persistent stores; [`MemoryStore`] is the bounded in-memory default,
//! and `RedbRecordStore` (cargo feature `redb`) keeps the same across restarts. Stores only keep; checking signatures is the caller's job
//! ([`crate::Record::verify`]), and expiry is by driver time passed in.

use std::collections::HashMap;

use meshwork_identity::PeerId;
use meshwork_wire::Instant;

use crate::{Key, PeerInfo, Record, RecordError};

/// A provider announcement: `provider` serves the content of some key until `expires`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderRecord {
    /// Who provides, and where.
    pub provider: PeerInfo,
    /// When the announcement lapses (driver time).
    pub expires: Instant,
}

/// Storage of records and providers.
pub trait RecordStore {
    /// The unexpired record under `key`.
    fn get(&self, key: &Key, now: Instant) -> Option<Record>;
    /// Stores a verified record. The store refuses a record whose key does not admit its publisher
    /// ([`RecordError::ForeignKey`]), a record of another publisher while the stored one is unexpired
    /// (so only under a shared name, [`Key::for_name`]), and an older record of the same publisher.
    fn put(&mut self, record: Record, now: Instant) -> Result<(), RecordError>;
    /// Removes the record under `key`.
    fn remove(&mut self, key: &Key);
    /// Adds or refreshes a provider of `key`.
    fn add_provider(&mut self, key: Key, provider: ProviderRecord) -> Result<(), RecordError>;
    /// The unexpired providers of `key`.
    fn providers(&self, key: &Key, now: Instant) -> Vec<ProviderRecord>;
    /// Drops everything expired at `now`.
    fn expire(&mut self, now: Instant);
}

/// A bounded in-memory [`RecordStore`].
///
/// Besides its bounds in total, a store holds at most a share of its records from one publisher, and
/// of its provided keys from one provider ([`MemoryStore::with_share`]; an eighth by default):
/// records come from anyone who connects, and without a share one peer storing a thousand records
/// under made-up keys would have the store refuse every other publisher's until they expire, up to
/// two days later. An eighth, not less: in a network of a handful of nodes every node holds every
/// record, and a publisher of a hundred values must still find room.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    records: HashMap<Key, Record>,
    providers: HashMap<Key, Vec<ProviderRecord>>,
    max_records: usize,
    max_provided_keys: usize,
    max_providers_per_key: usize,
    /// Records of one publisher, and keys one provider provides, at most.
    max_per_peer: (usize, usize),
    /// How many records each publisher holds here, and how many keys each provider provides: kept,
    /// not scanned, so that a store of any size costs the same per record or announcement.
    records_by: HashMap<PeerId, usize>,
    /// See `records_by`.
    provided_by: HashMap<PeerId, usize>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(1024, 1024, crate::message::MAX_PEERS)
    }
}

/// The share of a store one peer may hold by default: an eighth.
const DEFAULT_SHARE: usize = 8;

impl MemoryStore {
    /// A store of at most `max_records` records, providers for at most `max_provided_keys` keys and
    /// `max_providers_per_key` providers each; one publisher holds at most an eighth of the
    /// records, one provider provides at most an eighth of the keys (at least one each).
    pub fn new(max_records: usize, max_provided_keys: usize, max_providers_per_key: usize) -> Self {
        Self {
            records: HashMap::new(),
            providers: HashMap::new(),
            max_records,
            max_provided_keys,
            max_providers_per_key,
            max_per_peer: (
                (max_records / DEFAULT_SHARE).max(1),
                (max_provided_keys / DEFAULT_SHARE).max(1),
            ),
            records_by: HashMap::new(),
            provided_by: HashMap::new(),
        }
    }

    /// Counts the providers of `list` in (`added`) or out of [`MemoryStore::provided_by`].
    fn count_providers(&mut self, list: &[ProviderRecord], added: bool) {
        for p in list {
            count(&mut self.provided_by, p.provider.id, added);
        }
    }

    /// The store with one publisher holding at most `records` records, and one provider providing at
    /// most `provided_keys` keys (at least one each).
    pub fn with_share(mut self, records: usize, provided_keys: usize) -> Self {
        self.max_per_peer = (records.max(1), provided_keys.max(1));
        self
    }

    /// How many records `publisher` holds here.
    fn held_by(&self, publisher: &PeerId) -> usize {
        self.records_by.get(publisher).copied().unwrap_or(0)
    }

    /// Stores `record` under its key, counting it for its publisher (and the one it replaces out).
    fn insert_record(&mut self, record: Record) {
        count(&mut self.records_by, record.publisher, true);
        if let Some(old) = self.records.insert(record.key, record) {
            count(&mut self.records_by, old.publisher, false);
        }
    }

    /// Drops the record under `key`, counting it out.
    fn remove_record(&mut self, key: &Key) {
        if let Some(old) = self.records.remove(key) {
            count(&mut self.records_by, old.publisher, false);
        }
    }

    /// The number of records held (expired ones included until [`RecordStore::expire`]).
    pub fn num_records(&self) -> usize {
        self.records.len()
    }

    /// The record held under `key`, expired or not (to undo a change).
    #[cfg_attr(not(feature = "redb"), allow(dead_code))]
    pub(crate) fn record_slot(&self, key: &Key) -> Option<Record> {
        self.records.get(key).cloned()
    }

    /// Puts back what [`Self::record_slot`] returned.
    #[cfg_attr(not(feature = "redb"), allow(dead_code))]
    pub(crate) fn restore_record(&mut self, key: Key, record: Option<Record>) {
        match record {
            Some(record) => self.insert_record(record),
            None => self.remove_record(&key),
        }
    }

    /// The providers held for `key` (to undo a change).
    #[cfg_attr(not(feature = "redb"), allow(dead_code))]
    pub(crate) fn providers_slot(&self, key: &Key) -> Option<Vec<ProviderRecord>> {
        self.providers.get(key).cloned()
    }

    /// Puts back what [`Self::providers_slot`] returned.
    #[cfg_attr(not(feature = "redb"), allow(dead_code))]
    pub(crate) fn restore_providers(&mut self, key: Key, providers: Option<Vec<ProviderRecord>>) {
        if let Some(list) = &providers {
            self.count_providers(list, true);
        }
        let replaced = match providers {
            Some(list) => self.providers.insert(key, list),
            None => self.providers.remove(&key),
        };
        if let Some(list) = replaced {
            self.count_providers(&list, false);
        }
    }
}

impl RecordStore for MemoryStore {
    fn get(&self, key: &Key, now: Instant) -> Option<Record> {
        self.records.get(key).filter(|r| r.expires_at() > now).cloned()
    }

    fn put(&mut self, record: Record, now: Instant) -> Result<(), RecordError> {
        // The caller verifies; this one check is cheap, and keeps a store that skipped it from ever
        // holding or serving a key against its owner.
        if !record.key.admits_publisher(&record.publisher) {
            return Err(RecordError::ForeignKey);
        }
        match self.records.get(&record.key) {
            Some(old)
                if old.expires_at() > now
                    && (old.publisher != record.publisher || old.expires > record.expires) =>
            {
                return Err(RecordError::Conflict);
            }
            Some(old) if old.publisher == record.publisher => {}
            _ if self.records.len() >= self.max_records && !self.records.contains_key(&record.key) => {
                return Err(RecordError::StoreFull);
            }
            _ if self.held_by(&record.publisher) >= self.max_per_peer.0 => {
                return Err(RecordError::ShareFull);
            }
            _ => {}
        }
        self.insert_record(record);
        Ok(())
    }

    fn remove(&mut self, key: &Key) {
        self.remove_record(key);
    }

    fn add_provider(&mut self, key: Key, provider: ProviderRecord) -> Result<(), RecordError> {
        if !self.providers.contains_key(&key) && self.providers.len() >= self.max_provided_keys {
            return Err(RecordError::StoreFull);
        }
        let id = provider.provider.id;
        let provided = self.provided_by.get(&id).copied().unwrap_or(0);
        let list = self.providers.entry(key).or_default();
        if let Some(existing) = list.iter_mut().find(|p| p.provider.id == id) {
            *existing = provider;
            return Ok(());
        }
        if provided >= self.max_per_peer.1 {
            if list.is_empty() {
                self.providers.remove(&key);
            }
            return Err(RecordError::ShareFull);
        }
        if list.len() >= self.max_providers_per_key {
            // Replace the announcement that lapses first, if the new one outlives it.
            let Some(soonest) = list.iter_mut().min_by_key(|p| p.expires) else {
                return Err(RecordError::StoreFull);
            };
            if soonest.expires >= provider.expires {
                return Err(RecordError::StoreFull);
            }
            let replaced = std::mem::replace(soonest, provider).provider.id;
            count(&mut self.provided_by, replaced, false);
        } else {
            list.push(provider);
        }
        count(&mut self.provided_by, id, true);
        Ok(())
    }

    fn providers(&self, key: &Key, now: Instant) -> Vec<ProviderRecord> {
        self.providers
            .get(key)
            .map(|list| list.iter().filter(|p| p.expires > now).cloned().collect())
            .unwrap_or_default()
    }

    fn expire(&mut self, now: Instant) {
        let records_by = &mut self.records_by;
        self.records.retain(|_, r| {
            let keep = r.expires_at() > now;
            if !keep {
                count(records_by, r.publisher, false);
            }
            keep
        });
        let provided_by = &mut self.provided_by;
        self.providers.retain(|_, list| {
            list.retain(|p| {
                let keep = p.expires > now;
                if !keep {
                    count(provided_by, p.provider.id, false);
                }
                keep
            });
            !list.is_empty()
        });
    }
}

/// One more (`added`) or one fewer record or provided key of `peer` in `counts`; a peer of none is
/// forgotten.
fn count(counts: &mut HashMap<PeerId, usize>, peer: PeerId, added: bool) {
    let n = counts.entry(peer).or_insert(0);
    if added {
        *n += 1;
    } else {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(&peer);
        }
    }
}
