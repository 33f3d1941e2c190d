//! Compact block relay, after BIP152 (Corallo, "Compact Block Relay", 2016) in its low-bandwidth mode:
//! the next block is fetched as its header and a six-byte short id per transaction, and the receiver
//! rebuilds it from its mempool.
//!
//! A new block's transactions have already crossed every link as gossip and wait in the receiver's
//! mempool, so sending them again inside the block doubles what relaying them costs and delays the block
//! by its transfer time. The exchange:
//!
//! 1. `NewTip(header)` arrives (unchanged). If that block extends our tip and is the only block we lack,
//!    we send [`Message::GetCompactBlock`] where we would have sent `GetBlocks` ([`SyncConfig::compact_blocks`],
//!    on by default). A node further behind fetches full blocks: its mempool cannot hold their
//!    transactions.
//! 2. The peer answers [`Message::CompactBlock`]: the header, the coinbase sent whole (no mempool holds
//!    it), and the short id of every other transaction in block order.
//! 3. We look each short id up among our mempool's transactions. If none is missing, the block is
//!    rebuilt in the same round trip a `GetBlocks` takes. Otherwise [`Message::GetBlockTxs`] asks the
//!    same peer for the missing positions and [`Message::BlockTxs`] brings them.
//! 4. The rebuilt block must match its header's merkle root before it goes to the chain. A mismatch (a
//!    short-id collision, or a peer that sent the wrong transactions) falls back to `GetBlocks` from the
//!    same peer.
//!
//! **Short ids.** The first six bytes of blake3, in their own domain, over the block id and the txid.
//! Keyed by the block id, which commits to the transactions and to the proof of work, so a miner cannot
//! aim collisions at mempool transactions without redoing the work (BIP152 keys SipHash with the header
//! and a nonce for the same reason). With `m` mempool transactions and `n` in the block, a chance
//! collision has probability about `n·m / 2⁴⁸`: 3.6 × 10⁻⁷ at 10,000 each. It is caught by the merkle
//! root and costs one full block. A short id that matches two mempool transactions counts as missing.
//!
//! **Bounds.** A peer is asked for at most one block this way at a time, and what it sends is only
//! looked at while we wait for that block: an unsolicited compact block or `BlockTxs` is ignored. The
//! rebuild holds clones of our own mempool's transactions plus what the peer sent within the message
//! limit, and only the block at our tip is fetched compact, so one rebuild runs at a time. It stops,
//! and the full block is asked for, as soon as a short id repeats or the transactions found pass the
//! ledger's `max_block_bytes`: no valid block holds a transaction twice or weighs more, and a compact
//! block of one short id repeated 16,383 times, naming one large mempool transaction, would otherwise
//! have us clone it as often (about a gigabyte) and hash it all. Neither costs the sender anything
//! (a chance collision looks the same), and the full block it then sends is checked as any other. The first
//! request's timer ([`SyncConfig::block_timeout`]) covers the whole exchange, fallback included: a peer
//! that never completes it is dropped as stalled. A compact block whose positions break the rules, or a
//! `BlockTxs` with the wrong number of transactions, is [`Fault::BadCompactBlock`].
//!
//! **Measured.** [`RelayStats`] counts the bytes each relayed block cost the receiver (announcements,
//! requests, answers) against its size: `meshsim coin` and `coin-node bench` report the ratio as
//! `block_relay_bytes_over_block_bytes`.
//!
//! [`SyncConfig::compact_blocks`]: crate::SyncConfig::compact_blocks
//! [`SyncConfig::block_timeout`]: crate::SyncConfig::block_timeout

use std::collections::{HashMap, HashSet};

use meshwork_identity::{Hash, PeerId};
use meshwork_ledger::{Block, BlockHeader, BlockId, ChainStore, MAX_BLOCK_TXS, Mempool, Transaction, TxId};
use meshwork_wire::{BoundedVec, Instant, Output};

use super::ChainSync;
use super::message::{CompactBlock, Message, PrefilledTx, ShortId};
use crate::traits::{BlockRelay, Fault};

/// The blake3 domain of short ids.
pub const SHORT_ID_DOMAIN: &str = "meshwork sync 2026 compact block short id v1";

/// The short id of transaction `txid` in block `block`.
pub fn short_id(block: &BlockId, txid: &TxId) -> ShortId {
    let mut data = [0u8; 64];
    data[..32].copy_from_slice(block.as_bytes());
    data[32..].copy_from_slice(txid.as_bytes());
    let hash = Hash::derive(SHORT_ID_DOMAIN, &data);
    let mut id = [0; 6];
    id.copy_from_slice(&hash.as_bytes()[..6]);
    id
}

