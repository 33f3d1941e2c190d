//! Eager and lazy links, one tree per origin.
//!
//! The Plumtree paper (Leitão et al. 2007) describes one eager set shared by all messages. One shared tree
//! is shaped by whoever sent the first messages: from any other origin a message climbs towards that
//! first origin and back down, so paths are up to twice the overlay's depth (27 hops against flood's 9 at
//! 10,000 nodes), and different origins keep pruning and grafting the same links. Here every origin gets
//! its own lazy set: the first message of an origin is pushed eagerly on every link, duplicates prune, and
//! what stays eager is the tree of first arrivals *from that origin*, so later messages follow
//! near-shortest paths.
//!
//! In a network where every node publishes (a coin's transactions), a node keeps a tree for thousands
//! of origins, so a tree is small: one bit per active-view slot (set: lazy), a use tick and its
//! parent's slot and the newest message's sequence number, 64 bytes with its key, and 36 more for its
//! tag's entry (below). A tree is stored once
//! it has formed here (this node relayed one of its messages), for at most `capacity` origins; when a
//! new one would exceed it, the least recently used quarter is forgotten in one pass (amortised
//! constant time per new origin, where a scan per eviction would cost the whole table each time), and a
//! forgotten origin's next message simply forms its tree again.
//!
//! A formed tree is kept even when every one of its links here is eager (a node whose neighbours are
//! all its parent and children). "All eager" is also what an unknown origin gets, but the two differ
//! when a neighbour joins: the new link is lazy on a formed tree and eager on an unknown one. Dropping
//! the all-eager trees (as this module once did to save their bytes) made every new link after a
//! crash eager on them, and the first message of each tree then crossed every new link as a duplicate:
//! at 1,000 nodes with 5 publishers, half the nodes crashing cost a median of 0.036 duplicates per
//! delivery over the next 100 messages, nearly all in the first few (0.022 with formed trees kept;
//! the crate docs say where the rest comes from).
//!
//! With [`Trees::Shared`] an origin without a tree of its own follows one tree shared by all (the paper's
//! single eager set) instead of flooding: a duplicate of such a message prunes the shared tree
//! (`PruneShared`), and an origin gets a tree of its own, copied from the shared one, when the
//! optimisation moves one of its links. A tree is stored only where it differs from what an origin
//! without one follows (all eager, or the shared tree).
//!
//! Each tree also remembers its **parent** here: the neighbour whose copy of the tree's last message
//! relayed here came first. Announcements name a tree only by a [`TreeTag`], so the table keeps which
//! tree each tag stood for last: the one of them relayed last ([`Links::parent_for`]).
//!
//! Slots: bit `i` stands for `neighbours[i]`. The active view is far smaller than 64 (5 by default);
//! neighbours past the 64th slot are always eager.

use std::collections::HashMap;

use meshwork_wire::PeerId;

use crate::config::Trees;
use crate::message::TreeTag;

/// One bit per neighbour slot.
type Mask = u64;
const SLOTS: usize = Mask::BITS as usize;
/// No parent recorded.
const NO_PARENT: u8 = u8::MAX;
/// The parent's link closed: the tree is broken just above this node.
const PARENT_LEFT: u8 = u8::MAX - 1;

/// What a node knows of its parent on a tree ([`Links::parent_for`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parent {
    /// A neighbour on the tree, whose copy of the tree's next message should come first.
    Alive(PeerId),
    /// The parent's link closed since the tree's last message: no copy comes from above until this
    /// node or one below it grafts.
    Left,
    /// No tree of that tag, no parent recorded, or the parent's link left the tree.
    Unknown,
}

#[derive(Clone, Copy, Debug)]
struct Tree {
    lazy: Mask,
    used: u64,
    /// The slot of the neighbour whose copy of the last message relayed came first, [`NO_PARENT`], or
    /// [`PARENT_LEFT`].
    parent: u8,
    /// The sequence number of the newest of the origin's own messages relayed on it (`newest.rs`).
    newest: u64,
}

impl Tree {
    /// The neighbour in `slot` (a parent slot, [`Links::parent_slot`]) becomes the parent, unless its
    /// link is lazy on this tree: no copy comes that way next.
    fn adopt_parent(&mut self, slot: usize) {
        if self.lazy & bit(slot) == 0 {
            self.parent = slot as u8; // below `PARENT_LEFT` (`parent_slot`)
        }
    }
}

