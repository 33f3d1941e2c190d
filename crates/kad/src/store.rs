//! Where a node keeps the records and provider announcements it is responsible for.
//!
//! [`RecordStore`] is the seam for persistent stores; [`MemoryStore`] is the bounded in-memory default,
//! and `RedbRecordStore` (cargo feature `redb`) keeps the same across restarts. Stores only keep; checking signatures is the caller's job
//! ([`crate::Record::verify`]), and expiry is by driver time passed in.

use std::collections::HashMap;

use meshwork_identity::PeerId;
use meshwork_wire::Instant;

use crate::{IpPrefix, Key, PeerInfo, Record, RecordError};

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
    ///
    /// `from` is the IP prefix of the peer that sent the record ([`crate::Address::prefix`]), which a
    /// store should count it against ([`MemoryStore::with_prefix_share`]): identities cost little, and
    /// without a share per prefix a few made-up publishers on one host fill the store. `None` for this
    /// node's own records, and for a peer with no IP address (the routing table's prefix limits skip it
    /// too).
    fn put(&mut self, record: Record, from: Option<IpPrefix>, now: Instant) -> Result<(), RecordError>;
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
///
/// A publisher's share alone does not stop one host: identities cost a puzzle at most, and eight of
/// them fill a store. So the records sent from one IP prefix (a /24, a /48), and the keys provided by
/// peers of one prefix, are held to a share too ([`MemoryStore::with_prefix_share`]; a quarter by
/// default, room for two publishers' shares behind one NAT or in one data-centre subnet). To fill a
/// store an attacker then needs four prefixes, as it needs several to fill a routing table's bucket.
/// A record is counted against the prefix that first sent it until it expires or is removed: the
/// publisher's refreshes from elsewhere do not move it (or a host could free its prefix's share by
/// refreshing its records from another). Records loaded from disk at open count against no prefix.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    /// Each record, and the prefix it is counted against.
    records: HashMap<Key, (Record, Option<IpPrefix>)>,
    providers: HashMap<Key, Vec<ProviderRecord>>,
    max_records: usize,
    max_provided_keys: usize,
    max_providers_per_key: usize,
    /// What each publisher and prefix holds of the records.
    record_shares: Shares,
    /// What each provider and prefix provides of the keys.
    provider_shares: Shares,
}

/// How much of a store each peer and each IP prefix holds, and how much they may: kept, not scanned,
/// so that a store of any size costs the same per record or announcement.
#[derive(Clone, Debug, Default)]
struct Shares {
    by_peer: HashMap<PeerId, usize>,
    by_prefix: HashMap<IpPrefix, usize>,
    max_per_peer: usize,
    max_per_prefix: usize,
}

impl Shares {
    fn new(max_per_peer: usize, max_per_prefix: usize) -> Self {
        Self {
            max_per_peer: max_per_peer.max(1),
            max_per_prefix: max_per_prefix.max(1),
            ..Self::default()
        }
    }

    /// Why one more entry of `peer`, from `prefix`, would not fit, if it would not.
    fn refuses(&self, peer: &PeerId, prefix: Option<IpPrefix>) -> Option<RecordError> {
        if self.by_peer.get(peer).copied().unwrap_or(0) >= self.max_per_peer {
            return Some(RecordError::ShareFull);
        }
        self.prefix_full(prefix).then_some(RecordError::PrefixShareFull)
    }

    /// Whether `prefix` holds its share already.
    fn prefix_full(&self, prefix: Option<IpPrefix>) -> bool {
        prefix.is_some_and(|p| self.by_prefix.get(&p).copied().unwrap_or(0) >= self.max_per_prefix)
    }

    /// One more (`added`) or one fewer entry of `peer`, counted against `prefix`.
    fn count(&mut self, peer: PeerId, prefix: Option<IpPrefix>, added: bool) {
        count(&mut self.by_peer, peer, added);
        if let Some(prefix) = prefix {
            count(&mut self.by_prefix, prefix, added);
        }
    }
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

