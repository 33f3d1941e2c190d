//! The coin's defaults. Its Kademlia defences are on: ids must solve the S/Kademlia puzzle and the
//! per-prefix limits are Kademlia's own; only an explicit loopback devnet lifts the limits. Its
//! transaction gossip borrows trees, and the round trips the driver measures reach it (they choose the
//! lender, and teach it the wait before grafting).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use meshwork_coin::{AppConfig, CoinApp, CoinCommand};
use meshwork_consensus::{Chain, ChainConfig, genesis_block};
use meshwork_gossip::Trees;
use meshwork_identity::{Keypair, puzzle};
use meshwork_ledger::MemoryStore;
use meshwork_wire::{Input, Instant, Protocol};

fn app(config: AppConfig) -> CoinApp<MemoryStore> {
    let chain_config = ChainConfig::regtest();
    let genesis = genesis_block(&chain_config);
    let now = genesis.header.timestamp;
    let chain = Chain::open(MemoryStore::default(), chain_config, genesis, now).unwrap();
    CoinApp::new(Keypair::from_seed([1; 32]), chain, config, 1)
}

#[test]
fn the_default_config_requires_the_puzzle_and_keeps_the_prefix_limits() {
    let kad_defaults = meshwork_kad::Config::default();
    let node = app(AppConfig::default());
    let running = node.kad().config();
    assert_eq!(running.puzzle_difficulty, AppConfig::PUZZLE_DIFFICULTY);
    assert!(running.puzzle_difficulty >= 8, "a puzzle worth the name");
    assert_eq!(
        running.max_per_prefix_in_bucket,
        kad_defaults.max_per_prefix_in_bucket
    );
    assert_eq!(
        running.max_per_prefix_in_table,
        kad_defaults.max_per_prefix_in_table
    );
    assert_eq!(
        (running.max_per_prefix_in_bucket, running.max_per_prefix_in_table),
        (2, 10)
    );
    assert!(!AppConfig::default().loopback_devnet);
}

#[test]
fn a_loopback_devnet_lifts_the_prefix_limits_and_keeps_the_puzzle() {
    let node = app(AppConfig {
        loopback_devnet: true,
        ..AppConfig::default()
    });
    let running = node.kad().config();
    assert_eq!(running.puzzle_difficulty, AppConfig::PUZZLE_DIFFICULTY);
    assert!(running.max_per_prefix_in_bucket >= running.k);
    assert!(running.max_per_prefix_in_table >= 1024);
}

#[test]
fn ids_that_solve_the_puzzle_exist_and_most_do_not() {
    // About one key in 4,096 solves it: search deterministic seeds.
    let difficulty = AppConfig::PUZZLE_DIFFICULTY;
    let seed = |i: u32| {
        let mut seed = [7; 32];
        seed[..4].copy_from_slice(&i.to_le_bytes());
        seed
    };
    let _solving = (0..1 << 16)
        .find(|&i| puzzle::solves(&Keypair::from_seed(seed(i)).peer_id(), difficulty))
        .unwrap();
    let failing = (0..100)
        .filter(|&i| !puzzle::solves(&Keypair::from_seed(seed(i)).peer_id(), difficulty))
        .count();
    assert!(failing >= 95, "{failing} of 100 fail");
}

#[test]
fn transactions_borrow_trees_by_default() {
    assert_eq!(AppConfig::default().gossip.trees, Trees::Borrow);
    assert_eq!(AppConfig::default().gossip_config().trees, Trees::Borrow);
}

#[test]
fn a_measured_round_trip_reaches_gossip() {
    let mut node = app(AppConfig::default());
    assert_eq!(node.gossip().graft_rtt(), None);
    let peer = Keypair::from_seed([2; 32]).peer_id();
    let rtt = Duration::from_millis(40);
    let command = CoinCommand::PeerRoundTrip { peer, rtt };
    node.handle(Instant::from_nanos(1), Input::Command(command), &mut Vec::new());
    assert_eq!(node.gossip().graft_rtt(), Some(rtt));
}
