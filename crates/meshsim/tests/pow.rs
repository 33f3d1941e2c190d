//! `meshsim pow`, `meshsim pow-partition` and `meshsim sync` as a user runs them, at small sizes.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

mod support;

use serde_json::Value;

fn meshsim(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--json", "--seed", "3"]);
    support::meshsim_json(&all)
}

#[test]
fn pow_nodes_agree_on_the_tip_at_the_end() {
    // Fast blocks (10 s against a few hundred ms of propagation) so that forks do happen.
    let report = meshsim(&[
        "pow",
        "--nodes",
        "30",
        "--miners",
        "6",
        "--block-time",
        "10",
        "--blocks",
        "40",
    ]);
    for key in [
        "seed",
        "trace_hash",
        "blocks_mined",
        "stale_rate",
        "reorgs_by_depth",
        "convergence_ms",
        "propagation_ms_p50",
        "propagation_ms_p90",
    ] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    assert_eq!(report["blocks_mined"], 40);
    assert_eq!(report["all_agree"], true);
    assert_eq!(report["share_on_best_tip"], 1.0);
    let stale = report["stale_rate"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&stale), "stale rate {stale}");
    let height = report["final_height"].as_u64().unwrap();
    assert!((1..=40).contains(&height), "height {height}");
    assert!(report["propagation_samples"].as_u64().unwrap() > 0);
}

#[test]
fn pow_partition_heals_onto_the_most_work_chain_without_deep_conflicts() {
    let report = meshsim(&[
        "pow-partition",
        "--nodes",
        "30",
        "--miners",
        "6",
        "--block-time",
        "60",
        "--warmup-secs",
        "300",
        "--partition-secs",
        "240",
        "--after-secs",
        "600",
    ]);
    assert_eq!(report["share_on_most_work_chain"], 1.0);
    assert_eq!(report["deep_conflicts"], 0);
    // The double-spends were made on both sides, and one of each pair survives at most.
    let txs = report["double_spend_txs"].as_u64().unwrap();
    assert!(txs >= 2 && txs % 2 == 0, "{txs}");
    assert!(report["double_spend_txs_on_final_chain"].as_u64().unwrap() <= txs / 2);
}

#[test]
fn sync_catches_up_and_disconnects_the_liar() {
    for liar in ["blocks", "headers", "silent"] {
        let report = meshsim(&["sync", "--blocks", "600", "--peers", "3", "--liar", liar]);
        assert_eq!(report["synced"], true, "{liar}");
        assert_eq!(report["late_height"], 600, "{liar}");
        assert_eq!(report["liar_disconnected"], true, "{liar}");
        assert_eq!(report["honest_peers_faulted"], 0, "{liar}");
        assert!(report["blocks_per_sec"].as_f64().unwrap() > 0.0, "{liar}");
    }
}
