//! `meshsim gossip` and `meshsim gossip-spam` as a user runs them, at small N (the 10,000-node figures
//! are measured with the release binary, not in tests).
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

mod support;

use serde_json::Value;

fn meshsim(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--json", "--seed", "3"]);
    support::meshsim_json(&all)
}

fn number(report: &Value, key: &str) -> f64 {
    report[key].as_f64().unwrap_or_else(|| panic!("missing {key}"))
}

#[test]
fn gossip_reaches_everyone_with_few_copies_and_recovers_from_crashes() {
    let report = meshsim(&["gossip", "--nodes", "250", "--messages", "5", "--fail", "0.5"]);
    for key in [
        "seed",
        "trace_hash",
        "flood_trace_hash",
        "wall_ms",
        "gossip_latency_ms_p99",
    ] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    assert_eq!(report["overlay_components"], 1);
    assert_eq!(number(&report, "gossip_reliability_min"), 1.0);
    let rmr = number(&report, "gossip_rmr");
    assert!(rmr <= 0.1, "rmr {rmr}");
    assert!(number(&report, "last_hop_over_flood") <= 2.0);
    // The first broadcast of each publisher floods while its tree forms.
    assert!(number(&report, "gossip_first_rmr") > 1.0);
    let full_from = number(&report, "after_crash_full_from_broadcast");
    assert!((1.0..=5.0).contains(&full_from), "full from {full_from}");
    // Membership runs beside the broadcast (repair rounds and shuffle walks): its bytes are a part of
    // the wire's, reported apart.
    let (control, all) = (
        number(&report, "gossip_control_wire_bytes_per_payload_byte"),
        number(&report, "gossip_wire_bytes_per_payload_byte"),
    );
    assert!(control > 0.0 && control < all, "control {control} of {all}");
    // A settled overlay walks its shuffles once a shuffle interval, not at every repair round: with a
    // walk every round this run's nodes sent 136 control bytes a second each.
    let per_sec = number(&report, "gossip_control_bytes_per_node_per_sec");
    assert!(
        per_sec > 0.0 && per_sec < 50.0,
        "control bytes a node a second: {per_sec}"
    );
}

#[test]
fn every_node_publishing_at_a_rate_sweep_is_measured_against_flood_on_the_same_workload() {
    let report = meshsim(&[
        "gossip",
        "--nodes",
        "120",
        "--publishers",
        "all",
        "--messages",
        "30",
        "--rate",
        "5,200",
        "--payload-bytes",
        "256",
    ]);
    assert_eq!(report["publishers"], 120);
    assert_eq!(report["warmup_rounds"], 0, "with `all` no origin has a tree");
    for prefix in ["gossip", "flood"] {
        let key = |k: &str| format!("{prefix}_{k}");
        assert_eq!(number(&report, &key("reliability_min")), 1.0);
        let per_byte = number(&report, &key("wire_bytes_per_payload_byte"));
        // Every node but the origin receives at least one copy of 256 payload bytes and more.
        assert!(per_byte > 1.0, "{prefix}: {per_byte}");
        let (p50, p99) = (
            number(&report, &key("last_delivery_ms_p50")),
            number(&report, &key("last_delivery_ms_p99")),
        );
        // At least one link's latency (50 ms), and p99 is not below p50.
        assert!(p50 >= 50.0 && p99 >= p50, "{prefix}: {p50} {p99}");
    }
    // Every message comes from a new origin, whose first message floods: gossip's first copies cost
    // about what flood's do.
    assert!(number(&report, "gossip_rmr") > 1.0);
    let sweep = report["rate_sweep"].as_array().unwrap();
    let rates: Vec<f64> = sweep.iter().map(|row| row["rate"].as_f64().unwrap()).collect();
    assert_eq!(rates, [5.0, 200.0]);
    for row in sweep {
        for key in [
            "gossip_reliability_min",
            "flood_reliability_min",
            "gossip_last_delivery_ms_p99",
        ] {
            assert!(row[key].as_f64().is_some(), "sweep row lacks {key}: {row}");
        }
    }
}

