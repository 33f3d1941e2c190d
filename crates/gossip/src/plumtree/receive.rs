//! A pushed copy arrives: the duplicate that prunes a tree link, the first copy that joins its tree
//! and waits for the application's verdict, the graft it answers, and what of a neighbour's pushing
//! counts as waste.

use meshwork_wire::{Instant, PeerId};

use super::lazy::shortens;
use super::{Plumtree, PtOut};
use crate::cache::{Entry, Status};
use crate::config::Trees;
use crate::message::{GossipMessage, MessageId, TreeMessage};

impl Plumtree {
    /// A full message from `from`, whose signature the caller has checked, on the tree of `tree` (its
    /// origin, or the lender whose tree it borrowed). `lends`: the copy came on its origin's own tree
    /// (`Gossip`), so the origin may lend that tree to our messages; a `Borrowed` copy whose tree is
    /// unknown here follows its origin's tree here, but that origin has no tree of its own to lend.
    #[allow(clippy::too_many_arguments)] // the fields of a pushed message, and where it came from
    pub(crate) fn on_gossip(
        &mut self,
        now: Instant,
        from: PeerId,
        id: MessageId,
        message: GossipMessage,
        hops: u16,
        tree: PeerId,
        lends: bool,
        out: &mut Vec<PtOut>,
    ) {
        self.stats.gossip_received += 1;
        // A graft's answer keeps the announcer's promise, however late (a copy from someone else may
        // have come first).
        let answers_graft = self.keep_promise(now, from, id);
        // Every tree decision below is about the tree the message follows, which is its origin's own
        // unless it borrowed one.
        let origin = tree;
        // A borrowed tree is shaped by its own origin's messages only. Several origins' flows reshaping
        // one tree (a duplicate prunes the link it came on, an announcement moves a link) leave it
        // pruned differently for each, so that some nodes end up off it: the shared tree's trouble.
        let borrowed = tree != message.origin;
        if self.cache.contains(&id) {
            self.stats.duplicates += 1;
            if !answers_graft {
                self.duplicate_arrived(now, &id);
            }
            if borrowed {
                return;
            }
            // Prune even if the link is already lazy on our side: the sender still pushes on it, so its
            // side is eager (a graft crossed our prune, or it missed the prune).
            if self.links.contains(&from) {
                if !self.links.is_lazy(&origin, &from) {
                    self.excuse_pushes(now, from);
                } else {
                    // It has not heard our last `Prune` yet: what it pushes until it hears this one
                    // is in flight too. Under a saturated link that outlasts the first window (a
                    // coin-node bench banned an honest peer 35 ms after its window closed).
                    self.keep_excusing(now, from);
                }
                self.stats.prunes_sent += 1;
                if self.links.follows_shared(&origin) {
                    self.links.make_shared_lazy(&from);
                    out.push(PtOut::Send(from, TreeMessage::PruneShared));
                } else {
                    self.links.make_lazy(origin, from);
                    out.push(PtOut::Send(from, TreeMessage::Prune { origin }));
                }
            }
            return;
        }
        let announced = self.forget_missing(&id);
        let graft_answer = announced
            .as_ref()
            .and_then(|m| m.grafted)
            .filter(|(g, _)| *g == from);
        if let Some((_, at)) = graft_answer {
            self.graft_wait.sample(now.saturating_duration_since(at));
        }
        self.copy_arrived(
            now,
            id,
            announced.as_ref(),
            answers_graft || graft_answer.is_some(),
        );
        // A graft mends a borrowed tree too: the link was missing from it.
        if !borrowed || graft_answer.is_some() {
            self.links.make_eager(&origin, &from);
        }
        if self.config.trees == Trees::Borrow && !borrowed && lends {
            self.lenders.heard(now, tree, from, hops, &self.links);
        }
        if self.pending >= self.config.max_pending_validations {
            // Dropped unseen: a later copy may get through once the queue drains.
            out.push(PtOut::Dropped(from, meshwork_wire::DropReason::QueueFull));
            return;
        }
        // Late on a tree whose parent a shortcut made: a strike against the parent's claim
        // (`trials.rs`). Only for a copy on its origin's own tree, which is what the claim was about.
        let waited = announced.as_ref().is_some_and(|m| m.deferred);
        if !borrowed && lends && (waited || answers_graft || graft_answer.is_some()) {
            let news = announced.as_ref().map_or(now, |m| m.since);
            let parent = self.links.recorded_parent(&origin);
            let race = self.graft_wait.timeout();
            let late = (message.seq, news);
            if let Some(failed) = self.trials.late(&origin, parent, late, race, now) {
                self.claim_failed(now, failed, out);
            }
        }
        if !borrowed
            && lends
            && (answers_graft || graft_answer.is_some())
            && let Some(parent) = announced.as_ref().and_then(|m| m.waited_for)
            && parent != from
            && self.links.is_eager(&origin, &from)
            && self.links.is_newer(&origin, message.seq)
        {
            self.leave_silent_parent(now, origin, parent, out);
        }
        let announcers = announced.map(|m| m.announcers).unwrap_or_default();
        let entry = Entry {
            message: message.clone(),
            hops,
            status: Status::Pending { from: Some(from) },
            parent: Some(from),
            tree,
            holders: announcers
                .iter()
                .filter(|(p, theirs)| {
                    *p != from && !shortens(hops, *theirs, self.config.optimization_threshold)
                })
                .map(|(p, _)| *p)
                .collect(),
            copies_from: Vec::new(),
        };
        self.insert(now, id, entry);
        self.pending += 1;
        // §3.8 also applies to announcements that came before the message: the tree delivered it late.
        let best = announcers
            .into_iter()
            .filter(|(p, _)| *p != from)
            .min_by_key(|(_, h)| *h);
        if let Some((announcer, announced_hops)) = best.filter(|_| !borrowed) {
            let claim = (hops, announced_hops, message.seq);
            self.maybe_optimize(now, origin, announcer, from, claim, out);
        }
        out.push(PtOut::Validate {
            id,
            message,
            from: Some(from),
        });
    }