/// The active-view neighbours, and per origin the ones that are lazy.
#[derive(Debug)]
pub(crate) struct Links {
    neighbours: Vec<PeerId>,
    trees: HashMap<PeerId, Tree>,
    /// The origin of the tree each tag stands for: of the trees that share a tag, the one relayed last
    /// (until one is relayed, the first formed: only relaying moves a tag).
    /// At most one entry per tree, forgotten with it.
    tags: HashMap<TreeTag, PeerId>,
    /// What an origin without a tree follows.
    mode: Trees,
    /// The shared tree's lazy links (always empty with [`Trees::PerOrigin`]).
    shared: Mask,
    capacity: usize,
    tick: u64,
}

fn bit(slot: usize) -> Mask {
    if slot < SLOTS { 1 << slot } else { 0 }
}

impl Links {
    pub(crate) fn new(capacity: usize, mode: Trees) -> Self {
        Self {
            neighbours: Vec::new(),
            trees: HashMap::new(),
            tags: HashMap::new(),
            mode,
            shared: 0,
            capacity: capacity.max(1),
            tick: 0,
        }
    }

    pub(crate) fn neighbours(&self) -> &[PeerId] {
        &self.neighbours
    }

    pub(crate) fn contains(&self, peer: &PeerId) -> bool {
        self.neighbours.contains(peer)
    }

    fn slot(&self, peer: &PeerId) -> Option<usize> {
        self.neighbours.iter().position(|p| p == peer)
    }

    /// A new neighbour is eager for origins without a tree yet, as the paper's new links are, but lazy for
    /// origins whose tree has formed. Eager there, it would silently re-hang any subtree that lost its tree
    /// link on whatever long path the new link offers; lazy, such a subtree misses the `Gossip`, grafts
    /// from its first announcer and the optimisation straightens it.
    pub(crate) fn up(&mut self, peer: PeerId) {
        if self.contains(&peer) {
            return;
        }
        self.neighbours.push(peer);
        let new = bit(self.neighbours.len() - 1);
        for tree in self.trees.values_mut() {
            tree.lazy |= new;
        }
    }

    /// A neighbour left: the last neighbour takes its slot (and its bits move with it).
    pub(crate) fn down(&mut self, peer: PeerId) {
        let Some(slot) = self.slot(&peer) else {
            return;
        };
        let last = self.neighbours.len() - 1;
        self.neighbours.swap_remove(slot);
        let (gone, moved) = (bit(slot), bit(last));
        let vacate = |mask: &mut Mask| {
            let was_lazy = *mask & moved != 0;
            *mask &= !(gone | moved);
            if was_lazy && slot != last {
                *mask |= gone;
            }
        };
        vacate(&mut self.shared);
        for tree in self.trees.values_mut() {
            vacate(&mut tree.lazy);
            if tree.parent >= PARENT_LEFT {
                continue; // no slot to move
            }
            if usize::from(tree.parent) == slot {
                tree.parent = PARENT_LEFT;
            } else if usize::from(tree.parent) == last {
                tree.parent = slot as u8; // below `last`, the parent's slot, itself below `PARENT_LEFT`
            }
        }
        if self.mode == Trees::Shared {
            let shared = self.shared;
            self.trees.retain(|_, tree| tree.lazy != shared);
            self.forget_tags();
        }
    }

    /// With [`Trees::Shared`], an origin whose tree became the shared tree again follows it (and its
    /// later changes) instead of a copy. Other modes keep formed trees, all eager or not (module docs).
    fn drop_if_shared(&mut self, origin: &PeerId) {
        if self.mode == Trees::Shared && self.trees.get(origin).is_some_and(|t| t.lazy == self.shared) {
            self.trees.remove(origin);
            let tag = TreeTag::of(origin);
            if self.tags.get(&tag) == Some(origin) {
                self.tags.remove(&tag);
            }
        }
    }

    /// Forgets the tags of trees no longer held.
    fn forget_tags(&mut self) {
        let trees = &self.trees;
        self.tags.retain(|_, origin| trees.contains_key(origin));
    }

    /// `peer`'s copy of a message on `origin`'s tree came first here: it is the tree's parent until
    /// another's copy of a later message comes first, or it leaves. Only for a formed tree (the caller
    /// relays the message), and only while the link is on the tree.
    pub(crate) fn set_parent(&mut self, origin: &PeerId, peer: &PeerId) {
        if let Some(slot) = self.parent_slot(peer)
            && let Some(tree) = self.trees.get_mut(origin)
        {
            tree.adopt_parent(slot);
        }
    }

