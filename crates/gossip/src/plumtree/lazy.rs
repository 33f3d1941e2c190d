//! The lazy side of Plumtree: batched `IHave` announcements, grafts for announced messages that do not
//! arrive, and the optimisation that moves a tree link to a much shorter path (§3.8).

use std::collections::HashMap;

use meshwork_wire::{BoundedVec, Instant, PeerId};

use super::{GraftCheck, MAX_ANNOUNCERS, MAX_PROMISES, Plumtree, PtOut};
use crate::cache::Status;
use crate::message::{Announcement, MAX_IHAVE, MessageId, TreeMessage};
use crate::score::Penalty;
use crate::state::Timer;

impl Plumtree {
    /// Sends the batched announcements.
    pub(crate) fn flush_ihave(&mut self, now: Instant, out: &mut Vec<PtOut>) {
        self.flush_scheduled = false;
        let mut by_peer: HashMap<PeerId, Vec<Announcement>> = HashMap::new();
        for (peer, announcement) in self.lazy_queue.drain(..) {
            // Remembered as sent: a graft from `peer` for this id is one we owe an answer. Only for
            // neighbours: what a departed one was owed is forgotten with it (`neighbor_down`).
            if self.links.contains(&peer) {
                self.offers.announced(now, peer, announcement.id);
            }
            by_peer.entry(peer).or_default().push(announcement);
        }
        let mut peers: Vec<_> = by_peer.into_iter().collect();
        peers.sort_by_key(|(peer, _)| *peer); // deterministic order
        for (peer, ids) in peers {
            for chunk in ids.chunks(MAX_IHAVE) {
                let Ok(ids) = BoundedVec::try_from(chunk.to_vec()) else {
                    continue;
                };
                self.stats.ihave_sent += 1;
                out.push(PtOut::Send(peer, TreeMessage::IHave { ids }));
            }
        }
    }

    pub(crate) fn on_ihave(&mut self, from: PeerId, ids: &[Announcement], out: &mut Vec<PtOut>) {
        for announcement in ids {
            if let Some(entry) = self.cache.get(&announcement.id) {
                let (parent, hops, accepted) = (entry.parent, entry.hops, entry.status == Status::Accepted);
                if accepted && let Some(parent) = parent {
                    let origin = entry.message.origin;
                    self.maybe_optimize(origin, from, parent, hops, announcement.hops, out);
                }
                continue;
            }
            if !self.missing.contains_key(&announcement.id) {
                if self.missing.len() >= self.config.max_missing {
                    continue;
                }
                let timer = Timer::Graft(announcement.id);
                out.push(PtOut::Schedule(self.graft_wait.timeout(), timer));
            }
            let missing = self.missing.entry(announcement.id).or_default();
            let known = missing.announcers.iter().any(|(p, _)| *p == from);
            if missing.announcers.len() < MAX_ANNOUNCERS && !known {
                missing.announcers.push_back((from, announcement.hops));
            }
        }
    }

    /// The paper's optimisation (§3.8): when a lazy neighbour announces a message `threshold` hops sooner
    /// than the tree delivered it, its link becomes the tree link for this origin (`Shortcut`, the paper's
    /// graft without a message) and the old tree link is pruned. Without it a tree bent by a repair (a
    /// graft through whichever announcer answered first) keeps its detour for every later message.
    pub(super) fn maybe_optimize(
        &mut self,
        origin: PeerId,
        from: PeerId,
        parent: PeerId,
        hops: u16,
        announced: u16,
        out: &mut Vec<PtOut>,
    ) {
        let via_announcer = announced.saturating_add(1);
        if parent != from
            && self.links.contains(&from)
            && self.links.is_lazy(&origin, &from)
            && via_announcer.saturating_add(self.config.optimization_threshold) <= hops
            && self.links.is_eager(&origin, &parent)
        {
            self.stats.shortcuts_sent += 1;
            self.stats.prunes_sent += 1;
            out.push(PtOut::Send(from, TreeMessage::Shortcut { origin }));
            out.push(PtOut::Send(parent, TreeMessage::Prune { origin }));
            self.links.join_tree(origin, &from);
            self.links.make_lazy(origin, parent);
        }
    }

    /// The graft timer of a missing message fired.
    pub(crate) fn on_graft_timer(&mut self, now: Instant, id: MessageId, out: &mut Vec<PtOut>) {
        if self.cache.contains(&id) {
            self.missing.remove(&id);
            return;
        }
        let Some(missing) = self.missing.get_mut(&id) else {
            return;
        };
        // The announcer grafted before is not blamed here: the retry is as short as the learnt round
        // trip allows, for latency, and a busy honest announcer misses it. It is held to its promise
        // for `graft_promise` instead (`on_promise_timer`).
        missing.grafted = None;
        while let Some((peer, _)) = missing.announcers.pop_front() {
            if self.links.contains(&peer) {
                // The link turns eager for the message's origin when the message arrives (we do not know
                // the origin before).
                missing.grafted = Some((peer, now));
                self.stats.grafts_sent += 1;
                out.push(PtOut::Send(peer, TreeMessage::Graft { id }));
                let retry = self.graft_wait.timeout().min(self.config.graft_retry);
                out.push(PtOut::Schedule(retry, Timer::Graft(id)));
                if self.promises.len() < MAX_PROMISES && self.promises.insert((peer, id)) {
                    let timer = Timer::Promise { peer, id };
                    out.push(PtOut::Schedule(self.config.graft_promise, timer));
                }
                return;
            }
        }
        self.missing.remove(&id);
    }

    /// A graft's promise is due: if the announcer grafted still has not sent the message, it broke it.
    pub(crate) fn on_promise_timer(&mut self, peer: PeerId, id: MessageId, out: &mut Vec<PtOut>) {
        if self.promises.remove(&(peer, id)) {
            out.push(PtOut::Penalty(peer, Penalty::BrokenPromise));
        }
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
            self.stats.grafts_refused += 1;
            return check;
        }
        let Some(entry) = self.cache.get(&id) else {
            return check;
        };
        let (origin, accepted) = (entry.message.origin, entry.status == Status::Accepted);
        if accepted {
            let size = meshwork_wire::encoded_len(&entry.message).unwrap_or(usize::MAX);
            if !self.offers.spend(now, from, size) {
                // Over budget: dropped, and still owed, so a graft after the budget refills is answered.
                self.stats.grafts_refused += 1;
                out.push(PtOut::Dropped(from, meshwork_wire::DropReason::RateLimited));
                return check;
            }
            self.stats.gossip_sent += 1;
            self.stats.grafts_answered += 1;
            let message = entry.message.clone();
            let hops = entry.hops.saturating_add(1);
            out.push(PtOut::Send(from, TreeMessage::Gossip { message, hops }));
        }
        // A message still being validated goes out on the now-eager link once accepted.
        self.offers.answered(&from, &id);
        self.links.make_eager(&origin, &from);
        check
    }

    /// The optimisation's graft from the other side: our link is now on the tree of `origin`.
    pub(crate) fn on_shortcut(&mut self, from: PeerId, origin: PeerId) {
        self.links.join_tree(origin, &from);
    }

    pub(crate) fn on_prune(&mut self, from: PeerId, origin: PeerId) {
        self.links.make_lazy(origin, from);
    }

    /// A duplicate crossed the shared tree on our link: it leaves the shared tree.
    pub(crate) fn on_prune_shared(&mut self, from: PeerId) {
        self.links.make_shared_lazy(&from);
    }
}
