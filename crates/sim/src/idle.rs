//! Idle connections close, as the node runtime's connection manager closes them
//! ([`LinkConfig::idle_timeout`](crate::LinkConfig::idle_timeout)).
//!
//! Without it a simulated node keeps every connection it ever opened. A Kademlia node talks to
//! hundreds of peers while it joins, so the simulation then held hundreds of connections per node —
//! and the protocol's per-connection state with them — where a real node holds a few dozen. With it,
//! the figures a simulation reports (memory per node, dials, the round trips a lookup pays to dial
//! peers it has not talked to lately) are the ones a deployed node meets.
//!
//! The model is the manager's idle rule: a link that carried no message either way for the timeout,
//! and that neither end protects, closes, and both ends get `PeerDown`. Links are looked at every
//! quarter of the timeout, so one closes between one and one and a quarter timeouts after its last
//! message. The manager's watermarks (trimming the least recently active above a count) are not
//! modelled.

use std::time::Duration;

use meshwork_wire::{Instant, Protocol};

use crate::NodeId;
use crate::engine::Sim;
use crate::link::nanos;
use crate::queue::Pending;

/// When a link last carried a message, and whether its end protects it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LinkUse {
    /// Milliseconds of virtual time (a `u32` lasts 49 days).
    active_ms: u32,
    protected: bool,
}

fn millis(time: u64) -> u32 {
    u32::try_from(time / 1_000_000).unwrap_or(u32::MAX)
}

impl LinkUse {
    /// A link opened at `now` (nanoseconds): it counts as used.
    pub(crate) fn new(now: u64) -> Self {
        Self {
            active_ms: millis(now),
            protected: false,
        }
    }
}

/// How often links are looked at: a quarter of the timeout.
pub(crate) fn sweep_interval(timeout: Duration) -> u64 {
    (nanos(timeout) / 4).max(1)
}

impl<P: Protocol> Sim<P> {
    /// A message from `a` to `b` is on its way: the link is in use at both ends.
    pub(crate) fn touch(&mut self, a: u32, b: u32) {
        if self.link.idle_timeout.is_none() {
            return;
        }
        let now = millis(self.now);
        for (x, y) in [(a, b), (b, a)] {
            let meta = &mut self.nodes[x as usize];
            if let Ok(at) = meta.links.binary_search(&y)
                && let Some(link) = meta.uses.get_mut(at)
            {
                link.active_ms = now;
            }
        }
    }

    /// `node` protects (or stops protecting) its link to `peer`, if they are linked.
    pub(crate) fn protect(&mut self, node: u32, peer: u32, protect: bool) {
        let meta = &mut self.nodes[node as usize];
        if let Ok(at) = meta.links.binary_search(&peer)
            && let Some(link) = meta.uses.get_mut(at)
        {
            link.protected = protect;
        }
    }

    /// Closes the idle links if a sweep is due before the event at `next`. At most one sweep runs
    /// per gap between events, so a long quiet stretch of virtual time costs one pass, not one per
    /// interval. Both ends hear `PeerDown` at once rather than through the queue: after a join
    /// a sweep closes most of the network's links together, and queued they made the event slab
    /// (which never shrinks) the largest allocation of the run.
    pub(crate) fn sweep_before<F>(&mut self, next: u64, on_emit: &mut F)
    where
        F: FnMut(Instant, NodeId, P::Event),
    {
        let (Some(at), Some(timeout)) = (self.sweep_at, self.link.idle_timeout) else {
            return;
        };
        if at > next {
            return;
        }
        self.now = self.now.max(at);
        let interval = sweep_interval(timeout);
        self.sweep_at = Some(at.saturating_add(interval).max(next));
        let now = millis(self.now);
        let limit = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let idle = |link: &LinkUse| !link.protected && now.saturating_sub(link.active_ms) >= limit;
        let mut closing = Vec::new();
        for (a, meta) in self.nodes.iter().enumerate() {
            let a = a as u32;
            for (&b, link) in meta.links.iter().zip(&meta.uses) {
                // Each link once, from its lower end; the other end must not protect it either.
                if b > a && idle(link) {
                    let other = &self.nodes[b as usize];
                    let far = other.links.binary_search(&a).ok().and_then(|i| other.uses.get(i));
                    if far.is_none_or(idle) {
                        closing.push((a, b));
                    }
                }
            }
        }
        for (a, b) in closing {
            if self.unlink(a, b) {
                self.stats.idle_closed += 1;
                for (node, peer) in [(a, b), (b, a)] {
                    let epoch = self.hot[node as usize].epoch;
                    self.process(Pending::PeerDown { node, epoch, peer }, on_emit);
                }
            }
        }
    }
}
