//! [`Chain`]: the ledger, the mempool and the Nakamoto engine together, as the coin node drives them.

mod bodies;
mod certified;
mod final_chain;
mod headers;
mod orphans;
mod submit;
mod template;

use meshwork_identity::PeerId;
use meshwork_ledger::mempool::{Inserted, InvalidOrphan};
use meshwork_ledger::{
    Amount, Block, BlockHeader, BlockId, ChainStore, Coin, Ledger, Mempool, MempoolError, OutPoint,
    StoreError, Transfer, TxId,
};

use self::bodies::Bodies;
use self::certified::Certified;
pub use self::certified::{TipChange, UNCERTIFIED_HORIZON};
pub use self::headers::HeadersOutcome;
use self::orphans::OrphanBlocks;
pub use self::submit::{BlockOutcome, BlockStatus};
pub use self::template::{GENESIS_TAG, genesis_block};
use crate::config::{ChainConfig, ChainRule};
use crate::error::ChainError;
use crate::pow::{Nakamoto, Target};
use crate::traits::{Consensus, Finality};

/// The end of a chain: its id, height, cumulative work and header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TipInfo {
    /// The block id.
    pub id: BlockId,
    /// Its height.
    pub height: u64,
    /// The chain's cumulative work up to and including it.
    pub work: u128,
    /// Its header.
    pub header: BlockHeader,
}

/// A proof-of-work blockchain: a [`Ledger`] over a [`ChainStore`], a [`Mempool`] and the [`Nakamoto`]
/// engine. Pure: time comes in as `now_secs` (Unix seconds) on every call that needs it.
///
/// Blocks arrive with [`Chain::submit_block`] (from a peer, gossip or the local miner), headers with
/// [`Chain::submit_headers`] (headers-first sync), transactions with [`Chain::submit_tx`]. The chain
/// keeps the ledger on the valid chain with the most work, reorganising when another chain overtakes it.
#[derive(Debug)]
pub struct Chain<S: ChainStore> {
    config: ChainConfig,
    ledger: Ledger<S>,
    mempool: Mempool,
    engine: Nakamoto,
    bodies: Bodies,
    orphans: OrphanBlocks,
    /// Under [`ChainRule::Certified`]: what the BFT engine chose and certified.
    certified: Option<Certified>,
}

impl<S: ChainStore> Chain<S> {
    /// Opens the chain on `store`. An empty store gets `genesis` connected; a store that already holds a
    /// chain (a node restarting from its data directory) is resumed at its tip, after checking that the
    /// chain starts at `genesis`: the engine rebuilds its header index by walking the store's block index
    /// back from the tip. Side branches the store may hold are not re-indexed (peers send them again).
    ///
    /// A certified chain ([`ChainRule::Certified`]) always takes
    /// [`LedgerConfig::timestamp_may_equal_median`](meshwork_ledger::LedgerConfig::timestamp_may_equal_median):
    /// it makes several blocks a second.
    pub fn open(
        store: S,
        mut config: ChainConfig,
        genesis: Block,
        now_secs: u64,
    ) -> Result<Self, ChainError> {
        if matches!(config.rule, ChainRule::Certified(_)) {
            config.ledger.timestamp_may_equal_median = true;
        }
        let mut engine = Nakamoto::new(&genesis.header, &config)?;
        let mut ledger = Ledger::new(store, config.ledger.clone());
        let genesis_id = genesis.id();
        match ledger.tip()? {
            None => {
                let work = engine.work(&genesis_id).unwrap_or(1);
                ledger
                    .connect_block(&genesis, work, now_secs)
                    .map_err(|error| match error {
                        meshwork_ledger::BlockError::Store(error) => ChainError::Store(error),
                        error => ChainError::InvalidGenesis(error.to_string()),
                    })?;
                engine.push_active(genesis_id);
            }
            Some(tip) => {
                let mut headers = Vec::new();
                let mut cursor = tip.id;
                loop {
                    let entry = ledger
                        .store()
                        .index_entry(&cursor)?
                        .ok_or(ChainError::MissingBlock(cursor))?;
                    headers.push(entry.header);
                    if entry.header.height == 0 {
                        break;
                    }
                    cursor = entry.header.parent;
                }
                if cursor != genesis_id {
                    return Err(ChainError::WrongGenesis {
                        expected: genesis_id,
                        found: cursor,
                    });
                }
                engine.push_active(genesis_id);
                let mut work = engine.work(&genesis_id).unwrap_or(1);
                for header in headers.into_iter().rev().skip(1) {
                    let target = Target::from_compact(header.target).map_err(|error| {
                        StoreError::Corrupt(format!("stored header with a bad target: {error}"))
                    })?;
                    work = work.saturating_add(target.work());
                    let id = header.id();
                    engine.insert(header, work);
                    engine.set_has_data(&id);
                    engine.push_active(id);
                }
            }
        }
        engine.settle();
        let certified = match &config.rule {
            ChainRule::ProofOfWork => None,
            ChainRule::Certified(validators) => Some(Certified::new(validators, genesis_id)),
        };
        Ok(Self {
            certified,
            mempool: Mempool::new(config.mempool.clone()),
            orphans: OrphanBlocks::new(config.max_orphan_blocks),
            bodies: Bodies::default(),
            config,
            ledger,
            engine,
        })
    }

