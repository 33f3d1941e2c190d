//! Faults move the figures the way they should: partitions cut, heals restore, loss and crashes cost
//! reach, adversaries drop, delay and garble.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

mod support;

use std::time::Duration;

use meshwork_sim::flood::{Flood, FloodCommand, FloodMessage};
use meshwork_sim::metrics::{DeliveryLog, Summary};
use meshwork_sim::{Behaviour, Churn, Control, NodeId, Sim, SimConfig, SimError, Stop};
use meshwork_wire::Instant;
use support::harness::{flood_one, flood_sim, lan};

#[test]
fn partition_cuts_then_heal_restores() {
    let mut sim = flood_sim(300, 6, 5, lan());
    let side_a: Vec<NodeId> = (0..150).map(NodeId).collect();
    sim.apply_control(Control::Partition(vec![side_a])).unwrap();
    let mut log = DeliveryLog::new();

    let reached = flood_one(&mut sim, &mut log, NodeId(0), 1, 32);
    assert!(
        reached.len() > 100,
        "side A floods within itself: {}",
        reached.len()
    );
    let across = reached.iter().filter(|n| n.0 >= 150).count();
    assert_eq!(across, 0, "nothing crosses the cut");
    assert!(sim.stats().dropped_partition > 0);

    sim.apply_control(Control::Heal).unwrap();
    let reached = flood_one(&mut sim, &mut log, NodeId(299), 2, 32);
    assert_eq!(reached.len(), 300, "after the heal everyone delivers");
}

#[test]
fn messages_in_flight_are_cut_by_a_partition() {
    let mut sim = flood_sim(100, 6, 8, lan());
    sim.command(NodeId(0), FloodCommand::publish(1, vec![1]).unwrap())
        .unwrap();
    let mut delivered = 0;
    // The first hop is on the wire (50 ms); cut node 0 off before it lands.
    sim.run_until(Instant::from_duration(Duration::from_millis(10)), |_, _, _| {
        delivered += 1
    });
    assert_eq!(delivered, 1, "the origin delivers at once");
    sim.apply_control(Control::Partition(vec![vec![NodeId(0)]]))
        .unwrap();
    sim.run_for(1_000_000, |_, _, _| delivered += 1);
    assert_eq!(delivered, 1, "only the origin delivered");
    assert_eq!(
        sim.stats().dropped_partition,
        6,
        "the six copies in flight were cut"
    );
}

fn reliability_with_loss(loss: f64) -> (f64, u64) {
    let mut sim = flood_sim(400, 3, 21, lan().with_loss(loss));
    let mut log = DeliveryLog::new();
    let shares = (0..5)
        .map(|id| flood_one(&mut sim, &mut log, NodeId(id as u32 * 50), id, 32).len() as f64 / 400.0)
        .collect();
    (Summary::of(shares).mean, sim.stats().dropped_loss)
}

#[test]
fn loss_lowers_reliability_on_a_sparse_graph() {
    let (clean, clean_lost) = reliability_with_loss(0.0);
    let (lossy, lossy_lost) = reliability_with_loss(0.5);
    assert_eq!(clean_lost, 0);
    assert!(
        clean > 0.99,
        "degree 3 without loss reaches (nearly) all: {clean}"
    );
    assert!(lossy_lost > 0);
    assert!(
        lossy < clean - 0.05,
        "half the messages lost must cost reach: {lossy} vs {clean}"
    );
}

#[test]
fn crashed_nodes_get_nothing_and_cost_traffic() {
    let mut healthy = flood_sim(500, 8, 4, lan());
    let mut log = DeliveryLog::new();
    flood_one(&mut healthy, &mut log, NodeId(0), 1, 32);

    let mut sim = flood_sim(500, 8, 4, lan());
    for n in (1..500).step_by(5) {
        sim.apply_control(Control::Crash(NodeId(n))).unwrap();
    }
    sim.run_until(sim.now() + Duration::from_secs(1), |_, _, _| {});
    let mut log = DeliveryLog::new();
    let reached = flood_one(&mut sim, &mut log, NodeId(0), 1, 32);
    assert!(
        reached.iter().all(|n| n.0 % 5 != 1),
        "a crashed node gets no input"
    );
    let live = sim.live_nodes().count();
    assert_eq!(live, 400);
    assert!(
        reached.len() as f64 >= 0.99 * live as f64,
        "degree 8 survives 20% crashes: {}",
        reached.len()
    );
    assert!(sim.stats().messages_sent < healthy.stats().messages_sent);
    assert_eq!(sim.stats().crashes, 100);
}

