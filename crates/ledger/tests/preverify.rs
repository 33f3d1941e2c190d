//! Signatures of many relayed transactions verified in one batch before their one-by-one inserts.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should stop loudly

use meshwork_identity::Keypair;
use meshwork_ledger::mempool::Inserted;
use meshwork_ledger::testkit::{GENESIS_TIME, key, ledger_with_spendable_genesis, outpoints, pay};
use meshwork_ledger::{
    Amount, Block, Ledger, LedgerConfig, MemoryStore, Mempool, MempoolConfig, MempoolError, OutPoint,
    Transaction, Transfer, TxError, TxId,
};

const NOW: u64 = GENESIS_TIME + 1_000_000;
const EACH: u64 = 5 * Amount::COIN;
const FEE: u64 = 1_000;

fn setup() -> (Ledger<MemoryStore>, Mempool, Block, Keypair) {
    let owner = key(1);
    let (ledger, genesis) =
        ledger_with_spendable_genesis(LedgerConfig::default(), &owner, 10, Amount::from_units(EACH), NOW)
            .unwrap();
    (ledger, Mempool::new(MempoolConfig::default()), genesis, owner)
}

fn txid(tx: &Transfer) -> TxId {
    Transaction::Transfer(tx.clone()).txid()
}

/// Genesis output `i`, spent by `signer` (the owner, or a thief) to `key(to)`.
fn spend(genesis: &Block, signer: &Keypair, i: usize, to: u8) -> Transfer {
    let coin = outpoints(&genesis.txs[0])[i];
    pay(
        &[(coin, Amount::from_units(EACH), signer)],
        &key(to),
        Amount::from_units(EACH - FEE),
    )
}

/// Output 0 of `parent` (held by `key(holder)`), spent on to `key(to)`.
fn spend_on(parent: &Transfer, holder: u8, to: u8) -> Transfer {
    let coin = OutPoint {
        txid: txid(parent),
        index: 0,
    };
    let held = parent.outputs[0].amount;
    pay(
        &[(coin, held, &key(holder))],
        &key(to),
        Amount::from_units(held.units() - FEE),
    )
}

/// A transfer of `amount` to `key(2)` from a coin nobody knows of: an orphan wherever it goes.
fn orphan(owner: &Keypair, amount: Amount) -> Transfer {
    let unknown = OutPoint {
        txid: TxId::digest(b"nowhere"),
        index: 0,
    };
    pay(&[(unknown, Amount::from_units(EACH), owner)], &key(2), amount)
}

fn accepted(result: Result<Inserted, MempoolError>) {
    assert!(
        matches!(result, Ok(Inserted::Accepted { .. })),
        "expected acceptance, got {result:?}"
    );
}

#[test]
fn a_batch_verifies_a_chain_that_came_together_and_the_inserts_find_it_cached() {
    let (mut ledger, mut pool, genesis, owner) = setup();
    let parent = spend(&genesis, &owner, 0, 2);
    let child = spend_on(&parent, 2, 3);
    let other = spend(&genesis, &owner, 1, 4);
    let txs = vec![parent, child, other];
    // The child's coin is in neither the store nor the pool: only in the batch.
    let before = ledger.sig_stats();
    assert_eq!(pool.preverify(&txs, &mut ledger).unwrap(), 3);
    for tx in &txs {
        assert!(ledger.sig_cache().contains(&txid(tx)));
    }
    let batched = ledger.sig_stats();
    assert_eq!(batched.batches - before.batches, 1, "one batch for the three");
    assert_eq!(batched.signatures - before.signatures, 3);
    for tx in txs {
        accepted(pool.insert(tx, &mut ledger));
    }
    // The inserts verify nothing more: each finds its transaction cached.
    let inserted = ledger.sig_stats();
    assert_eq!(
        (inserted.batches, inserted.signatures),
        (batched.batches, batched.signatures)
    );
    assert_eq!(inserted.cached - batched.cached, 3);
}

#[test]
fn a_bad_signature_caches_what_came_before_it_and_costs_the_others_nothing() {
    let (mut ledger, mut pool, genesis, owner) = setup();
    let before = spend(&genesis, &owner, 0, 2);
    let thief = spend(&genesis, &key(66), 1, 66);
    let after = spend(&genesis, &owner, 2, 3);
    let txs = vec![before.clone(), thief.clone(), after.clone()];
    assert_eq!(pool.preverify(&txs, &mut ledger).unwrap(), 1);
    assert!(ledger.sig_cache().contains(&txid(&before)));
    assert!(!ledger.sig_cache().contains(&txid(&thief)));
    assert!(
        !ledger.sig_cache().contains(&txid(&after)),
        "not vouched for by a failed batch"
    );
    accepted(pool.insert(before, &mut ledger));
    assert!(matches!(
        pool.insert(thief, &mut ledger),
        Err(MempoolError::Invalid(TxError::BadSignature { input: 0 }))
    ));
    // Checked on its own, and taken.
    accepted(pool.insert(after.clone(), &mut ledger));
    assert!(ledger.sig_cache().contains(&txid(&after)));
}

