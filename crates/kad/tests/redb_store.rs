//! The redb record store: what it holds survives a reopen, within the same rules as the memory store.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use meshwork_identity::Keypair;
use meshwork_kad::store::{ProviderRecord, Sender};
use meshwork_kad::{Address, Key, MemoryStore, PeerInfo, Record, RecordError, RecordStore, RedbRecordStore};
use meshwork_wire::Instant;

fn at(secs: u64) -> Instant {
    Instant::from_duration(Duration::from_secs(secs))
}

fn provider(seed: u8, expires: Instant) -> ProviderRecord {
    ProviderRecord {
        provider: PeerInfo {
            id: Keypair::from_seed([seed; 32]).peer_id(),
            addr: Address::V4 {
                ip: [10, 0, seed, 1],
                port: 4000,
            },
        },
        expires,
    }
}

#[test]
fn records_and_providers_survive_a_reopen_and_expire_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.redb");
    let publisher = Keypair::from_seed([1; 32]);
    let (short, long) = (Key::for_name(b"short"), Key::for_name(b"long"));
    let provided = Key::from_bytes([3; 32]);
    {
        let mut store = RedbRecordStore::open(&path, MemoryStore::default(), at(0)).unwrap();
        store
            .put(
                Record::sign(&publisher, short, b"short".to_vec(), at(100)).unwrap(),
                Sender::Local,
                at(0),
            )
            .unwrap();
        store
            .put(
                Record::sign(&publisher, long, b"long".to_vec(), at(1000)).unwrap(),
                Sender::Local,
                at(0),
            )
            .unwrap();
        store
            .add_provider(provided, provider(7, at(500)), Sender::Local)
            .unwrap();
        store
            .add_provider(provided, provider(8, at(50)), Sender::Local)
            .unwrap();
        // The same rules as in memory: another publisher cannot take a live key.
        let rival = Record::sign(&Keypair::from_seed([2; 32]), long, b"rival".to_vec(), at(2000)).unwrap();
        assert_eq!(store.put(rival, Sender::Local, at(0)), Err(RecordError::Conflict));
        assert_eq!(store.write_failures(), 0);
    }
    // Reopened later: what expired meanwhile is gone, the rest is back, byte for byte.
    let mut store = RedbRecordStore::open(&path, MemoryStore::default(), at(200)).unwrap();
    assert!(store.get(&short, at(200)).is_none());
    let record = store.get(&long, at(200)).unwrap();
    assert_eq!(record.value.as_slice(), b"long");
    assert!(
        record.verify(at(200), Duration::from_secs(48 * 3600)).is_ok(),
        "a reloaded record still carries its publisher's signature"
    );
    let providers = store.providers(&provided, at(200));
    assert_eq!(providers, vec![provider(7, at(500))]);

    // Removal and expiry reach the disk too.
    store.remove(&long);
    store.expire(at(600));
    drop(store);
    let store = RedbRecordStore::open(&path, MemoryStore::default(), at(0)).unwrap();
    // `short` expired (100 < 600) and `long` was removed: nothing is loaded, even at time 0.
    assert_eq!(store.num_records(), 0);
    assert!(store.get(&long, at(0)).is_none());
    assert!(
        store.providers(&provided, at(0)).is_empty(),
        "expire(600) dropped the provider from disk"
    );
}

#[test]
fn the_cache_bounds_hold_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.redb");
    let publisher = Keypair::from_seed([1; 32]);
    {
        // One publisher may fill it all here (its share is the whole store).
        let limits = MemoryStore::new(10, 10, 10).with_share(10, 10);
        let mut store = RedbRecordStore::open(&path, limits, at(0)).unwrap();
        for i in 0..10u8 {
            let record = Record::sign(&publisher, Key::for_name(&[i]), vec![i], at(100)).unwrap();
            store.put(record, Sender::Local, at(0)).unwrap();
        }
        let extra = Record::sign(&publisher, Key::for_name(&[99]), vec![99], at(100)).unwrap();
        assert_eq!(
            store.put(extra, Sender::Local, at(0)),
            Err(RecordError::StoreFull)
        );
    }
    let limits = MemoryStore::new(4, 10, 10).with_share(4, 10);
    let store = RedbRecordStore::open(&path, limits, at(0)).unwrap();
    assert_eq!(
        store.num_records(),
        4,
        "a smaller bound on reopen keeps memory bounded"
    );
    drop(store);
    // And the disk: what the bound left out is gone, not loaded again at every open.
    let limits = MemoryStore::new(10, 10, 10).with_share(10, 10);
    let store = RedbRecordStore::open(&path, limits, at(0)).unwrap();
    assert_eq!(store.num_records(), 4);
}

