//! `meshsim coin`: the coin node's own protocol, run as a user runs the experiment. Censoring relays do not
//! stop a payment, every honest node ends on one tip, new blocks travel as compact blocks, and one seed
//! gives one trace hash in two processes.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use serde_json::Value;

mod support;

fn coin(seed: &str) -> Value {
    support::meshsim_json(&[
        "coin",
        "--nodes",
        "40",
        "--txs",
        "40",
        "--tx-rate",
        "20",
        "--miners",
        "4",
        "--censor",
        "0.25",
        "--sybil",
        "0.1",
        "--warmup-secs",
        "10",
        "--json",
        "--seed",
        seed,
    ])
}

#[test]
fn every_payment_is_confirmed_past_censors_and_sybils_and_the_run_is_reproducible() {
    let first = coin("3");
    for key in [
        "honest_on_best_tip",
        "tx_confirmed_share",
        "confirmed_then_reversed",
        "tx_propagation_ms_p99",
        "flood_tx_propagation_ms_p99",
        "confirmation_ms_p99",
        "stale_rate",
        "gossip_bytes_per_node_per_tx",
        "sync_bytes_per_node_per_block",
        "block_relay_bytes_over_block_bytes",
        "wall_ms",
        "peak_rss_bytes",
        "trace_hash",
    ] {
        assert!(first.get(key).is_some(), "missing {key}");
    }
    assert_eq!(first["censors"], 10);
    assert_eq!(first["sybils"], 4);
    assert_eq!(first["tx_confirmed_share"], 1.0, "{first}");
    assert_eq!(first["honest_on_best_tip"], 1.0, "{first}");
    assert_eq!(first["confirmed_then_reversed"], 0);
    assert!(first["tx_propagation_samples"].as_u64().unwrap() > 0);
    // New blocks come as compact blocks rebuilt from the mempool: each costs less than itself, even
    // with censors' mempools lacking transactions and every peer's announcement counted.
    assert!(first["blocks_relayed"].as_u64().unwrap() > 0);
    assert!(first["blocks_rebuilt_share"].as_f64().unwrap() > 0.5, "{first}");
    assert!(
        first["block_relay_bytes_over_block_bytes"].as_f64().unwrap() < 1.0,
        "{first}"
    );

    let again = coin("3");
    assert_eq!(first["trace_hash"], again["trace_hash"]);
    assert_eq!(first["events"], again["events"]);
}
