//! [`MemoryStore`]: the bounded in-memory [`RecordStore`].

use std::collections::HashMap;

use meshwork_wire::Instant;

use super::shares::Shares;
use super::{ProviderRecord, RecordStore, Sender};
use crate::{Key, Record, RecordError};

/// A bounded in-memory [`RecordStore`].
///
/// Besides its bounds in total, a store holds at most a share of its records from one publisher, and
/// of its provided keys from one provider ([`MemoryStore::with_share`]; an eighth by default):
/// records come from anyone who connects, and without a share one peer storing a thousand records
/// under made-up keys would have the store refuse every other publisher's until they expire, up to
/// two days later. An eighth, not less: in a network of a handful of nodes every node holds every
/// record, and a publisher of a hundred values must still find room.
///
/// A publisher's share alone does not stop one host: identities cost a puzzle at most, and eight of
/// them fill a store. So what the peers of one IP prefix (a /24, a /48, as the driver observed them)
/// send or provide is held to a share too ([`MemoryStore::with_prefix_share`]; a quarter by default,
/// room for two publishers' shares behind one NAT or in one data-centre subnet), and so is what all
/// peers observed at no IP address send, together ([`Sender::Unobserved`]). To fill a store an
/// attacker then needs four prefixes, as it needs several to fill a routing table's bucket.
///
/// A record stays counted against its first sender until it expires or is removed: the publisher's
/// refreshes from elsewhere do not move it, or a host could free its prefix's share by refreshing its
/// records from another. A provider's refresh from another prefix moves its count, within the new
/// prefix's share.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    /// Each record, and the sender it is counted against.
    records: HashMap<Key, (Record, Sender)>,
    /// Each key's providers, and the sender each is counted against.
    providers: HashMap<Key, Vec<(ProviderRecord, Sender)>>,
    max_records: usize,
    max_provided_keys: usize,
    max_providers_per_key: usize,
    /// What each publisher and prefix holds of the records.
    record_shares: Shares,
    /// What each provider and prefix provides of the keys.
    provider_shares: Shares,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(1024, 1024, crate::message::MAX_PEERS)
    }
}

/// The share of a store one peer may hold by default: an eighth.
const DEFAULT_SHARE: usize = 8;
/// The share of a store the peers of one IP prefix may hold by default: a quarter.
const DEFAULT_PREFIX_SHARE: usize = 4;

impl MemoryStore {
    /// A store of at most `max_records` records, providers for at most `max_provided_keys` keys and
    /// `max_providers_per_key` providers each; one publisher holds at most an eighth of the
    /// records, one provider provides at most an eighth of the keys, and the peers of one IP prefix
    /// send or provide at most a quarter of either (at least one each).
    pub fn new(max_records: usize, max_provided_keys: usize, max_providers_per_key: usize) -> Self {
        Self {
            records: HashMap::new(),
            providers: HashMap::new(),
            max_records,
            max_provided_keys,
            max_providers_per_key,
            record_shares: Shares::new(max_records / DEFAULT_SHARE, max_records / DEFAULT_PREFIX_SHARE),
            provider_shares: Shares::new(
                max_provided_keys / DEFAULT_SHARE,
                max_provided_keys / DEFAULT_PREFIX_SHARE,
            ),
        }
    }

    /// The store with one publisher holding at most `records` records, and one provider providing at
    /// most `provided_keys` keys (at least one each).
    pub fn with_share(mut self, records: usize, provided_keys: usize) -> Self {
        self.record_shares.max_per_peer = records.max(1);
        self.provider_shares.max_per_peer = provided_keys.max(1);
        self
    }

    /// The store with the peers of one IP prefix sending at most `records` of its records, and
    /// providing at most `provided_keys` of its keys (at least one each). A devnet whose nodes all run
    /// on one host (one prefix) lifts it, as it lifts the routing table's prefix limits.
    pub fn with_prefix_share(mut self, records: usize, provided_keys: usize) -> Self {
        self.record_shares.max_per_prefix = records.max(1);
        self.provider_shares.max_per_prefix = provided_keys.max(1);
        self
    }

    /// Stores `record` under its key, counted for its publisher and against `from` (and the one it
    /// replaces counted out).
    fn insert_record(&mut self, record: Record, from: Sender) {
        self.record_shares.count(record.publisher, from, true);
        if let Some((old, old_from)) = self.records.insert(record.key, (record, from)) {
            self.record_shares.count(old.publisher, old_from, false);
        }
    }

    /// Drops the record under `key`, counting it out.
    fn remove_record(&mut self, key: &Key) {
        if let Some((old, from)) = self.records.remove(key) {
            self.record_shares.count(old.publisher, from, false);
        }
    }

    /// Counts the providers of `list` in (`added`) or out of the provider shares.
    fn count_providers(&mut self, list: &[(ProviderRecord, Sender)], added: bool) {
        for (p, from) in list {
            self.provider_shares.count(p.provider.id, *from, added);
        }
    }

    /// The number of records held (expired ones included until [`RecordStore::expire`]).
    pub fn num_records(&self) -> usize {
        self.records.len()
    }

    /// The record held under `key`, expired or not, with its sender (to undo a change, and to keep
    /// the sender on disk).
    #[cfg_attr(not(feature = "redb"), allow(dead_code))]
    pub(crate) fn record_slot(&self, key: &Key) -> Option<(Record, Sender)> {
        self.records.get(key).cloned()
    }