    /// Counts the providers of `list` in (`added`) or out of the provider shares.
    fn count_providers(&mut self, list: &[ProviderRecord], added: bool) {
        for p in list {
            self.provider_shares
                .count(p.provider.id, p.provider.addr.prefix(), added);
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
    /// on one host (one prefix) raises it, as it raises the routing table's prefix limits.
    pub fn with_prefix_share(mut self, records: usize, provided_keys: usize) -> Self {
        self.record_shares.max_per_prefix = records.max(1);
        self.provider_shares.max_per_prefix = provided_keys.max(1);
        self
    }

    /// Stores `record` under its key, counted for its publisher and against `prefix` (and the one it
    /// replaces counted out).
    fn insert_record(&mut self, record: Record, prefix: Option<IpPrefix>) {
        self.record_shares.count(record.publisher, prefix, true);
        if let Some((old, old_prefix)) = self.records.insert(record.key, (record, prefix)) {
            self.record_shares.count(old.publisher, old_prefix, false);
        }
    }

    /// Drops the record under `key`, counting it out.
    fn remove_record(&mut self, key: &Key) {
        if let Some((old, prefix)) = self.records.remove(key) {
            self.record_shares.count(old.publisher, prefix, false);
        }
    }

    /// The number of records held (expired ones included until [`RecordStore::expire`]).
    pub fn num_records(&self) -> usize {
        self.records.len()
    }

    /// The record held under `key`, expired or not (to undo a change).
    #[cfg_attr(not(feature = "redb"), allow(dead_code))]
    pub(crate) fn record_slot(&self, key: &Key) -> Option<(Record, Option<IpPrefix>)> {
        self.records.get(key).cloned()
    }

    /// Puts back what [`Self::record_slot`] returned.
    #[cfg_attr(not(feature = "redb"), allow(dead_code))]
    pub(crate) fn restore_record(&mut self, key: Key, record: Option<(Record, Option<IpPrefix>)>) {
        match record {
            Some((record, prefix)) => self.insert_record(record, prefix),
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
        self.records
            .get(key)
            .map(|(r, _)| r)
            .filter(|r| r.expires_at() > now)
            .cloned()
    }

    fn put(&mut self, record: Record, from: Option<IpPrefix>, now: Instant) -> Result<(), RecordError> {
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
            // A refresh stays counted where the record was first counted (see the type's docs).
            Some((old, prefix)) if old.publisher == record.publisher => *prefix,
            _ if self.records.len() >= self.max_records && !self.records.contains_key(&record.key) => {
                return Err(RecordError::StoreFull);
            }
            _ => {
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

    fn add_provider(&mut self, key: Key, provider: ProviderRecord) -> Result<(), RecordError> {
        if !self.providers.contains_key(&key) && self.providers.len() >= self.max_provided_keys {
            return Err(RecordError::StoreFull);
        }
        let (id, prefix) = (provider.provider.id, provider.provider.addr.prefix());
        let refused = self.provider_shares.refuses(&id, prefix);
        let list = self.providers.entry(key).or_default();
        if let Some(existing) = list.iter_mut().find(|p| p.provider.id == id) {
            // A refresh from another prefix moves the count, within the new prefix's share.
            let old_prefix = existing.provider.addr.prefix();
            if old_prefix != prefix {
                if self.provider_shares.prefix_full(prefix) {
                    return Err(RecordError::PrefixShareFull);
                }
                self.provider_shares.count(id, old_prefix, false);
                self.provider_shares.count(id, prefix, true);
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
            // Replace the announcement that lapses first, if the new one outlives it.
            let Some(soonest) = list.iter_mut().min_by_key(|p| p.expires) else {
                return Err(RecordError::StoreFull);
            };
            if soonest.expires >= provider.expires {
                return Err(RecordError::StoreFull);
            }
            let replaced = std::mem::replace(soonest, provider).provider;
            self.provider_shares
                .count(replaced.id, replaced.addr.prefix(), false);
        } else {
            list.push(provider);
        }
        self.provider_shares.count(id, prefix, true);
        Ok(())
    }

    fn providers(&self, key: &Key, now: Instant) -> Vec<ProviderRecord> {
        self.providers
            .get(key)
            .map(|list| list.iter().filter(|p| p.expires > now).cloned().collect())
            .unwrap_or_default()
    }

    fn expire(&mut self, now: Instant) {
        let record_shares = &mut self.record_shares;
        self.records.retain(|_, (r, prefix)| {
            let keep = r.expires_at() > now;
            if !keep {
                record_shares.count(r.publisher, *prefix, false);
            }
            keep
        });
        let provider_shares = &mut self.provider_shares;
        self.providers.retain(|_, list| {
            list.retain(|p| {
                let keep = p.expires > now;
                if !keep {
                    provider_shares.count(p.provider.id, p.provider.addr.prefix(), false);
                }
                keep
            });
            !list.is_empty()
        });
    }
}

/// One more (`added`) or one fewer record or provided key of `who` in `counts`; one of none is
/// forgotten.
fn count<K: std::hash::Hash + Eq + Copy>(counts: &mut HashMap<K, usize>, who: K, added: bool) {
    let n = counts.entry(who).or_insert(0);
    if added {
        *n += 1;
    } else {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(&who);
        }
    }
}
