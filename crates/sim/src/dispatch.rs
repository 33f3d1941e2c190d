//! What happens when an event comes off the queue, and how a protocol's outputs become new events.

use std::time::Duration;

use meshwork_wire::{Input, Instant, Output, PeerId, Protocol, WireMessage};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::engine::Sim;
use crate::fault::Verdict;
use crate::idle::LinkUse;
use crate::link::{nanos, serialisation_nanos};
use crate::queue::Pending;
use crate::trace::Kind;
use crate::{Latency, LinkConfig, NodeId};

const NONE: u32 = u32::MAX;

/// One sample of the one-way delay from region `from` to region `to`, jitter included.
fn sample_delay(link: &LinkConfig, rng: &mut ChaCha8Rng, from: u8, to: u8) -> u64 {
    let base = match &link.latency {
        Latency::Constant(latency) => nanos(*latency),
        Latency::Uniform { min, max } => {
            let (min, max) = (nanos(*min), nanos(*max));
            if max > min { rng.gen_range(min..=max) } else { min }
        }
        Latency::Regions(matrix) => nanos(matrix.one_way(from, to)),
    };
    let jitter = nanos(link.jitter);
    if jitter > 0 {
        base.saturating_add(rng.gen_range(0..=jitter))
    } else {
        base
    }
}

/// The mean round trip between regions `a` and `b`: both ways' base latency (a uniform range's
/// midpoint) and mean jitter. Nothing is drawn from the RNG.
fn mean_round_trip(link: &LinkConfig, a: u8, b: u8) -> Duration {
    let both_ways = match &link.latency {
        Latency::Constant(latency) => *latency * 2,
        Latency::Uniform { min, max } => *min + *max,
        Latency::Regions(matrix) => matrix.one_way(a, b) + matrix.one_way(b, a),
    };
    both_ways + link.jitter
}

impl<P: Protocol> Sim<P> {
    pub(crate) fn delay(&mut self, a: u32, b: u32) -> u64 {
        let (ra, rb) = (self.hot[a as usize].region, self.hot[b as usize].region);
        sample_delay(&self.link, &mut self.rng, ra, rb)
    }

    pub(crate) fn alive(&self, node: u32, epoch: u32) -> bool {
        let hot = self.hot[node as usize];
        hot.up && hot.epoch == epoch
    }

    pub(crate) fn reachable(&self, a: u32, b: u32) -> bool {
        !self.partitioned || self.hot[a as usize].group == self.hot[b as usize].group
    }

    pub(crate) fn linked(&self, a: u32, b: u32) -> bool {
        self.nodes[a as usize].links.binary_search(&b).is_ok()
    }

    pub(crate) fn link(&mut self, a: u32, b: u32) -> bool {
        if self.linked(a, b) {
            return false;
        }
        let fresh = LinkUse::new(self.now);
        let tracked = self.link.idle_timeout.is_some();
        for (x, y) in [(a, b), (b, a)] {
            let meta = &mut self.nodes[x as usize];
            if let Err(at) = meta.links.binary_search(&y) {
                meta.links.insert(at, y);
                if tracked {
                    meta.uses.insert(at, fresh);
                }
            }
        }
        self.stats.connections += 1;
        true
    }

    pub(crate) fn unlink(&mut self, a: u32, b: u32) -> bool {
        let mut removed = false;
        for (x, y) in [(a, b), (b, a)] {
            let meta = &mut self.nodes[x as usize];
            if let Ok(at) = meta.links.binary_search(&y) {
                meta.links.remove(at);
                if at < meta.uses.len() {
                    meta.uses.remove(at);
                }
                removed = true;
                self.unlinks += 1;
            }
        }
        removed
    }

    pub(crate) fn peer_up_now(&mut self, node: u32, peer: u32) {
        let epoch = self.hot[node as usize].epoch;
        self.queue.push(self.now, Pending::PeerUp { node, epoch, peer });
    }

    pub(crate) fn peer_down_at(&mut self, time: u64, node: u32, peer: u32) {
        let epoch = self.hot[node as usize].epoch;
        self.queue.push(time, Pending::PeerDown { node, epoch, peer });
    }

