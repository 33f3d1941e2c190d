//! What can go wrong when talking to a running node.

use std::net::SocketAddr;

/// An error from the node runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The node has shut down (or its task ended): commands and queries can no longer be served.
    #[error("the node has stopped")]
    Stopped,
    /// Two protocols with one id were registered; the router could not tell their streams apart.
    #[error("protocol {0} registered twice")]
    DuplicateProtocol(String),
    /// More protocols were registered than a node runs (compose them: a composite is one protocol).
    #[error("a node runs at most {0} protocols")]
    TooManyProtocols(usize),
    /// The metrics endpoint could not be bound.
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
}
