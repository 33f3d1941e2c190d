//! [`RedbStore`]: a [`ChainStore`] in a redb database file.
//!
//! Each [`ChainStore::commit`] is one redb write transaction, committed with immediate durability, so a
//! block connect or disconnect is on disk entirely or not at all: a crash (even `SIGKILL` or a power cut)
//! leaves the last committed chain, which reopens consistent. Values are postcard encodings of the ledger's
//! own types.

use std::path::Path;
use std::sync::{Arc, Weak};

use ::redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    Block, BlockId, BlockIndexEntry, BlockUndo, ChainStore, ChainTip, Coin, OutPoint, StoreBatch, StoreError,
    UtxoCommitment,
};

const BLOCKS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("blocks");
const INDEX: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("block_index");
const UTXOS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("utxos");
const UNDO: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("undo");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");

const TIP_KEY: &str = "tip";
const COMMITMENT_KEY: &str = "utxo_commitment";

/// A [`ChainStore`] in a redb file: ACID, crash safe, pure Rust.
#[derive(Debug)]
pub struct RedbStore {
    db: Arc<Database>,
}

/// An owner's coins, and the tip (if any) whose state they are.
pub type OwnedCoins = (Option<ChainTip>, Vec<(OutPoint, Coin)>);

/// Read-only access to a [`RedbStore`]'s committed state from another thread: redb serves read
/// transactions alongside the writer, so scans (an owner's coins, old blocks) run off the task that owns
/// the chain and never stall it. Each call reads one committed state. The reader does not keep the
/// database open: once the store is dropped, reads fail with [`StoreError::Database`].
#[derive(Clone, Debug)]
pub struct RedbReader {
    db: Weak<Database>,
}

impl RedbReader {
    fn store(&self) -> Result<RedbStore, StoreError> {
        let db = self
            .db
            .upgrade()
            .ok_or_else(|| db_error("the chain database is closed"))?;
        Ok(RedbStore { db })
    }

    /// The unspent outputs `owner` holds, in outpoint order, and the tip they are the state of, read in
    /// one transaction (a scan of the UTXO table).
    pub fn coins_of(&self, owner: &meshwork_identity::PeerId) -> Result<OwnedCoins, StoreError> {
        let store = self.store()?;
        let txn = store.db.begin_read().map_err(db_error)?;
        let meta = txn.open_table(META).map_err(db_error)?;
        let tip = match meta.get(TIP_KEY).map_err(db_error)? {
            Some(value) => decode::<Option<ChainTip>>(value.value())?,
            None => None,
        };
        Ok((tip, super::types::owned_by(coins_in(&txn)?, owner)))
    }

    /// A stored block.
    pub fn block(&self, id: &BlockId) -> Result<Option<Block>, StoreError> {
        self.store()?.block(id)
    }
}

fn db_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Database(error.to_string())
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    crate::message_bytes(value)
}

fn decode<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    meshwork_wire::decode(bytes).map_err(|error| StoreError::Corrupt(error.to_string()))
}

/// The UTXO table key: txid then index, big-endian, so a transaction's outputs sort together.
fn outpoint_key(outpoint: &OutPoint) -> [u8; 36] {
    let mut key = [0u8; 36];
    key[..32].copy_from_slice(outpoint.txid.as_bytes());
    key[32..].copy_from_slice(&outpoint.index.to_be_bytes());
    key
}

impl RedbStore {
    /// Opens the database at `path`, creating it if needed. A database left by a crash is repaired by
    /// redb on open and holds the last committed batch.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(db_error)?;
        // Create every table once, so readers never meet a missing table.
        let txn = db.begin_write().map_err(db_error)?;
        for table in [BLOCKS, INDEX, UTXOS, UNDO] {
            txn.open_table(table).map_err(db_error)?;
        }
        txn.open_table(META).map_err(db_error)?;
        txn.commit().map_err(db_error)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// A reader of this database's committed state, for other threads (see [`RedbReader`]).
    pub fn reader(&self) -> RedbReader {
        RedbReader {
            db: Arc::downgrade(&self.db),
        }
    }

    fn get<T: Serialize + DeserializeOwned>(
        &self,
        table: TableDefinition<'_, &[u8], &[u8]>,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = txn.open_table(table).map_err(db_error)?;
        match table.get(key).map_err(db_error)? {
            Some(value) => decode(value.value()).map(Some),
            None => Ok(None),
        }
    }

    fn meta<T: Serialize + DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = txn.open_table(META).map_err(db_error)?;
        match table.get(key).map_err(db_error)? {
            Some(value) => decode(value.value()).map(Some),
            None => Ok(None),
        }
    }
}

impl ChainStore for RedbStore {
    fn tip(&self) -> Result<Option<ChainTip>, StoreError> {
        Ok(self.meta::<Option<ChainTip>>(TIP_KEY)?.flatten())
    }

    fn block(&self, id: &BlockId) -> Result<Option<Block>, StoreError> {
        self.get(BLOCKS, id.as_bytes())
    }

