//! Submitting blocks: header and body checks, orphans, fork choice and reorganisations.

use meshwork_ledger::{Block, BlockId, ChainStore, Mempool};

use super::{Chain, TipInfo};
use crate::error::ChainError;
use crate::pow::{HeaderCheck, Target};
use crate::traits::{BlockValidator, Consensus, InvalidReason, Verdict};

/// Where a submitted block ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockStatus {
    /// On the best chain (connected now or before). Verdict: valid.
    Active,
    /// Stored on a branch with no more work than the best chain. Its contents are only checked if the
    /// branch overtakes the best chain. Verdict: not yet known.
    SideChain,
    /// Its parent is unknown: it waits in the orphan pool. Verdict: not yet known.
    Orphan,
    /// Its timestamp is too far ahead of `now`, or (certified chains) it is further above the final
    /// block than [`UNCERTIFIED_HORIZON`](crate::UNCERTIFIED_HORIZON): dropped, it may be
    /// submitted again later. Verdict: not yet known.
    TooNew,
    /// Its chain carries less work than our tip (or the minimum chain work): dropped. Verdict: not yet
    /// known.
    InsufficientWork,
    /// Breaks a rule (or descends from a block that does). Verdict: invalid.
    Rejected,
}

/// What [`Chain::submit_block`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockOutcome {
    /// The submitted block's id.
    pub id: BlockId,
    /// Where it ended up.
    pub status: BlockStatus,
    /// The verdict on it (see [`BlockStatus`] for the mapping).
    pub verdict: Verdict,
    /// Blocks connected, in order (a failed reorg may connect blocks it later disconnects).
    pub connected: Vec<BlockId>,
    /// Blocks disconnected, in order (tip first).
    pub disconnected: Vec<BlockId>,
    /// Blocks found invalid while connecting or adopting orphans (possibly others than the submitted one).
    pub invalidated: Vec<(BlockId, InvalidReason)>,
    /// Orphans that found their parent thanks to this block and were stored.
    pub adopted: Vec<BlockId>,
    /// The best chain's tip afterwards.
    pub tip: TipInfo,
}

impl BlockOutcome {
    /// Whether the best chain changed.
    pub fn tip_changed(&self) -> bool {
        !self.connected.is_empty() || !self.disconnected.is_empty()
    }
}

/// Changes made while processing one submission.
#[derive(Default)]
pub(super) struct Changes {
    pub(super) connected: Vec<BlockId>,
    pub(super) disconnected: Vec<BlockId>,
    pub(super) invalidated: Vec<(BlockId, InvalidReason)>,
    pub(super) adopted: Vec<BlockId>,
}

enum Accept {
    /// Header in the tree, body held.
    InTree,
    Orphan,
    TooNew,
    LowWork,
    Rejected(InvalidReason),
}

impl<S: ChainStore> Chain<S> {
    /// Submits a full block at `now_secs` (Unix seconds): checks its header (proof of work, ASERT target,
    /// timestamps) and its body against the header, stores it, adopts orphans waiting for it, then moves
    /// the best chain to the valid chain with the most work, disconnecting and connecting blocks as
    /// needed. Transactions of disconnected blocks go back to the mempool; those of connected blocks
    /// leave it.
    pub fn submit_block(&mut self, block: Block, now_secs: u64) -> Result<BlockOutcome, ChainError> {
        let id = block.id();
        let mut changes = Changes::default();
        let accept = self.accept_block(block, now_secs)?;
        if matches!(accept, Accept::InTree) {
            self.adopt_orphans(id, now_secs, &mut changes)?;
        }
        self.activate(now_secs, &mut changes)?;
        let (status, verdict) = match accept {
            Accept::InTree if self.engine.is_active(&id) => (BlockStatus::Active, Verdict::Valid),
            Accept::InTree => match changes.invalidated.iter().find(|(bad, _)| *bad == id) {
                Some((_, reason)) => (BlockStatus::Rejected, Verdict::Invalid(reason.clone())),
                None if self.engine.is_known_invalid(&id) => (
                    BlockStatus::Rejected,
                    Verdict::Invalid(InvalidReason::InvalidAncestor),
                ),
                None => (BlockStatus::SideChain, Verdict::NotYetKnown),
            },
            Accept::Orphan => (BlockStatus::Orphan, Verdict::NotYetKnown),
            Accept::TooNew => (BlockStatus::TooNew, Verdict::NotYetKnown),
            Accept::LowWork => (BlockStatus::InsufficientWork, Verdict::NotYetKnown),
            Accept::Rejected(reason) => (BlockStatus::Rejected, Verdict::Invalid(reason)),
        };
        Ok(BlockOutcome {
            id,
            status,
            verdict,
            connected: changes.connected,
            disconnected: changes.disconnected,
            invalidated: changes.invalidated,
            adopted: changes.adopted,
            tip: self.tip(),
        })
    }