    pub(crate) fn process<F>(&mut self, pending: Pending<P>, on_emit: &mut F)
    where
        F: FnMut(Instant, NodeId, P::Event),
    {
        let now = self.now;
        match pending {
            Pending::Deliver {
                to,
                epoch,
                from,
                digest,
                unlinks,
                msg,
            } => {
                if !self.alive(to, epoch) {
                    self.stats.dropped_dead += 1;
                } else if !self.reachable(from, to) {
                    self.stats.dropped_partition += 1;
                } else if unlinks != self.unlinks && !self.linked(to, from) {
                    self.stats.dropped_no_link += 1;
                } else if let Some(msg) = msg {
                    self.stats.delivered += 1;
                    self.hot[to as usize].received += 1;
                    self.trace.record_message(now, to, from, &msg);
                    let from = self.peers[from as usize];
                    self.handle(to, Input::Message { from, msg }, on_emit);
                } else {
                    self.stats.decode_failures += 1;
                    self.trace.record(now, to, Kind::DecodeFailure, from, digest);
                }
            }
            Pending::Timer { node, epoch, timer } => {
                if self.alive(node, epoch) {
                    self.stats.timers += 1;
                    self.trace.record(now, node, Kind::Timer, NONE, 0);
                    self.handle(node, Input::Timer(timer), on_emit);
                }
            }
            Pending::Command { node, cmd } => {
                if self.hot[node as usize].up {
                    self.trace.record(now, node, Kind::Command, NONE, 0);
                    self.handle(node, Input::Command(cmd), on_emit);
                }
            }
            Pending::PeerUp { node, epoch, peer } => {
                if self.alive(node, epoch) {
                    self.trace.record(now, node, Kind::PeerUp, peer, 0);
                    let (from, to) = (self.hot[node as usize].region, self.hot[peer as usize].region);
                    let measured = self.round_trip_hook.and_then(|hook| {
                        hook(self.peers[peer as usize], mean_round_trip(&self.link, from, to))
                    });
                    self.handle(node, Input::PeerUp(self.peers[peer as usize]), on_emit);
                    if let Some(command) = measured {
                        self.trace.record(now, node, Kind::Command, peer, 0);
                        self.handle(node, Input::Command(command), on_emit);
                    }
                }
            }
            Pending::PeerDown { node, epoch, peer } => {
                if self.alive(node, epoch) {
                    self.trace.record(now, node, Kind::PeerDown, peer, 0);
                    let peer = self.peers[peer as usize];
                    self.handle(node, Input::PeerDown(peer), on_emit);
                }
            }
            Pending::Connect {
                a,
                a_epoch,
                b,
                b_epoch,
            } => {
                if !self.alive(a, a_epoch) {
                    return;
                }
                if self.alive(b, b_epoch) && self.reachable(a, b) {
                    if self.link(a, b) {
                        // The listener learns first: the dialer's handshake completes on its reply.
                        self.peer_up_now(b, a);
                        self.peer_up_now(a, b);
                    }
                } else {
                    self.stats.failed_dials += 1;
                    self.peer_down_at(now, a, b);
                }
            }
            Pending::Control(control) => {
                self.trace.record(now, NONE, Kind::Control, NONE, 0);
                // Controls were validated when scheduled; a restart may still find no factory if it was
                // scheduled by churn, which checks for one first.
                let _ = self.control(control);
            }
        }
    }

