//! [`Nakamoto`]: the proof-of-work engine. Header rules, the header tree, fork choice by cumulative work,
//! the active chain and finality by depth.

use std::collections::{HashSet, VecDeque};

use meshwork_identity::Hash;
use meshwork_ledger::{BlockHeader, BlockId};

use super::asert::{Asert, AsertAnchor};
use super::rules::HeaderCheck;
use super::target::Target;
use super::tree::HeaderTree;
use crate::config::ChainConfig;
use crate::error::ChainError;
use crate::traits::{Consensus, Finality, FinalityProof, Verdict};

/// How far ahead of `now` a header's timestamp may be, in ASERT half-lives, at most: the engine's future
/// bound is `min(ledger.max_future_secs, MAX_FUTURE_HALF_LIVES × half_life)`.
///
/// Why: ASERT is scheduled from timestamps, and every `half_life` seconds a chain's timestamps run ahead
/// of its schedule halves the difficulty (doubles the target). A miner may date a block up to the future
/// bound ahead of the honest clocks, and once it holds the majority of the median-time-past window (6 of
/// 11 blocks) every honest block must be dated after it too, so the whole chain carries that lead until
/// the clocks catch up. With the ledger's two hours and a 30-second half-life (the coin devnet) that is
/// 7,200 / 30 = 240 half-lives, a factor of 2^240: any target hits the proof-of-work limit, and it takes
/// the two hours of lead at 4-second blocks, about 1,800 blocks (~2,000 with the settling), to climb back.
/// Bitcoin Cash pairs the same two hours with a two-day half-life: 7,200 / 172,800 = 0.04 half-lives,
/// a 3 % easing (aserti3-2d specification).
///
/// Bounding the lead by 4 half-lives bounds the easing by 2^4 = 16 whatever the parameters: with a 30 s
/// half-life the future bound is 120 s (still far above the clock skew of honest nodes), and the lead is
/// gone after 120 / 4 = 30 blocks on schedule. With the default two-day half-life (and regtest's hour)
/// the ledger's two hours is the smaller bound and nothing changes. A header past the bound is only *not
/// yet* valid ([`Verdict::NotYetKnown`]): it is taken once the clock gets there.
pub const MAX_FUTURE_HALF_LIVES: u64 = 4;

/// The Nakamoto consensus engine (Nakamoto, *Bitcoin: A Peer-to-Peer Electronic Cash System*, 2008):
/// the valid chain with the most cumulative proof of work is the best chain; the first seen wins ties.
///
/// It keeps the tree of accepted headers (bounded), the **active chain** (what the ledger has connected,
/// by height) and the **best header chain** (what we know of and are downloading towards).
#[derive(Debug)]
pub struct Nakamoto {
    pub(crate) tree: HeaderTree,
    pub(super) asert: Asert,
    pub(super) max_future_secs: u64,
    pub(super) median_time_span: usize,
    /// [`LedgerConfig::timestamp_may_equal_median`](meshwork_ledger::LedgerConfig::timestamp_may_equal_median).
    pub(super) may_equal_median: bool,
    finality_depth: u64,
    active: Vec<BlockId>,
    best_chain: Vec<BlockId>,
    pub(super) invalid: HashSet<BlockId>,
    invalid_order: VecDeque<BlockId>,
    max_invalid: usize,
    /// [`ChainRule::Certified`](crate::ChainRule::Certified): headers carry no proof of work, their
    /// target is always the limit, and finality is the chain's (certificates), not depth.
    pub(crate) certified: bool,
    /// Header lines kept from pruning besides the tip's and the best header's: on a certified chain,
    /// the lines the chosen download peers deliver toward a final block whose header is not known
    /// yet (set by sync, `Chain::pin_header_lines`).
    pinned: Vec<BlockId>,
}

