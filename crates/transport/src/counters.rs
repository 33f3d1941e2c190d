//! Counters a transport exposes: how many connections it holds and what it refused or dropped.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared by a transport and its connections.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) inbound: AtomicU64,
    pub(crate) outbound: AtomicU64,
    pub(crate) inbound_refused: AtomicU64,
    pub(crate) dials_refused: AtomicU64,
    pub(crate) handshake_failures: AtomicU64,
    pub(crate) duplicates_closed: AtomicU64,
    pub(crate) streams_refused: AtomicU64,
    pub(crate) frames_refused: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CountersSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountersSnapshot {
            inbound_connections: get(&self.inbound),
            outbound_connections: get(&self.outbound),
            inbound_refused: get(&self.inbound_refused),
            dials_refused: get(&self.dials_refused),
            handshake_failures: get(&self.handshake_failures),
            duplicates_closed: get(&self.duplicates_closed),
            streams_refused: get(&self.streams_refused),
            frames_refused: get(&self.frames_refused),
        }
    }
}

/// A copy of a transport's counters at one moment. Nothing is ever dropped silently: every refusal is
/// counted here, and a full queue makes the sender wait instead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CountersSnapshot {
    /// Inbound connections held now (including those still in their handshake).
    pub inbound_connections: u64,
    /// Outbound connections held now (including dials in progress).
    pub outbound_connections: u64,
    /// Inbound connections refused because `Limits::max_inbound` was reached.
    pub inbound_refused: u64,
    /// Dials refused locally because `Limits::max_outbound` was reached.
    pub dials_refused: u64,
    /// Handshakes that failed or timed out (either direction), including identity mismatches.
    pub handshake_failures: u64,
    /// Connections closed because another connection to the same peer was kept.
    pub duplicates_closed: u64,
    /// Inbound streams refused because their protocol id is unknown or malformed.
    pub streams_refused: u64,
    /// Inbound frames refused because their header announced more than the protocol's maximum.
    pub frames_refused: u64,
}
