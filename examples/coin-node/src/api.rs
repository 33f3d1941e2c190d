//! [`NodeApi`]: the node's operations for the RPC server, the devnet and the tests, over the app's handle.
//! Reads that answer from memory (tip, status, mempool) run inside the node task; reads that scan
//! (balances, coins, old transactions) run on blocking threads against the store's committed state, so
//! RPC load never stalls relay.

use std::net::SocketAddr;

use meshwork_consensus::{ChainError, Finality};
use meshwork_identity::{Keypair, PeerId};
use meshwork_ledger::{Amount, Block, BlockId, OutPoint, RedbReader, StoreError, Transfer, TxId};
use meshwork_node::{Handle, Node, NodeError};
use serde::{Deserialize, Serialize};

use meshwork_coin::{CoinCommand, SubmitError, Submitted};

use crate::node::App;

pub use meshwork_coin::txid_of;

/// Blocks scanned back from the tip by [`NodeApi::transaction`] (a linear scan: there is no txid index).
pub const TX_SCAN_DEPTH: u64 = 1000;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The node has stopped.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The chain's store failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The chain database, read off the node task.
    #[error("chain database: {0}")]
    Store(#[from] StoreError),
    /// The chain moved on while it was being read, every time; try again.
    #[error("the chain moved while it was read; try again")]
    Busy,
    /// The mempool refused the transaction.
    #[error("transaction rejected: {0}")]
    Rejected(String),
    /// The node sends faster than most of its gossip neighbours read: it relays what it holds before
    /// it takes more local transactions (`AppConfig::links_full_hold`). Submit again shortly.
    #[error("busy: the send queues to {full} of {neighbours} gossip neighbours are full; try again shortly")]
    LinksFull {
        /// Neighbours whose send queue dropped data lately.
        full: usize,
        /// Neighbours in gossip's active view.
        neighbours: usize,
    },
}

/// A summary of the node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The node's identity.
    pub peer_id: PeerId,
    /// Its QUIC address.
    pub listen: SocketAddr,
    /// The wallet's address (coinbases pay it).
    pub wallet: PeerId,
    /// The tip's height.
    pub height: u64,
    /// The tip's id.
    pub tip: BlockId,
    /// The height of the best header known: the tip catches up to it while the node syncs.
    pub headers: u64,
    /// Connected peers.
    pub peers: usize,
    /// Transactions in the mempool.
    pub mempool: usize,
    /// Whether the tip is the best header known.
    pub synced: bool,
    /// Whether the miner runs.
    pub mining: bool,
    /// The highest block known to be final: under BFT the last finality certificate's, under proof of
    /// work the deepest block at the finality depth. `None` before any is.
    pub final_height: Option<u64>,
    /// A BFT validator's current view (`None` on other nodes). Views beyond the blocks made were
    /// skipped: `view - height` counts the timeouts since genesis.
    pub view: Option<u64>,
}

/// A block as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    /// Its id.
    pub id: BlockId,
    /// Its height.
    pub height: u64,
    /// Its parent's id.
    pub parent: BlockId,
    /// Unix seconds.
    pub timestamp: u64,
    /// Compact target.
    pub target: u32,
    /// The nonce.
    pub nonce: u64,
    /// Its transactions' ids, coinbase first.
    pub txids: Vec<TxId>,
}

/// Where a transaction is: on the wire, the lowercase word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxStatus {
    /// Waiting in the mempool.
    Mempool,
    /// In a block of the best chain.
    Confirmed,
}

/// A transaction as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxView {
    /// Its id.
    pub txid: TxId,
    /// In the mempool or confirmed.
    pub status: TxStatus,
    /// The block holding it, if confirmed.
    pub block: Option<BlockId>,
    /// That block's height.
    pub height: Option<u64>,
    /// The encoded transaction (postcard, hex).
    pub raw: String,
    /// Whether its block is final (JSON `final`): under BFT once a certificate commits it (what a
    /// payment waits for), under proof of work at the finality depth.
    #[serde(rename = "final", default)]
    pub is_final: bool,
}

/// The node's operations. Cheap to clone.
#[derive(Clone, Debug)]
pub struct NodeApi {
    node: Node,
    app: Handle<App>,
    /// The chain database's committed state, for scans that must not stall the node task.
    reader: RedbReader,
    wallet: std::sync::Arc<Keypair>,
    mining: bool,
    /// Block header hashes the miner has tried (shared with it).
    hashes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// How many times a read that must match the node's tip is tried.
const SNAPSHOT_TRIES: usize = 5;

/// Runs a store read on a blocking thread, so scans never hold up the node task (or tokio's workers).
async fn off_task<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(read).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(ApiError::Node(NodeError::Stopped)),
    }
}

fn block_view(block: &Block) -> BlockView {
    BlockView {
        id: block.id(),
        height: block.header.height,
        parent: block.header.parent,
        timestamp: block.header.timestamp,
        target: block.header.target,
        nonce: block.header.nonce,
        txids: block.txids(),
    }
}

