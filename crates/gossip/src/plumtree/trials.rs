//! Shortcuts on trial: a lazy neighbour's claim to be nearer an origin is checked by the origin's
//! next message.
//!
//! Plumtree's optimisation (§3.8, [`super::Plumtree::maybe_optimize`]) moves our tree link for an
//! origin to a lazy neighbour whose announcement counts fewer hops than our copy did. Hop counts are
//! the sender's word. A neighbour that announces every message at one hop becomes our parent on every
//! tree it is lazy on, and then need only withhold the copies: each next message waits for it twice
//! the graft wait (`defer_to_parent`) and comes by a graft, after which the liar announces low again
//! and takes the tree back. One liar would delay every message of every such origin.
//!
//! So a shortcut is on trial until the origin's next message arrives. If its first copy comes from
//! the neighbour we moved to, pushed unasked, the claim held. If it comes from anyone else, or in
//! answer to a graft (a parent that announces instead of pushing costs a round trip a message), the
//! claim failed: the neighbour's other open trials are undone (their trees go back to the parents
//! they replaced), the tree it failed on drops its link to it, and its claims are ignored for a
//! while: [`FIRST_BAR`], doubling with each failure that follows within [`MAX_BAR`] of the last bar's
//! end, up to [`MAX_BAR`]. A liar then costs a few late messages in its first ten minutes and one
//! per ten minutes after, not one per message. Honest claims fail too, while trees are in flux: a
//! third of the shortcuts in the 1,000-node crash runs of `meshsim gossip --fail 0.5` (seed 1: 122
//! of 385; `gossip_shortcuts_failed_total`). Most (74) because the new parent had pruned its side
//! of the link by then, and announced the message instead of pushing it; the rest because a copy
//! came first along another path. Such a neighbour loses nothing but the optimisation, for a
//! minute, and those runs' redundancy and latency after the crash are the same as without trials.
//! A trial whose origin stays silent for [`WINDOW`] ends without a verdict. The attack is staged on
//! QUIC in the node crate's `tests/gossip_hop_lie.rs`, and at scale by `meshsim gossip-spam
//! --spam-kind hop-lie`.

use std::collections::HashMap;
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::Instant;

/// How long a neighbour whose shortcut failed has its claims ignored, the first time.
pub(super) const FIRST_BAR: Duration = Duration::from_secs(60);
/// The longest bar; a neighbour whose last bar ended this long ago starts again from [`FIRST_BAR`].
pub(super) const MAX_BAR: Duration = Duration::from_secs(600);
/// How long a trial waits for its origin's next message.
pub(super) const WINDOW: Duration = Duration::from_secs(120);
/// Trials open at once, at most: a shortcut beyond them is not taken (it is an optimisation).
const MAX_TRIALS: usize = 1024;
/// Barred neighbours remembered, at most (a bar outlives the link, or leaving and coming back would
/// lift it); past it, the bar that ends first goes.
const MAX_BARRED: usize = 4096;

/// One shortcut on trial.
#[derive(Clone, Debug)]
struct Trial {
    /// The neighbour that claimed to be nearer, now our parent on the origin's tree.
    peer: PeerId,
    /// The parent it replaced.
    replaced: PeerId,
    /// When the shortcut was taken.
    since: Instant,
}

/// A claim that failed: who made it, and the trees to undo.
#[derive(Debug)]
pub(super) struct Failed {
    /// The neighbour whose copy did not come first.
    pub(super) peer: PeerId,
    /// The origin whose message showed it.
    pub(super) origin: PeerId,
    /// Its other open trials: each origin, with the parent its shortcut replaced.
    pub(super) undo: Vec<(PeerId, PeerId)>,
}

/// The open trials, by origin, and the neighbours barred from shortcuts.
#[derive(Clone, Debug, Default)]
pub(super) struct Trials {
    open: HashMap<PeerId, Trial>,
    /// Per neighbour whose claim failed: until when its claims are ignored, and how long that bar was.
    barred: HashMap<PeerId, (Instant, Duration)>,
}

impl Trials {
    /// Whether a shortcut to `peer` may be taken now: it is not barred, and there is room to try it.
    pub(super) fn may_try(&self, peer: &PeerId, now: Instant) -> bool {
        self.open.len() < MAX_TRIALS && self.barred.get(peer).is_none_or(|(until, _)| now >= *until)
    }

    /// A shortcut made `peer` our parent on `origin`'s tree, in place of `replaced`.
    pub(super) fn open(&mut self, origin: PeerId, peer: PeerId, replaced: PeerId, now: Instant) {
        self.open.insert(
            origin,
            Trial {
                peer,
                replaced,
                since: now,
            },
        );
    }

    /// The first copy of a message on `origin`'s tree came from `from`, `pushed` unasked (not in answer
    /// to a graft): the verdict on the tree's trial, if one is open. The claim holds if its neighbour
    /// pushed the copy; a failed claim bars its neighbour and closes its other trials.
    pub(super) fn first_copy(
        &mut self,
        origin: &PeerId,
        from: &PeerId,
        pushed: bool,
        now: Instant,
    ) -> Option<Failed> {
        let trial = self.open.remove(origin)?;
        if trial.peer == *from && pushed {
            return None;
        }
        let peer = trial.peer;
        let mut undo = Vec::new();
        self.open.retain(|other, t| {
            let keep = t.peer != peer;
            if !keep {
                undo.push((*other, t.replaced));
            }
            keep
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
        Some(Failed {
            peer,
            origin: *origin,
            undo,
        })
    }

    /// Ends the trials whose origin stayed silent for [`WINDOW`], and forgets the bars that ended
    /// [`MAX_BAR`] ago.
    pub(super) fn sweep(&mut self, now: Instant) {
        self.open
            .retain(|_, t| now.saturating_duration_since(t.since) < WINDOW);
        self.barred.retain(|_, (until, _)| now < *until + MAX_BAR);
    }
}
