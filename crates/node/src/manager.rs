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
//! - **Trimmed**: when the node holds more than [`ConnectionLimits::high_watermark`] connections, it
//!   closes the least recently active until it is back at [`ConnectionLimits::low_watermark`], its
//!   target; one that carried a frame within the last second is not trimmed (the peer may be
//!   waiting on an answer).
//!
//! Neither ever closes a connection that a protocol **protects** (`Output::Protect`: gossip's active
//! view, a peer a Kademlia request waits on) or one younger than [`ConnectionLimits::grace_period`]
//! (the peer that dialled it has not yet had time to use it), except that above
//! [`ConnectionLimits::grace_limit`] (off by default) a young connection the peer has already used, and that has been
//! quiet for a few seconds, is trimmed too, so a burst of dials cannot leave the node holding a
//! connection to everyone it talked to in the last grace period. Protected peers are bounded by the
//! protocols that protect them, so the count can exceed the high watermark only by what protocols
//! need, and only for as long as they need it. Protocols hear `PeerDown` for a closed connection, as
//! for any other; a peer they want again is dialled again on demand.
//!
//! This module only decides; the runtime closes, gracefully: what is queued is still written, and what
//! the peer wrote before it saw the close is still handed to the protocols (a request on its way is
//! answered on another connection, or the peer hears the close and asks again, as Kademlia does).

use std::collections::HashMap;
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::Protections;
use tokio::time::Instant;

/// How long a connection must have carried nothing before it may be trimmed: a frame may be on its
/// way to us on a connection that just carried one (a request the peer is about to be answered on).
const TRIM_QUIET: Duration = Duration::from_secs(1);

/// How long a used connection in its grace period must have carried nothing before the grace limit
/// trims it: a joining Kademlia node asks the same peers again within seconds (its self-lookup, then
/// its bucket refreshes), and one more round trip is cheaper than a new handshake.
const GRACE_QUIET: Duration = Duration::from_secs(3);

/// The default [`ConnectionLimits::grace_limit`]: none (see its doc for why).
const GRACE_LIMIT: usize = usize::MAX;

/// When the node closes connections no protocol needs ([`NodeConfig::connections`](crate::NodeConfig)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// The target: trimming closes connections until the node holds this many (protected and new
    /// ones are never closed, so it may hold more).
    pub low_watermark: usize,
    /// Trimming starts when the node holds more connections than this.
    pub high_watermark: usize,
    /// A new connection is neither trimmed nor closed as idle before it is this old. It bounds how
    /// many connections a burst of dials leaves open at once, so memory, against how often a peer
    /// is dialled again: with 200 Kademlia nodes joining in one process
    /// (`benches/benches/kad_connections.rs`), 5 s instead of the default 10 s held about a third
    /// less memory at the peak (860 MiB against 1.3 GiB) and settled about 1.5 s later.
    pub grace_period: Duration,
    /// Above this many connections (or the high watermark, if that is higher), a connection in its
    /// grace period that the peer has already used (a frame came from it: its answer, or its request)
    /// is trimmed too once it has been quiet for 3 s, least recently active first, until the node is
    /// back at this many. The grace period alone does not bound what a burst of dials leaves open: a
    /// joining Kademlia node contacts a hundred peers in seconds, and so is contacted by as many.
    ///
    /// Off by default (`usize::MAX`): it saves memory in a small network and costs time in every one.
    /// Measured with Kademlia nodes joining at 25 ms intervals in one process
    /// (`benches/benches/kad_connections.rs`, this 2-core machine, runs minutes apart; its noise
    /// moves settle times by ±5 s), a limit of 24 against none:
    ///
    /// | nodes | peak connections per node | peak RSS | settled after the last join | lookup p50 |
    /// |---|---|---|---|---|
    /// | 200 | 38–44 against 76–102 | 727–781 MiB against 967–1,169 MiB | 19–26 s against 9–23 s | 0.72–0.86 s against 0.36–0.75 s |
    /// | 500 | 26 against 31–33 | 1,805 MiB against 1,576–1,672 MiB | 76 s against 53–61 s | 2.3 s against 1.4–1.6 s |
    ///
    /// Trimmed peers are dialled again, and handshakes are what a joining network spends its CPU on;
    /// and memory falls less than connections do, or rises, because a closed QUIC connection keeps
    /// its state while it drains (three probe timeouts, which grow with the round trips of a loaded
    /// machine): quinn held about two connections per node for each one open
    /// (`CountersSnapshot::endpoint_connections`). Use it where a hard bound on connections matters
    /// more than joining fast.
    pub grace_limit: usize,
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
            grace_limit: GRACE_LIMIT,
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
    /// Younger than the grace period (and not protected).
    pub(crate) new: usize,
    /// Neither: the manager may close them.
    pub(crate) closable: usize,
}

/// When a connected peer came up, when a frame last went either way, and whether one came from it.
#[derive(Clone, Copy, Debug)]
struct Seen {
    up: Instant,
    active: Instant,
    /// A frame came from the peer since it came up (so above [`ConnectionLimits::grace_limit`], its
    /// grace period no longer protects it).
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