    /// Header rules, then body rules, then keeps the body. Does not connect anything.
    fn accept_block(&mut self, block: Block, now_secs: u64) -> Result<Accept, ChainError> {
        let header = block.header;
        let id = block.id();
        self.orphans.remove(&id);
        if let Some(reason) = self.engine.known_invalid(&header) {
            if reason == InvalidReason::InvalidAncestor {
                self.engine.remember_invalid(id);
            }
            return Ok(Accept::Rejected(reason));
        }
        if self.engine.has_block(&id) {
            return Ok(Accept::InTree);
        }
        if self.engine.header(&id).is_none() {
            if self.beyond_horizon(header.height) {
                return Ok(Accept::TooNew);
            }
            let Some(parent) = self.engine.context(&header.parent) else {
                return Ok(self.add_orphan(block));
            };
            match self.engine.check_with(&header, &parent, now_secs) {
                HeaderCheck::Invalid(reason) => {
                    self.engine.remember_invalid(id);
                    return Ok(Accept::Rejected(reason));
                }
                HeaderCheck::TooNew => return Ok(Accept::TooNew),
                HeaderCheck::Valid { work } if work < self.work_floor() => return Ok(Accept::LowWork),
                HeaderCheck::Valid { work } => self.engine.insert(header, work),
            }
        }
        let computed = block.compute_merkle_root();
        if computed != header.merkle_root {
            // Only this copy is bad: the header stays, and another peer may send the right body.
            return Ok(Accept::Rejected(InvalidReason::BodyMismatch(format!(
                "merkle root {computed:?}, header says {:?}",
                header.merkle_root
            ))));
        }
        let size = block.encoded_len();
        if size > self.config.ledger.max_block_bytes {
            self.engine.invalidate(&id);
            return Ok(Accept::Rejected(InvalidReason::Contents(format!(
                "block of {size} bytes exceeds {}",
                self.config.ledger.max_block_bytes
            ))));
        }
        self.bodies.insert(id, block);
        self.engine.on_block_verdict(&id, &Verdict::Valid);
        Ok(Accept::InTree)
    }

    /// Keeps a block whose parent is unknown, if it at least carries the work its own target claims
    /// and is no larger than a block may be: the pool holds `max_orphan_blocks` of them, so at most
    /// that many full blocks' bytes (a sync message may be four times a block).
    fn add_orphan(&mut self, block: Block) -> Accept {
        let size = block.encoded_len();
        if size > self.config.ledger.max_block_bytes {
            return Accept::Rejected(InvalidReason::Contents(format!(
                "orphan block of {size} bytes exceeds {}",
                self.config.ledger.max_block_bytes
            )));
        }
        let target = match Target::from_compact(block.header.target) {
            Ok(target) => target,
            Err(error) => return Accept::Rejected(InvalidReason::BadCompactTarget(error)),
        };
        let limit = self.engine.asert().pow_limit;
        let unworked = if self.engine.certified {
            target != limit
        } else {
            !target.is_met_by(&block.id())
        };
        if target > limit || unworked {
            return Accept::Rejected(InvalidReason::HighHash);
        }
        self.orphans.insert(block);
        Accept::Orphan
    }

