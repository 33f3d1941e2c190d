//! Shortcuts on probation: a lazy neighbour's claim to be nearer an origin is held to what follows.
//!
//! Plumtree's optimisation (§3.8, [`super::Plumtree::maybe_optimize`]) moves our tree link for an
//! origin to a lazy neighbour whose announcement counts fewer hops than our copy did. Hop counts are
//! the sender's word. A neighbour that announces every message at one hop becomes our parent on every
//! tree it is lazy on, and then need only withhold the copies: each next message waits the graft
//! wait, then as long again for the parent (`defer_to_parent`), then a graft's round trip; and after
//! the repair the liar announces low again and takes the tree back. One liar would delay every
//! message of every such origin.
//!
//! So the neighbour a shortcut moved us to is our parent on probation for [`PROBATION`]. A message of
//! the origin that reaches us late while that neighbour is still the tree's recorded parent (by a
//! graft, or after we waited for the parent; pruning its own link changes nothing) is a strike
//! against its claim, whoever's copy came in the end, and its claims are ignored for a while:
//! [`FIRST_BAR`], doubling with each strike within [`MAX_BAR`] of the last bar's end, up to
//! [`MAX_BAR`]. A copy that came by a graft from another neighbour makes that neighbour the tree's
//! parent, which ends the harm on that tree. A neighbour still the parent at its second strike (it
//! pushed late, after we waited for it, or only answered our grafts) is evicted: its link leaves
//! that tree and the trees of its other shortcuts on probation, and each of those trees where it was
//! still the parent goes back to the parent its shortcut replaced. Evicting at the first strike
//! cost honest trees: after half of 1,000 nodes crash, parents whose own upstream broke are late
//! once, and moving their links back and forth raised `after_crash_rmr` from 0.0094 to 0.013
//! (`meshsim gossip --fail 0.5`, seed 1).
//!
//! Only messages the origin published after the one that prompted the shortcut count (by the
//! origin's sequence number, which an honest origin raises with every message): an older one that we
//! hear of late, from a new neighbour's catch-up say, never passed the new parent. Nor does a message
//! whose first news came within a graft wait of the shortcut: it was on its way before the new parent
//! heard of the shortcut. Nor a copy that came first along another path: nothing was late. A
//! neighbour that leaves ends its probations without blame, and where it was still the parent, the
//! replaced parents are asked back at once.
//!
//! What it bounds, and what not:
//! - A liar costs about one late message on each tree it claims, per bar: the bar only holds new
//!   claims back, and once it ends the liar may claim every tree it is lazy on again (at most 128
//!   probations a neighbour). Its bars double to ten minutes while it keeps failing.
//! - Delays shorter than the graft wait are not caught: a copy that comes before we graft or wait
//!   is on time. Nor is a parent that behaves for the ten minutes of its probation and withholds
//!   after; the tree's usual repair (a graft, whose sender becomes the parent) then applies.
//! - Strikes do not decay within a probation: two late messages evict, however far apart. A parent
//!   whose own upstream broke twice in ten minutes is moved back to the parent it replaced, which is
//!   where the tree was before its claim.
//! - The mark is the number of the message that prompted the shortcut, not the newest we hold: a
//!   shortcut prompted by an older message we hold (a new neighbour's catch-up announcement of it)
//!   still judges the messages between the two, should one of them come late.
//! - An origin that numbers its messages out of order harms only the probations on its own tree
//!   (messages that borrow its tree are never judged).
//!
//! The attack is staged on QUIC in the node crate's `tests/gossip_hop_lie.rs`, and at scale by
//! `meshsim gossip-spam --spam-kind hop-lie`.

use std::collections::HashMap;
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::Instant;

use super::lazy::shortens;
use super::{Plumtree, PtOut};
use crate::message::TreeMessage;

/// How long a neighbour whose shortcut failed has its claims ignored, the first time.
pub(super) const FIRST_BAR: Duration = Duration::from_secs(60);
/// The longest bar; a neighbour whose last bar ended this long ago starts again from [`FIRST_BAR`].
pub(super) const MAX_BAR: Duration = Duration::from_secs(600);
/// How long the parent a shortcut made is on probation.
pub(super) const PROBATION: Duration = Duration::from_secs(600);
/// Probations at once, at most: a shortcut beyond them is not taken (it is an optimisation).
const MAX_TRIALS: usize = 1024;
/// Probations of one neighbour at once, at most, so that one neighbour cannot take every place.
const MAX_TRIALS_PER_PEER: usize = 128;
/// Barred neighbours remembered, at most (a bar outlives the link, or leaving and coming back would
/// lift it); past it, the bar that ends first goes.
const MAX_BARRED: usize = 4096;