impl Nakamoto {
    /// An engine whose chain starts at `genesis` (not connected yet: the active chain holds it once the
    /// caller has connected it). The genesis header must meet its own
    /// target, which must be at most the proof-of-work limit; it becomes the ASERT anchor.
    pub fn new(genesis: &BlockHeader, config: &ChainConfig) -> Result<Self, ChainError> {
        let pow_limit =
            Target::from_compact(config.pow_limit).map_err(|_| ChainError::Config("pow_limit"))?;
        if config.target_block_time == 0 || config.half_life == 0 {
            return Err(ChainError::Config(
                "target_block_time and half_life must be positive",
            ));
        }
        let bad = |what: &str| ChainError::InvalidGenesis(what.to_owned());
        if genesis.parent != Hash::ZERO || genesis.height != 0 {
            return Err(bad("a genesis block has height 0 and no parent"));
        }
        let target = Target::from_compact(genesis.target).map_err(|e| bad(&e.to_string()))?;
        if target > pow_limit {
            return Err(bad("target easier than the proof-of-work limit"));
        }
        if !target.is_met_by(&genesis.id()) {
            return Err(bad("id above its target"));
        }
        let asert = Asert {
            anchor: AsertAnchor {
                height: 0,
                parent_time: genesis.timestamp.saturating_sub(config.target_block_time),
                target,
            },
            target_block_time: config.target_block_time,
            half_life: config.half_life,
            pow_limit,
        };
        Ok(Self {
            tree: HeaderTree::new(*genesis, target.work(), config.max_headers),
            asert,
            max_future_secs: config
                .ledger
                .max_future_secs
                .min(MAX_FUTURE_HALF_LIVES.saturating_mul(config.half_life)),
            median_time_span: config.ledger.median_time_span.max(1),
            may_equal_median: config.ledger.timestamp_may_equal_median,
            finality_depth: config.finality_depth,
            active: Vec::new(),
            best_chain: vec![genesis.id()],
            invalid: HashSet::new(),
            invalid_order: VecDeque::new(),
            max_invalid: config.max_invalid_remembered,
            certified: matches!(config.rule, crate::config::ChainRule::Certified(_)),
            pinned: Vec::new(),
        })
    }

    /// The ASERT parameters (anchored at the genesis block).
    pub fn asert(&self) -> &Asert {
        &self.asert
    }

    /// How far ahead of `now` a header's timestamp may be, in seconds: the ledger's
    /// `max_future_secs`, or [`MAX_FUTURE_HALF_LIVES`] half-lives if that is less.
    pub fn max_future_secs(&self) -> u64 {
        self.max_future_secs
    }

    /// The compact target a child of `parent` must carry (`None` if `parent` is unknown).
    pub fn required_target(&self, parent: &BlockId) -> Option<u32> {
        let node = self.tree.get(parent)?;
        if self.certified {
            return Some(self.asert.pow_limit.to_compact());
        }
        Some(
            self.asert
                .next_target(node.header.height, node.header.timestamp)
                .to_compact(),
        )
    }

    /// A known header.
    pub fn header(&self, id: &BlockId) -> Option<&BlockHeader> {
        self.tree.get(id).map(|node| &node.header)
    }

    /// The cumulative work of the chain ending at `id`.
    pub fn work(&self, id: &BlockId) -> Option<u128> {
        self.tree.get(id).map(|node| node.work)
    }

    /// Whether `id`'s body is stored.
    pub fn has_block(&self, id: &BlockId) -> bool {
        self.tree.get(id).is_some_and(|node| node.has_data)
    }

    /// How many headers the tree holds.
    pub fn header_count(&self) -> usize {
        self.tree.len()
    }

    /// Whether `id` was found invalid (and is still remembered).
    pub fn is_known_invalid(&self, id: &BlockId) -> bool {
        self.invalid.contains(id)
    }

    /// The tip of the active (connected) chain.
    pub fn active_tip(&self) -> Option<BlockId> {
        self.active.last().copied()
    }

    /// The block at `height` on the active chain.
    pub fn id_at_height(&self, height: u64) -> Option<BlockId> {
        usize::try_from(height)
            .ok()
            .and_then(|h| self.active.get(h).copied())
    }

    /// Whether `id` is on the active chain.
    pub fn is_active(&self, id: &BlockId) -> bool {
        self.tree
            .get(id)
            .is_some_and(|node| self.id_at_height(node.header.height) == Some(*id))
    }

    /// The valid header with the most work (first seen among equals): where sync is heading.
    pub fn best_header(&self) -> BlockId {
        self.best_chain.last().copied().unwrap_or(Hash::ZERO)
    }

    /// The block at `height` on the best header chain.
    pub fn best_chain_at(&self, height: u64) -> Option<BlockId> {
        usize::try_from(height)
            .ok()
            .and_then(|h| self.best_chain.get(h).copied())
    }

