//! `meshsim bft` as a user runs it, at small N (the 50-validator figures are measured with the release
//! binary, not in tests).
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

mod support;

use serde_json::Value;

fn meshsim(args: &[&str]) -> Value {
    let mut all = vec!["bft"];
    all.extend(args);
    all.extend(["--json", "--seed", "5"]);
    support::meshsim_json(&all)
}

fn number(report: &Value, key: &str) -> f64 {
    report[key].as_f64().unwrap_or_else(|| panic!("missing {key}"))
}

#[test]
fn a_stable_network_finalises_in_about_three_delays_without_timeouts() {
    let report = meshsim(&["--validators", "7", "--secs", "20"]);
    for key in [
        "safety_violations",
        "finality_ms_p50",
        "finality_ms_p99",
        "finality_delays_p50",
        "timed_out_views",
        "blocks_per_sec",
        "trace_hash",
        "wall_ms",
    ] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    assert_eq!(report["safety_violations"], 0);
    assert_eq!(report["timed_out_views"], 0);
    // Virtual time, so exact for a seed: three message delays, give or take the quorum's spread.
    let delays = number(&report, "finality_delays_p50");
    assert!((2.0..=4.0).contains(&delays), "{delays} delays");
    assert!(number(&report, "blocks_per_sec") > 1.0);
}

#[test]
fn byzantine_validators_and_a_healed_partition_never_break_safety() {
    // One faulty validator of four, each kind in turn over the runs, and a partition of 20 s.
    let report = meshsim(&[
        "--validators",
        "4",
        "--byzantine",
        "1",
        "--partition-secs",
        "20",
        "--fault-at",
        "3",
        "--secs",
        "20",
        "--runs",
        "8",
    ]);
    assert_eq!(report["safety_violations"], 0);
    assert_eq!(
        report["runs_resumed"], 8,
        "every run finalised again after the heal"
    );
    assert!(
        number(&report, "validators_convicted") >= 1.0,
        "conflicting voters are convicted"
    );
    assert!(
        number(&report, "timed_out_views") > 0.0,
        "the silent and partitioned views time out"
    );
}
