//! One connection per peer, connection slots, and the simultaneous-dial tie-break.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use meshwork_identity::PeerId;

use crate::counters::Counters;
use crate::traffic::Traffic;
use crate::{CloseReason, Connection, CountersSnapshot, Direction};

/// A connection the registry can tell apart from another connection to the same peer.
pub(crate) trait Tracked: Connection {
    /// Whether `self` and `other` are handles to the same connection.
    fn same_as(&self, other: &Self) -> bool;
}

/// A held connection slot (inbound or outbound); released when dropped.
#[derive(Debug)]
pub(crate) struct Slot(Arc<Counters>, fn(&Counters) -> &AtomicU64);

impl Slot {
    /// Takes a slot if fewer than `limit` are held.
    pub(crate) fn acquire(
        counters: &Arc<Counters>,
        which: fn(&Counters) -> &AtomicU64,
        limit: usize,
    ) -> Option<Self> {
        let limit = limit as u64;
        which(counters)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < limit).then_some(held + 1)
            })
            .ok()
            .map(|_| Self(counters.clone(), which))
    }
}

impl Slot {
    /// Takes a slot past the limit (an eviction is under way, and will give one back).
    pub(crate) fn force(counters: &Arc<Counters>, which: fn(&Counters) -> &AtomicU64) -> Self {
        which(counters).fetch_add(1, Ordering::AcqRel);
        Self(counters.clone(), which)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        (self.1)(&self.0).fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connections of one transport, one per peer.
pub(crate) struct Registry<C> {
    local: PeerId,
    counters: Arc<Counters>,
    conns: Mutex<HashMap<PeerId, C>>,
    /// Every watched connection's traffic, the losers of simultaneous dials included (they are not in
    /// `conns`, or not for long). A lock of its own: a metrics scrape does not hold up dials.
    traffic: Traffic<C>,
}

impl<C> std::fmt::Debug for Registry<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.conns.lock().map_or(0, |conns| conns.len());
        f.debug_struct("Registry")
            .field("local", &self.local)
            .field("connections", &held)
            .finish()
    }
}

impl<C: Tracked> Registry<C> {
    pub(crate) fn new(local: PeerId, counters: Arc<Counters>) -> Self {
        Self {
            local,
            counters,
            conns: Mutex::new(HashMap::new()),
            traffic: Traffic::default(),
        }
    }