    fn handle<F>(&mut self, node: u32, input: Input<P>, on_emit: &mut F)
    where
        F: FnMut(Instant, NodeId, P::Event),
    {
        let now = Instant::from_nanos(self.now);
        let Some(state) = self.states[node as usize].as_mut() else {
            return;
        };
        state.handle(now, input, &mut self.out);
        let mut out = std::mem::take(&mut self.out);
        for output in out.drain(..) {
            match output {
                Output::Send { to, msg } => self.send(node, &to, msg),
                Output::Emit(event) => {
                    self.trace.record(self.now, node, Kind::Emit, NONE, 0);
                    on_emit(now, NodeId(node), event);
                }
                Output::Schedule { after, timer } => {
                    let epoch = self.hot[node as usize].epoch;
                    let at = self.now.saturating_add(nanos(after));
                    self.queue.push(at, Pending::Timer { node, epoch, timer });
                }
                Output::Dial(peer) => self.dial(node, &peer),
                Output::Disconnect(peer) => {
                    if let Some(&other) = self.index.get(&peer)
                        && self.unlink(node, other)
                    {
                        let at = self.now.saturating_add(self.delay(node, other));
                        self.peer_down_at(at, other, node);
                    }
                }
                Output::Dropped { reason, .. } => self.stats.refused[reason.index()] += 1,
                // Only an idle timeout closes links a protocol did not close itself; protection
                // exempts a link from it.
                Output::Protect { peer, protect } => {
                    if let Some(&other) = self.index.get(&peer) {
                        self.protect(node, other, protect);
                    }
                }
            }
        }
        self.out = out;
    }

    fn dial(&mut self, a: u32, peer: &PeerId) {
        let Some(&b) = self.index.get(peer) else {
            self.stats.failed_dials += 1;
            return;
        };
        if a == b || self.linked(a, b) {
            return;
        }
        // One round trip of handshake.
        let rtt = self.delay(a, b).saturating_add(self.delay(b, a));
        let pending = Pending::Connect {
            a,
            a_epoch: self.hot[a as usize].epoch,
            b,
            b_epoch: self.hot[b as usize].epoch,
        };
        self.queue.push(self.now.saturating_add(rtt), pending);
    }

    fn send(&mut self, a: u32, to: &PeerId, msg: P::Message) {
        let Some(&b) = self.index.get(to) else {
            self.stats.dropped_unknown += 1;
            return;
        };
        if !self.linked(a, b) {
            self.stats.dropped_no_link += 1;
            return;
        }
        self.touch(a, b);
        let (msg, extra_delay, garbage) = match self.adversaries.get_mut(&a) {
            None => (Some(msg), Duration::ZERO, false),
            Some(behaviour) => match behaviour.apply(to, msg, &mut self.rng) {
                Verdict::Drop => {
                    self.stats.dropped_adversary += 1;
                    return;
                }
                Verdict::Send { msg, extra_delay } => (Some(msg), extra_delay, false),
                Verdict::Garbage(original) => (original, Duration::ZERO, true),
            },
        };
        let size = match &msg {
            Some(msg) => match msg.wire_len() {
                Ok(size) => size,
                Err(_) => {
                    self.stats.encode_failures += 1;
                    return;
                }
            },
            // Garbage of unknown shape: charge one byte.
            None => 1,
        };
        // The trace records a delivered message's full encoding; garbage is recorded by its size.
        let digest = size as u64;
        let msg = if garbage { None } else { msg };

        self.stats.messages_sent += 1;
        self.stats.bytes_sent += size as u64;
        let slots = self.stats.bytes_by_channel.len();
        let channel = msg.as_ref().map_or(0, WireMessage::channel).min(slots - 1);
        self.stats.bytes_by_channel[channel] += size as u64;
        if msg.as_ref().is_some_and(|m| P::is_control(m)) {
            self.stats.control_bytes += size as u64;
        }
        let meta = &mut self.nodes[a as usize];
        meta.stats.messages_sent += 1;
        meta.stats.bytes_sent += size as u64;
        let departs = match self.link.upload_bytes_per_sec {
            Some(rate) => {
                let done = meta.upload_free_at.max(self.now) + serialisation_nanos(size, rate);
                meta.upload_free_at = done;
                done
            }
            None => self.now,
        };
        if !self.reachable(a, b) {
            self.stats.dropped_partition += 1;
            return;
        }
        if self.link.loss > 0.0 && self.rng.gen_bool(self.link.loss) {
            self.stats.dropped_loss += 1;
            return;
        }
        let at = departs
            .saturating_add(self.delay(a, b))
            .saturating_add(nanos(extra_delay));
        let epoch = self.hot[b as usize].epoch;
        self.queue.push(
            at,
            Pending::Deliver {
                to: b,
                epoch,
                from: a,
                digest,
                unlinks: self.unlinks,
                msg,
            },
        );
    }
}
