//! The network-level attacks of issue #14 at small N (the 1,000-node figures are measured with the
//! release binary): Sybil joins against HyParView and Kademlia, and the "ban your neighbours" attack.
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

/// 120 honest nodes, 51 Sybils (30% of all) from 4 /24s attacking for a minute. The overlay settles for
/// 90 s first, so that its links are established (60 s): a younger overlay has no protected neighbours.
const SYBIL_GOSSIP: [&str; 11] = [
    "sybil-gossip",
    "--nodes",
    "120",
    "--settle-secs",
    "90",
    "--attack-secs",
    "60",
    "--messages",
    "3",
    "--sybil",
    "0.3",
];

#[test]
fn sybil_joins_leave_honest_active_views_honest_majority() {
    let report = meshsim(&SYBIL_GOSSIP);
    assert_eq!(report["sybil_nodes"], 51);
    assert_eq!(report["admission_limits"], true);
    assert_eq!(number(&report, "active_honest_majority_before"), 1.0);
    // Seed 3: 89% of the honest nodes keep an honest majority, none is left without an honest neighbour,
    // and every honest broadcast reaches every honest node.
    let majority = number(&report, "active_honest_majority");
    assert!(majority >= 0.8, "honest-majority active views {majority}");
    assert_eq!(report["honest_nodes_without_honest_neighbour"], 0);
    assert_eq!(report["honest_overlay_components"], 1);
    assert_eq!(number(&report, "honest_reliability_min"), 1.0);
    assert!(number(&report, "membership_requests_refused") > 1000.0);
    // The same seed gives the same run.
    assert_eq!(meshsim(&SYBIL_GOSSIP)["trace_hash"], report["trace_hash"]);
}

#[test]
fn without_admission_limits_the_sybils_eclipse_every_honest_node() {
    let mut args = SYBIL_GOSSIP.to_vec();
    args.push("--no-admission-limits");
    let report = meshsim(&args);
    assert_eq!(report["admission_limits"], false);
    assert!(number(&report, "active_honest_majority") < 0.5);
    assert!(number(&report, "honest_reliability_min") < 1.0);
}

#[test]
fn runs_over_seeds_report_each_run_their_mean_and_the_worst() {
    // With the defences on, the figures differ from seed to seed (without them, every run is
    // eclipsed alike and the checks below would hold trivially).
    let mut args = SYBIL_GOSSIP.to_vec();
    let mut seed_4 = args.clone();
    seed_4.extend(["--json", "--seed", "4"]);
    let single = [meshsim(&args), support::meshsim_json(&seed_4)];
    args.extend(["--runs", "2"]);
    let both = meshsim(&args);
    assert_eq!(both["runs"], 2);
    for key in ["honest_reliability", "active_honest_majority"] {
        let runs: Vec<f64> = single.iter().map(|r| number(r, key)).collect();
        let by_run: Vec<f64> = both[format!("{key}_by_run")]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(by_run, runs, "{key}: seeds 3 and 4, in order");
        let mean = number(&both, key);
        assert!(
            (mean - (runs[0] + runs[1]) / 2.0).abs() < 1e-9,
            "{key}: {mean} of {runs:?}"
        );
    }
    let worst = |key: &str| {
        single
            .iter()
            .map(|r| number(r, key))
            .fold(f64::INFINITY, f64::min)
    };
    assert_eq!(
        number(&both, "honest_reliability_min"),
        worst("honest_reliability_min")
    );
    assert_eq!(
        number(&both, "active_honest_majority_min"),
        worst("active_honest_majority")
    );
    let refused: f64 = single
        .iter()
        .map(|r| number(r, "membership_requests_refused"))
        .sum();
    assert_eq!(
        number(&both, "membership_requests_refused"),
        refused,
        "a total of both runs"
    );
    for one in &single {
        assert_ne!(both["trace_hash"], one["trace_hash"], "the hash covers both runs");
    }
}

#[test]
fn sybil_kad_lookups_succeed_and_prefix_limits_bound_the_sybils_in_tables() {
    let args = [
        "sybil-kad",
        "--nodes",
        "150",
        "--lookups",
        "60",
        "--malicious",
        "0.5",
        "--sybil-prefixes",
        "1",
    ];
    let report = meshsim(&args);
    assert_eq!(report["malicious_nodes"], 75);
    assert_eq!(
        report["puzzle_difficulty"], 0,
        "seeded ids do not solve the puzzle"
    );
    let success = number(&report, "success");
    assert!(success >= 0.95, "success {success}");
    // Seed 3: one /24 holds at most 10 entries of a table (2 per bucket): 16% of the honest tables' entries
    // are Sybils, 47% once the limits are lifted.
    let limited = number(&report, "honest_table_malicious_share");
    let mut lifted = args.to_vec();
    lifted.push("--no-prefix-limits");
    let unlimited = meshsim(&lifted);
    assert_eq!(unlimited["prefix_limits"], false);
    let share = number(&unlimited, "honest_table_malicious_share");
    assert!(limited < 0.25 && share > 2.0 * limited, "{limited} vs {share}");
    assert_eq!(meshsim(&args)["trace_hash"], report["trace_hash"]);
}

/// 10 spammers, 80 valid messages a second each (4 per tick, each sent twice). At 150 nodes and
/// `--spam-rate 50` (seed 3, about 150 s in release, too long here) one honest peer used to be banned by
/// another for broken graft promises; since a broken promise costs one second of recovery, none is.
#[test]
fn valid_bursts_through_honest_relays_get_no_honest_peer_banned() {
    let report = meshsim(&[
        "gossip-spam",
        "--nodes",
        "100",
        "--spammers",
        "0.1",
        "--messages",
        "3",
        "--spam-rate",
        "20",
        "--spam-kind",
        "valid-burst",
    ]);
    assert_eq!(report["spam_kind"], "validburst");
    assert!(number(&report, "spam_sent") > 10_000.0);
    assert_eq!(report["honest_bans_of_honest"], 0, "no honest peer is banned");
    assert_eq!(number(&report, "honest_reliability_min"), 1.0);
}

/// 20 liars among 200 nodes announce every message at one hop and push nothing. Believed, they
/// would become their neighbours' parents on every tree and withhold each next message (0.88 to
/// 0.91 of the honest nodes reached within the 500 ms between broadcasts, seeds 1 to 3, at build
/// dfb06e8 with this liar backported); struck once, they are not believed for a while (0.98 to
/// 0.99).
#[test]
fn neighbours_that_lie_about_hops_are_disproved_and_not_believed() {
    let report = meshsim(&[
        "gossip-spam",
        "--nodes",
        "200",
        "--spammers",
        "0.1",
        "--messages",
        "100",
        "--interval-ms",
        "500",
        "--spam-kind",
        "hop-lie",
    ]);
    assert_eq!(report["spam_kind"], "hoplie");
    assert!(number(&report, "honest_shortcut_strikes") > 0.0);
    let reached = number(&report, "honest_reliability");
    assert!(reached > 0.95, "honest nodes reached in time: {reached}");
    assert_eq!(report["honest_bans_of_honest"], 0);
}
