//! Counters a transport exposes: how many connections it holds, what it refused or dropped, what its
//! connections carried and how they ended.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::ClosedByReason;

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
    pub(crate) frames_timed_out: AtomicU64,
    pub(crate) half_open: AtomicU64,
    pub(crate) retries_sent: AtomicU64,
    pub(crate) refused_by_address: AtomicU64,
    pub(crate) evicted: AtomicU64,
    pub(crate) handshakes_evicted: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The atomic counters; the traffic totals and closes are added by the registry
    /// ([`crate::traffic::Traffic::add_to`]).
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
            frames_timed_out: get(&self.frames_timed_out),
            half_open: get(&self.half_open),
            retries_sent: get(&self.retries_sent),
            refused_by_address: get(&self.refused_by_address),
            evicted: get(&self.evicted),
            handshakes_evicted: get(&self.handshakes_evicted),
            ..CountersSnapshot::default()
        }
    }
}

/// A copy of a transport's counters at one moment. Nothing is ever dropped silently: every refusal is
/// counted here, and a full queue makes the sender wait instead.
///
/// The traffic totals (`datagrams_sent` to `bytes_lost`) sum [`ConnectionStats`](crate::ConnectionStats)
/// over every connection this transport ever had: the live ones as read when the snapshot is taken, the
/// closed ones as they were when they closed. They never go down, and count each connection once, the
/// losers of simultaneous dials included. Connections whose handshake failed or that were refused are not
/// in them (they are counted above). Taking a snapshot reads each live connection's statistics once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CountersSnapshot {
    /// Inbound connections held now (QUIC: established ones, see `half_open` for handshakes; in memory,
    /// including those still in their handshake).
    pub inbound_connections: u64,
    /// Outbound connections held now (including dials in progress).
    pub outbound_connections: u64,
    /// Inbound connections refused because `Limits::max_inbound` was reached (QUIC: with every held
    /// connection protected from eviction), or `Limits::max_half_open` with the address already
    /// validated, or `Limits::max_handshakes` with no handshake the newcomer may evict.
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
    /// Inbound frames whose body did not arrive within `Timeouts::frame` of their header.
    pub frames_timed_out: u64,
    /// Inbound handshakes in progress now (QUIC only).
    pub half_open: u64,
    /// Connections the QUIC endpoint holds now, those closed but still draining included: after a
    /// close, QUIC keeps a connection's state for three probe timeouts (RFC 9000 §10.2), and its memory
    /// with it. Under load, round trips (and so probe timeouts) grow, and a node that closes many
    /// connections holds about as many draining as open. (QUIC only.)
    pub endpoint_connections: u64,
    /// Stateless Retries sent because `Limits::max_half_open` handshakes were in progress (QUIC only).
    pub retries_sent: u64,
    /// Inbound connections refused because their IP or prefix was at its cap (QUIC only).
    pub refused_by_address: u64,
    /// Inbound connections closed to make room for a newcomer when every slot was taken (QUIC only).
    pub evicted: u64,
    /// Inbound handshakes cancelled to make room for a newcomer past `Limits::max_handshakes` (QUIC
    /// only).
    pub handshakes_evicted: u64,
    /// UDP datagrams sent, over every connection ever held (memory: pipe writes, see
    /// [`ConnectionStats`](crate::ConnectionStats)).
    pub datagrams_sent: u64,
    /// Bytes sent in those datagrams (UDP payload: handshakes, acknowledgements and retransmissions
    /// included).
    pub bytes_sent: u64,
    /// UDP datagrams received, over every connection ever held.
    pub datagrams_received: u64,
    /// Bytes received in those datagrams (UDP payload).
    pub bytes_received: u64,
    /// Packets declared lost, over every connection ever held (always 0 in memory).
    pub packets_lost: u64,
    /// Bytes of the packets declared lost, over every connection ever held (always 0 in memory).
    pub bytes_lost: u64,
    /// Connections that closed, by reason; `closed_by_reason.total()` is every connection that closed.
    pub closed_by_reason: ClosedByReason,
}
