//! The connection manager: the node keeps the few connections its protocols need, not one to every
//! peer it has heard of.
//!
//! A QUIC connection costs memory on both sides (its state, buffers, the tasks that own its streams),
//! and a node that kept one to everyone it ever talked to would hold thousands. The manager closes
//! connections nobody needs, in two ways (the model of go-libp2p's connection manager, with the idle
//! timeout rust-libp2p applies to connections no handler keeps alive):
//!
//! - **Idle**: a connection that has carried no frame either way for
//!   [`ConnectionLimits::idle_timeout`] is closed.
//! - **Trimmed**: when the node holds more than [`ConnectionLimits::high_watermark`] connections (new
//!   ones, below, not counted), it closes the least recently active until it is back at
//!   [`ConnectionLimits::low_watermark`], its target; one that carried a frame within the last second
//!   is not trimmed (the peer may be waiting on an answer), nor are the longest-lived, up to half the
//!   low watermark: activity is free to fake, age is not (Bitcoin Core protects its longest-connected
//!   inbound peers from eviction for the same reason).
//!
//! Neither ever closes a connection that a protocol **protects** (`Output::Protect`: gossip's active
//! view, a peer a Kademlia request waits on) or a **new** one: younger than
//! [`ConnectionLimits::grace_period`] and not yet used by the peer (no frame came from it), so the peer
//! that dialled it has time to send what it dialled for. A connection stops being new the moment the
//! peer uses it: a connection dialled for one request is released once the answer is in and no
//! protocol holds the peer (libp2p's model too, where a connection lives while a handler keeps it
//! alive). Protected peers are bounded by the protocols that protect them, so the count can exceed
//! the high watermark only by what protocols need and by connections not yet used, and only for as
//! long as that lasts. Protocols hear `PeerDown` for a closed connection, as for any other; a peer
//! they want again is dialled again on demand.
//!
//! This module only decides; the runtime closes, gracefully: what is queued is still written, and what
//! the peer wrote before it saw the close is still handed to the protocols (a request on its way is
//! answered on another connection, or the peer hears the close and asks again, as Kademlia does).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::Protections;
use tokio::time::Instant;

/// How long a connection must have carried nothing before it may be trimmed: a frame may be on its
/// way to us on a connection that just carried one (a request the peer is about to be answered on).
const TRIM_QUIET: Duration = Duration::from_secs(1);

/// When the node closes connections no protocol needs ([`NodeConfig::connections`](crate::NodeConfig)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// The target: trimming closes connections until the node holds this many (protected and new
    /// ones are never closed, so it may hold more).
    pub low_watermark: usize,
    /// Trimming starts when the node holds more connections than this.
    pub high_watermark: usize,
    /// A new connection the peer has not used yet is neither trimmed nor closed as idle before it is
    /// this old: the peer that dialled it has this long to send its first frame. Once a frame came
    /// from the peer, the grace is over: a burst of dials (a joining Kademlia node contacts a hundred
    /// peers in seconds, and is contacted by as many) must not leave the node holding a connection to
    /// everyone it talked to in the last grace period. Any protocol's frame counts, a greeting too (sync's
    /// `Status`, NAT's `Observed` on every new connection): a protocol that needs a peer beyond one
    /// exchange protects it (`Output::Protect`), as gossip does its active view.
    pub grace_period: Duration,
    /// An unprotected connection that carried no frame for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            low_watermark: 16,
            high_watermark: 24,
            // Longer than a handshake under load plus a request's round trip.
            grace_period: Duration::from_secs(10),
            // Several Kademlia request timeouts: a connection a lookup just used is reused by the next.
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Why the manager closes a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Why {
    /// No frame either way for the idle timeout.
    Idle,
    /// Above the high watermark, and among the least recently active.
    Trimmed,
}

impl Why {
    /// The label of `meshwork_connections_closed_total{reason}`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Trimmed => "trimmed",
        }
    }
}

/// How many managed connections are in each state, for the `meshwork_connections{state}` gauge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct States {
    /// Protected by at least one protocol.
    pub(crate) protected: usize,
    /// Younger than the grace period, not yet used by the peer, and not protected.
    pub(crate) new: usize,
    /// Neither: the manager may close them.
    pub(crate) closable: usize,
}

/// When a connected peer came up, when a frame last went either way, and whether one came from it.
#[derive(Clone, Copy, Debug)]
struct Seen {
    up: Instant,
    active: Instant,
    /// A frame came from the peer since it came up (so its grace period is over).
    heard: bool,
}

/// What the manager knows: which protocols protect which peers, and each connected peer's age and
/// last activity.
#[derive(Debug, Default)]
pub(crate) struct Manager {
    limits: ConnectionLimits,
    /// The peers some protocol protects, by the protocols' slots.
    protected: Protections,
    /// The peers with a connection that takes messages (ones being closed are forgotten).
    seen: HashMap<PeerId, Seen>,
}

