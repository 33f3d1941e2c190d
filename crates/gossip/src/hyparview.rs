//! HyParView membership (Leitão, Pereira, Rodrigues, DSN 2007).
//!
//! Each node keeps a small **active view** (the peers it is connected to, the links broadcast runs on) and
//! a larger **passive view** (peers it knows of, kept in reserve). A new node sends `Join` to a contact,
//! which takes it in and announces it with `ForwardJoin` random walks; the node where a walk ends asks the
//! joiner to be its neighbour, and nodes a few hops before the end add it to their passive view. When an
//! active peer fails, the node dials peers from its passive view until one accepts (`Neighbor`, with high
//! priority if it has no neighbours left). A periodic `Shuffle` walk exchanges samples of the views, so
//! passive views stay fresh and dead entries get replaced.

use std::collections::{HashMap, HashSet, VecDeque};

use meshwork_wire::{BoundedVec, PeerId};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::config::Config;
use crate::message::{MAX_SHUFFLE, MembershipMessage as Msg};

/// What the membership layer asks of the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HvOut {
    /// Send a membership message over an open connection.
    Send(PeerId, Msg),
    /// Open a connection.
    Dial(PeerId),
    /// Close a connection.
    Disconnect(PeerId),
    /// The peer entered the active view.
    Up(PeerId),
    /// The peer left the active view.
    Down(PeerId),
}

/// The HyParView views of one node, and the connections it is opening.
#[derive(Debug)]
pub(crate) struct HyParView {
    me: PeerId,
    active: Vec<PeerId>,
    passive: Vec<PeerId>,
    connected: HashSet<PeerId>,
    /// Dials in progress, with the messages to send once the connection is up.
    dialing: HashMap<PeerId, Vec<Msg>>,
    banned: HashSet<PeerId>,
    banned_order: VecDeque<PeerId>,
    active_cap: usize,
    passive_cap: usize,
    arwl: u8,
    prwl: u8,
    shuffle_active: usize,
    shuffle_passive: usize,
    max_banned: usize,
}

impl HyParView {
    pub(crate) fn new(me: PeerId, config: &Config) -> Self {
        Self {
            me,
            active: Vec::new(),
            passive: Vec::new(),
            connected: HashSet::new(),
            dialing: HashMap::new(),
            banned: HashSet::new(),
            banned_order: VecDeque::new(),
            active_cap: config.active_view_capacity.max(1),
            passive_cap: config.passive_view_capacity,
            arwl: config.active_random_walk_length,
            prwl: config.passive_random_walk_length,
            shuffle_active: config.shuffle_active,
            shuffle_passive: config.shuffle_passive,
            max_banned: config.score.max_banned,
        }
    }

    pub(crate) fn active(&self) -> &[PeerId] {
        &self.active
    }

    pub(crate) fn passive(&self) -> &[PeerId] {
        &self.passive
    }

    pub(crate) fn is_active(&self, peer: &PeerId) -> bool {
        self.active.contains(peer)
    }

