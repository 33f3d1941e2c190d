//! [`RedbRecordStore`]: the records and provider announcements a node holds, kept across restarts in a
//! redb database file (behind the `redb` cargo feature).
//!
//! It is a write-through cache: a bounded [`MemoryStore`] answers every read (so lookups never wait for
//! the disk, and the [`RecordStore`] reads stay infallible), and every change is written to redb in its
//! own transaction before it counts. On open, the unexpired entries on disk are loaded back within the
//! same bounds. Expiry is by driver time: under the node runtime that is Unix time, so a record stored
//! before a restart expires when it would have anyway. Each row keeps the [`Sender`] its entry is
//! counted against, so that a restart gives no prefix its share afresh; rows of a release that kept
//! none load counted against no prefix.

use std::path::Path;

use ::redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use meshwork_identity::PeerId;
use meshwork_wire::Instant;

use crate::store::{MemoryStore, ProviderRecord, RecordStore, Sender};
use crate::{Key, PeerInfo, Record, RecordError};

const RECORDS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("records");
/// Keyed by the provided key then the provider's id, so one provider has one entry per key.
const PROVIDERS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("providers");

/// A [`RecordStore`] persisted in redb; see the module docs.
#[derive(Debug)]
pub struct RedbRecordStore {
    db: Database,
    cache: MemoryStore,
    write_failures: u64,
}

fn store_error(error: impl std::fmt::Display) -> RecordError {
    RecordError::Store(error.to_string())
}

/// A record row: the record and its sender, or a record alone (a row of a release that kept no
/// sender: counted against no prefix).
fn decode_record(bytes: &[u8]) -> Option<(Record, Sender)> {
    meshwork_wire::decode::<(Record, Sender)>(bytes)
        .ok()
        .or_else(|| Some((meshwork_wire::decode::<Record>(bytes).ok()?, Sender::Local)))
}

/// A provider row: the provider, its expiry and its sender, or the first two alone (as in
/// [`decode_record`]).
fn decode_provider(bytes: &[u8]) -> Option<(ProviderRecord, Sender)> {
    let (provider, expires, from) = meshwork_wire::decode::<(PeerInfo, u64, Sender)>(bytes)
        .ok()
        .or_else(|| {
            let (provider, expires) = meshwork_wire::decode::<(PeerInfo, u64)>(bytes).ok()?;
            Some((provider, expires, Sender::Local))
        })?;
    let expires = Instant::from_nanos(expires);
    Some((ProviderRecord { provider, expires }, from))
}

fn provider_key(key: &Key, provider: &PeerInfo) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(64);
    bytes.extend_from_slice(key.as_bytes());
    bytes.extend_from_slice(provider.id.as_bytes());
    bytes
}

impl RedbRecordStore {
    /// Opens (or creates) the database at `path`, loading what is unexpired at `now` into a cache with
    /// the bounds of `limits` (see [`MemoryStore::new`]); entries beyond the bounds are dropped, from
    /// the disk too.
    pub fn open(path: &Path, limits: MemoryStore, now: Instant) -> Result<Self, RecordError> {
        let db = Database::create(path).map_err(store_error)?;
        let txn = db.begin_write().map_err(store_error)?;
        txn.open_table(RECORDS).map_err(store_error)?;
        txn.open_table(PROVIDERS).map_err(store_error)?;
        txn.commit().map_err(store_error)?;
        let mut store = Self {
            db,
            cache: limits,
            write_failures: 0,
        };
        store.load(now)?;
        Ok(store)
    }

    /// Loads the unexpired records and providers into the cache. Rows the cache's bounds leave out
    /// (refused, or pushed out by a later row) are deleted, so that they do not come back at every
    /// open; expired ones are left to [`RecordStore::expire`].
    fn load(&mut self, now: Instant) -> Result<(), RecordError> {
        let txn = self.db.begin_read().map_err(store_error)?;
        let records = txn.open_table(RECORDS).map_err(store_error)?;
        let mut left_out: Vec<(bool, Vec<u8>)> = Vec::new();
        for entry in records.iter().map_err(store_error)? {
            let (key, value) = entry.map_err(store_error)?;
            // An entry that does not decode is skipped. One that does is trusted as our own disk's (it
            // was verified when it was stored): the peers we answer verify it again, and our own
            // lookups count it as one answer among others. A key that does not admit its publisher is a
            // row of an older release, and the cache refuses it.
            if let Some((record, from)) = decode_record(value.value()) {
                if record.expires_at() > now && self.cache.put(record, from, now).is_err() {
                    left_out.push((true, key.value().to_vec()));
                }
            }
        }
        let providers = txn.open_table(PROVIDERS).map_err(store_error)?;
        let mut loaded: Vec<(Key, PeerId, Vec<u8>)> = Vec::new();
        for entry in providers.iter().map_err(store_error)? {
            let (row, value) = entry.map_err(store_error)?;
            let Ok(bytes) = <[u8; 32]>::try_from(&row.value()[..32.min(row.value().len())]) else {
                continue;
            };
            if let Some((provider, from)) = decode_provider(value.value()) {
                if provider.expires > now {
                    let (key, id) = (Key::from_bytes(bytes), provider.provider.id);
                    let _ = self.cache.add_provider(key, provider, from);
                    loaded.push((key, id, row.value().to_vec()));
                }
            }
        }
        drop((records, providers, txn));
        for (key, id, row) in loaded {
            let kept = self
                .cache
                .providers(&key, now)
                .iter()
                .any(|p| p.provider.id == id);
            if !kept {
                left_out.push((false, row));
            }
        }
        // Best effort, as every removal: a failed write is counted, and the rows go at a later open.
        if !left_out.is_empty() {
            let _ = self.write(|txn| {
                let (mut records, mut providers) = (txn.open_table(RECORDS)?, txn.open_table(PROVIDERS)?);
                for (record, row) in &left_out {
                    if *record {
                        records.remove(row.as_slice())?;
                    } else {
                        providers.remove(row.as_slice())?;
                    }
                }
                Ok(())
            });
        }
        Ok(())
    }