/// Why a compact block or its missing transactions cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompactBlockError {
    /// Short ids and prefilled transactions together exceed what a block may hold.
    #[error("{0} transactions, more than a block may hold")]
    TooManyTxs(usize),
    /// No transaction at all: a block holds at least its coinbase.
    #[error("no transactions: a block holds at least its coinbase")]
    Empty,
    /// A prefilled position is not above the one before it, or is past the block's end.
    #[error("prefilled position {index} is out of order or past the block's {len} transactions")]
    BadPrefilledIndex {
        /// The position.
        index: u32,
        /// Transactions in the block.
        len: usize,
    },
    /// A `BlockTxs` does not carry one transaction for each missing position asked for.
    #[error("{got} transactions for {expected} missing positions")]
    WrongTxCount {
        /// Positions asked for.
        expected: usize,
        /// Transactions sent.
        got: usize,
    },
}

impl CompactBlock {
    /// `block` as a compact block: the coinbase prefilled, a short id for every other transaction.
    pub fn of(block: &Block) -> Self {
        let id = block.id();
        let mut short_ids = Vec::with_capacity(block.txs.len().saturating_sub(1));
        let mut prefilled = Vec::new();
        for (index, tx) in block.txs.iter().enumerate() {
            match tx {
                Transaction::Coinbase(_) => prefilled.push(PrefilledTx {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    tx: tx.clone(),
                }),
                Transaction::Transfer(_) => short_ids.push(short_id(&id, &tx.txid())),
            }
        }
        // A block holds at most MAX_BLOCK_TXS transactions, so both lists fit their bounds.
        Self {
            header: block.header,
            short_ids: BoundedVec::try_from(short_ids).unwrap_or_default(),
            prefilled: BoundedVec::try_from(prefilled).unwrap_or_default(),
        }
    }

    /// Transactions in the block.
    pub fn len(&self) -> usize {
        self.short_ids.len() + self.prefilled.len()
    }

    /// Whether it names no transaction (which no valid block does).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether its positions are consistent: at most [`MAX_BLOCK_TXS`] transactions, at least one, and
    /// prefilled positions strictly increasing within the block.
    pub fn check(&self) -> Result<(), CompactBlockError> {
        let len = self.len();
        if len > MAX_BLOCK_TXS {
            return Err(CompactBlockError::TooManyTxs(len));
        }
        if len == 0 {
            return Err(CompactBlockError::Empty);
        }
        let mut next = 0u64;
        for prefilled in &self.prefilled {
            let index = u64::from(prefilled.index);
            if index < next || index >= len as u64 {
                return Err(CompactBlockError::BadPrefilledIndex {
                    index: prefilled.index,
                    len,
                });
            }
            next = index + 1;
        }
        Ok(())
    }
}

/// A block being rebuilt from a compact block: the transactions found so far, and the positions still
/// missing.
#[derive(Debug)]
pub(super) struct Partial {
    id: BlockId,
    header: BlockHeader,
    slots: Vec<Option<Transaction>>,
    missing: Vec<u32>,
}

impl Partial {
    /// Fills `compact`'s positions from its prefilled transactions and from `mempool`, or `None` if
    /// its short ids repeat or what it names weighs more than `max_bytes` (no valid block does; the
    /// module docs say why it matters). `compact` has passed [`CompactBlock::check`].
    fn rebuild(compact: CompactBlock, mempool: &Mempool, max_bytes: usize) -> Option<Self> {
        let id = compact.header.id();
        let distinct: HashSet<&ShortId> = compact.short_ids.iter().collect();
        if distinct.len() != compact.short_ids.len() {
            return None;
        }
        // Weighed before a mempool transaction is cloned, by its encoding (as in the block, within
        // the variant tag).
        let mut bytes = 0usize;
        let mut weigh = |len: usize| {
            bytes = bytes.saturating_add(len);
            bytes <= max_bytes
        };
        let mut slots: Vec<Option<Transaction>> = vec![None; compact.len()];
        for prefilled in compact.prefilled {
            if !weigh(prefilled.tx.encoded_len()) {
                return None;
            }
            slots[prefilled.index as usize] = Some(prefilled.tx);
        }
        // Short id -> the one mempool transaction with it (`None`: several have it, so it is missing).
        let mut by_short: HashMap<ShortId, Option<TxId>> = HashMap::new();
        if !compact.short_ids.is_empty() {
            by_short.reserve(mempool.len());
            for txid in mempool.txids() {
                by_short
                    .entry(short_id(&id, txid))
                    .and_modify(|found| *found = None)
                    .or_insert(Some(*txid));
            }
        }
        let mut missing = Vec::new();
        let mut short_ids = compact.short_ids.into_iter();
        for (index, slot) in slots.iter_mut().enumerate() {
            if slot.is_some() {
                continue;
            }
            let found = short_ids
                .next()
                .and_then(|short| by_short.get(&short).copied().flatten())
                .and_then(|txid| mempool.get(&txid));
            match found {
                Some(tx) => {
                    if !weigh(meshwork_wire::encoded_len(tx).unwrap_or(usize::MAX)) {
                        return None;
                    }
                    *slot = Some(Transaction::Transfer(tx.clone()));
                }
                None => missing.push(u32::try_from(index).unwrap_or(u32::MAX)),
            }
        }
        Some(Self {
            id,
            header: compact.header,
            slots,
            missing,
        })
    }

