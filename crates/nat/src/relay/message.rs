//! What crosses the wire on `/meshwork/relay/1`.

use meshwork_identity::PeerId;
use meshwork_wire::BoundedBytes;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The largest datagram a circuit carries: a full Ethernet frame's UDP payload, more than the QUIC
/// transport ever sends.
pub const MAX_DATAGRAM: usize = 1500;

/// A circuit's number, chosen by the relay (unique among its circuits, never reused while it runs).
pub type CircuitId = u64;

/// Why a relay refused a reservation or a circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Error)]
pub enum RelayRefusal {
    /// The peer asked does not serve as a relay.
    #[error("the peer is not a relay")]
    NotARelay,
    /// The relay holds as many reservations as it may.
    #[error("the relay holds as many reservations as it may")]
    TooManyReservations,
    /// The target holds no reservation at the relay: it did not ask to be reachable through it.
    #[error("the target has no reservation at the relay")]
    NoReservation,
    /// The target's reservation is live but its connection to the relay is not.
    #[error("the target is not connected to the relay")]
    TargetNotConnected,
    /// The relay runs as many circuits as it may.
    #[error("the relay runs as many circuits as it may")]
    TooManyCircuits,
    /// The dialer or the target already has as many circuits at the relay as one peer may.
    #[error("too many circuits for one peer")]
    TooManyCircuitsForPeer,
    /// The relay could not be reached, or its connection was lost before it answered.
    #[error("the relay is unreachable")]
    RelayUnreachable,
}

/// Why a circuit ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Error)]
pub enum CircuitEnd {
    /// One of its ends closed it.
    #[error("closed by an end")]
    Closed,
    /// It carried as many bytes as the relay allows a circuit.
    #[error("the circuit's byte limit was reached")]
    ByteLimit,
    /// It lasted as long as the relay allows a circuit.
    #[error("the circuit's time limit was reached")]
    TimeLimit,
    /// The other end, or the relay, was disconnected.
    #[error("an end or the relay disconnected")]
    Disconnected,
}

/// A message of the relay protocol. Ends send `Reserve`, `Connect`, `Send` and `Close` to the relay;
/// the relay answers with the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayMessage {
    /// Make the sender reachable through this relay (renewed before `Reserved::ttl_secs` runs out).
    Reserve,
    /// The relay's answer to `Reserve`, with the limits it applies to every circuit.
    Reserved {
        /// Seconds the reservation holds.
        ttl_secs: u32,
        /// Bytes a circuit may carry, both directions together.
        circuit_bytes: u64,
        /// Seconds a circuit may last.
        circuit_secs: u32,
    },
    /// The relay refused a `Reserve`.
    ReserveRefused {
        /// Why.
        reason: RelayRefusal,
    },
    /// Open a circuit from the sender to `target`, which holds a reservation here.
    Connect {
        /// The peer to reach.
        target: PeerId,
    },
    /// To the dialer: the circuit to `peer` is open.
    Opened {
        /// The circuit.
        circuit: CircuitId,
        /// The target.
        peer: PeerId,
    },
    /// To the target: `peer` opened a circuit to it.
    Incoming {
        /// The circuit.
        circuit: CircuitId,
        /// The dialer.
        peer: PeerId,
    },
    /// The relay refused a `Connect`.
    ConnectRefused {
        /// The peer the sender wanted to reach.
        target: PeerId,
        /// Why.
        reason: RelayRefusal,
    },
    /// From an end: carry `payload` to the circuit's other end.
    Send {
        /// The circuit.
        circuit: CircuitId,
        /// One datagram, opaque to the relay (QUIC packets, encrypted end to end).
        payload: BoundedBytes<MAX_DATAGRAM>,
    },
    /// From the relay: a datagram the other end sent.
    Deliver {
        /// The circuit.
        circuit: CircuitId,
        /// The datagram.
        payload: BoundedBytes<MAX_DATAGRAM>,
    },
    /// From an end: close the circuit.
    Close {
        /// The circuit.
        circuit: CircuitId,
    },
    /// From the relay: the circuit is closed.
    Closed {
        /// The circuit.
        circuit: CircuitId,
        /// Why.
        reason: CircuitEnd,
    },
}
