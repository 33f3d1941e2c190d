//! Errors of the simulator's API.

use crate::NodeId;

/// A request the simulator cannot carry out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimError {
    /// No node has this id.
    #[error("no node {0}")]
    UnknownNode(NodeId),
    /// The node is crashed or has left.
    #[error("node {0} is down")]
    NodeDown(NodeId),
    /// A node cannot connect to itself.
    #[error("node {0} cannot connect to itself")]
    SelfConnect(NodeId),
    /// A restart was asked for but no restart factory is set ([`crate::Sim::set_restart`]).
    #[error("no restart factory is set")]
    NoRestartFactory,
    /// A node count that does not fit the simulator's 32-bit node index.
    #[error("too many nodes")]
    TooManyNodes,
}