    pub(crate) fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.contains(peer)
    }

    /// Sends now if connected, else dials and sends once the connection is up.
    fn send(&mut self, to: PeerId, msg: Msg, out: &mut Vec<HvOut>) {
        if self.connected.contains(&to) {
            out.push(HvOut::Send(to, msg));
        } else {
            let queued = self.dialing.entry(to).or_default();
            if queued.is_empty() {
                out.push(HvOut::Dial(to));
            }
            if queued.len() < 4 {
                queued.push(msg);
            }
        }
    }

    /// Joins the overlay through `contact`.
    pub(crate) fn join(&mut self, contact: PeerId, out: &mut Vec<HvOut>) {
        if contact != self.me && !self.banned.contains(&contact) {
            self.send(contact, Msg::Join, out);
        }
    }

    pub(crate) fn on_peer_up(&mut self, peer: PeerId, rng: &mut ChaCha8Rng, out: &mut Vec<HvOut>) {
        if self.banned.contains(&peer) {
            out.push(HvOut::Disconnect(peer));
            return;
        }
        self.connected.insert(peer);
        for msg in self.dialing.remove(&peer).unwrap_or_default() {
            if msg == Msg::Join {
                // The joiner takes its contact into its active view right away (HyParView §4.2).
                self.add_active(peer, rng, out);
            }
            out.push(HvOut::Send(peer, msg));
        }
    }

    pub(crate) fn on_peer_down(&mut self, peer: PeerId, rng: &mut ChaCha8Rng, out: &mut Vec<HvOut>) {
        self.connected.remove(&peer);
        if let Some(queued) = self.dialing.remove(&peer) {
            // A failed dial: the peer is gone, forget it.
            if queued.iter().any(|m| matches!(m, Msg::Neighbor { .. })) {
                self.passive.retain(|p| *p != peer);
            }
        }
        if let Some(at) = self.active.iter().position(|p| *p == peer) {
            self.active.swap_remove(at);
            out.push(HvOut::Down(peer));
        }
        self.fill(rng, out);
    }

    /// Dials passive peers until the active view plus the requests in flight fill it.
    pub(crate) fn fill(&mut self, rng: &mut ChaCha8Rng, out: &mut Vec<HvOut>) {
        let pending = self
            .dialing
            .values()
            .filter(|q| q.iter().any(|m| matches!(m, Msg::Neighbor { .. })))
            .count();
        let mut wanted = self.active_cap.saturating_sub(self.active.len() + pending);
        let high_priority = self.active.is_empty();
        let mut candidates: Vec<PeerId> = self
            .passive
            .iter()
            .filter(|p| !self.dialing.contains_key(p) && !self.connected.contains(p))
            .copied()
            .collect();
        candidates.shuffle(rng);
        for peer in candidates {
            if wanted == 0 {
                break;
            }
            wanted -= 1;
            self.send(peer, Msg::Neighbor { high_priority }, out);
        }
    }

    pub(crate) fn on_message(&mut self, from: PeerId, msg: Msg, rng: &mut ChaCha8Rng, out: &mut Vec<HvOut>) {
        if self.banned.contains(&from) {
            out.push(HvOut::Disconnect(from));
            return;
        }
        match msg {
            Msg::Join => {
                self.add_active(from, rng, out);
                for peer in self.active.clone() {
                    if peer != from {
                        let ttl = self.arwl;
                        out.push(HvOut::Send(peer, Msg::ForwardJoin { joiner: from, ttl }));
                    }
                }
            }
            Msg::ForwardJoin { joiner, ttl } => self.on_forward_join(from, joiner, ttl, rng, out),
            Msg::Neighbor { high_priority } => {
                let accepted = high_priority || self.active.len() < self.active_cap || self.is_active(&from);
                if accepted {
                    self.add_active(from, rng, out);
                }
                out.push(HvOut::Send(from, Msg::NeighborReply { accepted }));
            }
            Msg::NeighborReply { accepted: true } => self.add_active(from, rng, out),
            Msg::NeighborReply { accepted: false } => {
                if !self.is_active(&from) {
                    self.close(from, out);
                }
            }
            Msg::Disconnect => {
                if let Some(at) = self.active.iter().position(|p| *p == from) {
                    self.active.swap_remove(at);
                    out.push(HvOut::Down(from));
                }
                self.add_passive(from, rng);
                self.close(from, out);
            }
            Msg::Shuffle { origin, ttl, peers } => {
                let next = self.random_active_except(&[from, origin], rng);
                match next {
                    Some(next) if ttl > 0 => {
                        let ttl = ttl - 1;
                        out.push(HvOut::Send(next, Msg::Shuffle { origin, ttl, peers }));
                    }
                    _ if origin != self.me => {
                        let mut reply = self.passive.clone();
                        reply.shuffle(rng);
                        reply.truncate(peers.len().min(MAX_SHUFFLE));
                        for peer in peers.iter().chain(std::iter::once(&origin)) {
                            self.add_passive(*peer, rng);
                        }
                        let peers = BoundedVec::try_from(reply).unwrap_or_default();
                        self.send(origin, Msg::ShuffleReply { peers }, out);
                    }
                    _ => {}
                }
            }
            Msg::ShuffleReply { peers } => {
                for peer in &peers {
                    self.add_passive(*peer, rng);
                }
                if !self.is_active(&from) && !self.dialing.contains_key(&from) {
                    self.close(from, out);
                }
            }
        }
    }

    fn on_forward_join(
        &mut self,
        from: PeerId,
        joiner: PeerId,
        ttl: u8,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<HvOut>,
    ) {
        if joiner == self.me || self.banned.contains(&joiner) {
            return;
        }
        let next = self.random_active_except(&[from, joiner], rng);
        match next {
            Some(next) if ttl > 0 => {
                if ttl == self.prwl {
                    self.add_passive(joiner, rng);
                }
                out.push(HvOut::Send(next, Msg::ForwardJoin { joiner, ttl: ttl - 1 }));
            }
            _ => {
                if !self.is_active(&joiner) {
                    self.send(joiner, Msg::Neighbor { high_priority: true }, out);
                }
            }
        }
    }

    /// Starts a shuffle with a random active peer, and refills a short active view.
    pub(crate) fn on_shuffle_timer(&mut self, rng: &mut ChaCha8Rng, out: &mut Vec<HvOut>) {
        self.fill(rng, out);
        let Some(&target) = self.active.choose(rng) else {
            return;
        };
        let mut peers: Vec<PeerId> = self
            .active
            .choose_multiple(rng, self.shuffle_active)
            .filter(|p| **p != target)
            .copied()
            .collect();
        peers.extend(self.passive.choose_multiple(rng, self.shuffle_passive));
        peers.truncate(MAX_SHUFFLE);
        let peers = BoundedVec::try_from(peers).unwrap_or_default();
        let ttl = self.arwl;
        out.push(HvOut::Send(
            target,
            Msg::Shuffle {
                origin: self.me,
                ttl,
                peers,
            },
        ));
    }

    /// Removes a misbehaving peer from both views, closes its connection and refuses it from now on.
    pub(crate) fn ban(&mut self, peer: PeerId, rng: &mut ChaCha8Rng, out: &mut Vec<HvOut>) {
        if self.banned.insert(peer) {
            self.banned_order.push_back(peer);
            if self.banned_order.len() > self.max_banned
                && let Some(old) = self.banned_order.pop_front()
            {
                self.banned.remove(&old);
            }
        }
        self.passive.retain(|p| *p != peer);
        self.dialing.remove(&peer);
        if let Some(at) = self.active.iter().position(|p| *p == peer) {
            self.active.swap_remove(at);
            out.push(HvOut::Down(peer));
        }
        self.close(peer, out);
        self.fill(rng, out);
    }

    fn close(&mut self, peer: PeerId, out: &mut Vec<HvOut>) {
        if self.connected.remove(&peer) {
            out.push(HvOut::Disconnect(peer));
        }
    }

    fn random_active_except(&self, except: &[PeerId], rng: &mut ChaCha8Rng) -> Option<PeerId> {
        let candidates: Vec<PeerId> = self
            .active
            .iter()
            .filter(|p| !except.contains(p))
            .copied()
            .collect();
        candidates.choose(rng).copied()
    }

    /// Takes `peer` into the active view, evicting a random peer (to the passive view) if it is full.
    fn add_active(&mut self, peer: PeerId, rng: &mut ChaCha8Rng, out: &mut Vec<HvOut>) {
        if peer == self.me || self.is_active(&peer) || self.banned.contains(&peer) {
            return;
        }
        self.passive.retain(|p| *p != peer);
        if self.active.len() >= self.active_cap {
            let at = rng.gen_range(0..self.active.len());
            let evicted = self.active.swap_remove(at);
            out.push(HvOut::Send(evicted, Msg::Disconnect));
            out.push(HvOut::Down(evicted));
            self.add_passive(evicted, rng);
        }
        self.active.push(peer);
        out.push(HvOut::Up(peer));
    }

    fn add_passive(&mut self, peer: PeerId, rng: &mut ChaCha8Rng) {
        let slot = rng.gen_range(0..usize::MAX);
        self.insert_passive(peer, slot);
    }

    fn insert_passive(&mut self, peer: PeerId, slot: usize) {
        if peer == self.me
            || self.is_active(&peer)
            || self.passive.contains(&peer)
            || self.banned.contains(&peer)
        {
            return;
        }
        if self.passive_cap == 0 {
            return;
        }
        if self.passive.len() >= self.passive_cap {
            let at = slot % self.passive.len();
            self.passive[at] = peer;
        } else {
            self.passive.push(peer);
        }
    }
}