    /// Submits a loose transaction to the mempool (checked against the best tip and the pool; see
    /// [`Mempool::insert`]). `now_secs` is not used by the current mempool rules; it is taken so that
    /// time-based policy can come without an API change.
    pub fn submit_tx(&mut self, tx: Transfer, now_secs: u64) -> Result<Inserted, MempoolError> {
        let _ = now_secs;
        self.mempool.insert(tx, &mut self.ledger)
    }

    /// [`Chain::submit_tx`] for a transaction `from` relayed ([`Mempool::insert_relayed`]): an orphan is
    /// held in `from`'s share of the orphan pool and blamed on it if it proves invalid
    /// ([`Chain::take_invalid_orphans`]).
    pub fn submit_relayed_tx(
        &mut self,
        tx: Transfer,
        from: PeerId,
        now_secs: u64,
    ) -> Result<Inserted, MempoolError> {
        let _ = now_secs;
        self.mempool.insert_relayed(tx, from, &mut self.ledger)
    }

    /// The relayed orphans found invalid when their parents came (by a transaction or a block) since
    /// the last call, with the peers that relayed them ([`Mempool::take_invalid_orphans`]).
    pub fn take_invalid_orphans(&mut self) -> Vec<InvalidOrphan> {
        self.mempool.take_invalid_orphans()
    }

    /// The orphans that connected blocks made whole since the last call, oldest first, for the
    /// driver to publish ([`Mempool::take_adopted_by_blocks`]).
    pub fn take_adopted_by_blocks(&mut self) -> Vec<TxId> {
        self.mempool.take_adopted_by_blocks()
    }

    /// Verifies the signatures of transactions about to be submitted one by one, in one batch
    /// ([`Mempool::preverify`]): a node that gathers the transactions relayed within a few milliseconds
    /// pays a batch's price for their signatures. Returns how many were verified and cached.
    pub fn preverify_txs(&mut self, txs: &[Transfer]) -> Result<usize, StoreError> {
        self.mempool.preverify(txs, &mut self.ledger)
    }

    /// The configuration.
    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// The ledger (read-only: blocks change it through the chain).
    pub fn ledger(&self) -> &Ledger<S> {
        &self.ledger
    }

