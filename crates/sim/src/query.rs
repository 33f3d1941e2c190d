//! Read-only views of a simulation, for experiments and tests.

use meshwork_identity::{Hash, PeerId};
use meshwork_wire::{Instant, Protocol};
use rand_chacha::ChaCha8Rng;

use crate::{NodeId, NodeStats, Sim, SimStats};

impl<P: Protocol> Sim<P> {
    /// The current virtual time.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(self.now)
    }

    /// The number of nodes ever added (up or down).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if no node was added.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node's peer id.
    pub fn peer_id(&self, node: NodeId) -> Option<PeerId> {
        self.peers.get(node.index()).copied()
    }

    /// The node with this peer id.
    pub fn node_of(&self, peer: &PeerId) -> Option<NodeId> {
        self.index.get(peer).copied().map(NodeId)
    }

    /// True if the node exists and is up.
    pub fn is_up(&self, node: NodeId) -> bool {
        self.hot.get(node.index()).is_some_and(|hot| hot.up)
    }

    /// The nodes that are up.
    pub fn live_nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0u32..)
            .zip(&self.hot)
            .filter(|(_, hot)| hot.up)
            .map(|(i, _)| NodeId(i))
    }

    /// The node's region (see [`crate::Latency::Regions`]).
    pub fn region(&self, node: NodeId) -> Option<u8> {
        self.hot.get(node.index()).map(|hot| hot.region)
    }

    /// The nodes `node` is connected to.
    pub fn links(&self, node: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes
            .get(node.index())
            .into_iter()
            .flat_map(|meta| meta.links.iter().copied().map(NodeId))
    }

    /// True if `a` and `b` are connected.
    pub fn is_connected(&self, a: NodeId, b: NodeId) -> bool {
        self.nodes
            .get(a.index())
            .is_some_and(|meta| meta.links.binary_search(&b.0).is_ok())
    }

    /// The protocol state of a live node.
    pub fn state(&self, node: NodeId) -> Option<&P> {
        self.states.get(node.index()).and_then(Option::as_ref)
    }

    /// The protocol state of a live node, mutably (to inspect or tweak it between runs).
    pub fn state_mut(&mut self, node: NodeId) -> Option<&mut P> {
        self.states.get_mut(node.index()).and_then(Option::as_mut)
    }

    /// Counters over the whole run so far.
    pub fn stats(&self) -> SimStats {
        self.stats
    }

    /// The node's counters (kept across crashes).
    pub fn node_stats(&self, node: NodeId) -> Option<NodeStats> {
        let received = self.hot.get(node.index())?.received;
        self.nodes.get(node.index()).map(|meta| NodeStats {
            messages_received: received,
            ..meta.stats
        })
    }

    /// The blake3 hash of the trace so far: every event delivered to a node (time, node, kind, the other
    /// node, and a digest of the message's encoding), in order. Same seed and same experiment, same hash.
    pub fn trace_hash(&self) -> Hash {
        self.trace.hash()
    }

    /// How many records the trace holds.
    pub fn trace_len(&self) -> u64 {
        self.trace.records()
    }

    /// Events waiting in the queue.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// The run's RNG, for experiments that need randomness (picking origins, building overlays) that
    /// follows the seed.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }
}