impl Manager {
    pub(crate) fn new(limits: ConnectionLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Protocol `slot` protects `peer`, or stops protecting it.
    pub(crate) fn protect(&mut self, peer: PeerId, slot: usize, protect: bool) {
        self.protected.set(peer, slot, protect);
    }

    /// Whether some protocol protects `peer`.
    pub(crate) fn is_protected(&self, peer: &PeerId) -> bool {
        self.protected.contains(peer)
    }

    /// `peer` is connected (again) as of `now`.
    pub(crate) fn up(&mut self, peer: PeerId, now: Instant) {
        self.seen.insert(
            peer,
            Seen {
                up: now,
                active: now,
                heard: false,
            },
        );
    }

    /// `peer`'s connections are closed or closing: the manager no longer counts it.
    pub(crate) fn down(&mut self, peer: &PeerId) {
        self.seen.remove(peer);
    }

    /// A frame went to `peer` at `now`.
    pub(crate) fn touch(&mut self, peer: &PeerId, now: Instant) {
        if let Some(seen) = self.seen.get_mut(peer) {
            seen.active = now;
        }
    }

    /// A frame came from `peer` at `now`: it is active, and its grace period is over.
    pub(crate) fn heard(&mut self, peer: &PeerId, now: Instant) {
        if let Some(seen) = self.seen.get_mut(peer) {
            seen.active = now;
            seen.heard = true;
        }
    }

    /// The managed connections by state, at `now`.
    pub(crate) fn states(&self, now: Instant) -> States {
        let mut states = States::default();
        for (peer, seen) in &self.seen {
            if self.is_protected(peer) {
                states.protected += 1;
            } else if self.is_new(seen, now) {
                states.new += 1;
            } else {
                states.closable += 1;
            }
        }
        states
    }

    fn is_new(&self, seen: &Seen, now: Instant) -> bool {
        !seen.heard && now.saturating_duration_since(seen.up) < self.limits.grace_period
    }

    /// The peers to close at `now`, and why: every idle one, then, while the node would still hold
    /// more than the high watermark, the least recently active down to the low watermark. Never a
    /// protected or new one. In a stable order (by last activity, then id), so runs are repeatable.
    ///
    /// New connections do not count towards the watermarks. Nothing can close them, so counted they
    /// only pushed out others: an attacker dialling with fresh identities, never sending a frame and
    /// dialling again as each grace period ends, kept the count above the high watermark, and every
    /// unprotected honest connection quiet for a second was trimmed at every sweep. Nor are the
    /// longest-lived trimmed ([`Manager::elders`]): fresh identities that each sent one frame were
    /// the most recently active, and pushed out every honest connection that had been quiet a second.
    pub(crate) fn to_close(&self, now: Instant) -> Vec<(PeerId, Why)> {
        let mut closable: Vec<(Instant, PeerId)> = self
            .seen
            .iter()
            .filter(|(peer, seen)| !self.is_protected(peer) && !self.is_new(seen, now))
            .map(|(peer, seen)| (seen.active, *peer))
            .collect();
        closable.sort_unstable();
        let mut held = self.seen.values().filter(|seen| !self.is_new(seen, now)).count();
        let trim = held > self.limits.high_watermark;
        let elders = if trim {
            self.elders(&closable, now)
        } else {
            HashSet::new()
        };
        let mut close = Vec::new();
        for (active, peer) in closable {
            let quiet = now.saturating_duration_since(active);
            if quiet >= self.limits.idle_timeout {
                close.push((peer, Why::Idle));
            } else if trim && held > self.limits.low_watermark && quiet >= TRIM_QUIET {
                if elders.contains(&peer) {
                    continue;
                }
                close.push((peer, Why::Trimmed));
            } else {
                // Sorted by activity: every later peer was active more recently.
                break;
            }
            held -= 1;
        }
        close
    }

    /// The longest-lived of `closable` that are not idle, up to half the low watermark: kept from
    /// trimming (an idle one closes anyway, and would only take a live one's place). An attacker can
    /// make its connections the most recently active for the price of a frame each, but not the
    /// oldest.
    fn elders(&self, closable: &[(Instant, PeerId)], now: Instant) -> HashSet<PeerId> {
        let idle = |active: &Instant| now.saturating_duration_since(*active) >= self.limits.idle_timeout;
        let mut by_age: Vec<(Instant, PeerId)> = closable
            .iter()
            .filter(|(active, _)| !idle(active))
            .filter_map(|(_, peer)| Some((self.seen.get(peer)?.up, *peer)))
            .collect();
        by_age.sort_unstable();
        by_age
            .into_iter()
            .take(self.limits.low_watermark / 2)
            .map(|(_, peer)| peer)
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start the manager at an arbitrary instant.
mod tests;
