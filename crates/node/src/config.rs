//! The runtime's bounds and timings.

use std::net::SocketAddr;
use std::time::Duration;

use crate::ConnectionLimits;

/// How big the node's queues are and how it treats peers. Every queue is bounded (ARCHITECTURE.md): when
/// one is full the runtime either waits (back-pressure towards the network) or drops and counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// Inputs waiting for the node task: frames from readers, commands from handles, connection news.
    /// Readers wait when it is full, which pushes back on the peer through the transport's windows.
    pub inbox_capacity: usize,
    /// Encoded messages waiting to be written to one peer for one protocol. A send into a full queue is
    /// dropped and counted in `meshwork_queue_drops_total` (the protocol sees it as a lost message).
    pub send_queue_per_peer: usize,
    /// Room kept beyond [`send_queue_per_peer`](Self::send_queue_per_peer) for the messages a protocol
    /// marks as control ([`Protocol::is_control`](meshwork_wire::Protocol::is_control): gossip's
    /// grafts, prunes and declines). A peer that reads slower than the node's data arrives fills the
    /// queue with data; the few small messages that steer the protocol still go out, so a promise the
    /// data queue could not keep is declined rather than broken. Control messages are counted in the
    /// same byte budgets.
    pub control_queue_per_peer: usize,
    /// Encoded bytes waiting to be written to one peer, across its protocols. A send past it is dropped
    /// and counted like a full queue; a single message larger than the budget is still queued when
    /// nothing else waits for that peer. A peer that reads slowly (or not at all) costs at most this.
    pub send_bytes_per_peer: u64,
    /// Encoded bytes each peer may always have queued, outside [`send_bytes_total`](Self::send_bytes_total):
    /// peers that stop reading cannot use up the total and starve the others' everyday traffic (new
    /// tips, transactions, header answers).
    pub send_bytes_reserved_per_peer: u64,
    /// Encoded bytes waiting to be written to all peers together beyond their reserved floors; a send
    /// past it is dropped and counted as `budget_spent` (not `queue_full`: the peer it was for may
    /// read as fast as any). What peers that stop reading can make the node hold for sending
    /// is this, plus per connection its reserved floor and the transport's send window
    /// (`Limits::max_queued_bytes_per_peer`).
    pub send_bytes_total: u64,
    /// How long one write to a peer (opening the protocol's stream, or one frame) may make no progress.
    /// A peer whose writer is stuck past it is disconnected and counted in `meshwork_stalled_peers`.
    pub write_deadline: Duration,
    /// How long a connection being closed gracefully (the loser of a simultaneous dial, or a peer no
    /// protocol wants) may take to deliver what was written to it: its writers finish their streams
    /// and wait for the peer to read them to the end. Past it the connection closes regardless.
    pub drain_deadline: Duration,
    /// Events waiting for the application, per protocol. An event into a full queue is dropped and
    /// counted in `meshwork_event_drops_total`: an application that stops reading events must not stall
    /// the node.
    pub event_queue: usize,
    /// How long a dial may take before the protocols are told the peer is down.
    pub dial_timeout: Duration,
    /// Where to serve Prometheus metrics over HTTP (`GET /metrics`), if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    /// How many connections the node keeps, and when it closes ones no protocol protects
    /// (ARCHITECTURE.md, connection manager).
    pub connections: ConnectionLimits,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            inbox_capacity: 4096,
            send_queue_per_peer: 1024,
            control_queue_per_peer: 256,
            // A whole answer to a block request (16 blocks of up to 1 MB) fits, so initial download
            // is not cut short; a peer that stops reading holds no more.
            send_bytes_per_peer: 16 * 1024 * 1024,
            send_bytes_reserved_per_peer: 64 * 1024,
            send_bytes_total: 24 * 1024 * 1024,
            write_deadline: Duration::from_secs(30),
            // Below the transport's backstop for simultaneous-dial losers (`DUPLICATE_GRACE`).
            drain_deadline: Duration::from_secs(10),
            event_queue: 4096,
            dial_timeout: Duration::from_secs(10),
            metrics_addr: None,
            connections: ConnectionLimits::default(),
        }
    }
}