    /// Accepts the orphans waiting for `parent`, and theirs, recursively.
    fn adopt_orphans(
        &mut self,
        parent: BlockId,
        now_secs: u64,
        changes: &mut Changes,
    ) -> Result<(), ChainError> {
        let mut queue = vec![parent];
        while let Some(parent) = queue.pop() {
            for orphan in self.orphans.take_children(&parent) {
                let id = orphan.id();
                match self.accept_block(orphan, now_secs)? {
                    Accept::InTree => {
                        changes.adopted.push(id);
                        queue.push(id);
                    }
                    Accept::Rejected(reason) => changes.invalidated.push((id, reason)),
                    Accept::Orphan | Accept::TooNew | Accept::LowWork => {}
                }
            }
        }
        Ok(())
    }

    /// Moves the active chain to the best candidate: disconnect down to the fork point, connect up the
    /// new branch; a block that fails drops out of fork choice (with its descendants) and we start over.
    pub(super) fn activate(&mut self, now_secs: u64, changes: &mut Changes) -> Result<(), ChainError> {
        'choose: while let Some(best) = self.next_tip() {
            if self.engine.active_tip() == Some(best) {
                break;
            }
            let mut path = Vec::new();
            let mut cursor = best;
            while !self.engine.is_active(&cursor) {
                path.push(cursor);
                cursor = self
                    .engine
                    .header(&cursor)
                    .ok_or(ChainError::MissingBlock(cursor))?
                    .parent;
            }
            while self.engine.active_tip() != Some(cursor) {
                let block = self.ledger.disconnect()?;
                self.engine.pop_active();
                changes.disconnected.push(block.id());
                self.mempool.block_disconnected(&block, &mut self.ledger);
            }
            for id in path.into_iter().rev() {
                let block = match self.bodies.get(&id) {
                    Some(block) => block.clone(),
                    None => self
                        .ledger
                        .store()
                        .block(&id)?
                        .ok_or(ChainError::MissingBlock(id))?,
                };
                let work = self.engine.work(&id).ok_or(ChainError::MissingBlock(id))?;
                match self.ledger.connect(&block, work, now_secs)? {
                    Verdict::Valid => {
                        self.engine.push_active(id);
                        self.bodies.remove(&id);
                        self.mempool.block_connected(&block, &mut self.ledger);
                        changes.connected.push(id);
                    }
                    Verdict::Invalid(reason) => {
                        for bad in self.engine.invalidate(&id) {
                            self.bodies.remove(&bad);
                        }
                        changes.invalidated.push((id, reason));
                        continue 'choose;
                    }
                    // Too far ahead of our clock for now: stay where we are until a later call.
                    Verdict::NotYetKnown => break 'choose,
                }
            }
        }
        self.engine.settle();
        if !changes.disconnected.is_empty() {
            self.rebuild_mempool();
        }
        self.evict_bodies();
        Ok(())
    }

    /// After a reorg: re-checks every pool transaction against the new tip (parents first), dropping
    /// those the reorg made invalid (spends of a disconnected coinbase, say). Orphan transactions are lost.
    fn rebuild_mempool(&mut self) {
        let txs = self.mempool.block_template(usize::MAX).txs;
        self.mempool = Mempool::new(self.config.mempool.clone());
        for tx in txs {
            // Those that fail are exactly the ones the reorg invalidated.
            let _ = self.mempool.insert(tx, &mut self.ledger);
        }
    }

    /// Keeps the waiting bodies within their byte bound: side branches go first (least work first),
    /// then the best header chain from its far end, so the blocks needed next stay.
    fn evict_bodies(&mut self) {
        for id in self.bodies.ids() {
            if self.engine.header(&id).is_none() || self.engine.is_active(&id) {
                self.bodies.remove(&id);
            }
        }
        if self.bodies.bytes() <= self.config.max_unconnected_block_bytes {
            return;
        }
        let mut victims: Vec<(bool, u128, BlockId)> = self
            .bodies
            .ids()
            .into_iter()
            .map(|id| {
                let height = self.engine.header(&id).map_or(0, |header| header.height);
                let on_best = self.best_chain_at(height) == Some(id);
                let rank = if on_best {
                    u128::MAX - u128::from(height)
                } else {
                    self.engine.work(&id).unwrap_or(0)
                };
                (on_best, rank, id)
            })
            .collect();
        victims.sort_unstable();
        for (_, _, id) in victims {
            if self.bodies.bytes() <= self.config.max_unconnected_block_bytes {
                break;
            }
            self.bodies.remove(&id);
            self.engine.unset_data(&id);
        }
    }
}
