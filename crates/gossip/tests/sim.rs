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

/// `n` nodes that join 2 ms apart, each through a random node already in, as `meshsim gossip` does: a
/// burst of joins into a network that does not exist yet.
fn burst(n: usize, seed: u64) -> Sim<Gossip> {
    let link = LinkConfig::constant(Duration::from_millis(50)).with_jitter(Duration::from_millis(10));
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
        let contact = NodeId(sim.rng().gen_range(0..i) as u32);
        let contact = sim.peer_id(contact).unwrap();
        sim.command(node, Command::Join(vec![contact])).unwrap();
        sim.advance(Duration::from_millis(2), |_, _, _| {});
    }
    sim.advance(Duration::from_secs(25), |_, _, _| {});
    sim
}

/// Mutual active-view links, as adjacency lists over node indices.
fn overlay(sim: &Sim<Gossip>) -> Vec<Vec<usize>> {
    let mut adjacency = vec![Vec::new(); sim.len()];
    for node in sim.live_nodes() {
        let state = sim.state(node).unwrap();
        for peer in state.active_view() {
            let other = sim.node_of(peer).unwrap();
            if sim.state(other).unwrap().active_view().contains(&state.peer_id()) {
                adjacency[node.0 as usize].push(other.0 as usize);
            }
        }
    }
    adjacency
}