    /// `peer`'s slot, if a tree can record it as parent (a neighbour's, below the sentinels).
    fn parent_slot(&self, peer: &PeerId) -> Option<usize> {
        self.slot(peer).filter(|&s| s < usize::from(PARENT_LEFT))
    }

    /// The origin of the tree `tag` stands for (`tags`).
    pub(crate) fn origin_of(&self, tag: TreeTag) -> Option<PeerId> {
        self.tags.get(&tag).copied()
    }

    /// The parent on the tree `tag` stood for last.
    pub(crate) fn parent_for(&self, tag: TreeTag) -> Parent {
        match self.tags.get(&tag) {
            Some(origin) => self.parent_of(origin),
            None => Parent::Unknown,
        }
    }

    /// The neighbour recorded as parent on `origin`'s tree, its link eager or lazy: a parent that
    /// pruned its own link since is still the one whose copy did not come.
    pub(crate) fn recorded_parent(&self, origin: &PeerId) -> Option<PeerId> {
        let tree = self.trees.get(origin)?;
        if tree.parent >= PARENT_LEFT {
            return None;
        }
        self.neighbours.get(usize::from(tree.parent)).copied()
    }

    /// The parent on `origin`'s tree.
    pub(crate) fn parent_of(&self, origin: &PeerId) -> Parent {
        let Some(tree) = self.trees.get(origin) else {
            return Parent::Unknown;
        };
        if tree.parent == PARENT_LEFT {
            return Parent::Left;
        }
        let slot = usize::from(tree.parent);
        match self.neighbours.get(slot) {
            Some(parent) if tree.lazy & bit(slot) == 0 => Parent::Alive(*parent),
            _ => Parent::Unknown,
        }
    }

    /// True if messages of `origin` follow the shared tree (it has no tree of its own).
    pub(crate) fn follows_shared(&self, origin: &PeerId) -> bool {
        self.mode == Trees::Shared && !self.trees.contains_key(origin)
    }

    pub(crate) fn is_lazy(&self, origin: &PeerId, peer: &PeerId) -> bool {
        let Some(slot) = self.slot(peer) else {
            return false;
        };
        let mask = self.trees.get(origin).map_or(self.shared, |tree| tree.lazy);
        mask & bit(slot) != 0
    }

    /// True if `peer` is a neighbour on the tree of `origin`.
    pub(crate) fn is_eager(&self, origin: &PeerId, peer: &PeerId) -> bool {
        self.contains(peer) && !self.is_lazy(origin, peer)
    }

    /// A message on `origin`'s tree is being relayed, its first copy from `parent` (`None`: we
    /// published it): the tree has formed here (a neighbour that joins later is lazy on it), is the
    /// last to be forgotten, and `parent` is its parent (as `set_parent` has it) unless the message
    /// is no newer than the tree's newest. With [`Trees::Shared`] an origin without a tree of its
    /// own follows the shared one, so nothing is recorded for it. `seq` is the message's sequence
    /// number if it is the origin's own (not one that borrowed the tree): the tree's newest, if newer
    /// (`newest.rs`). One lookup of the tree for all four: it runs for every message relayed.
    pub(crate) fn relaying(&mut self, origin: PeerId, parent: Option<&PeerId>, seq: Option<u64>) {
        let slot = parent.and_then(|peer| self.parent_slot(peer));
        let shared = self.mode == Trees::Shared;
        // `own_tree` counts a tick of its own.
        let used = self.tick + if shared { 1 } else { 2 };
        let tree = if shared {
            let Some(tree) = self.trees.get_mut(&origin) else {
                self.tick = used;
                return;
            };
            tree
        } else {
            self.own_tree(origin)
        };
        tree.used = used;
        // The parent is whoever brought the tree's newest message first: an old one, replayed once
        // it left our seen cache, says nothing of where the next comes from (`newest.rs`).
        let newer = seq.is_none_or(|seq| seq > tree.newest);
        if let Some(slot) = slot.filter(|_| newer) {
            tree.adopt_parent(slot);
        }
        if let Some(seq) = seq {
            tree.newest = tree.newest.max(seq);
        }
        self.tick = used;
        // A tag two trees share stands for the one relayed last.
        self.tags.insert(TreeTag::of(&origin), origin);
    }

