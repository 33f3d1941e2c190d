//! Traffic totals over every connection a transport ever had: the live ones read when a snapshot is
//! taken, the closed ones kept from the moment they closed.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::{CloseReason, ClosedByReason, Connection, ConnectionStats, CountersSnapshot};

/// Every connection a transport watches, live or closed, summed.
///
/// A live connection is read at snapshot time; when it closes its final figures move to the closed sum.
/// Both happen under one lock, so a snapshot sees each connection exactly once (live or closed, never
/// both, never neither) and the totals never go down: a closed connection's figures are at least what it
/// showed while live.
pub(crate) struct Traffic<C> {
    state: Mutex<State<C>>,
}

struct State<C> {
    next: u64,
    live: HashMap<u64, C>,
    closed: ConnectionStats,
    closed_by_reason: ClosedByReason,
}

/// A connection's place in the totals. Not `Clone`, and consumed by [`Traffic::retire`]: each connection
/// is retired, and counted as closed, once.
#[derive(Debug)]
pub(crate) struct Tracking(u64);

impl<C> Default for Traffic<C> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                next: 0,
                live: HashMap::new(),
                closed: ConnectionStats::default(),
                closed_by_reason: ClosedByReason::default(),
            }),
        }
    }
}

impl<C: Connection> Traffic<C> {
    fn lock(&self) -> MutexGuard<'_, State<C>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts counting `conn`.
    pub(crate) fn track(&self, conn: C) -> Tracking {
        let mut state = self.lock();
        let id = state.next;
        state.next += 1;
        state.live.insert(id, conn);
        Tracking(id)
    }

    /// Every watched connection not yet retired (the losers of tie-breaks, which the registry no
    /// longer holds, included).
    pub(crate) fn live(&self) -> Vec<C> {
        self.lock().live.values().cloned().collect()
    }

    /// A watched connection not yet retired that `pred` accepts (no copy of the others is made).
    pub(crate) fn find_live(&self, pred: impl Fn(&C) -> bool) -> Option<C> {
        self.lock().live.values().find(|c| pred(c)).cloned()
    }

    /// Moves a closed connection's final figures to the closed totals, and counts its `reason`.
    pub(crate) fn retire(&self, tracking: Tracking, reason: &CloseReason) {
        let mut state = self.lock();
        let Some(conn) = state.live.remove(&tracking.0) else {
            return;
        };
        // Read under the lock: a snapshot taken meanwhile must not miss it or see it twice.
        let last = conn.stats();
        state.closed.accumulate(&last);
        state.closed_by_reason.record(reason);
    }

    /// Adds the totals to `snapshot`: one stats read per live connection (a short lock each for QUIC).
    pub(crate) fn add_to(&self, snapshot: &mut CountersSnapshot) {
        let state = self.lock();
        let mut total = state.closed;
        for conn in state.live.values() {
            total.accumulate(&conn.stats());
        }
        snapshot.closed_by_reason = state.closed_by_reason;
        drop(state);
        snapshot.datagrams_sent = total.datagrams_sent;
        snapshot.bytes_sent = total.bytes_sent;
        snapshot.datagrams_received = total.datagrams_received;
        snapshot.bytes_received = total.bytes_received;
        snapshot.packets_lost = total.packets_lost;
        snapshot.bytes_lost = total.bytes_lost;
    }
}