#[test]
fn a_provider_pushed_out_of_a_full_key_leaves_the_disk_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.redb");
    let key = Key::from_bytes([3; 32]);
    {
        // One provider a key: the second, lapsing later, takes the first one's place.
        let mut store = RedbRecordStore::open(&path, MemoryStore::new(10, 10, 1), at(0)).unwrap();
        store
            .add_provider(key, provider(7, at(100)), Sender::Local)
            .unwrap();
        store
            .add_provider(key, provider(8, at(200)), Sender::Local)
            .unwrap();
        assert_eq!(store.providers(&key, at(0)), vec![provider(8, at(200))]);
    }
    let store = RedbRecordStore::open(&path, MemoryStore::new(10, 10, 10), at(0)).unwrap();
    assert_eq!(
        store.providers(&key, at(0)),
        vec![provider(8, at(200))],
        "the first one's row went with it"
    );
}

#[test]
fn providers_the_bounds_leave_out_on_load_leave_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.redb");
    let key = Key::from_bytes([4; 32]);
    let open = |per_key| RedbRecordStore::open(&path, MemoryStore::new(10, 10, per_key), at(0)).unwrap();
    {
        let mut store = open(10);
        store
            .add_provider(key, provider(7, at(100)), Sender::Local)
            .unwrap();
        store
            .add_provider(key, provider(8, at(200)), Sender::Local)
            .unwrap();
    }
    // One provider a key: one of the two is left out (refused, or pushed out by the other).
    assert_eq!(open(1).providers(&key, at(0)).len(), 1);
    assert_eq!(
        open(10).providers(&key, at(0)).len(),
        1,
        "the other's row is gone"
    );
}

#[test]
fn a_row_whose_key_admits_nobody_is_dropped_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.redb");
    let publisher = Keypair::from_seed([1; 32]);
    let good = Record::sign(&publisher, Key::for_name(b"good"), b"g".to_vec(), at(100)).unwrap();
    drop(RedbRecordStore::open(&path, MemoryStore::default(), at(0)).unwrap());
    // Rows as an older release wrote them: under keys that were whatever the application chose.
    let mut foreign = good.clone();
    foreign.key = Key::from_bytes([7; 32]);
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn
                .open_table(redb::TableDefinition::<&[u8], &[u8]>::new("records"))
                .unwrap();
            for record in [&good, &foreign] {
                let bytes = meshwork_wire::encode(record).unwrap();
                table
                    .insert(record.key.as_bytes().as_slice(), bytes.as_slice())
                    .unwrap();
            }
        }
        txn.commit().unwrap();
    }
    let store = RedbRecordStore::open(&path, MemoryStore::default(), at(0)).unwrap();
    assert_eq!(store.num_records(), 1);
    assert_eq!(store.get(&good.key, at(0)), Some(good.clone()));
    assert_eq!(store.get(&foreign.key, at(0)), None);
    drop(store);
    let db = redb::Database::create(&path).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let table = txn
        .open_table(redb::TableDefinition::<&[u8], &[u8]>::new("records"))
        .unwrap();
    assert!(
        redb::ReadableTable::get(&table, foreign.key.as_bytes().as_slice())
            .unwrap()
            .is_none(),
        "and deleted from the disk"
    );
}

#[test]
fn a_restart_gives_no_prefix_its_share_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.redb");
    // Sixteen records: four a prefix. One host sends four records and a provided key.
    let host = Sender::observed(Some(&Address::V4 {
        ip: [10, 0, 0, 1],
        port: 9,
    }));
    let record = |seed: u8| {
        let publisher = Keypair::from_seed([seed; 32]);
        let key = Key::for_record(&publisher.peer_id(), b"r");
        Record::sign(&publisher, key, b"v".to_vec(), at(100)).unwrap()
    };
    {
        let mut store = RedbRecordStore::open(&path, MemoryStore::new(16, 16, 4), at(0)).unwrap();
        for seed in 10..14 {
            store.put(record(seed), host, at(0)).unwrap();
        }
        assert_eq!(
            store.put(record(14), host, at(0)),
            Err(RecordError::PrefixShareFull)
        );
    }
    let mut store = RedbRecordStore::open(&path, MemoryStore::new(16, 16, 4), at(0)).unwrap();
    assert_eq!(store.num_records(), 4);
    assert_eq!(
        store.put(record(14), host, at(0)),
        Err(RecordError::PrefixShareFull),
        "the reloaded records still count against the host's prefix"
    );
    store.put(record(15), Sender::Unobserved, at(0)).unwrap();
}
