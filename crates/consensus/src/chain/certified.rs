//! Chains under [`ChainRule::Certified`](crate::ChainRule::Certified): the tip follows the blocks a BFT
//! engine certifies ([`Chain::follow`]), and certificates make blocks final ([`Chain::finalize`]).
//!
//! The engine decides; the chain only moves the ledger. A validator follows every notarized block, so
//! its ledger (and mempool) sit on the chain the next leader builds on; a notarized block that is later
//! skipped is disconnected like any reorganised block, through the ledger's undo data. No block at or
//! below the last certificate's height is ever disconnected: a chosen block that does not descend from
//! the final one is ignored.

use meshwork_identity::PeerId;
use meshwork_ledger::{BlockId, ChainStore};

use super::submit::Changes;
use super::{Chain, TipInfo};
use crate::bft::ValidatorSet;
use crate::certificate::Certificate;
use crate::error::ChainError;
use crate::traits::{BlockValidator, Finality, FinalityProof, InvalidReason, Verdict};

/// How far above the final block (or the tip, if higher) a certified chain takes headers: blocks carry
/// no proof of work there, so anyone could make up a chain of any length for free. Honest blocks above
/// the final one are the few notarized but not yet final (Simplex finalises one message delay after
/// notarizing), and a node catching up learns the final height from a certificate first. A header
/// beyond is *not yet* acceptable, not invalid: it is taken once a certificate raises the final height.
pub const UNCERTIFIED_HORIZON: u64 = 256;

/// The certified rule's state: whom to believe, where the engine points, what is final.
#[derive(Debug)]
pub(crate) struct Certified {
    validators: Vec<PeerId>,
    genesis: BlockId,
    /// The block the engine last pointed at, and the view (round) it was certified in.
    chosen: Option<(BlockId, u64)>,
    /// The highest certificate seen: its block and every ancestor are final.
    last_final: Option<Certificate>,
    /// The final block's ancestors above the active chain, once its header is known
    /// (`final_chain.rs`).
    pub(super) ancestry: Option<super::final_chain::FinalAncestry>,
}

impl Certified {
    pub(crate) fn new(validators: &ValidatorSet, genesis: BlockId) -> Self {
        Self {
            validators: validators.iter().copied().collect(),
            genesis,
            chosen: None,
            last_final: None,
            ancestry: None,
        }
    }

    pub(crate) fn chosen(&self) -> Option<BlockId> {
        self.chosen.map(|(id, _)| id)
    }

    pub(crate) fn last_final(&self) -> Option<&Certificate> {
        self.last_final.as_ref()
    }
}

/// What a call that moves a certified chain's tip changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TipChange {
    /// Blocks connected, in order.
    pub connected: Vec<BlockId>,
    /// Blocks disconnected, in order (tip first): notarized blocks whose view was skipped.
    pub disconnected: Vec<BlockId>,
    /// Blocks that broke a ledger rule while connecting (with more than a third of the validators
    /// faulty, a certified block can).
    pub invalidated: Vec<(BlockId, InvalidReason)>,
    /// The tip afterwards.
    pub tip: TipInfo,
}

impl TipChange {
    /// Whether the tip moved.
    pub fn tip_changed(&self) -> bool {
        !self.connected.is_empty() || !self.disconnected.is_empty()
    }
}

impl<S: ChainStore> Chain<S> {
    /// Whether this chain follows certificates ([`ChainRule::Certified`](crate::ChainRule::Certified)).
    pub fn is_certified(&self) -> bool {
        self.certified.is_some()
    }

    /// The validators whose certificates this chain follows (certified chains only).
    pub fn validators(&self) -> Option<&[PeerId]> {
        self.certified
            .as_ref()
            .map(|certified| certified.validators.as_slice())
    }

    /// Checks `certificate` against the validator set, changing nothing.
    pub fn verify_certificate(&self, certificate: &Certificate) -> Result<(), ChainError> {
        let certified = self.certified.as_ref().ok_or(ChainError::NotCertified)?;
        certificate
            .verify(&certified.genesis, &certified.validators)
            .map_err(ChainError::Certificate)
    }

    /// The highest finality certificate this chain accepted (certified chains only).
    pub fn final_certificate(&self) -> Option<&Certificate> {
        self.certified.as_ref()?.last_final.as_ref()
    }

    /// Moves the tip to `id`, which the engine certified in view `round` (a notarized block): the ledger
    /// connects `id`'s chain as far as its bodies are here, disconnecting a skipped branch if `id` is on
    /// another. A block already on the active chain, or certified in an earlier view than the block
    /// followed before, changes nothing; nor does one that does not descend from the final block.
    pub fn follow(&mut self, id: BlockId, round: u64, now_secs: u64) -> Result<TipChange, ChainError> {
        let active = self.engine.is_active(&id);
        self.choose(id, round, !active, now_secs)
    }