    /// Puts back what [`Self::record_slot`] returned.
    #[cfg_attr(not(feature = "redb"), allow(dead_code))]
    pub(crate) fn restore_record(&mut self, key: Key, record: Option<(Record, Sender)>) {
        match record {
            Some((record, from)) => self.insert_record(record, from),
            None => self.remove_record(&key),
        }
    }

    /// The providers held for `key`, with their senders (to undo a change).
    #[cfg_attr(not(feature = "redb"), allow(dead_code))]
    pub(crate) fn providers_slot(&self, key: &Key) -> Option<Vec<(ProviderRecord, Sender)>> {
        self.providers.get(key).cloned()
    }

    /// Puts back what [`Self::providers_slot`] returned.
    #[cfg_attr(not(feature = "redb"), allow(dead_code))]
    pub(crate) fn restore_providers(&mut self, key: Key, providers: Option<Vec<(ProviderRecord, Sender)>>) {
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
        self.records
            .get(key)
            .map(|(r, _)| r)
            .filter(|r| r.expires_at() > now)
            .cloned()
    }

    fn put(&mut self, record: Record, from: Sender, now: Instant) -> Result<(), RecordError> {
        // The caller verifies; this one check is cheap, and keeps a store that skipped it from ever
        // holding or serving a key against its owner.
        if !record.key.admits_publisher(&record.publisher) {
            return Err(RecordError::ForeignKey);
        }
        let charged = match self.records.get(&record.key) {
            Some((old, _))
                if old.expires_at() > now
                    && (old.publisher != record.publisher || old.expires > record.expires) =>
            {
                return Err(RecordError::Conflict);
            }
            // A refresh stays counted against its first sender (see the type's docs).
            Some((old, first)) if old.publisher == record.publisher => *first,
            _ if self.records.len() >= self.max_records && !self.records.contains_key(&record.key) => {
                return Err(RecordError::StoreFull);
            }
            _ => {
                // An expired record of another publisher under the key goes first: counted, it would
                // take a place in its sender's share that the new record is about to free.
                self.remove_record(&record.key);
                if let Some(refused) = self.record_shares.refuses(&record.publisher, from) {
                    return Err(refused);
                }
                from
            }
        };
        self.insert_record(record, charged);
        Ok(())
    }

    fn remove(&mut self, key: &Key) {
        self.remove_record(key);
    }

    fn add_provider(&mut self, key: Key, provider: ProviderRecord, from: Sender) -> Result<(), RecordError> {
        if !self.providers.contains_key(&key) && self.providers.len() >= self.max_provided_keys {
            return Err(RecordError::StoreFull);
        }
        let id = provider.provider.id;
        let refused = self.provider_shares.refuses(&id, from);
        let list = self.providers.entry(key).or_default();
        if let Some((existing, counted)) = list.iter_mut().find(|(p, _)| p.provider.id == id) {
            // A refresh from another prefix moves the count, within the new prefix's share.
            if *counted != from {
                if self.provider_shares.sender_full(from) {
                    return Err(RecordError::PrefixShareFull);
                }
                self.provider_shares.count(id, *counted, false);
                self.provider_shares.count(id, from, true);
                *counted = from;
            }
            *existing = provider;
            return Ok(());
        }
        if let Some(refused) = refused {
            if list.is_empty() {
                self.providers.remove(&key);
            }
            return Err(refused);
        }
        if list.len() >= self.max_providers_per_key {
            // Room is made in the sender prefix holding the most of this key's announcements: a
            // newcomer from a smaller one takes that prefix's announcement that lapses first. Taking
            // the one that lapses first overall let identities of one host, refreshing theirs, push
            // out every honest provider in turn. A newcomer from the largest prefix only replaces
            // its own prefix's first to lapse, if it outlives it. Our own are never replaced.
            let held = |sender: Sender| list.iter().filter(|(_, s)| *s == sender).count();
            let largest = list
                .iter()
                .map(|(_, s)| *s)
                .filter(|s| *s != Sender::Local)
                .max_by_key(|s| held(*s));
            let victims = match largest {
                Some(largest) if held(from) < held(largest) => largest,
                _ => from,
            };
            let own = victims == from;
            let Some(soonest) = list
                .iter_mut()
                .filter(|(_, s)| *s == victims)
                .min_by_key(|(p, _)| p.expires)
            else {
                return Err(RecordError::StoreFull);
            };
            if own && soonest.0.expires >= provider.expires {
                return Err(RecordError::StoreFull);
            }
            let (replaced, counted) = std::mem::replace(soonest, (provider, from));
            self.provider_shares.count(replaced.provider.id, counted, false);
        } else {
            list.push((provider, from));
        }
        self.provider_shares.count(id, from, true);
        Ok(())
    }

    fn providers(&self, key: &Key, now: Instant) -> Vec<ProviderRecord> {
        self.providers
            .get(key)
            .map(|list| {
                list.iter()
                    .filter(|(p, _)| p.expires > now)
                    .map(|(p, _)| p.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn expire(&mut self, now: Instant) {
        let record_shares = &mut self.record_shares;
        self.records.retain(|_, (r, from)| {
            let keep = r.expires_at() > now;
            if !keep {
                record_shares.count(r.publisher, *from, false);
            }
            keep
        });
        let provider_shares = &mut self.provider_shares;
        self.providers.retain(|_, list| {
            list.retain(|(p, from)| {
                let keep = p.expires > now;
                if !keep {
                    provider_shares.count(p.provider.id, *from, false);
                }
                keep
            });
            !list.is_empty()
        });
    }
}
