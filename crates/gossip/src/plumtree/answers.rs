//! What neighbours ask of our tree links: grafts (answered within each neighbour's budget, or
//! declined so the grafter asks another announcer at once), prunes, and §3.8's shortcuts from the
//! other end of the link.

use std::collections::hash_map::Entry as HashEntry;

use meshwork_wire::{DropReason, Instant, PeerId};

use super::{GraftCheck, Plumtree, PtOut};
use crate::cache::Status;
use crate::message::{MessageId, TreeMessage};

impl Plumtree {
    /// Declines `to`'s graft for `id`, so that it asks another announcer at once.
    pub(crate) fn decline(&mut self, to: PeerId, id: MessageId, out: &mut Vec<PtOut>) {
        self.stats.declines_sent += 1;
        out.push(PtOut::Send(to, TreeMessage::Decline { id }));
    }

    /// A graft: if it is for an id we announced to `from` and have not answered yet, the link becomes a
    /// tree link for the message's origin, and the message is sent if we have accepted it and `from`'s
    /// answer budget holds it. An id we no longer hold tells us no origin: the grafter's timer moves on.
    /// Returns what the graft was, so the caller charges grafts for ids never announced as waste.
    pub(crate) fn on_graft(
        &mut self,
        now: Instant,
        from: PeerId,
        id: MessageId,
        out: &mut Vec<PtOut>,
    ) -> GraftCheck {
        let check = self.offers.check(now, &from, &id);
        if check != GraftCheck::Fresh {
            // A repeat gets no answer: the first is on its way. For an id we do not remember
            // announcing, the caller decides (a decline, within the peer's waste allowance).
            self.stats.grafts_refused += 1;
            return check;
        }
        // Nothing will follow: the message was announced but forgotten since (the seen cache is full
        // or it expired), or it came again after that and the application refused it this time. The
        // grafter is declined, so it asks another announcer at once.
        let Some(entry) = self.cache.get(&id).filter(|e| e.status != Status::Dropped) else {
            self.offers.answered(&from, &id);
            self.decline(from, id, out);
            return check;
        };
        let tree = entry.tree;
        if entry.status == Status::Accepted {
            let size = meshwork_wire::encoded_len(&entry.message).unwrap_or(usize::MAX);
            if !self.offers.spend(now, from, size) {
                // Over budget: declined, so the grafter asks another announcer at once; still owed, so
                // a graft after the budget refills is answered.
                self.stats.grafts_refused += 1;
                out.push(PtOut::Dropped(from, DropReason::RateLimited));
                self.decline(from, id, out);
                return check;
            }
            self.stats.gossip_sent += 1;
            self.stats.grafts_answered += 1;
            out.push(PtOut::Send(from, entry.push(entry.hops.saturating_add(1))));
            // An earlier decline of it still owed would now follow the message: waste to the grafter.
            self.offers.settle(&from, &id);
        } else {
            // Awaiting its verdict: it goes out on the now-eager link once accepted, and a decline
            // goes if it is not (`validated`).
            let room = self.grafted_pending.len() < self.config.max_pending_validations;
            let links = self.links.neighbours().len();
            match self.grafted_pending.entry(id) {
                HashEntry::Occupied(mut list) if list.get().len() <= links && !list.get().contains(&from) => {
                    list.get_mut().push(from);
                }
                HashEntry::Vacant(slot) if room => {
                    slot.insert(vec![from]);
                }
                _ => {}
            }
        }
        self.offers.answered(&from, &id);
        self.links.make_eager(&tree, &from);
        check
    }

    /// The optimisation's graft from the other side: our link is now on the tree of `origin`.
    pub(crate) fn on_shortcut(&mut self, from: PeerId, origin: PeerId) {
        if self.links.prunable(&origin) {
            self.links.join_tree(origin, &from);
        }
    }

    pub(crate) fn on_prune(&mut self, from: PeerId, origin: PeerId) {
        if self.links.prunable(&origin) {
            self.links.make_lazy(origin, from);
        }
    }

    /// A duplicate crossed the shared tree on our link: it leaves the shared tree.
    pub(crate) fn on_prune_shared(&mut self, from: PeerId) {
        self.links.make_shared_lazy(&from);
    }
}
