//! Property tests: value is conserved, connect/disconnect round trips, the merkle root resists mutation.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should stop loudly

use std::collections::HashMap;

use meshwork_identity::{Hash, Keypair, PeerId};
use meshwork_ledger::message::merkle;
use meshwork_ledger::testkit::{GENESIS_TIME, child_block, genesis, key};
use meshwork_ledger::{
    Amount, ChainStore, Coin, Ledger, LedgerConfig, MemoryStore, OutPoint, Transaction, Transfer, TxOut,
    UtxoCommitment,
};
use proptest::prelude::*;

const NOW: u64 = GENESIS_TIME + 1_000_000;

/// A tiny deterministic RNG (splitmix64) so that one proptest seed drives a whole chain.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Builds up to `blocks` random blocks of random transfers among four keys, connecting each and checking
/// value conservation and the commitment, then disconnects them all, checking the round trip.
fn run_chain(seed: u64, blocks: usize) -> usize {
    let mut transfers = 0;
    let keys: Vec<Keypair> = (1..=4).map(key).collect();
    let owners: HashMap<PeerId, &Keypair> = keys.iter().map(|k| (k.peer_id(), k)).collect();
    let config = LedgerConfig {
        coinbase_maturity: 2,
        ..LedgerConfig::default()
    };
    let mut ledger = Ledger::new(MemoryStore::new(), config.clone());
    let mut rng = Rng(seed);

    let genesis = genesis(&keys[0], 8, Amount::from_coins(6));
    let mut issued = 48 * Amount::COIN;
    let mut commitments = vec![ledger.utxo_commitment().unwrap()];
    ledger.connect_block(&genesis, 1, NOW).unwrap();
    commitments.push(ledger.utxo_commitment().unwrap());
    let mut tip = genesis.header;

    for height in 1..=blocks as u64 {
        // Spendable coins: everything mature in the current set, in a deterministic order.
        let mut coins: Vec<(OutPoint, Coin)> = ledger
            .store()
            .coins()
            .unwrap()
            .into_iter()
            .filter(|(_, coin)| !coin.coinbase || coin.height + config.coinbase_maturity <= height)
            .collect();
        coins.sort_by_key(|(outpoint, _)| *outpoint);
        let mut txs: Vec<Transaction> = Vec::new();
        let mut fees = Amount::ZERO;
        for _ in 0..rng.below(4) {
            if coins.is_empty() {
                break;
            }
            let n_inputs = 1 + rng.below(2.min(coins.len() as u64)) as usize;
            let spent: Vec<(OutPoint, Coin)> = (0..n_inputs)
                .map(|_| coins.swap_remove(rng.below(coins.len() as u64) as usize))
                .collect();
            let total: u64 = spent.iter().map(|(_, coin)| coin.output.amount.units()).sum();
            let fee = rng.below(total.min(1000) + 1);
            let mut left = total - fee;
            let n_outputs = 1 + rng.below(3);
            let mut outputs = Vec::new();
            for i in 0..n_outputs {
                let amount = if i + 1 == n_outputs {
                    left
                } else {
                    rng.below(left + 1)
                };
                left -= amount;
                let owner = keys[rng.below(4) as usize].peer_id();
                outputs.push(TxOut {
                    amount: Amount::from_units(amount),
                    owner,
                });
            }
            let spends: Vec<(OutPoint, Amount, &Keypair)> = spent
                .iter()
                .map(|(op, coin)| (*op, coin.output.amount, owners[&coin.output.owner]))
                .collect();
            txs.push(Transfer::signed(&spends, outputs).into());
            fees = fees.checked_add(Amount::from_units(fee)).unwrap();
        }
        transfers += txs.len();
        let miner = &keys[rng.below(4) as usize];
        let block = child_block(
            &tip,
            miner,
            config.subsidy(height).checked_add(fees).unwrap(),
            txs,
        );
        ledger.connect_block(&block, u128::from(height) + 1, NOW).unwrap();
        issued += config.subsidy(height).units();
        tip = block.header;

        // Value is conserved: what exists is exactly what was issued.
        let coins = ledger.store().coins().unwrap();
        let total: u64 = coins.iter().map(|(_, coin)| coin.output.amount.units()).sum();
        assert_eq!(total, issued, "value conserved at height {height}");
        // The incrementally kept commitment is that of the set.
        let recomputed = UtxoCommitment::of(coins.iter().map(|(op, coin)| (op, coin)));
        assert_eq!(ledger.utxo_commitment().unwrap(), recomputed);
        commitments.push(recomputed);
    }

    // Disconnect everything: each step gives back the commitment before that block.
    while ledger.tip().unwrap().is_some() {
        commitments.pop();
        ledger.disconnect_tip().unwrap();
        assert_eq!(Some(&ledger.utxo_commitment().unwrap()), commitments.last());
        let coins = ledger.store().coins().unwrap();
        assert_eq!(
            UtxoCommitment::of(coins.iter().map(|(op, coin)| (op, coin))),
            ledger.utxo_commitment().unwrap()
        );
    }
    assert_eq!(ledger.utxo_commitment().unwrap(), UtxoCommitment::EMPTY);
    transfers
}

#[test]
fn the_random_chains_do_move_coin() {
    assert!(run_chain(7, 7) >= 5);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn value_is_conserved_and_connect_disconnect_round_trips(seed in any::<u64>(), blocks in 1usize..8) {
        run_chain(seed, blocks);
    }

    #[test]
    fn merkle_root_changes_under_duplication_and_reordering(
        leaves in prop::collection::vec(any::<[u8; 32]>(), 1..40),
        swap in any::<(usize, usize)>(),
    ) {
        let leaves: Vec<Hash> = leaves.into_iter().map(Hash::from_bytes).collect();
        let root = merkle::root(&leaves);
        let mut duplicated = leaves.clone();
        duplicated.push(*leaves.last().unwrap());
        prop_assert_ne!(merkle::root(&duplicated), root);
        // Bitcoin's odd-level duplication: repeat the last k leaves.
        for k in 1..=leaves.len().min(4) {
            let mut tail = leaves.clone();
            tail.extend_from_slice(&leaves[leaves.len() - k..]);
            prop_assert_ne!(merkle::root(&tail), root);
        }
        let (i, j) = (swap.0 % leaves.len(), swap.1 % leaves.len());
        if leaves[i] != leaves[j] {
            let mut swapped = leaves;
            swapped.swap(i, j);
            prop_assert_ne!(merkle::root(&swapped), root);
        }
    }

    #[test]
    fn commitment_is_order_independent_and_invertible(n in 1usize..20, seed in any::<u64>()) {
        let owner = key(1).peer_id();
        let mut rng = Rng(seed);
        let entries: Vec<(OutPoint, Coin)> = (0..n)
            .map(|i| {
                let outpoint = OutPoint { txid: Hash::digest(&rng.next().to_le_bytes()), index: i as u32 };
                let coin = Coin {
                    output: TxOut { amount: Amount::from_units(rng.below(1 << 40)), owner },
                    height: rng.below(100),
                    coinbase: rng.below(2) == 1,
                };
                (outpoint, coin)
            })
            .collect();
        let forward = UtxoCommitment::of(entries.iter().map(|(op, coin)| (op, coin)));
        let backward = UtxoCommitment::of(entries.iter().rev().map(|(op, coin)| (op, coin)));
        prop_assert_eq!(forward, backward);
        let mut removed = forward;
        for (op, coin) in &entries {
            removed.remove(op, coin);
        }
        prop_assert_eq!(removed, UtxoCommitment::EMPTY);
    }
}
