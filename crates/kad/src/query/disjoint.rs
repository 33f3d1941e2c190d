//! Disjoint lookups (S/Kademlia §4.4): `d` [`ClosestPeers`] lookups of one target over disjoint sets
//! of peers, so that a path that meets an adversary cannot poison the others.

use std::collections::HashMap;

use meshwork_identity::PeerId;
use meshwork_wire::Instant;

use super::{ClosestPeers, Contact, LookupConfig, LookupState};
use crate::key::Key;

/// `d` lookups of one target over disjoint sets of peers (S/Kademlia). With `d = 1` it is a plain
/// [`ClosestPeers`].
#[derive(Clone, Debug)]
pub struct DisjointLookup<C = PeerId> {
    paths: Vec<ClosestPeers<C>>,
    /// Which path owns each peer it has learned; empty with one path, which owns every peer (a
    /// lookup names hundreds of peers, and this map was a tenth of a simulated lookup's cost).
    owner: HashMap<PeerId, usize>,
    /// The path [`DisjointLookup::next`] polls first, rotated for fairness.
    cursor: usize,
}

impl<C: Contact> DisjointLookup<C> {
    /// `paths` disjoint lookups of `target`; the seeds are dealt round-robin, closest first.
    pub fn new(target: Key, config: LookupConfig, paths: usize, seeds: Vec<C>) -> Self {
        let paths = paths.max(1);
        let mut sorted = seeds;
        sorted.sort_by_key(|c| Key::from_peer(c.peer()).distance(&target));
        sorted.dedup_by(|a, b| a.peer() == b.peer());
        let mut split: Vec<Vec<C>> = vec![Vec::new(); paths];
        let mut owner = HashMap::new();
        for (i, contact) in sorted.into_iter().enumerate() {
            if paths > 1 {
                owner.insert(*contact.peer(), i % paths);
            }
            split[i % paths].push(contact);
        }
        let paths = split
            .into_iter()
            .map(|seeds| ClosestPeers::new(target, config, seeds))
            .collect();
        Self {
            paths,
            owner,
            cursor: 0,
        }
    }

    /// The key looked up.
    pub fn target(&self) -> &Key {
        self.paths[0].target()
    }

    /// On every path, contact first the closest peer `warm` accepts, besides the first round's `α`
    /// ([`ClosestPeers::ask_first`]). Returns how many paths have one.
    pub fn ask_first(&mut self, warm: impl Fn(&PeerId) -> bool) -> usize {
        self.paths
            .iter_mut()
            .filter_map(|path| path.ask_first(&warm))
            .count()
    }

    /// Requests in flight on all paths together.
    pub fn num_waiting(&self) -> usize {
        self.paths.iter().map(ClosestPeers::<C>::num_waiting).sum()
    }

    /// The number of paths.
    pub fn num_paths(&self) -> usize {
        self.paths.len()
    }

    /// What the path that owns `peer` keeps of it, if any has learned it.
    pub fn contact(&self, peer: &PeerId) -> Option<&C> {
        self.paths[self.path_for(peer)?].contact(peer)
    }

    /// The path that owns `peer`, if any has learned it.
    pub fn path_of(&self, peer: &PeerId) -> Option<usize> {
        match self.paths.as_slice() {
            [only] => only.knows(peer).then_some(0),
            _ => self.owner.get(peer).copied(),
        }
    }

    /// The path to hand `peer`'s outcome to: with one path, that path, which ignores a peer it does
    /// not know, without a second key derivation here.
    fn path_for(&self, peer: &PeerId) -> Option<usize> {
        match self.paths.len() {
            1 => Some(0),
            _ => self.owner.get(peer).copied(),
        }
    }

    /// Whom to contact next on any path, or whether to wait, or whether every path is done.
    pub fn next(&mut self, now: Instant) -> LookupState {
        let n = self.paths.len();
        let mut all_finished = true;
        for offset in 0..n {
            let i = (self.cursor + offset) % n;
            match self.paths[i].next(now) {
                LookupState::Contact(peer) => {
                    self.cursor = (i + 1) % n;
                    return LookupState::Contact(peer);
                }
                LookupState::Waiting => all_finished = false,
                LookupState::Finished => {}
            }
        }
        if all_finished {
            LookupState::Finished
        } else {
            LookupState::Waiting
        }
    }

    /// `peer` answered with `closer` peers; peers already owned by another path are ignored. An
    /// answer its path does not take (the path finished, say, and the answer came late) claims no
    /// peer for it: a late answer on an attacker's path naming the target's honest neighbours would
    /// otherwise keep every other path from ever asking them.
    pub fn on_success(&mut self, peer: &PeerId, closer: impl IntoIterator<Item = C>) -> bool {
        if let [only] = self.paths.as_mut_slice() {
            return only.on_success(peer, closer);
        }
        let Some(path) = self.path_for(peer).filter(|&path| self.paths[path].awaits(peer)) else {
            return false;
        };
        let mut fresh = Vec::new();
        for new in closer {
            match self.owner.get(new.peer()) {
                Some(&p) if p != path => {}
                Some(_) => fresh.push(new),
                None => {
                    self.owner.insert(*new.peer(), path);
                    fresh.push(new);
                }
            }
        }
        self.paths[path].on_success(peer, fresh)
    }

    /// `peer` failed to answer.
    pub fn on_failure(&mut self, peer: &PeerId) -> bool {
        match self.path_for(peer) {
            Some(path) => self.paths[path].on_failure(peer),
            None => false,
        }
    }

    /// The caller will not ask `peer` after all ([`ClosestPeers::skip`]).
    pub fn skip(&mut self, peer: &PeerId) -> bool {
        match self.path_for(peer) {
            Some(path) => self.paths[path].skip(peer),
            None => false,
        }
    }

    /// Whether every path is finished.
    pub fn is_finished(&self) -> bool {
        self.paths.iter().all(ClosestPeers::<C>::is_finished)
    }

    /// The `k` closest peers that answered on any path, closest first.
    pub fn result(&self) -> Vec<C> {
        if let [only] = self.paths.as_slice() {
            return only.result();
        }
        let target = *self.target();
        let mut all: Vec<C> = self.paths.iter().flat_map(ClosestPeers::result).collect();
        all.sort_by_key(|c| Key::from_peer(c.peer()).distance(&target));
        all.dedup_by(|a, b| a.peer() == b.peer());
        all.truncate(self.paths[0].config.num_results);
        all
    }

    /// The closest answered peers per path (for inspecting the disjointness).
    pub fn path_results(&self) -> Vec<Vec<C>> {
        self.paths.iter().map(ClosestPeers::result).collect()
    }

    /// How many disjoint paths the lookup runs.
    pub fn paths(&self) -> usize {
        self.paths.len()
    }
}
