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
//! Only lazy links are stored (eager is the default), for at most `capacity` origins; the least recently
//! used origin is forgotten first, and its next message simply forms its tree again. An origin's entry is
//! dropped when its last lazy link turns eager: "all eager" is what an unknown origin gets anyway.

use std::collections::HashMap;

use meshwork_wire::PeerId;

#[derive(Debug)]
struct Tree {
    lazy: Vec<PeerId>,
    used: u64,
}

/// The active-view neighbours, and per origin the ones that are lazy.
#[derive(Debug)]
pub(crate) struct Links {
    neighbours: Vec<PeerId>,
    trees: HashMap<PeerId, Tree>,
    capacity: usize,
    tick: u64,
}

impl Links {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            neighbours: Vec::new(),
            trees: HashMap::new(),
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

    /// A new neighbour is eager for origins without a tree yet, as the paper's new links are, but lazy for
    /// origins whose tree has formed. Eager there, it would silently re-hang any subtree that lost its tree
    /// link on whatever long path the new link offers; lazy, such a subtree misses the `Gossip`, grafts
    /// from its first announcer and the optimisation straightens it.
    pub(crate) fn up(&mut self, peer: PeerId) {
        if !self.neighbours.contains(&peer) {
            self.neighbours.push(peer);
        }
        for tree in self.trees.values_mut() {
            if !tree.lazy.contains(&peer) {
                tree.lazy.push(peer);
            }
        }
    }

    pub(crate) fn down(&mut self, peer: PeerId) {
        self.neighbours.retain(|p| *p != peer);
        self.forget(&peer);
    }

    fn forget(&mut self, peer: &PeerId) {
        for tree in self.trees.values_mut() {
            tree.lazy.retain(|p| p != peer);
        }
        self.trees.retain(|_, tree| !tree.lazy.is_empty());
    }

    pub(crate) fn is_lazy(&self, origin: &PeerId, peer: &PeerId) -> bool {
        self.trees.get(origin).is_some_and(|t| t.lazy.contains(peer))
    }

    /// True if `peer` is a neighbour on the tree of `origin`.
    pub(crate) fn is_eager(&self, origin: &PeerId, peer: &PeerId) -> bool {
        self.contains(peer) && !self.is_lazy(origin, peer)
    }

    /// Marks `origin` as just used, so it is the last to be forgotten.
    pub(crate) fn touch(&mut self, origin: &PeerId) {
        self.tick += 1;
        if let Some(tree) = self.trees.get_mut(origin) {
            tree.used = self.tick;
        }
    }

    pub(crate) fn make_lazy(&mut self, origin: PeerId, peer: PeerId) {
        if !self.contains(&peer) || self.is_lazy(&origin, &peer) {
            return;
        }
        if !self.trees.contains_key(&origin) && self.trees.len() >= self.capacity {
            // Forget the least recently used origin (ticks are unique, so the choice is deterministic).
            if let Some(old) = self.trees.iter().min_by_key(|(_, t)| t.used).map(|(o, _)| *o) {
                self.trees.remove(&old);
            }
        }
        self.tick += 1;
        let used = self.tick;
        let tree = self.trees.entry(origin).or_insert(Tree {
            lazy: Vec::new(),
            used,
        });
        tree.lazy.push(peer);
    }

    pub(crate) fn make_eager(&mut self, origin: &PeerId, peer: &PeerId) {
        if let Some(tree) = self.trees.get_mut(origin) {
            tree.lazy.retain(|p| p != peer);
            if tree.lazy.is_empty() {
                self.trees.remove(origin);
            }
        }
    }

    /// Origins with a tree of their own (at least one lazy link).
    pub(crate) fn origins(&self) -> usize {
        self.trees.len()
    }
}
