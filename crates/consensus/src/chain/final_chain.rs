//! The final chain below the last final block: which header at each height is final.
//!
//! Under the certified rule, a header at or below the final height is vouched for exactly when it is
//! an ancestor of the final block, known as soon as the final block's header is (connected or not:
//! a node catching up holds the headers of blocks it has not fetched yet). Below where the final
//! block's ancestry meets the active chain the active chain answers; above, the ancestors are kept
//! here, found once per final block by a walk down from it (to the previous final block, while the
//! chain finalizes block after block), so that asking costs a lookup whatever a peer sends. Asked
//! for each header a peer relays, a walk per question let one peer cost a walk of the whole
//! catch-up per message.

use std::collections::VecDeque;

use meshwork_ledger::{BlockId, ChainStore};

use super::Chain;

/// The final block's ancestors from where they meet the active chain (`base`, the height of `ids[0]`)
/// up to the final block itself. Heights below `base` are the active chain's.
#[derive(Debug)]
pub(crate) struct FinalAncestry {
    /// The final block they lead to.
    block: BlockId,
    /// The height of `ids[0]`.
    base: u64,
    /// The ancestor at each height from `base`, the final block last.
    ids: VecDeque<BlockId>,
}

impl<S: ChainStore> Chain<S> {
    /// Whether the last final block's header is known (connected or not). Its ancestors then are
    /// too (the index takes a header only on its parent): they are the final chain, and any header
    /// new to the index at or below the final height is off it.
    pub(crate) fn final_header_known(&self) -> bool {
        self.final_certificate()
            .is_some_and(|certificate| self.engine.header(&certificate.block).is_some())
    }

    /// Keeps the header lines that end at `tips` from the index's pruning (`pow::HeaderTree`'s leaves
    /// first): the sync layer pins the lines its chosen download peers deliver while the final
    /// block's header is unknown, so that made-up branches below the final height (not charged
    /// then: nothing tells them apart yet) fill the index at worst, and never push the honest line
    /// out of it.
    pub(crate) fn pin_header_lines(&mut self, tips: Vec<BlockId>) {
        self.engine.pin(tips);
    }

    /// Brings the kept ancestry up to the last final block, if its header is known: a walk down from
    /// it to the active chain or to the previous final block, whichever comes first, once per final
    /// block; the entries the active chain has reached since are let go.
    pub(crate) fn refresh_final_ancestry(&mut self) {
        let Some(final_block) = self.final_certificate().map(|c| c.block) else {
            return;
        };
        let Some(certified) = &mut self.certified else {
            return;
        };
        if certified
            .ancestry
            .as_ref()
            .is_some_and(|a| a.block == final_block)
        {
            return;
        }
        // Not known yet (a node catching up learns the certificate first): the kept ancestry stays
        // for a later final block to extend.
        if self.engine.header(&final_block).is_none() {
            return;
        }
        let mut old = certified.ancestry.take();
        // The new ancestors, from the final block down.
        let mut above = Vec::new();
        let mut cursor = final_block;
        let mut ancestry = loop {
            let Some(header) = self.engine.header(&cursor) else {
                return; // an ancestor gone (pruned): asked again later
            };
            if self.engine.is_active(&cursor) || header.height == 0 {
                above.push(cursor);
                break FinalAncestry {
                    block: final_block,
                    base: header.height,
                    ids: above.into_iter().rev().collect(),
                };
            }
            if let Some(mut kept) = old.take_if(|a| a.block == cursor) {
                kept.ids.extend(above.into_iter().rev());
                kept.block = final_block;
                break kept;
            }
            above.push(cursor);
            cursor = header.parent;
        };
        // Below the first entry the active chain answers; entries it has reached are not needed.
        while ancestry.ids.len() > 1 && ancestry.ids.get(1).is_some_and(|id| self.engine.is_active(id)) {
            ancestry.ids.pop_front();
            ancestry.base += 1;
        }
        if let Some(certified) = &mut self.certified {
            certified.ancestry = Some(ancestry);
        }
    }

    /// Whether the known header `id` at `height` (at most the final height) is on the final chain;
    /// `None` while the final block's header is unknown (a node catching up learns the certificate
    /// before the headers that lead to it).
    pub(crate) fn on_final_chain(&self, id: &BlockId, height: u64) -> Option<bool> {
        let final_block = self.final_certificate()?.block;
        self.engine.header(&final_block)?;
        let kept = self.certified.as_ref()?.ancestry.as_ref();
        if let Some(ancestry) = kept.filter(|a| a.block == final_block) {
            if height < ancestry.base {
                return Some(self.engine.is_active(id));
            }
            let at = usize::try_from(height - ancestry.base).ok()?;
            return Some(ancestry.ids.get(at) == Some(id));
        }
        // Not kept yet (the sync layer refreshes it before it asks): one walk.
        Some(self.engine.ancestor(&final_block, height) == Some(*id))
    }
}
