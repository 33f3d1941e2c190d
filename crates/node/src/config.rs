//! The runtime's bounds and timings.

use std::net::SocketAddr;
use std::time::Duration;

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
    /// Events waiting for the application, per protocol. An event into a full queue is dropped and
    /// counted in `meshwork_event_drops_total`: an application that stops reading events must not stall
    /// the node.
    pub event_queue: usize,
    /// How long a dial may take before the protocols are told the peer is down.
    pub dial_timeout: Duration,
    /// Where to serve Prometheus metrics over HTTP (`GET /metrics`), if anywhere.
    pub metrics_addr: Option<SocketAddr>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            inbox_capacity: 4096,
            send_queue_per_peer: 1024,
            event_queue: 4096,
            dial_timeout: Duration::from_secs(10),
            metrics_addr: None,
        }
    }
}