/// One shortcut on probation.
#[derive(Clone, Debug)]
struct Trial {
    /// The neighbour that claimed to be nearer, now our parent on the origin's tree.
    peer: PeerId,
    /// The parent it replaced.
    replaced: PeerId,
    /// When the shortcut was taken.
    since: Instant,
    /// The sequence number of the origin's message that prompted it: later messages are the claim's.
    after: u64,
    /// Messages that came late while it was our parent on probation.
    strikes: u8,
}

/// A tree to give back: an origin, and the parent a shortcut replaced there.
pub(super) type Undo = (PeerId, PeerId);

/// A strike against a claim: who made it, and, at its second strike, the trees to undo.
#[derive(Debug)]
pub(super) struct Failed {
    /// The neighbour struck.
    pub(super) peer: PeerId,
    /// At the second strike: the tree it failed on, and those of its other shortcuts on probation.
    pub(super) undo: Option<(Undo, Vec<Undo>)>,
}

/// The shortcuts on probation, by origin, and the neighbours barred from shortcuts.
#[derive(Clone, Debug, Default)]
pub(super) struct Trials {
    open: HashMap<PeerId, Trial>,
    /// Per neighbour struck: until when its claims are ignored, and how long that bar was.
    barred: HashMap<PeerId, (Instant, Duration)>,
}

impl Trials {
    /// Whether a shortcut to `peer` on `origin`'s tree, in place of `replaced`, may be taken now, with
    /// `parent` the tree's recorded parent ([`super::links::Links::recorded_parent`]): `peer` is not
    /// barred, there is room, and the tree's probation, if any, is another neighbour's and either
    /// what the shortcut replaces or moot (another neighbour is the parent now). A claim by the parent
    /// on probation itself (it pruned its own link, to claim again) is refused.
    pub(super) fn may_try(
        &self,
        origin: &PeerId,
        peer: &PeerId,
        replaced: &PeerId,
        parent: Option<PeerId>,
        now: Instant,
    ) -> bool {
        self.open.len() < MAX_TRIALS
            && self.open.get(origin).is_none_or(|t| {
                t.peer != *peer && (t.peer == *replaced || parent.is_some_and(|p| p != t.peer))
            })
            && self.barred.get(peer).is_none_or(|(until, _)| now >= *until)
            && self.open.values().filter(|t| t.peer == *peer).count() < MAX_TRIALS_PER_PEER
    }

    /// A shortcut made `peer` our parent on `origin`'s tree, in place of `replaced`, on news of the
    /// origin's message `after`. If `replaced` was on probation there, the parent it replaced is the
    /// one to give the tree back to.
    pub(super) fn open(&mut self, origin: PeerId, peer: PeerId, replaced: PeerId, after: u64, now: Instant) {
        let replaced = match self.open.get(&origin) {
            Some(t) if t.peer == replaced => t.replaced,
            _ => replaced,
        };
        let strikes = 0;
        self.open.insert(
            origin,
            Trial {
                peer,
                replaced,
                since: now,
                after,
                strikes,
            },
        );
    }

    /// The message `seq` of `origin`'s tree reached us late (a graft brought it, or we waited for our
    /// parent first), with `parent` the recorded parent there until now, and the first news of it came
    /// at `news`: a strike against the claim if `parent` is the tree's parent on probation, the
    /// message is newer than the one that prompted the shortcut, and the news came `race` or more
    /// after the shortcut. A strike bars the neighbour; at its second, its probations close, to be
    /// undone.
    pub(super) fn late(
        &mut self,
        origin: &PeerId,
        parent: Option<PeerId>,
        (seq, news): (u64, Instant),
        race: Duration,
        now: Instant,
    ) -> Option<Failed> {
        let trial = self.open.get_mut(origin)?;
        if parent != Some(trial.peer) || seq <= trial.after || news < trial.since + race {
            return None;
        }
        trial.strikes += 1;
        let (peer, replaced, evict) = (trial.peer, trial.replaced, trial.strikes >= 2);
        let undo = evict.then(|| {
            self.open.remove(origin);
            ((*origin, replaced), self.close(&peer))
        });
        if self.barred.len() >= MAX_BARRED && !self.barred.contains_key(&peer) {
            let first = self
                .barred
                .iter()
                .min_by_key(|(p, bar)| (bar.0, **p))
                .map(|(p, _)| *p);
            if let Some(first) = first {
                self.barred.remove(&first);
            }
        }
        let bar = match self.barred.get(&peer) {
            Some((until, last)) if now < *until + MAX_BAR => (*last * 2).min(MAX_BAR),
            _ => FIRST_BAR,
        };
        self.barred.insert(peer, (now + bar, bar));
        Some(Failed { peer, undo })
    }

