//! Ledger: connect a block of 1,000 single-input transactions (signatures not cached), next to raw
//! ed25519 batch verification of the same 1,000 signatures with `ed25519-consensus` — with the in-memory
//! store and with the redb store.
//!
//! `ours` is a whole block connect: size, merkle root, header rules, UTXO lookups, amounts, signatures
//! (batched, split across cores), commitment update and the store commit. `raw` is only the signature
//! batch (queue, which hashes each message, then verify), on one core. `ledger_diagnose_1000` splits
//! `ours` up: the connect with every signature cached (the non-signature work), the connect forced onto one
//! core, and our `BatchVerifier` alone.
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::unwrap_used)] // a benchmark should stop loudly if its own setup is wrong

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use meshwork_identity::Keypair;
use meshwork_ledger::testkit::{GENESIS_TIME, block_on, child_block, coinbase_to, outpoints, pay};
use meshwork_ledger::{
    Amount, Block, Ledger, LedgerConfig, MemoryStore, RedbStore, TX_SIGNING, Transaction, TxOut,
};
use rand_core::SeedableRng;

const TXS: usize = 1_000;
const NOW: u64 = GENESIS_TIME + 1_000_000;

fn config() -> LedgerConfig {
    LedgerConfig {
        coinbase_maturity: 1,
        ..LedgerConfig::default()
    }
}

/// A genesis paying one output to each of 1,000 keys, and a block in which each key spends its output.
fn fixture() -> (Block, Block, Vec<Keypair>) {
    let keys: Vec<Keypair> = (0..TXS as u32)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            seed[31] = 0xbe;
            Keypair::from_seed(seed)
        })
        .collect();
    let each = genesis_each();
    let payees: Vec<(&Keypair, Amount)> = keys.iter().map(|key| (key, each)).collect();
    let genesis = block_on(None, GENESIS_TIME, vec![coinbase_to(0, &payees)]);
    let fee = 1_000;
    let txs: Vec<Transaction> = outpoints(&genesis.txs[0])
        .into_iter()
        .zip(&keys)
        .map(|(outpoint, key)| {
            pay(
                &[(outpoint, each, key)],
                key,
                Amount::from_units(each.units() - fee),
            )
            .into()
        })
        .collect();
    let reward = config()
        .subsidy(1)
        .checked_add(Amount::from_units(fee * TXS as u64))
        .unwrap();
    let block = child_block(&genesis.header, &keys[0], reward, txs);
    (genesis, block, keys)
}

/// What each genesis output holds (one per transfer of the block).
fn genesis_each() -> Amount {
    Amount::from_units(config().subsidy(0).units() / TXS as u64)
}

/// The output a block transfer by `key` spends (the sighash commits to it).
fn spent(key: &Keypair) -> [TxOut; 1] {
    [TxOut {
        amount: genesis_each(),
        owner: key.peer_id(),
    }]
}

type RawItem = (
    ed25519_consensus::VerificationKeyBytes,
    ed25519_consensus::Signature,
    Vec<u8>,
);

/// The raw verifier's inputs: key bytes, signature and exactly the bytes our `BatchVerifier` signs
/// (prefix, namespace, sighash).
fn raw_items(block: &Block, keys: &[Keypair]) -> Vec<RawItem> {
    let ns = TX_SIGNING.as_bytes();
    block.txs[1..]
        .iter()
        .zip(keys)
        .map(|(tx, key)| {
            let Transaction::Transfer(transfer) = tx else {
                unreachable!()
            };
            let mut msg = b"meshwork-sig-v1".to_vec();
            msg.push(ns.len() as u8);
            msg.extend_from_slice(ns);
            msg.extend_from_slice(transfer.sighash(&spent(key)).as_bytes());
            let vk = ed25519_consensus::VerificationKeyBytes::from(key.peer_id().to_bytes());
            let sig = ed25519_consensus::Signature::from(*transfer.inputs[0].signature.as_bytes());
            (vk, sig, msg)
        })
        .collect()
}