/// 150 nodes, 20 messages at 10 a second from nodes that have not published before, on `trees`.
fn new_origins(trees: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "gossip",
        "--nodes",
        "150",
        "--publishers",
        "all",
        "--messages",
        "20",
        "--rate",
        "10",
        "--trees",
        trees,
    ];
    args.extend_from_slice(extra);
    meshsim(&args)
}

#[test]
fn the_shared_tree_does_not_flood_first_messages() {
    let run = |trees: &str| new_origins(trees, &[]);
    let (per_origin, shared) = (run("per-origin"), run("shared"));
    assert_eq!(number(&shared, "gossip_reliability_min"), 1.0);
    let (flooded, followed) = (number(&per_origin, "gossip_rmr"), number(&shared, "gossip_rmr"));
    assert!(
        followed < flooded / 2.0,
        "shared {followed}, per-origin {flooded}"
    );
    let bytes = |r: &Value| number(r, "gossip_wire_bytes_per_payload_byte");
    assert!(
        bytes(&shared) < bytes(&per_origin),
        "{} {}",
        bytes(&shared),
        bytes(&per_origin)
    );
}

#[test]
fn new_origins_borrow_the_trees_of_neighbours_that_published() {
    // A third of the nodes crash after the measurement: borrowed trees under `--fail`, whose report
    // still counts the measured messages only.
    let run = |trees: &str| new_origins(trees, &["--warm-share", "0.5", "--fail", "0.3"]);
    let (per_origin, borrow) = (run("per-origin"), run("borrow"));
    assert_eq!(number(&per_origin, "gossip_published_borrowed"), 0.0);
    // Half the nodes published: most of the 20 new origins have one of them as a neighbour.
    let borrowed = number(&borrow, "gossip_published_borrowed");
    assert!(borrowed >= 10.0, "{borrowed} of 20 borrowed");
    assert_eq!(number(&borrow, "gossip_reliability_min"), 1.0);
    let rmr = |r: &Value| number(r, "gossip_rmr");
    assert!(
        rmr(&borrow) < rmr(&per_origin) / 2.0,
        "borrow {}, per-origin {}",
        rmr(&borrow),
        rmr(&per_origin)
    );
}

#[test]
fn plot_draws_latency_against_flood_hops_and_reliability_after_crashes() {
    let dir = std::env::temp_dir().join(format!("meshsim-gossip-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gossip.svg");
    let path_arg = path.to_str().unwrap();
    let args = [
        "gossip",
        "--nodes",
        "60",
        "--messages",
        "3",
        "--fail",
        "0.2",
        "--plot",
        path_arg,
    ];
    meshsim(&args);
    let svg = std::fs::read_to_string(&path).unwrap();
    for title in [
        "Delivery latency",
        "flood, same overlay",
        "last delivery",
        "Reliability after 12 of 60",
    ] {
        assert!(svg.contains(title), "the plot lacks {title:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn gossip_spam_keeps_honest_delivery_and_disconnects_the_spammers() {
    let report = meshsim(&[
        "gossip-spam",
        "--nodes",
        "150",
        "--spammers",
        "0.1",
        "--messages",
        "4",
    ]);
    for key in ["seed", "trace_hash", "wall_ms", "time_to_disconnect_ms_p50"] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    assert_eq!(report["spammers"], 15);
    assert_eq!(number(&report, "honest_reliability_min"), 1.0);
    assert_eq!(report["spam_delivered_to_honest"], 0);
    assert_eq!(report["honest_bans_of_honest"], 0, "no honest peer is banned");
    assert_eq!(number(&report, "spammers_banned"), 1.0);
    assert!(number(&report, "spam_sent") > 100.0);
    // Every spammer is dropped by every honest node it reaches; at the end nearly all hold no honest link.
    let start = number(&report, "spammer_honest_links_start");
    let end = number(&report, "spammer_honest_links_end");
    assert!(start > 0.0 && end <= start / 10.0, "{start} -> {end}");
    // A ban is gossip's own now: a banned spammer may redial, and holds the connection until gossip
    // releases it again at once (it is refused, and nothing it sends is delivered, as asserted above).
    // At the sample time some are caught in that moment: seeds 1-4 give 0.8, 0.87, 0.6 and 1.0 of the
    // 15 apart, the links asserted above being what carries the claim.
    assert!(number(&report, "spammers_disconnected_end") >= 0.5);
}