#[test]
fn what_a_batch_cannot_check_is_left_to_the_inserts() {
    let (mut ledger, pool, genesis, owner) = setup();
    let orphan = orphan(&owner, Amount::from_units(1));
    let overspend = pay(
        &[(outpoints(&genesis.txs[0])[0], Amount::from_units(EACH), &owner)],
        &key(2),
        Amount::from_units(EACH + 1),
    );
    assert_eq!(
        pool.preverify(&[orphan.clone(), overspend.clone()], &mut ledger)
            .unwrap(),
        0
    );
    assert!(!ledger.sig_cache().contains(&txid(&orphan)));
    assert!(!ledger.sig_cache().contains(&txid(&overspend)));
    // Cached once, a transaction is not verified (nor counted) again.
    let fine = spend(&genesis, &owner, 3, 2);
    assert_eq!(
        pool.preverify(std::slice::from_ref(&fine), &mut ledger).unwrap(),
        1
    );
    assert_eq!(pool.preverify(&[fine], &mut ledger).unwrap(), 0);
}

#[test]
fn a_child_of_a_transaction_with_unknown_coins_is_not_verified_and_spoils_nothing() {
    let (mut ledger, pool, genesis, owner) = setup();
    // An orphan, then a child of it signed by the wrong key: both will be judged orphans, without
    // blame, so the child must not be verified here, where its bad signature would fail the batch.
    let orphan = orphan(&owner, Amount::from_units(EACH));
    let spoiler = spend_on(&orphan, 66, 3);
    let honest = spend(&genesis, &owner, 0, 4);
    let txs = vec![orphan, spoiler.clone(), honest.clone(), honest.clone()];
    assert_eq!(
        pool.preverify(&txs, &mut ledger).unwrap(),
        1,
        "the duplicate counted once"
    );
    assert!(ledger.sig_cache().contains(&txid(&honest)));
    assert!(!ledger.sig_cache().contains(&txid(&spoiler)));
}

#[test]
fn a_batch_split_across_threads_caches_exactly_what_precedes_the_bad_signature() {
    let (_, mut pool, genesis, owner) = setup();
    // One signature per thread's share at least: the batch is split across every core.
    let config = LedgerConfig {
        min_batch_per_thread: 1,
        ..LedgerConfig::default()
    };
    let (mut ledger, _) =
        ledger_with_spendable_genesis(config, &owner, 10, Amount::from_units(EACH), NOW).unwrap();
    let mut txs: Vec<Transfer> = (0..6).map(|i| spend(&genesis, &owner, i, 2)).collect();
    // The bad signature in the last share.
    txs[4] = spend(&genesis, &key(66), 4, 66);
    assert_eq!(pool.preverify(&txs, &mut ledger).unwrap(), 4);
    // The calling thread checks the first share; the others ran on helper threads.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let stats = ledger.sig_stats();
    let first_share = 6usize.div_ceil(cores.min(6)) as u64;
    assert_eq!(stats.off_thread, 6 - first_share, "{cores} cores: {stats:?}");
    for (i, tx) in txs.iter().enumerate() {
        assert_eq!(ledger.sig_cache().contains(&txid(tx)), i < 4, "transaction {i}");
    }
    for tx in txs.iter().take(4) {
        accepted(pool.insert(tx.clone(), &mut ledger));
    }
}

#[test]
fn what_the_pool_would_refuse_is_not_verified() {
    let (mut ledger, mut pool, genesis, owner) = setup();
    let held = spend(&genesis, &owner, 0, 2);
    accepted(pool.insert(held.clone(), &mut ledger));
    let coin = outpoints(&genesis.txs[0]);
    // No fee at all, and a conflict with `held` that pays no more than it.
    let free = pay(
        &[(coin[1], Amount::from_units(EACH), &owner)],
        &key(2),
        Amount::from_units(EACH),
    );
    let rival = pay(
        &[(coin[0], Amount::from_units(EACH), &owner)],
        &key(3),
        Amount::from_units(EACH - FEE),
    );
    let fine = spend(&genesis, &owner, 2, 2);
    let txs = vec![held, free.clone(), rival.clone(), fine.clone()];
    assert_eq!(pool.preverify(&txs, &mut ledger).unwrap(), 1);
    assert!(!ledger.sig_cache().contains(&txid(&free)));
    assert!(!ledger.sig_cache().contains(&txid(&rival)));
    assert!(ledger.sig_cache().contains(&txid(&fine)));
    assert!(matches!(
        pool.insert(free, &mut ledger),
        Err(MempoolError::FeeRateTooLow { .. })
    ));
}

#[test]
fn a_replaced_transaction_still_cached_vouches_for_no_child() {
    let (mut ledger, mut pool, genesis, owner) = setup();
    // The parent is verified and taken, then replaced by a rival paying more on the same coin: it
    // stays in the signature cache, and its outputs exist nowhere.
    let parent = spend(&genesis, &owner, 0, 2);
    accepted(pool.insert(parent.clone(), &mut ledger));
    let coin = outpoints(&genesis.txs[0])[0];
    let rival = pay(
        &[(coin, Amount::from_units(EACH), &owner)],
        &key(5),
        Amount::from_units(EACH - 20 * FEE),
    );
    accepted(pool.insert(rival, &mut ledger));
    assert!(!pool.contains(&txid(&parent)) && ledger.sig_cache().contains(&txid(&parent)));
    // A child of the parent, signed with the wrong key, comes with it again: nothing is verified.
    let child = spend_on(&parent, 9, 4);
    let before = ledger.sig_stats();
    pool.preverify(&[parent, child], &mut ledger).unwrap();
    assert_eq!(ledger.sig_stats().signatures, before.signatures);
}
