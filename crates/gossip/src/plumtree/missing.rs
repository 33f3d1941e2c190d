//! The table of missing messages: ids announced to us (`IHave`) whose copy has not come, with
//! who announced them, and how many entries each neighbour's announcements made
//! ([`Plumtree::missing_by`]).

use std::collections::{HashMap, VecDeque};

use meshwork_wire::{Instant, PeerId};

use super::Plumtree;
#[cfg(doc)]
use super::rtt::GraftWait;
use crate::message::{MessageId, TreeTag};

/// A message announced to us whose copy has not come.
#[derive(Debug)]
pub(super) struct Missing {
    /// When its first announcement came: how late the tree's copy is ([`GraftWait::lateness`]).
    pub(super) since: Instant,
    /// The neighbour whose announcement made the entry: it counts against that neighbour's share of
    /// the table ([`Plumtree::missing_by`]).
    pub(super) creator: PeerId,
    /// Who announced it, with the hops it had there.
    pub(super) announcers: VecDeque<(PeerId, u16)>,
    /// The announcer grafted last, and when.
    pub(super) grafted: Option<(PeerId, Instant)>,
    /// When the graft timer scheduled last falls due: one that fires before is stale (a `Decline`
    /// grafted the next announcer sooner, and scheduled its own).
    pub(super) due: Option<Instant>,
    /// The tree its announcements named, or `None` once two named different ones (a node then trusts
    /// no tag for it, so an announcer naming a wrong tree cannot make it wait).
    pub(super) tree: Option<TreeTag>,
    /// Whether its first graft waited for our parent on that tree (`lazy.rs`'s `defer_to_parent`).
    pub(super) deferred: bool,
    /// The parent it waited for: pruned if a graft brings the copy instead
    /// (`receive.rs`'s `leave_silent_parent`).
    pub(super) waited_for: Option<PeerId>,
}

impl Missing {
    pub(super) fn new(since: Instant, tree: TreeTag, creator: PeerId) -> Self {
        Self {
            since,
            creator,
            announcers: VecDeque::new(),
            grafted: None,
            due: None,
            tree: Some(tree),
            deferred: false,
            waited_for: None,
        }
    }
}

impl Plumtree {
    /// Forgets the missing messages whose copy came since (the cache holds them).
    pub(super) fn forget_arrived(&mut self) {
        let (cache, missing_by) = (&self.cache, &mut self.missing_by);
        self.missing.retain(|id, missing| {
            let keep = !cache.contains(id);
            if !keep {
                uncount(missing_by, &missing.creator);
            }
            keep
        });
    }

    /// Forgets missing message `id`, and its count against the neighbour whose announcement made it.
    pub(super) fn forget_missing(&mut self, id: &MessageId) -> Option<Missing> {
        let missing = self.missing.remove(id)?;
        uncount(&mut self.missing_by, &missing.creator);
        Some(missing)
    }
}

/// One entry of the table of missing messages fewer made by `creator`'s announcements.
fn uncount(missing_by: &mut HashMap<PeerId, usize>, creator: &PeerId) {
    if let Some(n) = missing_by.get_mut(creator) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            missing_by.remove(creator);
        }
    }
}
