//! The reference flood at scale, and the link models' effect on it.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

mod support;

use std::time::Duration;

use meshwork_sim::metrics::{DeliveryLog, Summary, percentile, reliability, rmr, rmr_total};
use meshwork_sim::{CLOUD6_RTT_MS, Latency, LinkConfig, NodeId, RegionMatrix, topology};
use rand::SeedableRng;
use support::harness::{flood_one, flood_sim, lan};

#[test]
fn a_thousand_node_flood_delivers_to_all() {
    let mut sim = flood_sim(1000, 8, 7, lan());
    let mut log = DeliveryLog::new();
    let mut receivers_minus_one = 0;
    for id in 0..3 {
        let reached = flood_one(&mut sim, &mut log, NodeId(id as u32 * 300), id, 64);
        assert_eq!(reached.len(), 1000, "message {id}");
        receivers_minus_one += reached.len() as u64 - 1;
    }
    assert_eq!(reliability(1000, sim.live_nodes().count()), 1.0);
    // Each node forwards to all neighbours but the sender: RMR ≈ average degree − 2.
    let rmr = rmr_total(sim.stats().messages_sent, receivers_minus_one).unwrap();
    assert!((5.0..7.0).contains(&rmr), "rmr {rmr}");
    let max_hops = log.max_hops();
    assert!((3..=8).contains(&max_hops), "log_7(1000) ≈ 3.5; got {max_hops}");
    // Constant latency: every delivery is a whole number of hops of 50 ms.
    assert!(log.latencies_ms().iter().all(|ms| (ms / 50.0).fract() == 0.0));
}

#[test]
fn upload_bandwidth_adds_serialisation_delay() {
    let p50 = |link: LinkConfig| {
        let mut sim = flood_sim(300, 8, 3, link);
        let mut log = DeliveryLog::new();
        flood_one(&mut sim, &mut log, NodeId(0), 1, 1000);
        Summary::of(log.latencies_ms()).p50
    };
    let unlimited = p50(lan());
    let slow = p50(lan().with_upload(50_000)); // 1 kB messages, 7 at a time: ~20 ms each.
    assert!(slow > unlimited + 40.0, "{slow} vs {unlimited}");
}

#[test]
fn region_latency_stays_within_the_matrix() {
    let matrix = RegionMatrix::cloud6();
    let link = LinkConfig {
        latency: Latency::Regions(matrix.clone()),
        ..LinkConfig::default()
    };
    let mut sim = flood_sim(300, 8, 5, link);
    let mut log = DeliveryLog::new();
    flood_one(&mut sim, &mut log, NodeId(0), 1, 16);
    let max_one_way = CLOUD6_RTT_MS.iter().flatten().fold(0.0f64, |a, &b| a.max(b)) / 2.0;
    for d in log.deliveries_of(1).filter(|d| d.hops == 1) {
        let ms = d.at.as_duration().as_secs_f64() * 1000.0;
        let expected = matrix.one_way(sim.region(NodeId(0)).unwrap(), sim.region(d.node).unwrap());
        assert!((ms - expected.as_secs_f64() * 1000.0).abs() < 1e-6);
        assert!(ms <= max_one_way);
    }
    let regions: std::collections::BTreeSet<u8> = (0..300).filter_map(|n| sim.region(NodeId(n))).collect();
    assert_eq!(regions.len(), 6, "nodes are spread over all regions");
}

#[test]
fn jitter_spreads_latency() {
    let link = lan().with_jitter(Duration::from_millis(20));
    let mut sim = flood_sim(200, 6, 1, link);
    let mut log = DeliveryLog::new();
    flood_one(&mut sim, &mut log, NodeId(0), 1, 16);
    assert!(log.latencies_ms().iter().any(|ms| (ms / 50.0).fract() != 0.0));
}

#[test]
fn random_regular_overlays_are_nearly_regular() {
    let mut rng = meshwork_sim::ChaCha8Rng::seed_from_u64(1);
    let edges = topology::random_regular_edges(1000, 8, &mut rng);
    let mut degree = vec![0usize; 1000];
    let mut seen = std::collections::BTreeSet::new();
    for &(a, b) in &edges {
        assert!(a < b, "no self loops, normalised");
        assert!(seen.insert((a, b)), "no duplicate edges");
        degree[a.index()] += 1;
        degree[b.index()] += 1;
    }
    let mean = degree.iter().sum::<usize>() as f64 / 1000.0;
    assert!((7.8..=8.1).contains(&mean), "mean degree {mean}");
    assert!(
        degree.iter().all(|&d| (6..=9).contains(&d)),
        "{:?}",
        degree.iter().min()
    );
}

#[test]
fn metric_helpers() {
    let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(percentile(&sorted, 50.0), Some(50.0));
    assert_eq!(percentile(&sorted, 99.0), Some(99.0));
    assert_eq!(percentile(&sorted, 100.0), Some(100.0));
    assert_eq!(percentile(&[], 50.0), None);
    assert_eq!(rmr(99, 100), Some(0.0), "a spanning tree has no redundancy");
    assert_eq!(rmr(198, 100), Some(1.0));
    assert_eq!(rmr(5, 1), None);
    assert_eq!(reliability(3, 4), 0.75);
}