    /// Moves the tip to `id`, on which the engine builds (or votes for a proposal) in view `round`: like
    /// [`Chain::follow`], but `id` may be on the active chain below the tip, whose blocks are then
    /// disconnected. The engine builds on a certified parent with every view since skipped, so a
    /// notarized block of a skipped view above it is abandoned.
    pub fn build_on(&mut self, id: BlockId, round: u64, now_secs: u64) -> Result<TipChange, ChainError> {
        self.choose(id, round, true, now_secs)
    }

    fn choose(
        &mut self,
        id: BlockId,
        round: u64,
        moves: bool,
        now_secs: u64,
    ) -> Result<TipChange, ChainError> {
        let certified = self.certified.as_mut().ok_or(ChainError::NotCertified)?;
        let older = certified.chosen.is_some_and(|(_, seen)| round < seen);
        let off_final = certified.last_final.as_ref().is_some_and(|last| {
            self.engine
                .ancestor(&id, last.height)
                .is_some_and(|ours| ours != last.block)
        });
        if moves && !older && !off_final {
            certified.chosen = Some((id, round));
        }
        self.move_tip(now_secs)
    }

    /// Accepts `certificate` (checked against the validator set) as final: its block and every ancestor
    /// can never be disconnected, [`Chain::finality`] reports them final with it, and the tip moves to
    /// the block if the engine pointed elsewhere. An older certificate than the last changes nothing; one
    /// for another block at the final height is [`ChainError::ConflictingFinality`] (more than a third of
    /// the validators signed both).
    pub fn finalize(&mut self, certificate: Certificate, now_secs: u64) -> Result<TipChange, ChainError> {
        let certified = self.certified.as_ref().ok_or(ChainError::NotCertified)?;
        certificate
            .verify(&certified.genesis, &certified.validators)
            .map_err(ChainError::Certificate)?;
        // A higher certificate must extend the final block, as far as the headers known show.
        if let Some(last) = &certified.last_final
            && certificate.height > last.height
            && let Some(ours) = self.engine.ancestor(&certificate.block, last.height)
            && ours != last.block
        {
            return Err(ChainError::ConflictingFinality {
                ours: last.block,
                theirs: ours,
            });
        }
        if let Some(last) = &certified.last_final
            && certificate.height <= last.height
        {
            let ours = self.engine.ancestor(&last.block, certificate.height);
            if certificate.height == last.height && certificate.block != last.block
                || ours.is_some_and(|ours| ours != certificate.block)
            {
                return Err(ChainError::ConflictingFinality {
                    ours: ours.unwrap_or(last.block),
                    theirs: certificate.block,
                });
            }
            return self.move_tip(now_secs);
        }
        let on_final =
            |chosen: &BlockId| self.engine.ancestor(chosen, certificate.height) == Some(certificate.block);
        let keep = certified
            .chosen
            .is_some_and(|(chosen, round)| round >= certificate.round && on_final(&chosen));
        let (block, round) = (certificate.block, certificate.round);
        let Some(certified) = self.certified.as_mut() else {
            return Err(ChainError::NotCertified);
        };
        if !keep {
            certified.chosen = Some((block, round));
        }
        certified.last_final = Some(certificate);
        self.move_tip(now_secs)
    }

    /// Checks the block `id` (its header and body received, its parent our tip) against every ledger
    /// rule, changing nothing: what a validator asks before it votes for a proposal.
    /// [`Verdict::NotYetKnown`] if the block or its body is missing, or its parent is not the tip
    /// ([`Chain::follow`] the parent first).
    pub fn validate_on_tip(&self, id: &BlockId, now_secs: u64) -> Result<Verdict, ChainError> {
        if self.engine.is_known_invalid(id) {
            return Ok(Verdict::Invalid(InvalidReason::KnownInvalid));
        }
        let Some(block) = self.bodies.get(id) else {
            return Ok(Verdict::NotYetKnown);
        };
        if block.header.parent != self.tip().id || self.engine.header(id).is_none() {
            return Ok(Verdict::NotYetKnown);
        }
        self.ledger.validate(block, now_secs)
    }

    /// The height of the last final block (0 before any certificate, and under proof of work).
    pub(crate) fn final_height(&self) -> u64 {
        self.final_certificate()
            .map_or(0, |certificate| certificate.height)
    }

