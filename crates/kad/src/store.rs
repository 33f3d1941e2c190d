//! Where a node keeps the records and provider announcements it is responsible for.
//!
//! [`RecordStore`] is the seam for persistent stores; [`MemoryStore`] is the bounded in-memory default,
//! and `RedbRecordStore` (cargo feature `redb`) keeps the same across restarts. Stores only keep; checking signatures is the caller's job
//! ([`crate::Record::verify`]), and expiry is by driver time passed in.

use std::collections::HashMap;

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
    /// Stores a verified record. The store refuses a record of another publisher while the stored one
    /// is unexpired, and an older record of the same publisher.
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
#[derive(Clone, Debug)]
pub struct MemoryStore {
    records: HashMap<Key, Record>,
    providers: HashMap<Key, Vec<ProviderRecord>>,
    max_records: usize,
    max_provided_keys: usize,
    max_providers_per_key: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(1024, 1024, crate::message::MAX_PEERS)
    }
}

impl MemoryStore {
    /// A store of at most `max_records` records, providers for at most `max_provided_keys` keys and
    /// `max_providers_per_key` providers each.
    pub fn new(max_records: usize, max_provided_keys: usize, max_providers_per_key: usize) -> Self {
        Self {
            records: HashMap::new(),
            providers: HashMap::new(),
            max_records,
            max_provided_keys,
            max_providers_per_key,
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
            Some(record) => self.records.insert(key, record),
            None => self.records.remove(&key),
        };
    }

    /// The providers held for `key` (to undo a change).
    #[cfg_attr(not(feature = "redb"), allow(dead_code))]
    pub(crate) fn providers_slot(&self, key: &Key) -> Option<Vec<ProviderRecord>> {
        self.providers.get(key).cloned()
    }

    /// Puts back what [`Self::providers_slot`] returned.
    #[cfg_attr(not(feature = "redb"), allow(dead_code))]
    pub(crate) fn restore_providers(&mut self, key: Key, providers: Option<Vec<ProviderRecord>>) {
        match providers {
            Some(list) => self.providers.insert(key, list),
            None => self.providers.remove(&key),
        };
    }
}

impl RecordStore for MemoryStore {
    fn get(&self, key: &Key, now: Instant) -> Option<Record> {
        self.records.get(key).filter(|r| r.expires_at() > now).cloned()
    }

    fn put(&mut self, record: Record, now: Instant) -> Result<(), RecordError> {
        match self.records.get(&record.key) {
            Some(old)
                if old.expires_at() > now
                    && (old.publisher != record.publisher || old.expires > record.expires) =>
            {
                return Err(RecordError::Conflict);
            }
            Some(_) => {}
            None if self.records.len() >= self.max_records => return Err(RecordError::StoreFull),
            None => {}
        }
        self.records.insert(record.key, record);
        Ok(())
    }

    fn remove(&mut self, key: &Key) {
        self.records.remove(key);
    }

    fn add_provider(&mut self, key: Key, provider: ProviderRecord) -> Result<(), RecordError> {
        if !self.providers.contains_key(&key) && self.providers.len() >= self.max_provided_keys {
            return Err(RecordError::StoreFull);
        }
        let list = self.providers.entry(key).or_default();
        if let Some(existing) = list.iter_mut().find(|p| p.provider.id == provider.provider.id) {
            *existing = provider;
            return Ok(());
        }
        if list.len() >= self.max_providers_per_key {
            // Replace the announcement that lapses first, if the new one outlives it.
            let Some(soonest) = list.iter_mut().min_by_key(|p| p.expires) else {
                return Err(RecordError::StoreFull);
            };
            if soonest.expires >= provider.expires {
                return Err(RecordError::StoreFull);
            }
            *soonest = provider;
            return Ok(());
        }
        list.push(provider);
        Ok(())
    }

    fn providers(&self, key: &Key, now: Instant) -> Vec<ProviderRecord> {
        self.providers
            .get(key)
            .map(|list| list.iter().filter(|p| p.expires > now).cloned().collect())
            .unwrap_or_default()
    }

    fn expire(&mut self, now: Instant) {
        self.records.retain(|_, r| r.expires_at() > now);
        self.providers.retain(|_, list| {
            list.retain(|p| p.expires > now);
            !list.is_empty()
        });
    }
}