    /// Whether a neighbour's `Prune` or `Shortcut` naming `origin` may change our links for it. A
    /// tree forms here by relaying its messages, so one naming an origin we hold no tree for prunes
    /// nothing (its tree was forgotten, or the origin is made up) and must not make a tree: each
    /// would push a real one out of the table, whose origin's next message then floods. With
    /// [`Trees::Shared`] any origin may: the optimisation moves an origin that follows the shared
    /// tree to a tree of its own, by a `Prune` to its old parent (and one forgotten falls back to
    /// the shared tree, not to a flood).
    pub(crate) fn prunable(&self, origin: &PeerId) -> bool {
        self.mode == Trees::Shared || self.trees.contains_key(origin)
    }

    pub(crate) fn make_lazy(&mut self, origin: PeerId, peer: PeerId) {
        let Some(slot) = self.slot(&peer).filter(|&s| s < SLOTS) else {
            return;
        };
        self.own_tree(origin).lazy |= bit(slot);
    }

    /// `origin`'s own tree, copied from what it followed until now (the shared tree, or all eager) if
    /// it had none; room is made first when the table is full.
    fn own_tree(&mut self, origin: PeerId) -> &mut Tree {
        if !self.trees.contains_key(&origin) && self.trees.len() >= self.capacity {
            self.forget_least_used();
        }
        self.tick += 1;
        let (used, lazy) = (self.tick, self.shared);
        let tags = &mut self.tags;
        self.trees.entry(origin).or_insert_with(|| {
            // Only relaying moves a tag to another tree (`relaying`): a `Prune` or a `Shortcut`
            // naming any key would otherwise take the tag from the tree it stands for.
            tags.entry(TreeTag::of(&origin)).or_insert(origin);
            Tree {
                lazy,
                used,
                parent: NO_PARENT,
                newest: 0,
            }
        })
    }

    /// The shared tree's link to `peer` turns lazy (a duplicate came on it, or the peer pruned it).
    /// Without a shared tree ([`Trees::PerOrigin`]) there is nothing to prune: a peer's `PruneShared`
    /// must not make its link lazy for every origin we have no tree for.
    pub(crate) fn make_shared_lazy(&mut self, peer: &PeerId) {
        if self.mode != Trees::Shared {
            return;
        }
        if let Some(slot) = self.slot(peer) {
            self.shared |= bit(slot);
        }
    }

    /// Forgets the least recently used quarter of the trees (at least one). Ticks are unique, so the
    /// choice is deterministic.
    fn forget_least_used(&mut self) {
        let mut ticks: Vec<u64> = self.trees.values().map(|t| t.used).collect();
        let cut = (ticks.len() / 4).max(1).min(ticks.len());
        if cut == 0 {
            return;
        }
        let (_, &mut threshold, _) = ticks.select_nth_unstable(cut - 1);
        self.trees.retain(|_, tree| tree.used > threshold);
        self.forget_tags();
    }

    /// `peer`'s link carries messages of `origin` eagerly: on `origin`'s tree if it has one, else on the
    /// shared tree (a graft, or a first copy it pushed to us).
    pub(crate) fn make_eager(&mut self, origin: &PeerId, peer: &PeerId) {
        let Some(slot) = self.slot(peer) else {
            return;
        };
        match self.trees.get_mut(origin) {
            Some(tree) => {
                tree.lazy &= !bit(slot);
                self.drop_if_shared(origin);
            }
            None => self.shared &= !bit(slot),
        }
    }

    /// True if some neighbour carries messages of `origin` eagerly.
    pub(crate) fn has_eager(&self, origin: &PeerId) -> bool {
        self.neighbours.iter().any(|peer| self.is_eager(origin, peer))
    }

    /// Every neighbour carries messages of `origin` eagerly, as for an origin not met before.
    pub(crate) fn all_eager(&mut self, origin: PeerId) {
        self.own_tree(origin).lazy = 0;
        self.drop_if_shared(&origin);
    }

    /// `peer`'s link joins `origin`'s own tree (the optimisation's `Shortcut`), which is copied from the
    /// shared tree first if `origin` had none: the shared tree stays as it is.
    pub(crate) fn join_tree(&mut self, origin: PeerId, peer: &PeerId) {
        let Some(slot) = self.slot(peer).filter(|&s| s < SLOTS) else {
            return;
        };
        if self.mode == Trees::PerOrigin && !self.trees.contains_key(&origin) {
            return; // already eager
        }
        self.own_tree(origin).lazy &= !bit(slot);
        self.drop_if_shared(&origin);
    }

    /// Origins with a tree of their own here.
    pub(crate) fn origins(&self) -> usize {
        self.trees.len()
    }
}

mod newest;
#[cfg(test)]
mod tests;
