//! `meshsim kad-lookup` and `meshsim kad-adversarial` as a user runs them.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

mod support;

use serde_json::Value;

fn meshsim(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--json", "--seed", "3"]);
    support::meshsim_json(&all)
}

#[test]
fn kad_lookup_finds_every_target_in_a_static_network() {
    let args = ["kad-lookup", "--nodes", "80", "--lookups", "30"];
    let report = meshsim(&args);
    for key in [
        "seed",
        "trace_hash",
        "events",
        "wall_ms",
        "success",
        "hops_p50",
        "hops_p90",
        "hops_max",
        "messages_per_lookup",
        "latency_ms_p50",
        "latency_ms_p99",
        "round_trips_p50",
    ] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    assert_eq!(report["lookups_finished"], 30);
    assert_eq!(report["success"], 1.0);
    let hops = report["hops_max"].as_f64().unwrap();
    assert!((1.0..=4.0).contains(&hops), "hops_max {hops}");
    assert!(report["messages_per_lookup"].as_f64().unwrap() >= 2.0);
    assert!(report["latency_ms_p50"].as_f64().unwrap() >= 100.0);
    // The same latency in link round trips (2 × the default 50 ms): at least one.
    let round_trips = report["round_trips_p50"].as_f64().unwrap();
    let expected = report["latency_ms_p50"].as_f64().unwrap() / 100.0;
    assert!(
        round_trips >= 1.0 && (round_trips - expected).abs() < 1e-9,
        "{round_trips}"
    );
    // As many lookups of peers, after those of keys: each ends once the searcher's connection to
    // its peer is up, at least a round trip before a lookup of a key, which waits for answers.
    assert_eq!(report["find_peer_lookups_finished"], 30);
    assert_eq!(report["find_peer_success"], 1.0);
    let peer_round_trips = report["find_peer_round_trips_p50"].as_f64().unwrap();
    assert!(
        peer_round_trips <= round_trips - 1.0,
        "{peer_round_trips} round trips against {round_trips}"
    );
    // The same seed replays the same run, lookups of peers included.
    assert_eq!(meshsim(&args)["trace_hash"], report["trace_hash"]);
    // Without lookups of peers, the lookups of keys are what they were beside them, and no
    // `find_peer_` key is reported.
    let alone = meshsim(&[
        "kad-lookup",
        "--nodes",
        "80",
        "--lookups",
        "30",
        "--peer-lookups",
        "0",
    ]);
    assert!(alone.get("find_peer_success").is_none());
    for key in [
        "success",
        "latency_ms_p50",
        "messages_per_lookup",
        "network_messages_per_lookup",
        "anchors_per_node",
        "anchor_pings_per_node",
        "connections_per_node",
    ] {
        assert_eq!(alone[key], report[key], "{key}");
    }
    assert_ne!(alone["trace_hash"], report["trace_hash"]);
}

#[test]
fn kad_lookup_anchors_give_back_the_first_hops_handshake() {
    // Idle connections close after 60 s (the default), long before the lookups start: without
    // anchors a lookup dials its first hop; with them it asks a peer it holds a connection to.
    let run = |anchors: &str| {
        meshsim(&[
            "kad-lookup",
            "--nodes",
            "500",
            "--lookups",
            "200",
            "--anchors",
            anchors,
        ])
    };
    let (cold, warm) = (run("0"), run("3"));
    assert_eq!(cold["anchors_per_node"], 0.0);
    assert_eq!(cold["anchor_pings_per_node"], 0.0);
    let anchors = warm["anchors_per_node"].as_f64().unwrap();
    assert!(anchors > 2.5, "three far buckets, each with an anchor: {anchors}");
    assert!(warm["anchor_pings_per_node"].as_f64().unwrap() > 0.0);
    for report in [&cold, &warm] {
        assert_eq!(report["success"], 1.0);
    }
    let (cold_p50, warm_p50) = (
        cold["round_trips_p50"].as_f64().unwrap(),
        warm["round_trips_p50"].as_f64().unwrap(),
    );
    assert!(
        warm_p50 <= cold_p50 - 1.0,
        "a handshake saved: {warm_p50} round trips against {cold_p50}"
    );
}

#[test]
fn kad_adversarial_reports_success_with_malicious_nodes() {
    let report = meshsim(&[
        "kad-adversarial",
        "--nodes",
        "60",
        "--lookups",
        "20",
        "--malicious",
        "0.2",
        "--paths",
        "3",
    ]);
    assert_eq!(report["malicious_nodes"], 12);
    assert_eq!(report["lookups_finished"], 20);
    let success = report["success"].as_f64().unwrap();
    assert!(success > 0.5, "success {success}");
}

#[test]
fn kad_churn_reports_retrievability_against_the_estimate() {
    let report = meshsim(&[
        "kad-churn",
        "--nodes",
        "60",
        "--k",
        "4",
        "--records",
        "20",
        "--steps",
        "2",
        "--leave-per-step",
        "0.2",
        "--join-per-step",
        "0.2",
    ]);
    let timeline = report["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 3);
    assert_eq!(report["joined"], 24, "12 newcomers in each of the two waves");
    assert_eq!(timeline[0]["retrievable"], 1.0, "nothing lost before departures");
    assert_eq!(report["gone_final"], 0.4);
    let estimate = report["estimate_final"].as_f64().unwrap();
    assert!((estimate - (1.0 - 0.4f64.powi(4))).abs() < 1e-9);
    let share = report["retrievable_final"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&share));
}
