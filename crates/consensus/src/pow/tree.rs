//! The header tree: every header we accepted, with cumulative work, which bodies we hold, and the sets
//! fork choice reads (leaves and candidates), bounded by pruning the least-work side branches.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};

use meshwork_ledger::{BlockHeader, BlockId};

/// One header and what we know about its block.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) header: BlockHeader,
    /// Cumulative work of the chain ending here.
    pub(crate) work: u128,
    /// First-seen order (lower was seen first).
    pub(crate) seq: u64,
    /// The block's body is in the store.
    pub(crate) has_data: bool,
    /// This block's and every ancestor's body are in the store: the chain can be connected up to here.
    pub(crate) chain_data: bool,
    pub(crate) children: Vec<BlockId>,
}

/// Fork-choice order: more work first, then first seen (a lower sequence number ranks higher).
pub(crate) type RankKey = (u128, Reverse<u64>, BlockId);

impl Node {
    pub(crate) fn key(&self, id: BlockId) -> RankKey {
        (self.work, Reverse(self.seq), id)
    }
}

/// The tree of headers rooted at the genesis block.
#[derive(Debug)]
pub(crate) struct HeaderTree {
    nodes: HashMap<BlockId, Node>,
    /// Nodes without children. The last is the best header.
    leaves: BTreeSet<RankKey>,
    /// Nodes with `chain_data` that may become the tip. The last is the best candidate.
    candidates: BTreeSet<RankKey>,
    next_seq: u64,
    max: usize,
}

impl HeaderTree {
    /// A tree holding only `root` (the genesis block, whose body we have).
    pub(crate) fn new(root: BlockHeader, work: u128, max: usize) -> Self {
        let id = root.id();
        let node = Node {
            header: root,
            work,
            seq: 0,
            has_data: true,
            chain_data: true,
            children: Vec::new(),
        };
        let key = node.key(id);
        Self {
            nodes: HashMap::from([(id, node)]),
            leaves: BTreeSet::from([key]),
            candidates: BTreeSet::from([key]),
            next_seq: 1,
            max: max.max(1),
        }
    }

    pub(crate) fn get(&self, id: &BlockId) -> Option<&Node> {
        self.nodes.get(id)
    }

