//! Overlay graphs shared by experiments.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::{NodeId, Sim, SimError};
use meshwork_wire::Protocol;

/// A random, nearly regular, symmetric graph on `n` nodes where each node has about `degree` neighbours.
///
/// Each node in turn draws random peers that still have fewer than `degree` neighbours until it has
/// `degree` itself; a second pass lets the few nodes left short connect to peers with one spare slot.
/// Average degree ends within a fraction of a link of `degree` (a random regular graph of degree ≥ 3 is
/// connected with high probability). Edges come out as `(a, b)` with `a < b`, in a deterministic order.
pub fn random_regular_edges(n: usize, degree: usize, rng: &mut ChaCha8Rng) -> Vec<(NodeId, NodeId)> {
    let Ok(n32) = u32::try_from(n) else {
        return Vec::new();
    };
    let degree = degree.min(n.saturating_sub(1));
    let mut adjacency: Vec<Vec<u32>> = vec![Vec::with_capacity(degree + 1); n];
    let mut edges = Vec::with_capacity(n * degree / 2 + 1);
    for (cap, tries) in [(degree, 20), (degree + 1, 200)] {
        for a in 0..n32 {
            let mut attempts = 0;
            while adjacency[a as usize].len() < degree && attempts < tries * degree.max(1) {
                attempts += 1;
                let b = rng.gen_range(0..n32);
                if b == a || adjacency[b as usize].len() >= cap || adjacency[a as usize].contains(&b) {
                    continue;
                }
                adjacency[a as usize].push(b);
                adjacency[b as usize].push(a);
                edges.push((NodeId(a.min(b)), NodeId(a.max(b))));
            }
        }
    }
    edges
}

/// Connects the nodes of `sim` in a [`random_regular_edges`] overlay drawn from the run's RNG. Every node
/// gets `PeerUp` for each neighbour when the simulation next runs. Returns the number of edges.
pub fn connect_random_regular<P: Protocol>(sim: &mut Sim<P>, degree: usize) -> Result<usize, SimError> {
    let n = sim.len();
    let edges = random_regular_edges(n, degree, sim.rng());
    for &(a, b) in &edges {
        sim.connect(a, b)?;
    }
    Ok(edges.len())
}