    /// The block, once nothing is missing, if it matches its header's merkle root.
    fn into_block(self) -> Option<Block> {
        let txs: Vec<Transaction> = self.slots.into_iter().collect::<Option<_>>()?;
        let block = Block {
            header: self.header,
            txs: BoundedVec::try_from(txs).ok()?,
        };
        (block.compute_merkle_root() == block.header.merkle_root).then_some(block)
    }
}

/// Where the relay of the block at our tip stands with one peer (at most one per peer).
#[derive(Debug)]
pub(super) enum Relay {
    /// `GetCompactBlock` sent.
    Compact(BlockId),
    /// `GetBlockTxs` sent for the missing positions.
    Txs(Partial),
    /// `GetBlocks` sent for the block at our tip: compact relay is off, or this is a fallback.
    Full(BlockId),
}

impl Relay {
    /// The block it is for.
    pub(super) fn id(&self) -> BlockId {
        match self {
            Self::Compact(id) | Self::Full(id) => *id,
            Self::Txs(partial) => partial.id,
        }
    }
}

/// What relaying new blocks cost this node as a receiver. A block counts when it arrived as the block
/// extending our tip (compact, or whole when compact relay is off or fell back); blocks downloaded while
/// catching up do not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Blocks received by relay.
    pub blocks: u64,
    /// Their encoded size.
    pub block_bytes: u64,
    /// Sync bytes their relay cost: every `NewTip` received (from each peer that sent one), the
    /// requests sent, the compact blocks, missing transactions and full blocks received.
    pub relay_bytes: u64,
    /// Of `relay_bytes`, the `NewTip` announcements.
    pub announce_bytes: u64,
    /// Blocks rebuilt from a compact block.
    pub rebuilt: u64,
    /// Rebuilt blocks that needed a `GetBlockTxs`.
    pub rebuilt_with_fetch: u64,
    /// Transactions fetched with `GetBlockTxs`.
    pub txs_fetched: u64,
    /// Compact blocks given up for the full block: the rebuilt block did not match its merkle root, or
    /// the compact block repeated a short id or named more than a block's bytes.
    pub fallbacks: u64,
}

/// Sums the figures of several nodes.
impl std::ops::AddAssign for RelayStats {
    fn add_assign(&mut self, other: Self) {
        self.blocks += other.blocks;
        self.block_bytes += other.block_bytes;
        self.relay_bytes += other.relay_bytes;
        self.announce_bytes += other.announce_bytes;
        self.rebuilt += other.rebuilt;
        self.rebuilt_with_fetch += other.rebuilt_with_fetch;
        self.txs_fetched += other.txs_fetched;
        self.fallbacks += other.fallbacks;
    }
}

impl RelayStats {
    /// `relay_bytes / block_bytes` (0 before any block was relayed).
    pub fn bytes_over_block_bytes(&self) -> f64 {
        if self.block_bytes == 0 {
            0.0
        } else {
            self.relay_bytes as f64 / self.block_bytes as f64
        }
    }
}

/// The encoded size of `msg`.
pub(super) fn message_len(msg: &Message) -> u64 {
    meshwork_wire::encoded_len(msg).unwrap_or(0) as u64
}

/// `GetBlocks` for one block.
fn get_block(id: BlockId) -> Message {
    // One id is within any request's bound.
    Message::GetBlocks(BoundedVec::try_from(vec![id]).unwrap_or_default())
}

impl<S: ChainStore> ChainSync<S> {
    /// Asks `peer` for block `id`, which extends our tip: compact if configured, whole otherwise. A peer
    /// still relaying another block to us (a competing tip) is asked for this one as a plain download,
    /// so the relay under way keeps its state and the peer is not later taken for stalled.
    pub(super) fn request_tip_block(&mut self, peer: PeerId, id: BlockId, out: &mut Vec<Output<Self>>) {
        if self.peers.get(&peer).is_some_and(|state| state.relay.is_some()) {
            return self.effects(out).request_blocks(peer, &[id]);
        }
        let (msg, relay) = if self.config.compact_blocks {
            (Message::GetCompactBlock(id), Relay::Compact(id))
        } else {
            (get_block(id), Relay::Full(id))
        };
        self.send_relay(peer, msg, relay, out);
    }