    pub(crate) fn contains(&self, id: &BlockId) -> bool {
        self.nodes.contains_key(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The valid header with the most work (first seen among equals).
    pub(crate) fn best_header(&self) -> Option<BlockId> {
        self.leaves.last().map(|key| key.2)
    }

    /// The connectable block with the most work (first seen among equals).
    pub(crate) fn best_candidate(&self) -> Option<BlockId> {
        self.candidates.last().map(|key| key.2)
    }

    /// Adds `header` (whose parent must be in the tree) with cumulative `work`. Returns false if it was
    /// there already or its parent is not.
    pub(crate) fn insert(&mut self, header: BlockHeader, work: u128) -> bool {
        let id = header.id();
        if self.nodes.contains_key(&id) {
            return false;
        }
        let Some(parent) = self.nodes.get_mut(&header.parent) else {
            return false;
        };
        if parent.children.is_empty() {
            let key = parent.key(header.parent);
            self.leaves.remove(&key);
        }
        parent.children.push(id);
        let node = Node {
            header,
            work,
            seq: self.next_seq,
            has_data: false,
            chain_data: false,
            children: Vec::new(),
        };
        self.next_seq += 1;
        self.leaves.insert(node.key(id));
        self.nodes.insert(id, node);
        true
    }

    /// Records that `id`'s body is stored. Returns the blocks that became connectable (`id` and stored
    /// descendants waiting for it), which join the candidates.
    pub(crate) fn set_has_data(&mut self, id: &BlockId) -> Vec<BlockId> {
        let Some(node) = self.nodes.get_mut(id) else {
            return Vec::new();
        };
        node.has_data = true;
        let parent = node.header.parent;
        let parent_ready = self.nodes.get(&parent).is_some_and(|parent| parent.chain_data);
        if !parent_ready || self.nodes.get(id).is_some_and(|node| node.chain_data) {
            return Vec::new();
        }
        let mut ready = Vec::new();
        let mut stack = vec![*id];
        while let Some(next) = stack.pop() {
            let Some(node) = self.nodes.get_mut(&next) else {
                continue;
            };
            if !node.has_data || node.chain_data {
                continue;
            }
            node.chain_data = true;
            let key = node.key(next);
            stack.extend(node.children.iter().copied());
            self.candidates.insert(key);
            ready.push(next);
        }
        ready
    }

    /// Records that `id`'s body is gone (evicted): it and its descendants are no longer connectable.
    pub(crate) fn unset_data(&mut self, id: &BlockId) {
        let Some(node) = self.nodes.get_mut(id) else {
            return;
        };
        node.has_data = false;
        let mut stack = vec![*id];
        while let Some(next) = stack.pop() {
            let Some(node) = self.nodes.get_mut(&next) else {
                continue;
            };
            if node.chain_data {
                node.chain_data = false;
                let key = node.key(next);
                self.candidates.remove(&key);
                stack.extend(node.children.iter().copied());
            }
        }
    }

    /// Forgets every candidate ranked below `id` (they can no longer win: the tip only moves to more work).
    pub(crate) fn drop_candidates_below(&mut self, id: &BlockId) {
        if let Some(node) = self.nodes.get(id) {
            let keep = self.candidates.split_off(&node.key(*id));
            self.candidates = keep;
        }
    }

    /// Removes `id` and all its descendants. Returns the removed ids (`id` first).
    pub(crate) fn remove_subtree(&mut self, id: &BlockId) -> Vec<BlockId> {
        let Some(parent) = self.nodes.get(id).map(|node| node.header.parent) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        let mut stack = vec![*id];
        while let Some(next) = stack.pop() {
            if let Some(node) = self.nodes.remove(&next) {
                let key = node.key(next);
                self.leaves.remove(&key);
                self.candidates.remove(&key);
                stack.extend(node.children);
                removed.push(next);
            }
        }
        self.unlink_child(&parent, id);
        removed
    }

    fn unlink_child(&mut self, parent: &BlockId, child: &BlockId) {
        if let Some(node) = self.nodes.get_mut(parent) {
            node.children.retain(|c| c != child);
            if node.children.is_empty() {
                let key = node.key(*parent);
                self.leaves.insert(key);
            }
        }
    }

    /// Whether the tree holds more headers than its bound (then [`HeaderTree::prune`] has work).
    pub(crate) fn is_over_bound(&self) -> bool {
        self.nodes.len() > self.max
    }

    /// Prunes the lowest-ranked leaves outside `protect` until the tree fits its bound (or only
    /// protected chains are left). Returns the pruned ids.
    pub(crate) fn prune(&mut self, protect: &[BlockId]) -> Vec<BlockId> {
        let mut pruned = Vec::new();
        while self.nodes.len() > self.max {
            let Some(victim) = self
                .leaves
                .iter()
                .map(|key| key.2)
                .find(|id| !protect.contains(id))
            else {
                break;
            };
            pruned.extend(self.remove_subtree(&victim));
        }
        pruned
    }

    /// The ancestor of `id` at `height` (itself if at that height).
    pub(crate) fn ancestor(&self, id: &BlockId, height: u64) -> Option<BlockId> {
        let mut cursor = *id;
        loop {
            let node = self.nodes.get(&cursor)?;
            match node.header.height {
                h if h == height => return Some(cursor),
                h if h < height => return None,
                _ => cursor = node.header.parent,
            }
        }
    }

    /// The timestamps of `id` and up to `span - 1` ancestors, oldest first.
    pub(crate) fn recent_times(&self, id: &BlockId, span: usize) -> Vec<u64> {
        let mut times = Vec::with_capacity(span);
        let mut cursor = *id;
        while times.len() < span {
            let Some(node) = self.nodes.get(&cursor) else {
                break;
            };
            times.push(node.header.timestamp);
            if node.header.height == 0 {
                break;
            }
            cursor = node.header.parent;
        }
        times.reverse();
        times
    }
}

/// The median of `times` as the ledger computes it (sorted, element `len / 2`); 0 if empty.
pub(crate) fn median(times: &[u64]) -> u64 {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use meshwork_identity::Hash;

    use super::*;

    fn header(parent: &BlockHeader, nonce: u64) -> BlockHeader {
        BlockHeader {
            version: 1,
            parent: parent.id(),
            merkle_root: Hash::ZERO,
            timestamp: parent.timestamp + 60,
            target: 0x207f_ffff,
            nonce,
            height: parent.height + 1,
        }
    }

    fn root() -> BlockHeader {
        BlockHeader {
            version: 1,
            parent: Hash::ZERO,
            merkle_root: Hash::ZERO,
            timestamp: 1_000,
            target: 0x207f_ffff,
            nonce: 0,
            height: 0,
        }
    }

    #[test]
    fn best_header_by_work_then_first_seen_and_pruning_keeps_protected() {
        let g = root();
        let mut tree = HeaderTree::new(g, 1, 4);
        let a1 = header(&g, 1);
        let b1 = header(&g, 2);
        assert!(tree.insert(a1, 2));
        assert!(tree.insert(b1, 2));
        // Equal work: the first seen wins.
        assert_eq!(tree.best_header(), Some(a1.id()));
        let b2 = header(&b1, 3);
        assert!(tree.insert(b2, 3));
        assert_eq!(tree.best_header(), Some(b2.id()));
        let b3 = header(&b2, 4);
        assert!(tree.insert(b3, 4));
        // Five nodes, bound four: the lowest leaf (a1) goes unless protected.
        assert_eq!(tree.prune(&[a1.id(), b3.id()]), Vec::<BlockId>::new());
        assert_eq!(tree.prune(&[b3.id()]), vec![a1.id()]);
        assert_eq!(tree.len(), 4);
        assert_eq!(tree.ancestor(&b3.id(), 1), Some(b1.id()));
        assert_eq!(tree.recent_times(&b3.id(), 2), vec![1_120, 1_180]);
    }

    #[test]
    fn candidates_need_every_ancestor_body() {
        let g = root();
        let mut tree = HeaderTree::new(g, 1, 100);
        let h1 = header(&g, 1);
        let h2 = header(&h1, 1);
        tree.insert(h1, 2);
        tree.insert(h2, 3);
        assert!(tree.set_has_data(&h2.id()).is_empty());
        assert_eq!(tree.best_candidate(), Some(g.id()));
        assert_eq!(tree.set_has_data(&h1.id()), vec![h1.id(), h2.id()]);
        assert_eq!(tree.best_candidate(), Some(h2.id()));
        assert_eq!(tree.remove_subtree(&h1.id()), vec![h1.id(), h2.id()]);
        assert_eq!(tree.best_candidate(), Some(g.id()));
        assert_eq!(tree.best_header(), Some(g.id()));
    }
}