impl NodeApi {
    pub(crate) fn new(
        node: Node,
        app: Handle<App>,
        reader: RedbReader,
        wallet: Keypair,
        mining: bool,
    ) -> Self {
        Self {
            node,
            app,
            reader,
            wallet: std::sync::Arc::new(wallet),
            mining,
            hashes: std::sync::Arc::default(),
        }
    }

    /// The node runtime's control handle.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The coin's logic (which owns the chain, gossip and Kademlia).
    pub fn app(&self) -> &Handle<App> {
        &self.app
    }

    /// The wallet's key.
    pub fn wallet(&self) -> &Keypair {
        &self.wallet
    }

    /// Block header hashes this node's miner has tried (proof-of-work attempts).
    pub fn hashes_tried(&self) -> u64 {
        self.hashes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts `n` more hashes tried.
    pub(crate) fn add_hashes(&self, n: u64) {
        self.hashes.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// The tip's height and id.
    pub async fn tip(&self) -> Result<(u64, BlockId), ApiError> {
        Ok(self
            .app
            .with(|s| {
                let tip = s.chain().tip();
                (tip.height, tip.id)
            })
            .await?)
    }

    /// A summary of the node.
    pub async fn status(&self) -> Result<Status, ApiError> {
        let peers = self.node.peers().await?.len();
        let (height, tip, headers, mempool, synced, final_height, view) = self
            .app
            .with(|s| {
                let chain = s.chain();
                let tip = chain.tip();
                let final_height = if chain.is_certified() {
                    chain.final_certificate().map(|c| c.height)
                } else {
                    (tip.height + 1).checked_sub(chain.config().finality_depth.max(1))
                };
                (
                    tip.height,
                    tip.id,
                    chain.best_header().height,
                    chain.mempool().len(),
                    s.sync().is_synced(),
                    final_height,
                    s.bft().map(|engine| engine.view()),
                )
            })
            .await?;
        Ok(Status {
            peer_id: self.node.peer_id(),
            listen: self.node.local_addr(),
            wallet: self.wallet.peer_id(),
            height,
            tip,
            headers,
            peers,
            mempool,
            synced,
            mining: self.mining,
            final_height,
            view,
        })
    }

    /// The block at `height` on the best chain.
    pub async fn block_at(&self, height: u64) -> Result<Option<BlockView>, ApiError> {
        let block = self
            .app
            .with(move |s| match s.chain().block_id_at_height(height) {
                Some(id) => s.chain().block(&id),
                None => Ok(None),
            })
            .await??;
        Ok(block.as_ref().map(block_view))
    }

    /// The last `count` blocks of the best chain, newest first, read in one visit to the node task.
    pub async fn recent_blocks(&self, count: u64) -> Result<Vec<BlockView>, ApiError> {
        let blocks = self
            .app
            .with(move |s| {
                let chain = s.chain();
                let tip = chain.tip().height;
                let mut blocks = Vec::new();
                for height in (tip.saturating_sub(count.saturating_sub(1))..=tip).rev() {
                    if let Some(id) = chain.block_id_at_height(height) {
                        blocks.extend(chain.block(&id)?);
                    }
                }
                Ok::<_, ChainError>(blocks)
            })
            .await??;
        Ok(blocks.iter().map(block_view).collect())
    }

    /// The block `id` (best chain or not, if stored).
    pub async fn block(&self, id: BlockId) -> Result<Option<BlockView>, ApiError> {
        let block = self.app.with(move |s| s.chain().block(&id)).await??;
        Ok(block.as_ref().map(block_view))
    }

    /// The transaction `txid`, from the mempool or the last [`TX_SCAN_DEPTH`] blocks of the best chain.
    /// The node task only answers from the mempool and lists the block ids (both in memory); the blocks
    /// are read and searched on a blocking thread, from the store's committed state.
    pub async fn transaction(&self, txid: TxId) -> Result<Option<TxView>, ApiError> {
        let (pooled, ids) = self
            .app
            .with(move |app| {
                let chain = app.chain();
                if let Some(tx) = chain.mempool().get(&txid) {
                    return (Some(meshwork_wire::encode(tx).unwrap_or_default()), Vec::new());
                }
                let tip = chain.tip().height;
                let ids = (tip.saturating_sub(TX_SCAN_DEPTH)..=tip)
                    .rev()
                    .filter_map(|height| chain.block_id_at_height(height).map(|id| (height, id)))
                    .collect::<Vec<_>>();
                (None, ids)
            })
            .await?;
        if let Some(raw) = pooled {
            return Ok(Some(TxView {
                txid,
                status: TxStatus::Mempool,
                block: None,
                height: None,
                raw: hex::encode(raw),
                is_final: false,
            }));
        }
        let reader = self.reader.clone();
        let found = off_task(move || -> Result<Option<TxView>, StoreError> {
            for (height, id) in ids {
                let Some(block) = reader.block(&id)? else {
                    continue;
                };
                if let Some(tx) = block.txs.iter().find(|tx| tx.txid() == txid) {
                    return Ok(Some(TxView {
                        txid,
                        status: TxStatus::Confirmed,
                        block: Some(id),
                        height: Some(height),
                        raw: hex::encode(tx.to_bytes()),
                        is_final: false,
                    }));
                }
            }
            Ok(None)
        })
        .await?;
        let Some(mut view) = found else {
            return Ok(None);
        };
        if let Some(block) = view.block {
            view.is_final = self
                .app
                .with(move |app| matches!(app.chain().finality(&block), Finality::Final { .. }))
                .await?;
        }
        Ok(Some(view))
    }

    /// The confirmed balance of `owner` (a scan of the UTXO set, off the node task).
    pub async fn balance(&self, owner: PeerId) -> Result<Amount, ApiError> {
        let reader = self.reader.clone();
        let (_, coins) = off_task(move || reader.coins_of(&owner)).await?;
        Ok(coins.iter().fold(Amount::ZERO, |sum, (_, coin)| {
            sum.checked_add(coin.output.amount).unwrap_or(sum)
        }))
    }

    /// Up to `limit` of the mempool's transactions, by id (the pool keeps no order worth showing).
    pub async fn mempool(&self, limit: usize) -> Result<Vec<TxId>, ApiError> {
        Ok(self
            .app
            .with(move |s| {
                let mut txids: Vec<TxId> = s.chain().mempool().txids().copied().collect();
                txids.sort_unstable();
                txids.truncate(limit);
                txids
            })
            .await?)
    }

    /// Whether `txid` is in the mempool.
    pub async fn in_mempool(&self, txid: TxId) -> Result<bool, ApiError> {
        Ok(self
            .app
            .with(move |s| s.chain().mempool().contains(&txid))
            .await?)
    }

    /// The confirmed coins of `owner` that no mempool transaction spends yet (mature or not). The coins
    /// are read off the node task, together with the tip they are the state of; the node task checks
    /// them against the mempool only if its tip is still that one (a map lookup per coin), so a block
    /// connected in between never makes a spent coin look spendable. A tip that keeps moving is read
    /// again, a few times at most.
    pub async fn spendable(&self, owner: PeerId) -> Result<Vec<(OutPoint, Amount)>, ApiError> {
        for _ in 0..SNAPSHOT_TRIES {
            let reader = self.reader.clone();
            let (tip, coins) = off_task(move || reader.coins_of(&owner)).await?;
            let Some(tip) = tip else {
                return Ok(Vec::new());
            };
            let checked = self
                .app
                .with(move |app| {
                    let chain = app.chain();
                    if chain.tip().id != tip.id {
                        return None;
                    }
                    let maturity = chain.config().ledger.coinbase_maturity;
                    let spendable = coins
                        .into_iter()
                        .filter(|(point, coin)| {
                            chain.mempool().spender(point).is_none()
                                && (!coin.coinbase || coin.height + maturity <= tip.height + 1)
                        })
                        .map(|(point, coin)| (point, coin.output.amount))
                        .collect();
                    Some(spendable)
                })
                .await?;
            if let Some(spendable) = checked {
                return Ok(spendable);
            }
        }
        Err(ApiError::Busy)
    }

    /// Adds a local transaction to the mempool, publishes it on gossip (an orphan once its parents
    /// come), and keeps publishing it until a block takes it (the app's rebroadcast timer).
    pub async fn submit_tx(&self, tx: Transfer) -> Result<TxId, ApiError> {
        Ok(match self.submit(tx).await? {
            Submitted::Accepted(txid) | Submitted::Orphan(txid) => txid,
        })
    }

    /// Submits a transaction and says what became of it: in the mempool ([`Submitted::Accepted`]), or
    /// held as an orphan until its parents arrive ([`Submitted::Orphan`]: not verified against its
    /// inputs yet). A refusal is [`ApiError::Rejected`] with the reason, or [`ApiError::LinksFull`]
    /// while the node's links are full (try again shortly).
    pub async fn submit(&self, tx: Transfer) -> Result<Submitted, ApiError> {
        self.app
            .call(move |app, now, out| app.submit_local_tx(now, tx, out))
            .await?
            .map_err(|e| match e {
                SubmitError::LinksFull { full, neighbours } => ApiError::LinksFull { full, neighbours },
                e => ApiError::Rejected(e.to_string()),
            })
    }

    /// Submits a block the local miner found: connected, and announced to every sync peer.
    pub async fn submit_block(&self, block: Block) -> Result<(), ApiError> {
        Ok(self.app.command(CoinCommand::SubmitBlock(block)).await?)
    }
}