    /// Whether `id` is a known header the certificates do not vouch for (yet): above the final block,
    /// off the chosen block's chain; at or below it, off the final chain (a sibling of the final
    /// block, or a branch that ends at its height, carries as much work, so the work floor takes
    /// it), whether the final block is connected yet or only its header is known. Below a final
    /// block whose header is unknown, a header is presumed on the way to it: a node catching up
    /// fetches those.
    pub(crate) fn is_uncertified(&self, id: &BlockId) -> bool {
        let Some(header) = self.engine.header(id) else {
            return false;
        };
        if !self.is_certified() || self.engine.is_active(id) {
            return false;
        }
        if header.height <= self.final_height() {
            return self.on_final_chain(id, header.height) == Some(false);
        }
        self.best_chain_at(header.height) != Some(*id)
    }

    /// Whether `id` is a known header nothing known is built on.
    pub(crate) fn is_leaf(&self, id: &BlockId) -> bool {
        self.engine.is_leaf(id)
    }

    /// Forgets the uncertified header `id` and every header built on it, with their bodies. Neither
    /// the chosen block nor the tip can be among them: their ancestors are on the chosen or the
    /// active chain, so not uncertified. Returns how many headers went.
    pub(crate) fn forget_uncertified(&mut self, id: &BlockId) -> usize {
        if !self.is_uncertified(id) {
            return 0;
        }
        let removed = self.engine.forget(id);
        for gone in &removed {
            self.bodies.remove(gone);
        }
        removed.len()
    }

    /// Whether a header at `height` is beyond what a certified chain takes yet
    /// ([`UNCERTIFIED_HORIZON`]); never under proof of work.
    pub(crate) fn beyond_horizon(&self, height: u64) -> bool {
        if self.certified.is_none() {
            return false;
        }
        height
            > self
                .final_height()
                .max(self.tip().height)
                .saturating_add(UNCERTIFIED_HORIZON)
    }

    /// Finality under the certified rule: final if on the active chain and an ancestor of the last
    /// certificate's block (or that block), whose header must be known.
    pub(super) fn certified_finality(&self, certified: &Certified, id: &BlockId) -> Finality {
        let Some(certificate) = &certified.last_final else {
            return Finality::Pending;
        };
        let height = self.engine.header(id).map(|header| header.height);
        match height {
            Some(height)
                if height <= certificate.height
                    && self.engine.is_active(id)
                    && self.engine.ancestor(&certificate.block, height) == Some(*id) =>
            {
                Finality::Final {
                    by: FinalityProof::Certificate(certificate.clone()),
                }
            }
            _ => Finality::Pending,
        }
    }

    /// The block fork choice heads for: under proof of work the engine's best candidate; under the
    /// certified rule the chosen block, or as far up its chain as bodies are here (the active tip if
    /// none is), and nothing if it does not descend from the final block or is unknown.
    pub(super) fn next_tip(&self) -> Option<BlockId> {
        let Some(certified) = &self.certified else {
            return crate::traits::Consensus::best_tip(&self.engine);
        };
        let (chosen, _) = certified.chosen?;
        let final_at = certified
            .last_final
            .as_ref()
            .map(|certificate| (certificate.height, certificate.block));
        let mut path = Vec::new();
        let mut cursor = chosen;
        while !self.engine.is_active(&cursor) {
            let header = self.engine.header(&cursor)?;
            if final_at.is_some_and(|(height, block)| header.height == height && cursor != block) {
                return None;
            }
            path.push(cursor);
            cursor = header.parent;
        }
        // The walk ended on the active chain: the final block must be on the way (below the fork) or
        // on the path (above it).
        if let Some((height, block)) = final_at {
            let fork = self.engine.header(&cursor)?.height;
            let through = if fork >= height {
                self.engine.ancestor(&cursor, height) == Some(block)
            } else {
                path.contains(&block)
            };
            if !through {
                return None;
            }
        }
        // Chosen on the active chain below the tip (the engine builds on an earlier block): disconnect
        // down to it.
        if path.is_empty() {
            return Some(chosen);
        }
        let mut target = None;
        for id in path.iter().rev() {
            if !self.engine.has_block(id) {
                break;
            }
            target = Some(*id);
        }
        target.or_else(|| self.engine.active_tip())
    }

    /// Runs fork choice after the chosen or final block changed.
    fn move_tip(&mut self, now_secs: u64) -> Result<TipChange, ChainError> {
        let mut changes = Changes::default();
        self.activate(now_secs, &mut changes)?;
        Ok(TipChange {
            connected: changes.connected,
            disconnected: changes.disconnected,
            invalidated: changes.invalidated,
            tip: self.tip(),
        })
    }
}