    /// The ancestor of the known header `id` at `height` (itself at its own height).
    pub fn ancestor(&self, id: &BlockId, height: u64) -> Option<BlockId> {
        self.tree.ancestor(id, height)
    }

    /// A block locator for the best header chain: ids from its tip back to genesis, one apart for the
    /// first ten, then twice as far each time, genesis last. At most 64 ids.
    pub fn locator(&self) -> Vec<BlockId> {
        self.locator_from(&self.best_header())
    }

    /// A block locator starting at the known header `id` (empty if unknown).
    pub fn locator_from(&self, id: &BlockId) -> Vec<BlockId> {
        let Some(node) = self.tree.get(id) else {
            return Vec::new();
        };
        // The part of `id`'s chain that is not on the best header chain, newest first.
        let top = node.header.height;
        let mut side = Vec::new();
        let mut cursor = *id;
        while let Some(node) = self.tree.get(&cursor) {
            if self.best_chain_at(node.header.height) == Some(cursor) {
                break;
            }
            side.push(cursor);
            cursor = node.header.parent;
        }
        let at = |height: u64| -> Option<BlockId> {
            let back = usize::try_from(top - height).ok()?;
            side.get(back).copied().or_else(|| self.best_chain_at(height))
        };
        let mut locator = Vec::new();
        let mut height = top;
        let mut step = 1u64;
        loop {
            if let Some(id) = at(height) {
                locator.push(id);
            }
            if height == 0 || locator.len() == 63 {
                break;
            }
            if locator.len() >= 10 {
                step = step.saturating_mul(2);
            }
            height = height.saturating_sub(step);
        }
        if let Some(genesis) = self.best_chain.first().filter(|g| locator.last() != Some(g)) {
            locator.push(*genesis);
        }
        locator
    }

    /// Adds a header that checked valid (its parent must be in the tree) and re-evaluates the best header.
    pub(crate) fn insert(&mut self, header: BlockHeader, work: u128) {
        // A pinned line grows with what extends it: a header on a pinned one is pinned too (the
        // leaf it makes must not be the first pruned), whoever sent it, until the next `pin`. A
        // batch is a chain, so its parent is most often the last one pinned.
        let parent = header.parent;
        let id = header.id();
        if self.tree.insert(header, work) {
            if self.pinned.last() == Some(&parent) || self.pinned.contains(&parent) {
                self.pinned.push(id);
            }
            self.refresh_best_chain();
            if !self.tree.is_over_bound() {
                return;
            }
            let mut protect = vec![self.active_tip().unwrap_or(Hash::ZERO), self.best_header()];
            protect.extend_from_slice(&self.pinned);
            if !self.tree.prune(&protect).is_empty() {
                self.refresh_best_chain();
            }
        }
    }

    /// Keeps the lines that end at `tips` from pruning (with their ancestors: pruning takes leaves
    /// first), until the next call.
    pub(crate) fn pin(&mut self, tips: Vec<BlockId>) {
        self.pinned = tips;
    }

    /// Records that `id`'s body is stored.
    pub(crate) fn set_has_data(&mut self, id: &BlockId) {
        self.tree.set_has_data(id);
    }

    /// Records that `id`'s body is no longer held (evicted from memory).
    pub(crate) fn unset_data(&mut self, id: &BlockId) {
        self.tree.unset_data(id);
    }

    /// Marks `id` invalid: it and its descendants leave the tree and are remembered as
    /// invalid. Blocks on the active chain are never invalidated. Returns the ids removed.
    pub(crate) fn invalidate(&mut self, id: &BlockId) -> Vec<BlockId> {
        if self.is_active(id) {
            return Vec::new();
        }
        let mut removed = self.tree.remove_subtree(id);
        if removed.is_empty() {
            removed.push(*id);
        }
        for bad in &removed {
            self.remember_invalid(*bad);
        }
        self.refresh_best_chain();
        removed
    }

    /// Whether `id` is a known header with no known child.
    pub(crate) fn is_leaf(&self, id: &BlockId) -> bool {
        self.tree.get(id).is_some_and(|node| node.children.is_empty())
    }

