//! A tiny driver for `Nat` nodes: connections, messages, dials that a test decides, virtual timers.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_nat::{Nat, NatCommand, NatConfig, NatEvent, NatTimer};
use meshwork_wire::{DropReason, Input, Instant, Output, Protocol};

pub struct Net {
    pub now: Instant,
    pub nodes: BTreeMap<PeerId, Nat>,
    /// Where each node's connections appear to come from.
    pub seen_at: BTreeMap<PeerId, SocketAddr>,
    links: BTreeSet<(PeerId, PeerId)>,
    /// The links that run through a relay circuit.
    pub relayed: BTreeSet<(PeerId, PeerId)>,
    queue: VecDeque<(PeerId, Input<Nat>)>,
    timers: Vec<(Instant, PeerId, NatTimer)>,
    pub events: Vec<(PeerId, NatEvent)>,
    pub dials: Vec<(PeerId, PeerId)>,
    pub dropped: Vec<(PeerId, PeerId, DropReason)>,
    pub protected: BTreeMap<(PeerId, PeerId), bool>,
    /// Whether a dial from the first to the second gets through.
    pub dialable: fn(&Self, PeerId, PeerId) -> bool,
}

impl Net {
    pub fn new() -> Self {
        Self {
            now: Instant::ZERO,
            nodes: BTreeMap::new(),
            seen_at: BTreeMap::new(),
            links: BTreeSet::new(),
            relayed: BTreeSet::new(),
            queue: VecDeque::new(),
            timers: Vec::new(),
            events: Vec::new(),
            dials: Vec::new(),
            dropped: Vec::new(),
            protected: BTreeMap::new(),
            dialable: |_, _, _| true,
        }
    }

    pub fn add(&mut self, config: NatConfig, seen_at: &str) -> PeerId {
        let seed = u8::try_from(self.nodes.len() + 1).unwrap();
        let peer = Keypair::from_seed([seed; 32]).peer_id();
        self.nodes.insert(peer, Nat::new(config));
        self.seen_at.insert(peer, seen_at.parse().unwrap());
        peer
    }

    pub fn connected(&self, a: PeerId, b: PeerId) -> bool {
        self.links.contains(&(a.min(b), a.max(b)))
    }

    pub fn connect(&mut self, a: PeerId, b: PeerId) {
        if !self.links.insert((a.min(b), a.max(b))) {
            return;
        }
        for (me, other) in [(a, b), (b, a)] {
            self.queue.push_back((me, Input::PeerUp(other)));
            let addr = self.seen_at[&other];
            self.queue
                .push_back((me, Input::Command(NatCommand::Connected { peer: other, addr })));
        }
    }

    /// Connects `a` and `b` through a relay circuit: each sees the other at a virtual address.
    pub fn connect_relayed(&mut self, a: PeerId, b: PeerId) {
        if !self.links.insert((a.min(b), a.max(b))) {
            return;
        }
        self.relayed.insert((a.min(b), a.max(b)));
        for (n, (me, other)) in [(a, b), (b, a)].into_iter().enumerate() {
            self.queue.push_back((me, Input::PeerUp(other)));
            let addr = meshwork_wire::relayed::relayed_addr(n as u32);
            self.queue
                .push_back((me, Input::Command(NatCommand::Connected { peer: other, addr })));
        }
    }

    /// Whether `a` and `b` are connected through a relay circuit.
    pub fn is_relayed(&self, a: PeerId, b: PeerId) -> bool {
        self.relayed.contains(&(a.min(b), a.max(b)))
    }

    pub fn disconnect(&mut self, a: PeerId, b: PeerId) {
        if self.links.remove(&(a.min(b), a.max(b))) {
            self.queue.push_back((a, Input::PeerDown(b)));
            self.queue.push_back((b, Input::PeerDown(a)));
        }
    }

    pub fn command(&mut self, at: PeerId, command: NatCommand) {
        self.queue.push_back((at, Input::Command(command)));
        self.run();
    }

    /// `from` asks `rendezvous` to coordinate a punch to `target` (`NatCommand::Connect`).
    pub fn punch(&mut self, from: PeerId, rendezvous: PeerId, target: PeerId) {
        self.command(from, NatCommand::Connect { rendezvous, target });
    }

    pub fn message(&mut self, from: PeerId, to: PeerId, msg: <Nat as Protocol>::Message) {
        self.queue.push_back((to, Input::Message { from, msg }));
        self.run();
    }

    /// Delivers everything queued (bounded).
    pub fn run(&mut self) {
        for _ in 0..100_000 {
            let Some((at, input)) = self.queue.pop_front() else {
                return;
            };
            let mut out = Vec::new();
            self.nodes.get_mut(&at).unwrap().handle(self.now, input, &mut out);
            for output in out {
                self.carry_out(at, output);
            }
        }
        panic!("the network did not settle");
    }

    fn carry_out(&mut self, at: PeerId, output: Output<Nat>) {
        match output {
            Output::Send { to, msg } => {
                if self.connected(at, to) {
                    self.queue.push_back((to, Input::Message { from: at, msg }));
                }
            }
            Output::Emit(event) => self.events.push((at, event)),
            Output::Schedule { after, timer } => {
                self.timers
                    .push((self.now.checked_add(after).unwrap(), at, timer));
            }
            Output::Dial(peer) => {
                self.dials.push((at, peer));
                if self.is_relayed(at, peer) {
                    // As the node runtime does: the asker hears `PeerUp` at once (it is connected),
                    // and a direct dial goes out; if it gets through, the direct connection replaces
                    // the relayed one, and both sides' hooks report its address (no `PeerDown`).
                    self.queue.push_back((at, Input::PeerUp(peer)));
                    if (self.dialable)(self, at, peer) {
                        self.relayed.remove(&(at.min(peer), at.max(peer)));
                        for (me, other) in [(at, peer), (peer, at)] {
                            let addr = self.seen_at[&other];
                            self.queue
                                .push_back((me, Input::Command(NatCommand::Connected { peer: other, addr })));
                        }
                    }
                } else if self.connected(at, peer) {
                } else if (self.dialable)(self, at, peer) {
                    self.connect(at, peer);
                } else {
                    self.queue.push_back((at, Input::PeerDown(peer)));
                }
            }
            Output::Disconnect(peer) => self.disconnect(at, peer),
            Output::Protect { peer, protect } => {
                self.protected.insert((at, peer), protect);
            }
            Output::Dropped { peer, reason } => self.dropped.push((at, peer, reason)),
        }
    }

    /// Moves time forward by `by`, firing due timers in order.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now.checked_add(by).unwrap();
        loop {
            self.timers.sort_by_key(|(at, _, _)| *at);
            match self.timers.first() {
                Some((at, _, _)) if *at <= until => {
                    let (at, peer, timer) = self.timers.remove(0);
                    self.now = at;
                    self.queue.push_back((peer, Input::Timer(timer)));
                    self.run();
                }
                _ => break,
            }
        }
        self.now = until;
    }

    pub fn events_of(&self, peer: PeerId) -> Vec<NatEvent> {
        self.events
            .iter()
            .filter(|(p, _)| *p == peer)
            .map(|(_, e)| e.clone())
            .collect()
    }
}
