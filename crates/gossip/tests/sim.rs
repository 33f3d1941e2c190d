//! Many gossip nodes in the simulator: joining, broadcast reach, tree formation, repair after crashes.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use std::collections::HashSet;
use std::time::Duration;

use meshwork_gossip::{Command, Config, Event, Gossip, MessageId, TopicId, TopicOptions};
use meshwork_sim::{Control, LinkConfig, NodeId, Sim, SimConfig};
use rand::Rng;

fn topic() -> TopicId {
    TopicId::from_name("test")
}

/// `n` nodes that join one by one through one of the first three nodes, then settle.
fn network(n: usize, seed: u64) -> Sim<Gossip> {
    let link = LinkConfig::constant(Duration::from_millis(20)).with_jitter(Duration::from_millis(10));
    let mut sim = Sim::new(SimConfig::new(seed).with_link(link));
    let nodes = sim
        .add_nodes(n, |init| {
            Gossip::new(init.keypair.clone(), Config::default(), init.rng_seed)
        })
        .unwrap();
    for &node in &nodes {
        sim.command(node, Command::Subscribe(topic(), TopicOptions::default()))
            .unwrap();
    }
    for (i, &node) in nodes.iter().enumerate().skip(1) {
        let contact = NodeId(sim.rng().gen_range(0..i.min(3)) as u32);
        let contact = sim.peer_id(contact).unwrap();
        sim.command(node, Command::Join(vec![contact])).unwrap();
        sim.advance(Duration::from_millis(5), |_, _, _| {});
    }
    sim.advance(Duration::from_secs(25), |_, _, _| {});
    sim
}

/// Publishes from `origin` and returns the nodes that delivered it within `wait`.
fn broadcast(sim: &mut Sim<Gossip>, origin: NodeId, wait: Duration) -> HashSet<NodeId> {
    sim.command(origin, Command::Publish(topic(), b"payload".to_vec()))
        .unwrap();
    let mut id: Option<MessageId> = None;
    let mut reached = HashSet::new();
    sim.advance(wait, |_, node, event| match event {
        Event::Published { id: published, .. } => id = Some(published),
        Event::Delivered { id: delivered, .. } if Some(delivered) == id || id.is_none() => {
            reached.insert(node);
        }
        _ => {}
    });
    reached
}

#[test]
fn views_stay_within_their_sizes_and_every_node_has_neighbours() {
    let sim = network(200, 1);
    for node in sim.live_nodes() {
        let state = sim.state(node).unwrap();
        assert!(
            state.active_view().len() <= 5,
            "{node}: {}",
            state.active_view().len()
        );
        assert!(!state.active_view().is_empty(), "{node} is isolated");
        assert!(state.passive_view().len() <= 30);
        assert!(!state.active_view().contains(&state.peer_id()));
        // Active links are real connections, and symmetric.
        for peer in state.active_view() {
            let other = sim.node_of(peer).unwrap();
            assert!(sim.is_connected(node, other));
            assert!(
                sim.state(other).unwrap().active_view().contains(&state.peer_id()),
                "{node} - {other}"
            );
        }
    }
}

#[test]
fn every_broadcast_reaches_every_node_and_the_tree_forms() {
    let mut sim = network(200, 2);
    for i in 0..8u32 {
        let reached = broadcast(&mut sim, NodeId(i * 23), Duration::from_secs(3));
        assert_eq!(reached.len(), 200, "broadcast {i}");
    }
    // After the first broadcasts the tree has formed: few full copies beyond one per node.
    let before: u64 = sim
        .live_nodes()
        .map(|n| sim.state(n).unwrap().stats().tree.gossip_received)
        .sum();
    let reached = broadcast(&mut sim, NodeId(77), Duration::from_secs(3));
    assert_eq!(reached.len(), 200);
    let after: u64 = sim
        .live_nodes()
        .map(|n| sim.state(n).unwrap().stats().tree.gossip_received)
        .sum();
    let rmr = (after - before) as f64 / 199.0 - 1.0;
    assert!(rmr < 0.2, "rmr {rmr}");
    let lazy: usize = sim
        .live_nodes()
        .map(|n| sim.state(n).unwrap().lazy_peers().len())
        .sum();
    assert!(lazy > 0, "duplicates pruned some links");
}

#[test]
fn the_tree_heals_after_crashes_and_failed_peers_are_replaced() {
    let mut sim = network(200, 3);
    for i in 0..3 {
        assert_eq!(broadcast(&mut sim, NodeId(i), Duration::from_secs(3)).len(), 200);
    }
    // Crash a quarter of the nodes, including tree links.
    let crashed: Vec<NodeId> = (100..150).map(NodeId).collect();
    for &node in &crashed {
        sim.apply_control(Control::Crash(node)).unwrap();
    }
    let mut last = 0;
    for i in 0..5 {
        last = broadcast(&mut sim, NodeId(i), Duration::from_secs(5)).len();
    }
    assert_eq!(last, 150, "every live node delivers after repair");
    sim.advance(Duration::from_secs(20), |_, _, _| {});
    for node in sim.live_nodes() {
        let state = sim.state(node).unwrap();
        for peer in state.active_view() {
            let other = sim.node_of(peer).unwrap();
            assert!(
                sim.is_up(other),
                "{node} keeps crashed {other} in its active view"
            );
        }
        assert!(
            !state.active_view().is_empty(),
            "{node} was repaired from its passive view"
        );
    }
}
