//! How the simulator names nodes, and what it tells a node's constructor.

use std::fmt;

use meshwork_identity::{Keypair, PeerId};

/// A node of the simulation, by index (`0..sim.len()`), in the order nodes were added.
///
/// The protocol under test never sees a `NodeId`: it names peers by [`PeerId`]. Experiments use `NodeId`
/// because it is small and indexes arrays.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The index as a `usize`, for indexing the experiment's own arrays.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// What the simulator hands a protocol constructor when a node is created or restarted.
#[derive(Debug)]
pub struct NodeInit<'a> {
    /// The node being created.
    pub id: NodeId,
    /// Its key, derived from the run seed and the index ([`Keypair::from_seed`]), so it is the same in
    /// every run with this seed and stays the same across restarts.
    pub keypair: &'a Keypair,
    /// A seed for the protocol's own RNG, derived from the run seed, the index and the incarnation.
    pub rng_seed: u64,
    /// 0 for the first life of the node, then one more per crash.
    pub incarnation: u32,
}

impl NodeInit<'_> {
    /// The node's peer id (its public key).
    pub fn peer_id(&self) -> PeerId {
        self.keypair.peer_id()
    }
}

/// Counters the simulator keeps for each node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Messages this node handed to the network (including ones later lost).
    pub messages_sent: u64,
    /// Their encoded size, in bytes.
    pub bytes_sent: u64,
    /// Messages delivered to this node.
    pub messages_received: u64,
}