    /// A frame came from `peer` at `now`: it is active, and above the grace limit its grace period no
    /// longer protects it.
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
        now.saturating_duration_since(seen.up) < self.limits.grace_period
    }

    /// The peers to close at `now`, and why: every idle one, then, while the node would still hold
    /// more than the high watermark, the least recently active down to the low watermark. Never a
    /// protected or new one. In a stable order (by last activity, then id), so runs are repeatable.
    pub(crate) fn to_close(&self, now: Instant) -> Vec<(PeerId, Why)> {
        let mut closable: Vec<(Instant, PeerId)> = self
            .seen
            .iter()
            .filter(|(peer, seen)| !self.is_protected(peer) && !self.is_new(seen, now))
            .map(|(peer, seen)| (seen.active, *peer))
            .collect();
        closable.sort_unstable();
        let mut held = self.seen.len();
        let trim = held > self.limits.high_watermark;
        let mut close = Vec::new();
        for (active, peer) in closable {
            let quiet = now.saturating_duration_since(active);
            if quiet >= self.limits.idle_timeout {
                close.push((peer, Why::Idle));
            } else if trim && held > self.limits.low_watermark && quiet >= TRIM_QUIET {
                close.push((peer, Why::Trimmed));
            } else {
                // Sorted by activity: every later peer was active more recently.
                break;
            }
            held -= 1;
        }
        // Still above the grace limit: the new connections the peer has used go too, down to it.
        let limit = self.limits.grace_limit.max(self.limits.high_watermark);
        if held > limit {
            let mut used: Vec<(Instant, PeerId)> = self
                .seen
                .iter()
                .filter(|(peer, seen)| seen.heard && self.is_new(seen, now) && !self.is_protected(peer))
                .filter(|(_, seen)| now.saturating_duration_since(seen.active) >= GRACE_QUIET)
                .map(|(peer, seen)| (seen.active, *peer))
                .collect();
            used.sort_unstable();
            let excess = held - limit;
            close.extend(
                used.into_iter()
                    .take(excess)
                    .map(|(_, peer)| (peer, Why::Trimmed)),
            );
        }
        close
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start the manager at an arbitrary instant.
mod tests {
    use super::*;

    fn peer(n: u16) -> PeerId {
        let mut seed = [0u8; 32];
        seed[..2].copy_from_slice(&n.to_le_bytes());
        meshwork_identity::Keypair::from_seed(seed).peer_id()
    }

    fn limits(low: usize, high: usize) -> ConnectionLimits {
        ConnectionLimits {
            low_watermark: low,
            high_watermark: high,
            grace_period: Duration::from_secs(10),
            grace_limit: usize::MAX,
            idle_timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn above_the_high_watermark_the_least_recently_active_close_down_to_the_low_one() {
        let start = Instant::now();
        let mut manager = Manager::new(limits(3, 5));
        for n in 0..6u16 {
            manager.up(peer(n), start);
            // Peer n was last active n seconds after the grace period ended.
            manager.touch(&peer(n), start + Duration::from_secs(10 + u64::from(n)));
        }
        let now = start + Duration::from_secs(20);
        let close = manager.to_close(now);
        assert_eq!(
            close,
            [peer(0), peer(1), peer(2)].map(|p| (p, Why::Trimmed)),
            "six held, high mark five: the three least recently active go, leaving the low mark"
        );
        manager.down(&peer(5));
        assert!(
            manager.to_close(now).is_empty(),
            "at the high watermark nothing is trimmed"
        );
    }

    #[test]
    fn protected_and_new_connections_are_never_closed() {
        let start = Instant::now();
        let mut manager = Manager::new(limits(0, 1));
        manager.up(peer(1), start);
        manager.up(peer(2), start);
        manager.protect(peer(1), 3, true);
        manager.protect(peer(1), 5, true);
        // Within the grace period nothing closes, whatever the count.
        assert!(manager.to_close(start + Duration::from_secs(9)).is_empty());
        let later = start + Duration::from_secs(600);
        assert_eq!(manager.to_close(later), [(peer(2), Why::Idle)]);
        manager.protect(peer(1), 3, false);
        assert_eq!(
            manager.to_close(later),
            [(peer(2), Why::Idle)],
            "still protected by the other protocol"
        );
        manager.protect(peer(1), 5, false);
        assert_eq!(manager.to_close(later).len(), 2);
        assert_eq!(
            manager.states(later),
            States {
                protected: 0,
                new: 0,
                closable: 2
            }
        );
    }

    #[test]
    fn above_the_grace_limit_new_connections_the_peer_used_are_trimmed_down_to_it() {
        let start = Instant::now();
        let soon = start + Duration::from_secs(4);
        let mut manager = Manager::new(ConnectionLimits {
            grace_limit: 2,
            ..limits(0, 0)
        });
        for n in 1..=5u16 {
            manager.up(peer(n), start);
        }
        // Peers 1 to 4 answered (1 the longest ago); peer 5 did not; peer 4 is protected.
        for n in 1..=4u16 {
            manager.heard(&peer(n), start + Duration::from_millis(100 * u64::from(n)));
        }
        manager.protect(peer(4), 0, true);
        assert_eq!(
            manager.to_close(soon),
            [peer(1), peer(2), peer(3)].map(|p| (p, Why::Trimmed)),
            "five held, limit two: three of the used ones go, least recently active first"
        );
        // Without a limit, the grace period protects them all.
        let mut unlimited = Manager::new(limits(0, 0));
        unlimited.up(peer(1), start);
        unlimited.heard(&peer(1), start + Duration::from_millis(100));
        assert!(unlimited.to_close(soon).is_empty());
    }

    #[test]
    fn an_idle_connection_closes_below_the_watermarks_too_and_traffic_keeps_it() {
        let start = Instant::now();
        let mut manager = Manager::new(limits(16, 24));
        manager.up(peer(1), start);
        manager.up(peer(2), start);
        manager.touch(&peer(2), start + Duration::from_secs(50));
        let now = start + Duration::from_secs(61);
        assert_eq!(manager.to_close(now), [(peer(1), Why::Idle)]);
    }
}
