//! Discovery: keep `target_peers` connections, repair the gossip overlay, and bootstrap Kademlia again
//! now and then, on a timer.
//!
//! Candidates come from Kademlia's routing table first ([`PeerRouting::known_peers`]), then from the
//! peers this node was ever connected to ([`Seen`]): Kademlia forgets peers whose requests failed, so a
//! node whose connections all closed at once (a contact shut down) could otherwise be left alone while
//! any of its old peers is up. Dials go to the driver by peer id; the node runtime finds the address in
//! its address book or asks Kademlia.

use std::collections::{HashSet, VecDeque};

use meshwork_identity::PeerId;
use meshwork_kad::{PeerInfo, PeerRouting};
use meshwork_ledger::ChainStore;
use meshwork_wire::{Instant, Output};

use crate::app::CoinApp;
use crate::types::CoinTimer;

/// Peers this node has been connected to, oldest first (bounded: the oldest is forgotten).
#[derive(Debug)]
pub(crate) struct Seen {
    max: usize,
    order: VecDeque<PeerId>,
    set: HashSet<PeerId>,
}

impl Seen {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            order: VecDeque::new(),
            set: HashSet::new(),
        }
    }

    pub(crate) fn remember(&mut self, peer: PeerId) {
        if self.set.insert(peer) {
            self.order.push_back(peer);
            if self.order.len() > self.max {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    pub(crate) fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.order.iter()
    }
}

/// The bytes of `a` XOR `b`: an order on peers that depends on who sorts.
pub(crate) fn xor(a: &PeerId, b: &PeerId) -> [u8; 32] {
    let mut out = *a.as_bytes();
    for (o, x) in out.iter_mut().zip(b.as_bytes()) {
        *o ^= x;
    }
    out
}

impl<S: ChainStore> CoinApp<S> {
    /// Above the high watermark, closes idle connections until the low watermark is reached: those
    /// no child needs now (not a gossip neighbour, no Kademlia request, no sync download in flight, not
    /// a fellow validator).
    fn trim(&mut self, out: &mut Vec<Output<Self>>) {
        if self.links.len() <= self.config.high_watermark {
            return;
        }
        let low = self.config.low_watermark.max(self.config.target_peers);
        let excess = self.links.len().saturating_sub(low);
        let active = self.gossip.active_view();
        let mut idle: Vec<PeerId> = self
            .links
            .peers()
            .filter(|peer| {
                !active.contains(peer)
                    && !self.kad.is_waiting_on(peer)
                    && !self.sync.is_fetching_from(peer)
                    && !self.is_validator(peer)
            })
            .copied()
            .collect();
        // Deterministic whatever the map's order (the simulator replays a seed exactly), and different on
        // every node (by distance from our own id), so the network does not all drop the same peers.
        let me = self.gossip.peer_id();
        idle.sort_unstable_by_key(|peer| xor(peer, &me));
        for peer in idle.into_iter().take(excess) {
            self.close(peer, out);
        }
    }

    /// One discovery round (the [`CoinTimer::Discover`] timer).
    pub(crate) fn discover(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        out.push(Output::Schedule {
            after: self.config.discovery_interval,
            timer: CoinTimer::Discover,
        });
        self.rounds += 1;
        let me = self.gossip.peer_id();
        let missing = self.config.target_peers.saturating_sub(self.links.len());
        let known = self.kad.known_peers();
        let mut chosen = HashSet::new();
        for peer in known.iter().chain(self.seen.peers()) {
            if chosen.len() >= missing {
                break;
            }
            if *peer != me && !self.links.is_up(peer) && chosen.insert(*peer) {
                out.push(Output::Dial(*peer));
            }
        }
        if self.links.is_empty() {
            return;
        }
        self.trim(out);
        self.reengage_sync();
        // Gossip repair: a thin active view (a neighbour left) joins again through our connections.
        // Through two contacts at most: a join takes a connected contact into the active view at once,
        // and a join through every connection would churn the view.
        if self.gossip.active_view().len() < 2 {
            let me = self.gossip.peer_id();
            let mut contacts: Vec<PeerId> = self.links.peers().copied().collect();
            contacts.sort_unstable_by_key(|peer| xor(peer, &me));
            contacts.truncate(2);
            self.gossip_command(meshwork_gossip::Command::Join(contacts));
        }
        // Kademlia refreshes its own buckets; a bootstrap again helps only a node that knows too few
        // peers (its contacts left, or it was cut off), and then at most every few rounds.
        let thin = known.len() < self.config.target_peers;
        if thin && (self.rounds - 1) % self.config.rebootstrap_every.max(1) == 0 {
            let contacts: Vec<PeerInfo> = self
                .links
                .peers()
                .filter_map(|peer| {
                    let addr = self.kad.address_of(peer)?.clone();
                    Some(PeerInfo { id: *peer, addr })
                })
                .collect();
            if !contacts.is_empty() {
                self.kad_do(out, |kad, buf| kad.bootstrap(now, contacts, buf));
            }
        }
    }
}
