//! Building flood simulations and counting deliveries.

use std::time::Duration;

use meshwork_sim::flood::{Flood, FloodCommand, FloodEvent};
use meshwork_sim::metrics::DeliveryLog;
use meshwork_sim::{LinkConfig, NodeId, Sim, SimConfig, Stop, topology};
use meshwork_wire::Instant;

/// `n` flood nodes on a random regular overlay of `degree`, with the overlay's `PeerUp`s processed.
pub(crate) fn flood_sim(n: usize, degree: usize, seed: u64, link: LinkConfig) -> Sim<Flood> {
    let mut sim = Sim::new(SimConfig::new(seed).with_link(link));
    sim.add_nodes(n, |_| Flood::new()).unwrap();
    topology::connect_random_regular(&mut sim, degree).unwrap();
    sim.run_until(sim.now(), |_, _, _| {});
    sim
}

/// 50 ms constant latency, lossless.
pub(crate) fn lan() -> LinkConfig {
    LinkConfig::constant(Duration::from_millis(50))
}

/// Publishes message `id` from `origin` now and runs until the network is quiet (bounded), logging
/// deliveries. Returns the nodes that delivered `id`.
pub(crate) fn flood_one(
    sim: &mut Sim<Flood>,
    log: &mut DeliveryLog,
    origin: NodeId,
    id: u64,
    payload: usize,
) -> Vec<NodeId> {
    log.publish(id, sim.now());
    sim.command(origin, FloodCommand::publish(id, vec![7; payload]).unwrap())
        .unwrap();
    let outcome = sim.run_for(5_000_000, |at, node, FloodEvent::Delivered { id, hops, .. }| {
        log.deliver(id, node, at, hops);
    });
    assert_eq!(
        outcome.stop,
        Stop::Idle,
        "the flood must finish within the event budget"
    );
    log.deliveries_of(id).map(|d| d.node).collect()
}

/// Runs for `duration` of virtual time, logging deliveries.
pub(crate) fn run_for_time(sim: &mut Sim<Flood>, log: &mut DeliveryLog, duration: Duration) {
    let until = Instant::from_nanos(sim.now().as_nanos()) + duration;
    sim.run_until(until, |at, node, FloodEvent::Delivered { id, hops, .. }| {
        log.deliver(id, node, at, hops)
    });
}