    /// The transport's counters, with the traffic totals and closes of every connection it watched.
    pub(crate) fn snapshot(&self) -> CountersSnapshot {
        let mut snapshot = self.counters.snapshot();
        self.traffic.add_to(&mut snapshot);
        snapshot
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, C>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The open connection to `peer`.
    pub(crate) fn get(&self, peer: &PeerId) -> Option<C> {
        self.lock()
            .get(peer)
            .filter(|conn| conn.close_reason().is_none())
            .cloned()
    }

    /// Every connection watched and not yet closed: those held, and the losers of tie-breaks still
    /// retiring.
    pub(crate) fn live(&self) -> Vec<C> {
        self.traffic.live()
    }

    /// The first connection of [`Registry::live`] that `pred` accepts.
    pub(crate) fn find_live(&self, pred: impl Fn(&C) -> bool) -> Option<C> {
        self.traffic.find_live(pred)
    }

    /// Every connection held.
    pub(crate) fn all(&self) -> Vec<C> {
        self.lock().values().cloned().collect()
    }

    fn dialer(&self, conn: &C) -> PeerId {
        match conn.direction() {
            Direction::Outbound => self.local,
            Direction::Inbound => conn.remote_peer_id(),
        }
    }

    /// Offers a newly established connection. Returns the connection to use and whether it is `new`.
    ///
    /// A direct connection is kept over one through a relay circuit ([`meshwork_wire::relayed`]),
    /// whichever came first and whoever dialled: the relayed one retires after [`DUPLICATE_GRACE`].
    /// Two live connections to one peer in opposite directions (a simultaneous dial): the one dialed by the
    /// smaller `PeerId` is kept; both peers apply the same rule, so they keep the same one. Two in the same
    /// direction: the newer is kept, since its dialer evidently lost the old one (a restart, a dead path).
    /// The other connection is closed as [`CloseReason::Duplicate`]: at once when the dialer replaced its
    /// own connection, after [`DUPLICATE_GRACE`] after a simultaneous dial.
    pub(crate) fn offer(self: &Arc<Self>, new: C) -> (C, bool) {
        let peer = new.remote_peer_id();
        let winner = self.local.min(peer);
        let mut conns = self.lock();
        let Some(existing) = conns.get(&peer).filter(|c| c.close_reason().is_none()).cloned() else {
            conns.insert(peer, new.clone());
            return (new, true);
        };
        Counters::bump(&self.counters.duplicates_closed);
        let (new_relayed, old_relayed) = (relayed(&new), relayed(&existing));
        if new_relayed != old_relayed {
            // A direct path beats a relay circuit, whoever dialled (both peers see which is which):
            // this is how a hole punch upgrades a relayed connection. The loser retires gracefully.
            return if old_relayed {
                conns.insert(peer, new.clone());
                self.retire_relayed(existing);
                (new, true)
            } else {
                self.retire_relayed(new);
                (existing, false)
            };
        }
        if self.dialer(&existing) == self.dialer(&new) {
            // The dialer lost the old connection (it restarted): nothing more will come on it.
            // Closing only records the reason and queues a close frame; it never blocks, so it runs under
            // the lock.
            conns.insert(peer, new.clone());
            existing.close(CloseReason::Duplicate);
            (new, true)
        } else if self.dialer(&new) == winner {
            conns.insert(peer, new.clone());
            retire(existing);
            (new, true)
        } else {
            retire(new);
            (existing, false)
        }
    }

    /// Forgets `conn` (once closed), unless another connection has replaced it. A direct connection
    /// that replaced a relayed one, and closed before the relayed one retired, gives its place back to
    /// it: the relay circuit still joins the two peers.
    pub(crate) fn remove(&self, conn: &C) {
        let peer = conn.remote_peer_id();
        let mut conns = self.lock();
        if !conns.get(&peer).is_some_and(|held| held.same_as(conn)) {
            return;
        }
        conns.remove(&peer);
        if relayed(conn) {
            return;
        }
        let fallback = self
            .traffic
            .find_live(|c| c.remote_peer_id() == peer && relayed(c) && c.close_reason().is_none());
        if let Some(fallback) = fallback {
            conns.insert(peer, fallback);
        }
    }

    /// Closes a relayed connection that a direct one replaced, as [`CloseReason::Duplicate`] after
    /// [`DUPLICATE_GRACE`], if the direct one still stands then; otherwise the relayed one is held
    /// again. (The node runtime retires it gracefully long before; this is the backstop.)
    fn retire_relayed(self: &Arc<Self>, conn: C) {
        let registry = Arc::clone(self);
        tokio::spawn(async move {
            tokio::select! {
                _ = conn.closed() => {}
                () = tokio::time::sleep(DUPLICATE_GRACE) => {
                    let peer = conn.remote_peer_id();
                    let mut conns = registry.lock();
                    let held = conns.get(&peer).filter(|c| c.close_reason().is_none()).cloned();
                    match held {
                        Some(held) if held.same_as(&conn) => {}
                        Some(_) => conn.close(CloseReason::Duplicate),
                        None => {
                            conns.insert(peer, conn);
                        }
                    }
                }
            }
        });
    }
}

/// How long the losing connection of a simultaneous dial stays open at most after the winner is chosen.
///
/// Both sides may have sent messages on the loser before either saw the winner; closing it at once
/// would drop what is still in flight. Each side stops using the loser as soon as it learns of the winner
/// (the one dialed by the smaller `PeerId`). An application that knows when both sides are done with the
/// loser closes it then (the node runtime finishes its streams, waits until the peer has read them and
/// finished its own, and closes; see `meshwork-node`); this is the backstop for one that does not. Under
/// load (hundreds of nodes on a few cores) a fixed two seconds was too short: frames still in flight
/// were lost.
pub const DUPLICATE_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// Whether `conn` runs over a relay circuit (its remote address is a circuit's virtual one).
fn relayed<C: Connection>(conn: &C) -> bool {
    meshwork_wire::relayed::is_relayed(&conn.remote_addr())
}

/// Closes the loser of a simultaneous dial as [`CloseReason::Duplicate`] after [`DUPLICATE_GRACE`].
fn retire<C: Connection>(conn: C) {
    tokio::spawn(async move {
        // Ends as soon as the connection closes otherwise: this handle would keep the connection's
        // state (tens of kilobytes in quinn) alive for the rest of the grace period.
        tokio::select! {
            _ = conn.closed() => {}
            () = tokio::time::sleep(DUPLICATE_GRACE) => conn.close(CloseReason::Duplicate),
        }
    });
}

/// Watches `conn` until it closes, then forgets it, releases what it held (its connection slot, and
/// an inbound connection's place in the per-address counts) and moves its traffic to the closed totals.
///
/// Called once for every connection a transport establishes, winner or loser of a tie-break: this is
/// what puts it in the totals, and the one place it leaves them.
pub(crate) fn watch<C: Tracked, H: Send + 'static>(registry: Arc<Registry<C>>, conn: C, held: H) {
    let tracking = registry.traffic.track(conn.clone());
    tokio::spawn(async move {
        let reason = conn.closed().await;
        tracing::debug!(peer = %conn.remote_peer_id(), %reason, "connection closed");
        registry.remove(&conn);
        drop(held);
        registry.traffic.retire(tracking, &reason);
    });
}