    /// Removes `id` and its descendants from the tree without judging them (a certified chain's
    /// headers a peer sent past its allowance). Blocks on the active chain stay. Returns the ids
    /// removed.
    pub(crate) fn forget(&mut self, id: &BlockId) -> Vec<BlockId> {
        if self.is_active(id) {
            return Vec::new();
        }
        let removed = self.tree.remove_subtree(id);
        if !removed.is_empty() {
            self.refresh_best_chain();
        }
        removed
    }

    /// Remembers `id` as invalid without it being in the tree (a header that failed its checks).
    pub(crate) fn remember_invalid(&mut self, id: BlockId) {
        if self.max_invalid == 0 || !self.invalid.insert(id) {
            return;
        }
        self.invalid_order.push_back(id);
        while self.invalid_order.len() > self.max_invalid {
            if let Some(old) = self.invalid_order.pop_front() {
                self.invalid.remove(&old);
            }
        }
    }

    /// The ledger connected `id` on the active chain.
    pub(crate) fn push_active(&mut self, id: BlockId) {
        self.active.push(id);
    }

    /// The ledger disconnected the active tip.
    pub(crate) fn pop_active(&mut self) -> Option<BlockId> {
        self.active.pop()
    }

    /// After fork choice settled: candidates below the tip can never win.
    pub(crate) fn settle(&mut self) {
        if let Some(tip) = self.active_tip() {
            self.tree.drop_candidates_below(&tip);
        }
    }

    fn refresh_best_chain(&mut self) {
        let Some(best) = self.tree.best_header() else {
            return;
        };
        let mut path = Vec::new();
        let mut cursor = best;
        while let Some(node) = self.tree.get(&cursor) {
            if self.best_chain_at(node.header.height) == Some(cursor) {
                break;
            }
            path.push(cursor);
            if node.header.height == 0 {
                break;
            }
            cursor = node.header.parent;
        }
        let keep = self
            .tree
            .get(&best)
            .map_or(0, |node| node.header.height + 1)
            .saturating_sub(path.len() as u64);
        self.best_chain
            .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        self.best_chain.extend(path.into_iter().rev());
    }
}

impl Consensus for Nakamoto {
    /// Checks proof of work, the ASERT target, height and timestamps; indexes the header if valid.
    /// Unlike [`Chain::submit_headers`](crate::Chain::submit_headers) it applies no minimum-work rule.
    fn on_header(&mut self, header: &BlockHeader, now_secs: u64) -> Verdict {
        if self.tree.contains(&header.id()) {
            return Verdict::Valid;
        }
        if let Some(reason) = self.known_invalid(header) {
            return Verdict::Invalid(reason);
        }
        let Some(parent) = self.context(&header.parent) else {
            return Verdict::NotYetKnown;
        };
        match self.check_with(header, &parent, now_secs) {
            HeaderCheck::Valid { work } => {
                self.insert(*header, work);
                Verdict::Valid
            }
            HeaderCheck::Invalid(reason) => {
                self.remember_invalid(header.id());
                Verdict::Invalid(reason)
            }
            HeaderCheck::TooNew => Verdict::NotYetKnown,
        }
    }

    fn on_block_verdict(&mut self, id: &BlockId, verdict: &Verdict) {
        match verdict {
            Verdict::Valid => self.set_has_data(id),
            Verdict::Invalid(reason) if reason.condemns_header() => {
                self.invalidate(id);
            }
            Verdict::Invalid(_) | Verdict::NotYetKnown => {}
        }
    }

    fn best_tip(&self) -> Option<BlockId> {
        self.tree.best_candidate()
    }

    /// By depth; always pending under [`ChainRule::Certified`](crate::ChainRule::Certified), where
    /// certificates decide ([`Chain::finality`](crate::Chain::finality)).
    fn finality(&self, id: &BlockId) -> Finality {
        let (Some(node), Some(tip)) = (self.tree.get(id), self.active.len().checked_sub(1)) else {
            return Finality::Pending;
        };
        if self.certified || !self.is_active(id) {
            return Finality::Pending;
        }
        let confirmations = tip as u64 - node.header.height + 1;
        if confirmations >= self.finality_depth.max(1) {
            Finality::Final {
                by: FinalityProof::Depth(confirmations),
            }
        } else {
            Finality::Pending
        }
    }
}