    /// Sends a relay request to `peer`, counts it, and records where the relay stands.
    fn send_relay(&mut self, peer: PeerId, msg: Message, relay: Relay, out: &mut Vec<Output<Self>>) {
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        state.relay = Some(relay);
        self.relay_stats.relay_bytes += message_len(&msg);
        out.push(Output::Send { to: peer, msg });
    }

    /// A `CompactBlock` from `from`, `bytes` long.
    pub(super) fn on_compact_block(
        &mut self,
        now: Instant,
        from: PeerId,
        compact: CompactBlock,
        bytes: u64,
        out: &mut Vec<Output<Self>>,
    ) {
        let id = compact.header.id();
        let Some(state) = self.peers.get_mut(&from) else {
            return;
        };
        if !matches!(state.relay, Some(Relay::Compact(asked)) if asked == id) {
            return;
        }
        self.relay_stats.relay_bytes += bytes;
        if let Err(error) = compact.check() {
            return self.fault(from, Fault::BadCompactBlock(error), out);
        }
        let max_bytes = self.chain.config().ledger.max_block_bytes;
        let Some(partial) = Partial::rebuild(compact, self.chain.mempool(), max_bytes) else {
            self.relay_stats.fallbacks += 1;
            return self.send_relay(from, get_block(id), Relay::Full(id), out);
        };
        if partial.missing.is_empty() {
            return self.rebuilt(now, from, partial, out);
        }
        let indexes = BoundedVec::try_from(partial.missing.clone()).unwrap_or_default();
        let msg = Message::GetBlockTxs { block: id, indexes };
        self.send_relay(from, msg, Relay::Txs(partial), out);
    }

    /// A `BlockTxs` from `from`, `bytes` long.
    pub(super) fn on_block_txs(
        &mut self,
        now: Instant,
        from: PeerId,
        block: BlockId,
        txs: Vec<Transaction>,
        bytes: u64,
        out: &mut Vec<Output<Self>>,
    ) {
        let Some(state) = self.peers.get_mut(&from) else {
            return;
        };
        let Some(Relay::Txs(partial)) = state.relay.take_if(|relay| relay.id() == block) else {
            return;
        };
        let mut partial = partial;
        self.relay_stats.relay_bytes += bytes;
        if txs.len() != partial.missing.len() {
            let error = CompactBlockError::WrongTxCount {
                expected: partial.missing.len(),
                got: txs.len(),
            };
            return self.fault(from, Fault::BadCompactBlock(error), out);
        }
        self.relay_stats.rebuilt_with_fetch += 1;
        self.relay_stats.txs_fetched += txs.len() as u64;
        for (index, tx) in std::mem::take(&mut partial.missing).into_iter().zip(txs) {
            partial.slots[index as usize] = Some(tx);
        }
        self.rebuilt(now, from, partial, out);
    }

    /// Every position of `partial` is filled: the block goes to the chain if it matches its merkle
    /// root, or is asked for whole from the same peer.
    fn rebuilt(&mut self, now: Instant, from: PeerId, partial: Partial, out: &mut Vec<Output<Self>>) {
        let id = partial.id;
        match partial.into_block() {
            // `received_block` ends the relay.
            Some(block) => {
                self.relay_stats.rebuilt += 1;
                self.count_block(block.encoded_len() as u64);
                self.received_block(now, from, block, out);
            }
            None => {
                self.relay_stats.fallbacks += 1;
                self.send_relay(from, get_block(id), Relay::Full(id), out);
            }
        }
    }

    /// A whole block from `from`: if it is the relayed block we asked it for, its bytes count.
    pub(super) fn count_relayed_block(&mut self, from: &PeerId, block: &Block) {
        let Some(state) = self.peers.get_mut(from) else {
            return;
        };
        if state
            .relay
            .take_if(|relay| matches!(relay, Relay::Full(id) if *id == block.id()))
            .is_some()
        {
            // The message is the block behind a one-byte variant tag.
            let bytes = block.encoded_len() as u64;
            self.relay_stats.relay_bytes += bytes + 1;
            self.count_block(bytes);
        }
    }

    /// A block of `bytes` arrived by relay.
    fn count_block(&mut self, bytes: u64) {
        self.relay_stats.blocks += 1;
        self.relay_stats.block_bytes += bytes;
    }
}
