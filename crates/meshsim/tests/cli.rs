//! `meshsim` as a user runs it: one JSON object on stdout, the same trace hash in two processes.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use std::process::Command;

use serde_json::Value;

mod support;

fn flood(seed: &str) -> Value {
    support::meshsim_json(&[
        "flood",
        "--nodes",
        "300",
        "--degree",
        "6",
        "--messages",
        "3",
        "--json",
        "--seed",
        seed,
        "--latency",
        "regions",
        "--jitter-ms",
        "5",
    ])
}

#[test]
fn flood_json_reports_the_figures_and_is_reproducible_across_processes() {
    let first = flood("5");
    for key in [
        "seed",
        "trace_hash",
        "events",
        "events_per_sec",
        "events_per_cpu_sec",
        "cpu_ms",
        "wall_ms",
        "peak_rss_bytes",
        "run_events_per_cpu_sec",
        "reliability",
        "rmr",
        "last_delivery_hop",
        "latency_ms_p50",
        "latency_ms_p99",
        "bytes_per_node",
    ] {
        assert!(first.get(key).is_some(), "missing {key}");
    }
    assert_eq!(first["seed"], 5);
    assert_eq!(first["reliability"], 1.0);
    assert_eq!(first["trace_hash"].as_str().unwrap().len(), 64);

    let again = flood("5");
    assert_eq!(first["trace_hash"], again["trace_hash"]);
    assert_eq!(first["events"], again["events"]);
    let other = flood("6");
    assert_ne!(first["trace_hash"], other["trace_hash"]);
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_meshsim"))
        .args(["flood", "--latency", "warp"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("warp"));
}
