//! The lazy side of Plumtree: announcements of messages we lack, and the grafts that fetch those that
//! do not arrive, with the promises our grafts hold announcers to. What neighbours ask of our links is
//! in `answers.rs`, and §3.8's optimisation, which announcements prompt, in `trials.rs`.

use std::time::Duration;

use meshwork_wire::{DropReason, Instant, PeerId};

use super::links::Parent;
use super::{DECLINE_BACKOFF, MAX_ANNOUNCERS, MAX_PROMISES, MAX_REPAIRED, Missing, Plumtree, Promise, PtOut};
use crate::cache::Status;
use crate::message::{Announcement, MessageId, TreeMessage, TreeTag};
use crate::score::Penalty;
use crate::state::Timer;

/// Whether a message `hops` links from its origin here gives a neighbour that has it `theirs` links
/// from its origin a path shorter by `threshold` or more through us: the test of §3.8's optimisation
/// ([`Plumtree::maybe_optimize`]), from either end of the link.
pub(super) fn shortens(hops: u16, theirs: u16, threshold: u16) -> bool {
    hops.saturating_add(1).saturating_add(threshold) <= theirs
}

impl Plumtree {
    pub(crate) fn on_ihave(
        &mut self,
        now: Instant,
        from: PeerId,
        ids: &[Announcement],
        out: &mut Vec<PtOut>,
    ) {
        // Only neighbours announce: a stranger's announcements would take places in the table of
        // missing messages (`max_missing`) that honest announcements need, and it is never grafted,
        // so it would never pay for them. A neighbour's catch-up announcement comes after the
        // membership message that made us neighbours, on the same connection.
        if !self.links.contains(&from) {
            return;
        }
        // Messages waiting for our parent's copy that the parent announced instead: graft now.
        let mut parent_announced = Vec::new();
        for announcement in ids {
            if let Some(entry) = self.cache.get_mut(&announcement.id) {
                // It holds the message: what we would announce to it is spared, unless our path is
                // short enough to move its tree link here (§3.8). Before we forward it, the entry
                // remembers; after, our queued announcement is struck at the flush.
                if !shortens(entry.hops, announcement.hops, self.config.optimization_threshold) {
                    match entry.status {
                        Status::Pending { .. } => {
                            if entry.holders.len() < MAX_ANNOUNCERS && !entry.holders.contains(&from) {
                                entry.holders.push(from);
                            }
                        }
                        Status::Accepted if self.told.len() < self.lazy_queue.len() => {
                            self.told.insert((from, announcement.id));
                        }
                        Status::Accepted | Status::Dropped => {}
                    }
                }
                let (parent, accepted) = (entry.parent, entry.status == Status::Accepted);
                let claim = (entry.hops, announcement.hops, entry.message.seq);
                // Hops of a borrowed message count from its own origin, not its tree's.
                let own_tree = entry.tree == entry.message.origin;
                if accepted
                    && own_tree
                    && let Some(parent) = parent
                {
                    let tree = entry.tree;
                    self.maybe_optimize(now, tree, from, parent, claim, out);
                }
                continue;
            }
            if !self.missing.contains_key(&announcement.id) {
                let made = self.missing_by.get(&from).copied().unwrap_or(0);
                if self.missing.len() >= self.config.max_missing || made >= self.missing_share() {
                    continue;
                }
                *self.missing_by.entry(from).or_default() += 1;
                let timer = Timer::Graft(announcement.id);
                out.push(PtOut::Schedule(self.graft_wait_for(announcement.tree), timer));
            }
            let missing = self
                .missing
                .entry(announcement.id)
                .or_insert_with(|| Missing::new(now, announcement.tree, from));
            if missing.tree != Some(announcement.tree) {
                missing.tree = None;
            }
            let known = missing.announcers.iter().any(|(p, _)| *p == from);
            if missing.announcers.len() < MAX_ANNOUNCERS && !known {
                missing.announcers.push_back((from, announcement.hops));
            }
            // Our parent on the tree (the one `defer_to_parent` waits for, or whoever relayed the
            // tree's last message first since) announced the message: it holds it and pushed it
            // elsewhere, so no copy is coming from it and the rest of the wait is lost.
            let waiting_on_parent = missing.deferred && missing.grafted.is_none();
            if waiting_on_parent
                && missing
                    .tree
                    .is_some_and(|tag| self.links.parent_for(tag) == Parent::Alive(from))
            {
                parent_announced.push(announcement.id);
            }
        }
        for id in parent_announced {
            // Once: an `IHave` that names the message twice must not graft a second announcer.
            if self.missing.get(&id).is_some_and(|m| m.grafted.is_none()) {
                self.graft_next(now, id, out);
            }
        }
    }