    /// We waited for `parent`'s copy of a message of `origin`'s tree, and a graft brought it
    /// instead: the parent is repairing a break above us, and its copy, when it comes, would be a
    /// duplicate here (and ours, pushed up to it, one there). Its link leaves the tree now, before we
    /// forward the copy; what it pushed before it hears the prune is excused. Only once the copy came,
    /// and only if `parent` is still the tree's parent: which tree a missing message is on is the
    /// announcers' word until then, and a made-up id, or a message announced on another tree's tag,
    /// must not prune an honest parent. The caller also asks that the copy came on its origin's own
    /// tree, that the grafted link is on the tree now (a sender that left is not), and that the
    /// message is newer than the tree's last here (`links/newest.rs`): an old message replayed once
    /// it left our seen cache was never the parent's to push.
    fn leave_silent_parent(&mut self, now: Instant, origin: PeerId, parent: PeerId, out: &mut Vec<PtOut>) {
        if self.links.recorded_parent(&origin) != Some(parent) || !self.links.is_eager(&origin, &parent) {
            return;
        }
        self.stats.silent_parents_pruned += 1;
        self.prune(now, origin, parent, out);
    }

    /// Takes `peer`'s link off `origin`'s tree, on both ends (`Prune`). What it pushed before it
    /// hears the prune is no waste.
    pub(super) fn prune(&mut self, now: Instant, origin: PeerId, peer: PeerId, out: &mut Vec<PtOut>) {
        self.excuse_pushes(now, peer);
        self.stats.prunes_sent += 1;
        self.links.make_lazy(origin, peer);
        out.push(PtOut::Send(peer, TreeMessage::Prune { origin }));
    }

    /// A copy of `id` from `from` dropped unread (its topic is not ours): if we grafted it from
    /// `from`, the promise is kept, and the message is missing no more (no graft would bring one we
    /// want).
    pub(crate) fn unwanted(&mut self, now: Instant, from: PeerId, id: MessageId) {
        self.keep_promise(now, from, id);
        self.forget_missing(&id);
    }

    /// A copy of `id` came from `from`: if it answers a graft of ours, the announcer kept its
    /// promise, and its answer teaches how long its link makes us wait (and that the grafts to it
    /// before were skipped). Returns whether it answers a graft.
    fn keep_promise(&mut self, now: Instant, from: PeerId, id: MessageId) -> bool {
        let Some(promise) = self.promises.remove(&(from, id)) else {
            return false;
        };
        self.answered(from, now.saturating_duration_since(promise.grafted));
        self.replied(from, promise);
        true
    }

    /// Whether an identical copy (same id, same signature) is already in the cache: it was verified then.
    pub(crate) fn is_known_copy(&self, id: &MessageId, message: &GossipMessage) -> bool {
        self.cache
            .get(id)
            .is_some_and(|e| e.message.signature == message.signature)
    }

    /// Whether a copy from `from` of a message we hold is waste: on a link we had already pruned for its
    /// origin, and not answering a graft of ours. The first duplicate on an eager link is how Plumtree
    /// learns to prune it, and costs nothing; a peer that keeps pushing after our `Prune` is excused for
    /// the copies in flight ([`Plumtree::excuse`]) and within its allowance
    /// ([`crate::ScoreConfig::rate_burst`]). A duplicate of a borrowed message prunes nothing (see
    /// [`Plumtree::on_gossip`]), so nothing would stop a peer repeating it: on a lazy link it is
    /// waste, and on an eager one only a repeat is (a second copy from the same neighbour, or any from
    /// the neighbour whose copy came first). A neighbour's first copy is what honest relay looks like
    /// when someone injected the message at two points of the tree, or sent it to us directly too:
    /// charging it would let that someone get honest relays banned. `tree` is the tree the copy
    /// follows. The caller knows the message is held (it looked it up once).
    pub(crate) fn is_waste(
        &mut self,
        id: &MessageId,
        message: &GossipMessage,
        tree: &PeerId,
        from: &PeerId,
    ) -> bool {
        if self.promises.contains_key(&(*from, *id)) {
            return false;
        }
        let lazy = self.links.is_lazy(tree, from);
        if *tree == message.origin || lazy {
            return lazy;
        }
        // The senders live in the cache entry, as long as the message: a table of their own, once
        // full, would let a neighbour replaying held messages make every first copy waste again.
        let links = self.links.neighbours().len();
        let Some(entry) = self.cache.get_mut(id) else {
            return true;
        };
        let senders = &mut entry.copies_from;
        if senders.is_empty() {
            senders.extend(entry.parent);
        }
        if senders.contains(from) || senders.len() > links {
            return true;
        }
        senders.push(*from);
        false
    }
}