    /// Writes that failed (a full disk, say) since opening. A failed `put` or `add_provider` is also
    /// refused with [`RecordError::Store`]; a failed removal leaves an entry that the next open drops
    /// once it has expired.
    pub fn write_failures(&self) -> u64 {
        self.write_failures
    }

    /// The number of records held.
    pub fn num_records(&self) -> usize {
        self.cache.num_records()
    }

    fn write(
        &mut self,
        change: impl FnOnce(&::redb::WriteTransaction) -> Result<(), ::redb::Error>,
    ) -> Result<(), RecordError> {
        let result = (|| {
            let txn = self.db.begin_write()?;
            change(&txn)?;
            txn.commit()?;
            Ok::<_, ::redb::Error>(())
        })();
        result.map_err(|error| {
            self.write_failures += 1;
            store_error(error)
        })
    }
}

impl RecordStore for RedbRecordStore {
    fn get(&self, key: &Key, now: Instant) -> Option<Record> {
        self.cache.get(key, now)
    }

    fn put(&mut self, record: Record, from: Sender, now: Instant) -> Result<(), RecordError> {
        // The cache decides (conflicts, bounds, whom the record is counted against); if the disk then
        // fails, the cache is put back as it was, so both always hold the same.
        let key = record.key;
        let before = self.cache.record_slot(&key);
        self.cache.put(record, from, now)?;
        let encoded = self
            .cache
            .record_slot(&key)
            .map(|held| meshwork_wire::encode(&held));
        let Some(Ok(bytes)) = encoded else {
            self.cache.restore_record(key, before);
            return Err(store_error("the record does not encode"));
        };
        let written = self.write(|txn| {
            txn.open_table(RECORDS)?
                .insert(key.as_bytes().as_slice(), bytes.as_slice())?;
            Ok(())
        });
        if written.is_err() {
            self.cache.restore_record(key, before);
        }
        written
    }

    fn remove(&mut self, key: &Key) {
        self.cache.remove(key);
        let _ = self.write(|txn| {
            txn.open_table(RECORDS)?.remove(key.as_bytes().as_slice())?;
            Ok(())
        });
    }

    fn add_provider(&mut self, key: Key, provider: ProviderRecord, from: Sender) -> Result<(), RecordError> {
        let value = meshwork_wire::encode(&(&provider.provider, provider.expires.as_nanos(), from))
            .map_err(store_error)?;
        let id = provider_key(&key, &provider.provider);
        let before = self.cache.providers_slot(&key);
        self.cache.add_provider(key, provider, from)?;
        // A full key's announcement that lapses first makes room for the new one: its row goes too,
        // or a reload would bring it back and rows would pile up under the key until they expire.
        let after = self.cache.providers_slot(&key).unwrap_or_default();
        let evicted: Vec<Vec<u8>> = before
            .iter()
            .flatten()
            .filter(|(old, _)| !after.iter().any(|(p, _)| p.provider.id == old.provider.id))
            .map(|(old, _)| provider_key(&key, &old.provider))
            .collect();
        let written = self.write(|txn| {
            let mut table = txn.open_table(PROVIDERS)?;
            table.insert(id.as_slice(), value.as_slice())?;
            for row in &evicted {
                table.remove(row.as_slice())?;
            }
            Ok(())
        });
        if written.is_err() {
            self.cache.restore_providers(key, before);
        }
        written
    }

    fn providers(&self, key: &Key, now: Instant) -> Vec<ProviderRecord> {
        self.cache.providers(key, now)
    }

    fn expire(&mut self, now: Instant) {
        self.cache.expire(now);
        let _ = self.write(|txn| {
            let mut records = txn.open_table(RECORDS)?;
            records.retain(|_, value| {
                decode_record(value).is_some_and(|(record, _)| record.expires_at() > now)
            })?;
            let mut providers = txn.open_table(PROVIDERS)?;
            providers.retain(|_, value| decode_provider(value).is_some_and(|(p, _)| p.expires > now))?;
            Ok(())
        });
    }
}