    /// The entries of the table of missing messages one neighbour's announcements may make: its
    /// share of [`crate::Config::max_missing`] among a full active view's neighbours (at least one),
    /// so that hostile neighbours announcing made-up ids leave the honest ones their places.
    fn missing_share(&self) -> usize {
        let neighbours = self.config.active_view_capacity.max(1);
        (self.config.max_missing / neighbours).max(1)
    }

    /// How long to wait for a copy of a message announced on the tree `tag` before grafting it: the
    /// learnt wait, but only the floor where our parent on that tree left since its last message. No
    /// copy comes from above then, and the nodes below us wait for ours (`defer_to_parent`), so a
    /// wait would only delay the whole subtree's repair.
    fn graft_wait_for(&self, tag: TreeTag) -> Duration {
        match self.links.parent_for(tag) {
            Parent::Left => self.config.graft_timeout_min,
            Parent::Alive(_) | Parent::Unknown => self.graft_wait.timeout(),
        }
    }

    /// The first copy of `id` came; `announced` is what its announcements left, if any came first.
    /// The tree's copy teaches the graft wait how late it was ([`GraftWait::lateness`]); a graft's
    /// answer is remembered, in case the tree's copy still comes ([`Plumtree::duplicate_arrived`]).
    pub(super) fn copy_arrived(
        &mut self,
        now: Instant,
        id: MessageId,
        announced: Option<&Missing>,
        grafted: bool,
    ) {
        match announced {
            None => self.graft_wait.lateness(now, Duration::ZERO),
            // It waited for our parent (`defer_to_parent`): a repair above us was late, not the tree,
            // and the wait for the parent covers one. If the parent's copy brought it, it teaches
            // nothing; if our graft did after the wait, a parent's copy still coming would be late by
            // the wait, which the tree did not cost, so it is not remembered either.
            Some(missing) if missing.deferred => {}
            Some(missing) if !grafted => self
                .graft_wait
                .lateness(now, now.saturating_duration_since(missing.since)),
            Some(missing) => {
                if self.repaired.len() >= MAX_REPAIRED {
                    self.forget_old_repairs(now);
                }
                if self.repaired.len() < MAX_REPAIRED {
                    self.repaired.insert(id, missing.since);
                }
            }
        }
    }

    /// A copy of `id`, already held, that answers no graft of ours. If a graft brought the first copy,
    /// this is the tree's after all: the graft was too early, by the lateness it teaches.
    pub(super) fn duplicate_arrived(&mut self, now: Instant, id: &MessageId) {
        if let Some(since) = self.repaired.remove(id) {
            self.graft_wait
                .lateness(now, now.saturating_duration_since(since));
        }
    }

    /// Forgets the grafted messages remembered longer than four graft ceilings: a tree copy later
    /// than that teaches nothing the ceiling does not.
    pub(super) fn forget_old_repairs(&mut self, now: Instant) {
        let horizon = self.config.graft_timeout * 4;
        self.repaired
            .retain(|_, since| now.saturating_duration_since(*since) < horizon);
    }

    /// The graft timer of a missing message fired.
    pub(crate) fn on_graft_timer(&mut self, now: Instant, id: MessageId, out: &mut Vec<PtOut>) {
        if self.cache.contains(&id) {
            self.forget_missing(&id);
            return;
        }
        // A timer of a graft that a `Decline` already moved on from.
        if self
            .missing
            .get(&id)
            .and_then(|m| m.due)
            .is_some_and(|due| now < due)
        {
            return;
        }
        if self.defer_to_parent(now, id, out) {
            return;
        }
        self.graft_next(now, id, out);
    }