    /// Closes `peer`'s probations; returns each origin with the parent its shortcut replaced.
    pub(super) fn close(&mut self, peer: &PeerId) -> Vec<Undo> {
        let mut closed = Vec::new();
        self.open.retain(|origin, t| {
            let keep = t.peer != *peer;
            if !keep {
                closed.push((*origin, t.replaced));
            }
            keep
        });
        closed
    }

    /// Ends the probations that lasted [`PROBATION`] (the claims held), and forgets the bars that
    /// ended [`MAX_BAR`] ago.
    pub(super) fn sweep(&mut self, now: Instant) {
        self.open
            .retain(|_, t| now.saturating_duration_since(t.since) < PROBATION);
        self.barred.retain(|_, (until, _)| now < *until + MAX_BAR);
    }
}

impl Plumtree {
    /// The paper's optimisation (§3.8): when a lazy neighbour announces a message `threshold` hops sooner
    /// than the tree delivered it, its link becomes the tree link for this origin (`Shortcut`, the paper's
    /// graft without a message) and the old tree link is pruned. Without it a tree bent by a repair (a
    /// graft through whichever announcer answered first) keeps its detour for every later message.
    /// The new parent is on probation (`trials.rs`): hop counts are the announcer's word.
    /// `claim`: the hops our copy of the origin's message took, the hops `from` announced it at, and
    /// its sequence number (the probation judges only later messages).
    pub(super) fn maybe_optimize(
        &mut self,
        now: Instant,
        origin: PeerId,
        from: PeerId,
        parent: PeerId,
        (hops, announced, seq): (u16, u16, u64),
        out: &mut Vec<PtOut>,
    ) {
        if parent != from
            && self.links.contains(&from)
            && self.links.is_lazy(&origin, &from)
            && shortens(announced, hops, self.config.optimization_threshold)
            && self.links.is_eager(&origin, &parent)
            && self
                .trials
                .may_try(&origin, &from, &parent, self.links.recorded_parent(&origin), now)
        {
            self.trials.open(origin, from, parent, seq, now);
            self.stats.shortcuts_sent += 1;
            self.stats.prunes_sent += 1;
            out.push(PtOut::Send(from, TreeMessage::Shortcut { origin }));
            out.push(PtOut::Send(parent, TreeMessage::Prune { origin }));
            self.links.join_tree(origin, &from);
            self.links.make_lazy(origin, parent);
            self.links.set_parent(&origin, &from);
        }
    }

    /// A strike against a shortcut's claim (`trials.rs`). At the second, the claimant is evicted:
    /// its link leaves the tree it was struck on and the trees of its other shortcuts on probation,
    /// and each of those trees where it was still the parent goes back to the parent its shortcut
    /// replaced.
    pub(super) fn claim_failed(&mut self, now: Instant, failed: Failed, out: &mut Vec<PtOut>) {
        self.stats.shortcuts_failed += 1;
        let claimant = failed.peer;
        let Some((failed_tree, others)) = failed.undo else {
            return;
        };
        for (origin, replaced) in std::iter::once(failed_tree).chain(others) {
            // Where another neighbour became the parent since, the tree is whole: only the
            // claimant's link leaves it.
            let was_parent = self.links.recorded_parent(&origin) == Some(claimant);
            if self.links.contains(&claimant)
                && self.links.prunable(&origin)
                && self.links.is_eager(&origin, &claimant)
            {
                self.prune(now, origin, claimant, out);
            }
            if was_parent {
                self.restore_parent(origin, replaced, out);
            }
        }
    }

    /// Asks `parent` back as our parent on `origin`'s tree, where a shortcut replaced it: if it is
    /// still a neighbour, lazy there, and we hold the tree.
    pub(super) fn restore_parent(&mut self, origin: PeerId, parent: PeerId, out: &mut Vec<PtOut>) {
        if self.links.prunable(&origin) && self.links.is_lazy(&origin, &parent) {
            self.stats.shortcuts_undone += 1;
            self.links.join_tree(origin, &parent);
            self.links.set_parent(&origin, &parent);
            out.push(PtOut::Send(parent, TreeMessage::Shortcut { origin }));
        }
    }
}
