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

#[test]
fn csv_gets_a_row_per_message_from_gossip_and_a_clear_error_where_there_is_none() {
    let dir = std::env::temp_dir().join(format!("meshsim-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gossip.csv");
    let report = support::meshsim_json(&[
        "gossip",
        "--nodes",
        "100",
        "--messages",
        "4",
        "--fail",
        "0.2",
        "--json",
        "--csv",
        path.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "protocol");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    // Four messages each for gossip, flood on the same workload, and gossip after the crash.
    for protocol in ["gossip", "flood", "gossip_after_crash"] {
        let of: Vec<&Vec<&str>> = rows.iter().filter(|r| r[0] == protocol).collect();
        assert_eq!(of.len(), 4, "{protocol}: {text}");
        assert!(of.iter().all(|r| r.len() == header.len()));
    }
    // The rows are the report's messages: the latest last delivery among gossip's is the report's.
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let latest = rows
        .iter()
        .filter(|r| r[0] == "gossip")
        .map(|r| r[column("last_delivery_hop")].parse::<u64>().unwrap())
        .max()
        .unwrap();
    assert_eq!(Some(latest), report["gossip_last_delivery_hop"].as_u64());
    assert!(latest > 1, "a hundred nodes are more than a hop from any origin");
    std::fs::remove_dir_all(&dir).unwrap();

    // An experiment with no per-message data, or no chart, refuses the flag before it runs, and makes
    // no file.
    let unused = std::env::temp_dir().join(format!("meshsim-unused-{}", std::process::id()));
    for (experiment, flag) in [("pow", "--csv"), ("sybil-kad", "--plot")] {
        let output = Command::new(env!("CARGO_BIN_EXE_meshsim"))
            .args([experiment, "--nodes", "10", flag, unused.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(flag) && stderr.contains("no "), "{stderr}");
        assert!(!unused.exists());
    }
}