    /// A missing message whose tree has a live parent here (the announcements name the tree, a
    /// [`TreeTag`](crate::TreeTag)) waits one more graft wait before its first graft, for the
    /// parent's graft's round trip and the copy's way down. After a crash every node below a break
    /// hears of the tree's next message from its lazy links at about the same time; if each grafted
    /// at its own timer, each would get a copy from its announcer and then a second from its parent,
    /// once the node nearest the break mended the tree. Waiting leaves the mending to that node (whose
    /// parent is gone, so it grafts after only the floor). A node whose graft brings the copy after
    /// all prunes the parent it waited for (`leave_silent_parent`), so most late parents' copies are
    /// never sent; with that, a second graft wait saved few duplicates and cost latency (crate docs).
    /// Not when the parent is among the announcers (it announced rather than pushed: it is not
    /// sending a copy), nor a second time; a parent that announces it during the wait ends the wait
    /// (`on_ihave`).
    fn defer_to_parent(&mut self, now: Instant, id: MessageId, out: &mut Vec<PtOut>) -> bool {
        let Some(missing) = self.missing.get_mut(&id) else {
            return false;
        };
        if missing.deferred || missing.grafted.is_some() {
            return false;
        }
        let Some(Parent::Alive(parent)) = missing.tree.map(|tag| self.links.parent_for(tag)) else {
            return false;
        };
        if missing.announcers.iter().any(|(peer, _)| *peer == parent) {
            return false;
        }
        let wait = self.graft_wait.timeout();
        missing.deferred = true;
        missing.waited_for = Some(parent);
        missing.due = Some(now + wait);
        self.stats.grafts_deferred += 1;
        out.push(PtOut::Schedule(wait, Timer::Graft(id)));
        true
    }

    /// Grafts the next announcer of missing message `id`: the first, in the order they announced it,
    /// that is still a neighbour and has not declined a graft within [`DECLINE_BACKOFF`] (or else the
    /// first still a neighbour). Forgets the message when no announcer is left.
    fn graft_next(&mut self, now: Instant, id: MessageId, out: &mut Vec<PtOut>) {
        let Some(missing) = self.missing.get_mut(&id) else {
            return;
        };
        // The announcer grafted before is not blamed here: the retry is as short as the learnt round
        // trip allows, for latency, and a busy honest announcer misses it. It is held to its promise
        // for `graft_promise` instead (`on_promise_timer`).
        missing.grafted = None;
        missing.due = None;
        let links = &self.links;
        missing.announcers.retain(|(peer, _)| links.contains(peer));
        let declined = &self.declined;
        let backing_off = |peer: &PeerId| {
            declined
                .get(peer)
                .is_some_and(|at| now.saturating_duration_since(*at) < DECLINE_BACKOFF)
        };
        let next = missing
            .announcers
            .iter()
            .position(|(peer, _)| !backing_off(peer))
            .unwrap_or(0);
        let Some((peer, _)) = missing.announcers.remove(next) else {
            self.forget_missing(&id);
            return;
        };
        // The link turns eager for the message's origin when the message arrives (we do not know the
        // origin before).
        let first_retry = self.config.graft_retry.min(self.config.graft_timeout);
        let retry = self.graft_wait.answer_wait().unwrap_or(first_retry);
        missing.grafted = Some((peer, now));
        missing.due = Some(now + retry);
        self.excuse_pushes(now, peer);
        self.stats.grafts_sent += 1;
        out.push(PtOut::Send(peer, TreeMessage::Graft { id }));
        out.push(PtOut::Schedule(retry, Timer::Graft(id)));
        if self.promises.len() < MAX_PROMISES && !self.promises.contains_key(&(peer, id)) {
            let seq = self.next_graft;
            self.next_graft += 1;
            self.promises.insert((peer, id), Promise { grafted: now, seq });
            let timer = Timer::Promise { peer, id };
            out.push(PtOut::Schedule(self.config.graft_promise, timer));
        }
    }

    /// `from` declined our graft for `id`: its promise is released without blame, and if we were
    /// waiting on it, the next announcer is grafted now rather than after the retry. Returns false for a
    /// decline of nothing we asked `from` for (the caller charges it as waste).
    pub(crate) fn on_decline(
        &mut self,
        now: Instant,
        from: PeerId,
        id: MessageId,
        out: &mut Vec<PtOut>,
    ) -> bool {
        let waiting = self
            .missing
            .get(&id)
            .and_then(|m| m.grafted)
            .is_some_and(|(peer, _)| peer == from);
        match self.promises.remove(&(from, id)) {
            Some(promise) => self.replied(from, promise),
            None if !waiting => return false,
            None => {}
        }
        self.stats.declines_received += 1;
        if self.links.contains(&from) {
            self.declined.insert(from, now);
        }
        if waiting && !self.cache.contains(&id) {
            self.graft_next(now, id, out);
        }
        true
    }