#[test]
fn a_restarted_node_has_a_fresh_state_and_rejoins() {
    let mut sim = flood_sim(100, 6, 9, lan());
    sim.set_restart(|_| Flood::new());
    let mut log = DeliveryLog::new();
    flood_one(&mut sim, &mut log, NodeId(0), 1, 8);
    assert!(sim.state(NodeId(42)).is_some_and(|s| s.has_seen(1)));

    sim.apply_control(Control::Crash(NodeId(42))).unwrap();
    assert!(sim.state(NodeId(42)).is_none());
    assert!(sim.links(NodeId(42)).next().is_none());
    sim.apply_control(Control::Restart(NodeId(42))).unwrap();
    assert!(
        sim.state(NodeId(42)).is_some_and(|s| !s.has_seen(1)),
        "fresh state"
    );
    assert!(sim.links(NodeId(42)).count() > 0, "reconnected");

    let reached = flood_one(&mut sim, &mut log, NodeId(0), 2, 8);
    assert!(reached.contains(&NodeId(42)));
    assert_eq!(sim.stats().restarts, 1);
}

#[test]
fn restart_without_a_factory_is_an_error() {
    let mut sim = flood_sim(10, 3, 1, lan());
    assert_eq!(
        sim.apply_control(Control::Restart(NodeId(1))),
        Err(SimError::NoRestartFactory)
    );
    assert_eq!(
        sim.apply_control(Control::Crash(NodeId(99))),
        Err(SimError::UnknownNode(NodeId(99)))
    );
}

#[test]
fn churn_crashes_and_restarts_within_bounds() {
    let mut sim = flood_sim(200, 6, 13, lan());
    sim.set_restart(|_| Flood::new());
    let scheduled = sim
        .churn(&Churn {
            start: Instant::ZERO,
            end: Instant::from_duration(Duration::from_secs(10)),
            leaves_per_sec: 5.0,
            downtime: Duration::from_secs(2),
        })
        .unwrap();
    assert!(
        (20..=100).contains(&scheduled),
        "about 50 departures: {scheduled}"
    );
    let outcome = sim.run_until(Instant::from_duration(Duration::from_secs(20)), |_, _, _| {});
    assert_eq!(outcome.stop, Stop::Idle);
    let stats = sim.stats();
    assert!(stats.crashes > 0 && stats.restarts > 0);
    assert_eq!(
        sim.live_nodes().count(),
        200,
        "everyone is back after the last downtime"
    );
}

/// A line 0 - 1 - 2, with node 1 given `behaviour`.
fn line(behaviour: Behaviour<Flood>) -> Sim<Flood> {
    let mut sim = Sim::new(SimConfig::new(2).with_link(lan()));
    sim.add_nodes(3, |_| Flood::new()).unwrap();
    sim.connect(NodeId(0), NodeId(1)).unwrap();
    sim.connect(NodeId(1), NodeId(2)).unwrap();
    sim.set_adversary(NodeId(1), behaviour).unwrap();
    sim.run_until(sim.now(), |_, _, _| {});
    sim
}

#[test]
fn a_black_hole_stops_the_flood() {
    let mut sim = line(Behaviour::DropAll);
    let mut log = DeliveryLog::new();
    let reached = flood_one(&mut sim, &mut log, NodeId(0), 1, 8);
    assert_eq!(reached, vec![NodeId(0), NodeId(1)]);
    assert!(sim.stats().dropped_adversary > 0);
}

#[test]
fn a_filter_drops_only_what_it_selects() {
    let mut sim = line(Behaviour::DropIf(Box::new(|_, msg: &FloodMessage| msg.id == 1)));
    let mut log = DeliveryLog::new();
    assert_eq!(flood_one(&mut sim, &mut log, NodeId(0), 1, 8).len(), 2);
    assert_eq!(flood_one(&mut sim, &mut log, NodeId(0), 2, 8).len(), 3);
}

#[test]
fn garbage_is_counted_as_decode_failures() {
    let mut sim = line(Behaviour::Garbage);
    let mut log = DeliveryLog::new();
    let reached = flood_one(&mut sim, &mut log, NodeId(0), 1, 8);
    assert_eq!(reached.len(), 2);
    assert_eq!(
        sim.stats().decode_failures,
        1,
        "node 1 forwarded one message, to node 2"
    );
}

#[test]
fn a_slow_node_delays_what_it_relays() {
    let mut sim = line(Behaviour::Delay(Duration::from_secs(1)));
    let mut log = DeliveryLog::new();
    flood_one(&mut sim, &mut log, NodeId(0), 1, 8);
    let last = log.deliveries_of(1).find(|d| d.node == NodeId(2)).unwrap();
    assert_eq!(last.at.as_duration(), Duration::from_millis(1100));
}

#[test]
fn a_corrupter_can_rewrite_messages() {
    let rewrite = |_: &_, mut msg: FloodMessage, _: &mut _| {
        msg.id += 100;
        Some(msg)
    };
    let mut sim = line(Behaviour::Corrupt(Box::new(rewrite)));
    let mut log = DeliveryLog::new();
    flood_one(&mut sim, &mut log, NodeId(0), 1, 8);
    assert!(
        sim.state(NodeId(2))
            .is_some_and(|s| s.has_seen(101) && !s.has_seen(1))
    );
}