/// Queue (which hashes each message into its challenge) and verify, on one core.
fn raw_verify(items: &[RawItem]) {
    let mut verifier = ed25519_consensus::batch::Verifier::new();
    for (vk, sig, msg) in items {
        verifier.queue((*vk, *sig, &msg[..]));
    }
    verifier
        .verify(rand_chacha::ChaCha20Rng::from_seed([7; 32]))
        .unwrap();
}

fn connect(c: &mut Criterion) {
    let (genesis, block, keys) = fixture();
    let items = raw_items(&block, &keys);
    assert_eq!(block.txs.len(), TXS + 1);

    let mut base = Ledger::new(MemoryStore::new(), config());
    base.connect_block(&genesis, 1, NOW).unwrap();
    let base = base.into_store();

    let mut group = c.benchmark_group("ledger_connect_1000");
    group.throughput(Throughput::Elements(TXS as u64));
    group.sample_size(20).measurement_time(Duration::from_secs(8));
    group.bench_function("ours", |b| {
        b.iter_batched(
            // A fresh ledger each time: an empty signature cache, the genesis outputs unspent.
            || Ledger::new(base.clone(), config()),
            |mut ledger| ledger.connect_block(black_box(&block), 2, NOW).unwrap(),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("raw", |b| b.iter(|| raw_verify(black_box(&items))));
    group.finish();

    let mut group = c.benchmark_group("ledger_connect_1000_redb");
    group.throughput(Throughput::Elements(TXS as u64));
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    group.bench_function("ours", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let store = RedbStore::open(&dir.path().join("bench.redb")).unwrap();
                let mut ledger = Ledger::new(store, config());
                ledger.connect_block(&genesis, 1, NOW).unwrap();
                (dir, ledger)
            },
            |(dir, mut ledger)| {
                ledger.connect_block(black_box(&block), 2, NOW).unwrap();
                (dir, ledger) // dropped outside the measurement
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("raw", |b| b.iter(|| raw_verify(black_box(&items))));
    group.finish();
}

/// Where the time goes: a connect whose signatures are all cached, and our batch verifier on one core.
fn diagnose(c: &mut Criterion) {
    let (genesis, block, keys) = fixture();
    let mut warm = Ledger::new(MemoryStore::new(), config());
    warm.connect_block(&genesis, 1, NOW).unwrap();
    warm.connect_block(&block, 2, NOW).unwrap();
    warm.disconnect_tip().unwrap();
    let mut group = c.benchmark_group("ledger_diagnose_1000");
    group.sample_size(20).measurement_time(Duration::from_secs(5));
    group.bench_function("connect_signatures_cached", |b| {
        b.iter_batched(
            || warm.clone(),
            |mut ledger| ledger.connect_block(black_box(&block), 2, NOW).unwrap(),
            BatchSize::LargeInput,
        )
    });
    let mut base = Ledger::new(MemoryStore::new(), config());
    base.connect_block(&genesis, 1, NOW).unwrap();
    let base = base.into_store();
    for (name, min_batch) in [("connect_two_cores", 64), ("connect_one_core", usize::MAX)] {
        let config = LedgerConfig {
            min_batch_per_thread: min_batch,
            ..config()
        };
        group.bench_function(name, |b| {
            b.iter_batched(
                || Ledger::new(base.clone(), config.clone()),
                |mut ledger| ledger.connect_block(black_box(&block), 2, NOW).unwrap(),
                BatchSize::LargeInput,
            )
        });
    }
    let sigs: Vec<_> = block.txs[1..]
        .iter()
        .zip(&keys)
        .map(|(tx, key)| {
            let Transaction::Transfer(transfer) = tx else {
                unreachable!()
            };
            (
                key.peer_id(),
                transfer.sighash(&spent(key)),
                transfer.inputs[0].signature,
            )
        })
        .collect();
    group.bench_function("identity_batch_verifier_one_core", |b| {
        b.iter(|| {
            let mut batch = meshwork_identity::BatchVerifier::with_capacity(sigs.len());
            for (peer, sighash, sig) in &sigs {
                batch.push(peer, TX_SIGNING, sighash.as_bytes(), sig);
            }
            batch.verify().unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, connect, diagnose);
criterion_main!(benches);