    /// Our send of `msg` to `to` was dropped (its send queue was full). If it answered a graft, the
    /// grafter is told it is not coming, so it asks another announcer and does not blame us. If it was
    /// our graft, the announcer never heard it: it is not held to the promise, and the next announcer
    /// is grafted now. If it was a decline of a graft for an id we announced, dropped by a full queue or
    /// budget, it is owed, and sent again with the next announcements. Data dropped because the peer
    /// reads slower than we send ([`DropReason::QueueFull`]) marks its link full for a while
    /// ([`Plumtree::full_links`]); the node's whole budget spent by others does not.
    pub(crate) fn undelivered(
        &mut self,
        now: Instant,
        to: PeerId,
        msg: &TreeMessage,
        reason: DropReason,
        out: &mut Vec<PtOut>,
    ) {
        if reason == DropReason::QueueFull && msg.is_data() && self.links.contains(&to) {
            self.full_links.insert(to, now);
        }
        match msg {
            TreeMessage::Gossip { message, .. } | TreeMessage::Borrowed { message, .. } => {
                let id = message.id();
                if self.offers.is_answered(&to, &id) {
                    self.decline(to, id, out);
                }
            }
            TreeMessage::Graft { id } => {
                self.promises.remove(&(to, *id));
                let waiting = self.missing.get(id).and_then(|m| m.grafted);
                if waiting.is_some_and(|(peer, _)| peer == to) && !self.cache.contains(id) {
                    self.graft_next(now, *id, out);
                }
            }
            // Owed only if it declined a graft for an id we announced (`Offers::owe`).
            TreeMessage::Decline { id }
                if reason.is_congestion() && self.links.contains(&to) && self.offers.owe(now, to, *id) =>
            {
                self.schedule_flush(out);
            }
            _ => {}
        }
    }

    /// `from` answered a graft of ours `after` it was sent: the slowest recent answer is kept, and
    /// decays by an eighth with each faster one.
    pub(super) fn answered(&mut self, from: PeerId, after: Duration) {
        if !self.links.contains(&from) {
            return;
        }
        let lag = self.answer_lag.entry(from).or_default();
        *lag = after.max(*lag * 7 / 8 + after / 8);
    }

    /// `from` answered or declined the graft of `promise`: every earlier graft to it that is still
    /// unanswered was skipped, since its answers come in the order our grafts went (one stream).
    pub(super) fn replied(&mut self, from: PeerId, promise: Promise) {
        if !self.links.contains(&from) {
            return;
        }
        let latest = self.replied.entry(from).or_default();
        *latest = (*latest).max(promise.seq);
    }

    /// A graft's promise timer fired. The promise is due after [`Config::graft_promise`], or four
    /// times the announcer's slowest recent answer if longer, up to [`Config::graft_promise_max`], once
    /// the announcer answered or declined a later graft of ours: it skipped this one. Until then the
    /// answer may still be queued, on the link or in our own inbox (a link whose queue holds more than
    /// the usual wait filled suddenly, and every graft into it broke at once, 103 of them in one
    /// `coin-node bench` run, banning an honest neighbour), and it is due after
    /// [`Config::graft_promise_max`]; so too if the announcer declined a graft within it (its link is
    /// congested). The timer is set again until then; if the announcer still has not sent the message
    /// nor declined, it broke its promise.
    ///
    /// [`Config::graft_promise`]: crate::Config::graft_promise
    /// [`Config::graft_promise_max`]: crate::Config::graft_promise_max
    pub(crate) fn on_promise_timer(
        &mut self,
        now: Instant,
        peer: PeerId,
        id: MessageId,
        out: &mut Vec<PtOut>,
    ) {
        let Some(promise) = self.promises.get(&(peer, id)).copied() else {
            return;
        };
        let skipped = self
            .replied
            .get(&peer)
            .is_some_and(|latest| *latest > promise.seq);
        let lag = self.answer_lag.get(&peer).copied().unwrap_or_default();
        // A neighbour that declined lately is congested: what it did queue for us is seconds late.
        let congested = self
            .declined
            .get(&peer)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.config.graft_promise_max);
        let due = if congested || !skipped {
            self.config.graft_promise_max
        } else {
            (lag * 4)
                .max(self.config.graft_promise)
                .min(self.config.graft_promise_max)
        };
        let waited = now.saturating_duration_since(promise.grafted);
        if waited < due {
            out.push(PtOut::Schedule(due - waited, Timer::Promise { peer, id }));
            return;
        }
        if self.promises.remove(&(peer, id)).is_some() {
            self.stats.broken_promises += 1;
            out.push(PtOut::Penalty(peer, Penalty::BrokenPromise));
        }
    }
}
