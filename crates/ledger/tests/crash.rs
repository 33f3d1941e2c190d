//! The redb store after `SIGKILL` at random moments: every reopen is consistent.
//!
//! The test re-executes its own binary in "child mode" (selected by an environment variable): the child
//! connects a fixed chain to a redb store, disconnects half of it, connects it again, forever, until the
//! parent kills it. After every kill the parent reopens the store and checks that the tip is one of the
//! chain's blocks and that the UTXO set (as stored, and as recomputed from the coins) is exactly the one
//! a replay of the chain up to that tip gives.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should stop loudly

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_ledger::testkit::{GENESIS_TIME, child_block, genesis, key, pay};
use meshwork_ledger::{
    Amount, Block, ChainStore, Ledger, LedgerConfig, MemoryStore, RedbStore, Transaction, UtxoCommitment,
};

const CHILD_ENV: &str = "MESHWORK_LEDGER_CRASH_CHILD_DB";
const CHAIN_LEN: usize = 40;
const KILLS: usize = 60;
const NOW: u64 = GENESIS_TIME + 1_000_000;

fn config() -> LedgerConfig {
    LedgerConfig {
        coinbase_maturity: 1,
        ..LedgerConfig::default()
    }
}

/// A deterministic chain with transfers in every block, and the UTXO commitment after each block.
fn build_chain() -> (Vec<Block>, Vec<UtxoCommitment>) {
    let keys: Vec<Keypair> = (1..=4).map(key).collect();
    let owners: HashMap<PeerId, &Keypair> = keys.iter().map(|k| (k.peer_id(), k)).collect();
    let mut ledger = Ledger::new(MemoryStore::new(), config());
    let mut blocks = vec![genesis(&keys[0], 8, Amount::from_coins(6))];
    ledger.connect_block(&blocks[0], 1, NOW).unwrap();
    let mut commitments = vec![ledger.utxo_commitment().unwrap()];
    for height in 1..CHAIN_LEN as u64 {
        let mut coins = ledger.store().coins().unwrap();
        coins.sort_by_key(|(outpoint, _)| *outpoint);
        let txs: Vec<Transaction> = coins
            .iter()
            .filter(|(_, coin)| coin.height < height && coin.output.amount.units() > 10)
            .take(3)
            .map(|(outpoint, coin)| {
                let to = &keys[(height % 4) as usize];
                let amount = Amount::from_units(coin.output.amount.units() - 10);
                pay(
                    &[(*outpoint, coin.output.amount, owners[&coin.output.owner])],
                    to,
                    amount,
                )
                .into()
            })
            .collect();
        let fees = Amount::from_units(10 * txs.len() as u64);
        let reward = config().subsidy(height).checked_add(fees).unwrap();
        let parent = blocks.last().unwrap().header;
        let block = child_block(&parent, &keys[(height % 3) as usize], reward, txs);
        ledger.connect_block(&block, u128::from(height) + 1, NOW).unwrap();
        blocks.push(block);
        commitments.push(ledger.utxo_commitment().unwrap());
    }
    (blocks, commitments)
}

/// Child mode: churn the store until killed. In a normal test run this test does nothing.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (blocks, _) = build_chain();
    let mut ledger = Ledger::new(RedbStore::open(Path::new(&path)).unwrap(), config());
    loop {
        let next = ledger.tip().unwrap().map_or(0, |tip| tip.height as usize + 1);
        if next < CHAIN_LEN {
            ledger
                .connect_block(&blocks[next], next as u128 + 1, NOW)
                .unwrap();
        } else {
            while ledger
                .tip()
                .unwrap()
                .is_some_and(|tip| tip.height as usize > CHAIN_LEN / 2)
            {
                ledger.disconnect_tip().unwrap();
            }
        }
    }
}

/// Checks a reopened store against the replayed chain; returns its tip height.
fn check_consistent(path: &Path, blocks: &[Block], commitments: &[UtxoCommitment]) -> Option<u64> {
    let store = RedbStore::open(path).expect("the store reopens after a crash");
    let stored = store.utxo_commitment().unwrap();
    let coins = store.coins().unwrap();
    let recomputed = UtxoCommitment::of(coins.iter().map(|(outpoint, coin)| (outpoint, coin)));
    assert_eq!(stored, recomputed, "stored commitment matches the stored coins");
    match store.tip().unwrap() {
        None => {
            assert_eq!(stored, UtxoCommitment::EMPTY);
            None
        }
        Some(tip) => {
            let height = tip.height as usize;
            assert_eq!(tip.id, blocks[height].id(), "the tip is a block of the chain");
            assert_eq!(
                stored, commitments[height],
                "UTXO set equals a replay up to the tip"
            );
            assert!(
                store.undo(&tip.id).unwrap().is_some(),
                "undo data of the tip is there"
            );
            assert_eq!(store.block(&tip.id).unwrap().as_ref(), Some(&blocks[height]));
            Some(tip.height)
        }
    }
}

#[test]
fn redb_store_is_consistent_after_sigkill_at_random_moments() {
    let (blocks, commitments) = build_chain();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    drop(RedbStore::open(&path).unwrap());
    let exe = std::env::current_exe().unwrap();
    let mut state = 0x5eed_u64;
    let mut heights = Vec::new();
    for _ in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--test-threads=1", "--nocapture"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // splitmix64: a reproducible "random" moment between 30 and 230 ms (the child needs ~20 ms to start).
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        std::thread::sleep(Duration::from_millis(30 + (z ^ (z >> 31)) % 200));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(!status.success(), "the child runs until killed");
        heights.push(check_consistent(&path, &blocks, &commitments));
    }
    eprintln!("tips after each kill: {heights:?}");
    // The kills landed while the child was working: the tip moved between most of them.
    let moved = heights.windows(2).filter(|pair| pair[0] != pair[1]).count();
    assert!(moved >= KILLS / 4, "tips seen: {heights:?}");
}

#[test]
fn redb_store_connects_disconnects_and_persists() {
    let (blocks, commitments) = build_chain();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    {
        let mut ledger = Ledger::new(RedbStore::open(&path).unwrap(), config());
        for (height, block) in blocks.iter().enumerate().take(10) {
            ledger.connect_block(block, height as u128 + 1, NOW).unwrap();
        }
        ledger.disconnect_tip().unwrap();
        assert_eq!(ledger.utxo_commitment().unwrap(), commitments[8]);
    }
    assert_eq!(check_consistent(&path, &blocks, &commitments), Some(8));
    let store = RedbStore::open(&path).unwrap();
    let entry = store.index_entry(&blocks[8].id()).unwrap().unwrap();
    assert_eq!(entry.cumulative_work, 9);
    // The disconnected block stays stored (a reorg may come back to it), but its undo data is gone.
    assert!(store.block(&blocks[9].id()).unwrap().is_some());
    assert!(store.undo(&blocks[9].id()).unwrap().is_none());
}