    /// The mempool.
    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }

    /// The consensus engine (header tree, fork choice, finality).
    pub fn engine(&self) -> &Nakamoto {
        &self.engine
    }

    /// Gives the store back (to reopen it, say).
    pub fn into_store(self) -> S {
        self.ledger.into_store()
    }

    /// The tip of the best (connected) chain.
    pub fn tip(&self) -> TipInfo {
        let id = self.engine.active_tip().unwrap_or_default();
        self.tip_info(&id).unwrap_or(TipInfo {
            id,
            height: 0,
            work: 0,
            header: self.engine.header(&id).copied().unwrap_or(BlockHeader {
                version: 0,
                parent: BlockId::ZERO,
                merkle_root: BlockId::ZERO,
                timestamp: 0,
                target: 0,
                nonce: 0,
                height: 0,
            }),
        })
    }

    /// The header with the most work we know of (sync downloads towards it).
    ///
    /// Under the certified rule: the block the engine chose last, if its header is known (sync downloads
    /// towards certified blocks, not the longest chain, which anyone can extend for free).
    pub fn best_header(&self) -> TipInfo {
        let best = match &self.certified {
            Some(certified) => certified.chosen().unwrap_or_else(|| self.tip().id),
            None => self.engine.best_header(),
        };
        self.tip_info(&best).unwrap_or_else(|| self.tip())
    }

    fn tip_info(&self, id: &BlockId) -> Option<TipInfo> {
        let header = *self.engine.header(id)?;
        Some(TipInfo {
            id: *id,
            height: header.height,
            work: self.engine.work(id)?,
            header,
        })
    }

    /// The block at `height` on the chain sync downloads towards: the best header chain under proof of
    /// work, the chosen block's chain under the certified rule (the longest chain there costs nothing
    /// to make).
    pub fn best_chain_at(&self, height: u64) -> Option<BlockId> {
        let Some(_) = &self.certified else {
            return self.engine.best_chain_at(height);
        };
        let best = self.best_header();
        if height > best.height {
            return None;
        }
        // Usually the chosen block is on the longest chain, whose index answers at once; otherwise
        // walk back from it.
        if self.engine.best_chain_at(best.height) == Some(best.id) {
            self.engine.best_chain_at(height)
        } else {
            self.engine.ancestor(&best.id, height)
        }
    }

    /// A known header (in the header index: the best chain, side branches, headers being downloaded).
    pub fn header(&self, id: &BlockId) -> Option<BlockHeader> {
        self.engine.header(id).copied()
    }

    /// A block we hold: connected (from the store) or waiting to be connected.
    pub fn block(&self, id: &BlockId) -> Result<Option<Block>, ChainError> {
        if let Some(block) = self.bodies.get(id) {
            return Ok(Some(block.clone()));
        }
        Ok(self.ledger.store().block(id)?)
    }

    /// The id of the block at `height` on the best chain.
    pub fn block_id_at_height(&self, height: u64) -> Option<BlockId> {
        self.engine.id_at_height(height)
    }

    /// How final block `id` is: by confirmation depth on the best chain under proof of work, by the
    /// last accepted certificate under the certified rule ([`Chain::finalize`]).
    pub fn finality(&self, id: &BlockId) -> Finality {
        match &self.certified {
            Some(certified) => self.certified_finality(certified, id),
            None => self.engine.finality(id),
        }
    }

    /// The compact target a block on `parent` must carry.
    pub fn required_target(&self, parent: &BlockId) -> Option<u32> {
        self.engine.required_target(parent)
    }

    /// The coins `owner` can spend. **Scans the whole UTXO set** ([`ChainStore::coins`]): fine for a
    /// wallet on a small chain, tests and tools; an indexer would keep a per-owner index.
    pub fn coins_of(&self, owner: &PeerId) -> Result<Vec<(OutPoint, Coin)>, ChainError> {
        Ok(self.ledger.store().coins_of(owner)?)
    }

    /// The sum of `owner`'s unspent outputs (confirmed only; immature coinbases included). Scans the
    /// UTXO set, like [`Chain::coins_of`].
    pub fn balance(&self, owner: &PeerId) -> Result<Amount, ChainError> {
        let coins = self.coins_of(owner)?;
        Ok(coins.iter().fold(Amount::ZERO, |sum, (_, coin)| {
            sum.checked_add(coin.output.amount).unwrap_or(sum)
        }))
    }

    /// How many orphan blocks wait for their parent.
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }

    /// Whether `id` waits in the orphan pool.
    pub fn is_orphan(&self, id: &BlockId) -> bool {
        self.orphans.contains(id)
    }

    /// Received blocks not connected yet (ahead of the tip or on side branches): how many, and their
    /// encoded size, which [`ChainConfig::max_unconnected_block_bytes`] bounds.
    pub fn unconnected_blocks(&self) -> (usize, usize) {
        (self.bodies.len(), self.bodies.bytes())
    }

    /// The least work a new header chain must carry to be stored: the tip's work, and at least
    /// [`ChainConfig::min_chain_work`]. Under the certified rule, where every block weighs the same and
    /// a proposal may extend a block below the tip, any chain above the final block qualifies.
    pub fn work_floor(&self) -> u128 {
        if let Some(certified) = &self.certified {
            let final_block = certified.last_final().map(|c| c.block);
            return final_block
                .and_then(|id| self.engine.work(&id))
                .unwrap_or(0)
                .max(self.config.min_chain_work);
        }
        self.tip().work.max(self.config.min_chain_work)
    }
}