/// Hops from `from` to every node over the overlay (`usize::MAX`: unreachable).
fn distances(adjacency: &[Vec<usize>], from: usize) -> Vec<usize> {
    let mut dist = vec![usize::MAX; adjacency.len()];
    let mut queue = std::collections::VecDeque::from([from]);
    dist[from] = 0;
    while let Some(x) = queue.pop_front() {
        for &y in &adjacency[x] {
            if dist[y] == usize::MAX {
                dist[y] = dist[x] + 1;
                queue.push_back(y);
            }
        }
    }
    dist
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

fn full_copies(sim: &Sim<Gossip>) -> u64 {
    sim.live_nodes()
        .map(|n| sim.state(n).unwrap().stats().tree.gossip_received)
        .sum()
}

#[test]
fn every_broadcast_reaches_every_node_and_each_origin_gets_its_tree() {
    let mut sim = network(200, 2);
    for i in 0..8u32 {
        let reached = broadcast(&mut sim, NodeId(i * 23), Duration::from_secs(3));
        assert_eq!(reached.len(), 200, "broadcast {i}");
    }
    // An origin's first broadcast formed its tree: its next one sends few full copies beyond one per node.
    let before = full_copies(&sim);
    let reached = broadcast(&mut sim, NodeId(46), Duration::from_secs(3));
    assert_eq!(reached.len(), 200);
    let rmr = (full_copies(&sim) - before) as f64 / 199.0 - 1.0;
    assert!(rmr < 0.1, "rmr {rmr}");
    let origin = sim.peer_id(NodeId(46)).unwrap();
    let lazy: usize = sim
        .live_nodes()
        .map(|n| sim.state(n).unwrap().lazy_peers(&origin).len())
        .sum();
    assert!(lazy > 0, "duplicates pruned some links of this origin's tree");
    // Eager links of one origin are a spanning tree: 199 links, each pushed one way.
    let eager: usize = sim
        .live_nodes()
        .map(|n| sim.state(n).unwrap().eager_peers(&origin).len())
        .sum();
    assert!(eager >= 199, "eager ends {eager}");
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
    // The repairs were grafts, and the wait before grafting was learnt from their round trips: two
    // links of 20 to 30 ms each, plus the answerer's batching of nothing (a graft is answered at once).
    let learnt: Vec<Duration> = sim
        .live_nodes()
        .filter_map(|n| sim.state(n).and_then(Gossip::graft_rtt))
        .collect();
    assert!(!learnt.is_empty(), "no node measured a graft");
    for rtt in &learnt {
        assert!(
            (Duration::from_millis(40)..=Duration::from_millis(60)).contains(rtt),
            "graft round trip {rtt:?} on 20-30 ms links"
        );
    }
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

#[test]
fn a_burst_of_joins_leaves_one_connected_overlay_with_bounded_views() {
    // Without eviction hints and the wider high priority, such bursts leave small closed groups whose
    // passive views hardly know anyone outside (seed 5 here; 7 and 21 nodes with seeds 4 and 5 before
    // later changes to repair). With them, every seed tried (1 to 10) stays in one piece.
    for seed in [4, 5] {
        let sim = burst(2000, seed);
        let adjacency = overlay(&sim);
        for node in sim.live_nodes() {
            let state = sim.state(node).unwrap();
            assert!(state.active_view().len() <= 5 && state.passive_view().len() <= 30);
            assert_eq!(
                adjacency[node.0 as usize].len(),
                state.active_view().len(),
                "{node}: asymmetric view"
            );
        }
        let reached = distances(&adjacency, 0);
        let cut_off = reached.iter().filter(|d| **d == usize::MAX).count();
        assert_eq!(
            cut_off, 0,
            "seed {seed}: {cut_off} nodes outside the main component"
        );
    }
}

#[test]
fn an_isolated_node_gets_back_in_through_its_passive_view() {
    let mut sim = network(120, 4);
    let lonely = NodeId(60);
    let peers: Vec<NodeId> = sim
        .state(lonely)
        .unwrap()
        .active_view()
        .iter()
        .map(|p| sim.node_of(p).unwrap())
        .collect();
    for &peer in &peers {
        sim.apply_control(Control::Crash(peer)).unwrap();
    }
    sim.advance(Duration::from_secs(2), |_, _, _| {});
    let state = sim.state(lonely).unwrap();
    assert!(
        !state.active_view().is_empty(),
        "isolated, it asked with high priority"
    );
    assert!(
        state
            .active_view()
            .iter()
            .all(|p| sim.is_up(sim.node_of(p).unwrap()))
    );
    // From a node still up (node 0 may have been one of the crashed neighbours).
    let origin = (0..120)
        .map(NodeId)
        .find(|n| sim.is_up(*n) && *n != lonely)
        .unwrap();
    let reached = broadcast(&mut sim, origin, Duration::from_secs(3));
    assert!(reached.contains(&lonely));
}

#[test]
fn later_broadcasts_of_an_origin_follow_near_shortest_paths() {
    let mut sim = burst(300, 5);
    let origin = NodeId(17);
    broadcast(&mut sim, origin, Duration::from_secs(3));
    let dist = distances(&overlay(&sim), origin.0 as usize);
    // The second broadcast runs on the tree the first one formed (first arrivals).
    sim.command(origin, Command::Publish(topic(), b"again".to_vec()))
        .unwrap();
    let mut extra = Vec::new();
    sim.advance(Duration::from_secs(3), |_, node, event| {
        if let Event::Delivered { hops, .. } = event {
            extra.push(usize::from(hops) - dist[node.0 as usize]);
        }
    });
    assert_eq!(extra.len(), 300);
    // Jitter can make a path one hop longer arrive first; never much more.
    assert!(extra.iter().all(|e| *e <= 2), "{extra:?}");
    let mean = extra.iter().sum::<usize>() as f64 / extra.len() as f64;
    assert!(mean < 0.3, "mean extra hops {mean}");
}

/// Fifty nodes joining through one, as in the node runtime's gossip-only test: within a minute every
/// active view is full. Before refusals named a peer with room and two free slots counted as short,
/// each of these seeds left two or three nodes short after a minute, and seed 4 two after ten minutes:
/// their low-priority requests are refused by every full peer.
#[test]
fn every_active_view_fills_when_all_join_through_one_contact() {
    for seed in [1, 2, 3, 4] {
        let link = LinkConfig::constant(Duration::from_millis(5)).with_jitter(Duration::from_millis(5));
        let mut sim = Sim::new(SimConfig::new(seed).with_link(link));
        let nodes = sim
            .add_nodes(50, |init| {
                Gossip::new(init.keypair.clone(), Config::default(), init.rng_seed)
            })
            .unwrap();
        let contact = sim.peer_id(nodes[0]).unwrap();
        for &node in &nodes[1..] {
            sim.command(node, Command::Join(vec![contact])).unwrap();
        }
        sim.advance(Duration::from_secs(60), |_, _, _| {});
        let short: Vec<(NodeId, usize)> = nodes
            .iter()
            .map(|n| (*n, sim.state(*n).unwrap().active_view().len()))
            .filter(|(_, len)| *len < 5)
            .collect();
        assert!(short.is_empty(), "seed {seed}: views not full: {short:?}");
        let adjacency = overlay(&sim);
        assert!(
            adjacency.iter().all(|links| links.len() == 5),
            "seed {seed}: asymmetric views"
        );
    }
}