    fn index_entry(&self, id: &BlockId) -> Result<Option<BlockIndexEntry>, StoreError> {
        self.get(INDEX, id.as_bytes())
    }

    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StoreError> {
        self.get(UTXOS, &outpoint_key(outpoint))
    }

    fn coins_at(&self, outpoints: &[OutPoint]) -> Result<Vec<Option<Coin>>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = txn.open_table(UTXOS).map_err(db_error)?;
        outpoints
            .iter()
            .map(
                |outpoint| match table.get(outpoint_key(outpoint).as_slice()).map_err(db_error)? {
                    Some(value) => decode(value.value()).map(Some),
                    None => Ok(None),
                },
            )
            .collect()
    }

    fn undo(&self, id: &BlockId) -> Result<Option<BlockUndo>, StoreError> {
        self.get(UNDO, id.as_bytes())
    }

    fn utxo_commitment(&self) -> Result<UtxoCommitment, StoreError> {
        Ok(self.meta(COMMITMENT_KEY)?.unwrap_or(UtxoCommitment::EMPTY))
    }

    fn coins(&self) -> Result<Vec<(OutPoint, Coin)>, StoreError> {
        let txn = self.db.begin_read().map_err(db_error)?;
        coins_in(&txn)
    }

    fn put_block(&mut self, block: &Block, entry: BlockIndexEntry) -> Result<(), StoreError> {
        let id = block.id();
        let txn = self.db.begin_write().map_err(db_error)?;
        {
            let mut blocks = txn.open_table(BLOCKS).map_err(db_error)?;
            blocks
                .insert(id.as_bytes().as_slice(), encode(block).as_slice())
                .map_err(db_error)?;
            let mut index = txn.open_table(INDEX).map_err(db_error)?;
            index
                .insert(id.as_bytes().as_slice(), encode(&entry).as_slice())
                .map_err(db_error)?;
        }
        txn.commit().map_err(db_error)
    }

    fn commit(&mut self, batch: StoreBatch) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_error)?;
        {
            if let Some((block, entry)) = &batch.block {
                let id = block.id();
                let mut blocks = txn.open_table(BLOCKS).map_err(db_error)?;
                blocks
                    .insert(id.as_bytes().as_slice(), encode(block).as_slice())
                    .map_err(db_error)?;
                let mut index = txn.open_table(INDEX).map_err(db_error)?;
                index
                    .insert(id.as_bytes().as_slice(), encode(entry).as_slice())
                    .map_err(db_error)?;
            }
            // In key order: neighbouring B-tree pages are then touched one after the other.
            let mut spend: Vec<[u8; 36]> = batch.spend.iter().map(outpoint_key).collect();
            spend.sort_unstable();
            let mut create: Vec<([u8; 36], Vec<u8>)> = batch
                .create
                .iter()
                .map(|(outpoint, coin)| (outpoint_key(outpoint), encode(coin)))
                .collect();
            create.sort_unstable();
            let mut utxos = txn.open_table(UTXOS).map_err(db_error)?;
            for key in &spend {
                utxos.remove(key.as_slice()).map_err(db_error)?;
            }
            for (key, coin) in &create {
                utxos.insert(key.as_slice(), coin.as_slice()).map_err(db_error)?;
            }
            let mut undo = txn.open_table(UNDO).map_err(db_error)?;
            if let Some((id, data)) = &batch.put_undo {
                undo.insert(id.as_bytes().as_slice(), encode(data).as_slice())
                    .map_err(db_error)?;
            }
            if let Some(id) = &batch.delete_undo {
                undo.remove(id.as_bytes().as_slice()).map_err(db_error)?;
            }
            let mut meta = txn.open_table(META).map_err(db_error)?;
            meta.insert(TIP_KEY, encode(&batch.tip).as_slice())
                .map_err(db_error)?;
            meta.insert(COMMITMENT_KEY, encode(&batch.commitment).as_slice())
                .map_err(db_error)?;
        }
        // Dropping `txn` without committing (on any error above) aborts it: nothing is written.
        txn.commit().map_err(db_error)
    }
}

/// Every coin of the UTXO table, as `txn` sees it.
fn coins_in(txn: &ReadTransaction) -> Result<Vec<(OutPoint, Coin)>, StoreError> {
    let table = txn.open_table(UTXOS).map_err(db_error)?;
    let mut out = Vec::new();
    for entry in table.iter().map_err(db_error)? {
        let (key, value) = entry.map_err(db_error)?;
        let key = key.value();
        let (txid, index) = key
            .split_at_checked(32)
            .ok_or(StoreError::Corrupt("utxo key".into()))?;
        let txid: [u8; 32] = txid
            .try_into()
            .map_err(|_| StoreError::Corrupt("utxo key".into()))?;
        let index: [u8; 4] = index
            .try_into()
            .map_err(|_| StoreError::Corrupt("utxo key".into()))?;
        let outpoint = OutPoint {
            txid: BlockId::from_bytes(txid),
            index: u32::from_be_bytes(index),
        };
        out.push((outpoint, decode(value.value())?));
    }
    Ok(out)
}
