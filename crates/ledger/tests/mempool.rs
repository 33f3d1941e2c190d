//! The mempool: fee-rate order, replace-by-fee, size cap, orphans, templates, blocks in and out.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should stop loudly

use meshwork_identity::Keypair;
use meshwork_ledger::mempool::Inserted;
use meshwork_ledger::testkit::{
    GENESIS_TIME, child_block, key, ledger_with_spendable_genesis, outpoints, pay,
};
use meshwork_ledger::{
    Amount, Block, Ledger, LedgerConfig, MemoryStore, Mempool, MempoolConfig, MempoolError, OutPoint,
    Transaction, Transfer, TxError, TxId,
};

const NOW: u64 = GENESIS_TIME + 1_000_000;
const EACH: u64 = 5 * Amount::COIN;

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

fn op(genesis: &Block, i: usize) -> OutPoint {
    outpoints(&genesis.txs[0])[i]
}

/// Spends genesis output `i`, paying `fee`.
fn spend(genesis: &Block, owner: &Keypair, i: usize, fee: u64, to: u8) -> Transfer {
    pay(
        &[(op(genesis, i), Amount::from_units(EACH), owner)],
        &key(to),
        Amount::from_units(EACH - fee),
    )
}

fn accepted(result: Result<Inserted, MempoolError>) -> TxId {
    match result {
        Ok(Inserted::Accepted { txid, .. }) => txid,
        other => panic!("expected acceptance, got {other:?}"),
    }
}

#[test]
fn template_is_ordered_by_fee_rate_and_signatures_are_cached() {
    let (mut ledger, mut pool, genesis, owner) = setup();
    let fees = [3_000, 1_000, 9_000, 5_000];
    for (i, fee) in fees.iter().enumerate() {
        accepted(pool.insert(spend(&genesis, &owner, i, *fee, 2), &mut ledger));
    }
    let template = pool.block_template(usize::MAX);
    let got: Vec<u64> = template
        .txs
        .iter()
        .map(|tx| EACH - tx.outputs[0].amount.units())
        .collect();
    assert_eq!(got, vec![9_000, 5_000, 3_000, 1_000]);
    assert_eq!(template.fees, Amount::from_units(18_000));
    for tx in &template.txs {
        assert!(ledger.sig_cache().contains(&txid(tx)));
    }
    // The template makes a valid block.
    let subsidy = ledger.config().subsidy(1).checked_add(template.fees).unwrap();
    let txs = template.txs.into_iter().map(Transaction::from).collect();
    let block = child_block(&genesis.header, &key(9), subsidy, txs);
    ledger.connect_block(&block, 2, NOW).unwrap();
    pool.block_connected(&block, &mut ledger);
    assert!(pool.is_empty());
}

#[test]
fn invalid_and_duplicate_transactions_are_refused() {
    let (mut ledger, mut pool, genesis, owner) = setup();
    let tx = spend(&genesis, &owner, 0, 1_000, 2);
    accepted(pool.insert(tx.clone(), &mut ledger));
    assert!(matches!(
        pool.insert(tx, &mut ledger),
        Err(MempoolError::AlreadyKnown)
    ));
    let thief = spend(&genesis, &key(66), 1, 1_000, 66);
    assert!(matches!(
        pool.insert(thief, &mut ledger),
        Err(MempoolError::Invalid(TxError::BadSignature { input: 0 }))
    ));
}

#[test]
fn replace_by_fee() {
    let (mut ledger, mut pool, genesis, owner) = setup();
    let original = accepted(pool.insert(spend(&genesis, &owner, 0, 1_000, 2), &mut ledger));
    // A child of the original is replaced with it.
    let child = pay(
        &[(
            OutPoint {
                txid: original,
                index: 0,
            },
            Amount::from_units(EACH - 1_000),
            &key(2),
        )],
        &key(3),
        Amount::from_units(EACH - 2_000),
    );
    let child = accepted(pool.insert(child, &mut ledger));

    // More than the two it evicts together, but not their fees plus the relay of its own bytes.
    let cheap = spend(&genesis, &owner, 0, 2_050, 4);
    assert!(matches!(
        pool.insert(cheap, &mut ledger),
        Err(MempoolError::ReplacementTooCheap { .. })
    ));
    assert!(pool.contains(&original) && pool.contains(&child));

    let rich = spend(&genesis, &owner, 0, 5_000, 4);
    match pool.insert(rich, &mut ledger).unwrap() {
        Inserted::Accepted { replaced, .. } => {
            assert_eq!(replaced.len(), 2);
            assert!(replaced.contains(&original) && replaced.contains(&child));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.len(), 1);
}

#[test]
fn size_cap_evicts_the_lowest_fee_rate() {
    let (mut ledger, _, genesis, owner) = setup();
    let one = Transaction::from(spend(&genesis, &owner, 0, 1_000, 2)).encoded_len();
    let mut pool = Mempool::new(MempoolConfig {
        max_bytes: 3 * one,
        ..MempoolConfig::default()
    });
    let ids: Vec<TxId> = [4_000, 1_000, 3_000]
        .iter()
        .enumerate()
        .map(|(i, fee)| accepted(pool.insert(spend(&genesis, &owner, i, *fee, 2), &mut ledger)))
        .collect();
    // A better payer pushes out the worst.
    match pool
        .insert(spend(&genesis, &owner, 3, 5_000, 2), &mut ledger)
        .unwrap()
    {
        Inserted::Accepted { evicted, .. } => assert_eq!(evicted, vec![ids[1]]),
        other => panic!("{other:?}"),
    }
    // A worse payer is refused.
    assert!(matches!(
        pool.insert(spend(&genesis, &owner, 4, 500, 2), &mut ledger),
        Err(MempoolError::Full)
    ));
    assert!(pool.bytes() <= 3 * one);
}

#[test]
fn a_replacement_the_size_cap_would_evict_changes_nothing() {
    let (mut ledger, _, genesis, owner) = setup();
    let one = Transaction::from(spend(&genesis, &owner, 0, 1_000, 2)).encoded_len();
    let mut pool = Mempool::new(MempoolConfig {
        max_bytes: 3 * one,
        ..MempoolConfig::default()
    });
    // P pays the least and is the lowest fee rate; A is what the replacement replaces.
    let parent = spend(&genesis, &owner, 0, 1_000, 2);
    let parent_id = accepted(pool.insert(parent, &mut ledger));
    let a = accepted(pool.insert(spend(&genesis, &owner, 1, 3_000, 5), &mut ledger));
    accepted(pool.insert(spend(&genesis, &owner, 2, 4_000, 2), &mut ledger));
    // R spends P's output and A's coin, paying well: it replaces A, but at two inputs it needs more
    // room than A left, and the lowest fee rate to evict for it is its own parent.
    let from_parent = OutPoint {
        txid: parent_id,
        index: 0,
    };
    let coin = outpoints(&genesis.txs[0])[1];
    let r = pay(
        &[
            (from_parent, Amount::from_units(EACH - 1_000), &key(2)),
            (coin, Amount::from_units(EACH), &owner),
        ],
        &key(6),
        Amount::from_units(2 * EACH - 1_000 - 50_000),
    );
    assert!(matches!(pool.insert(r, &mut ledger), Err(MempoolError::Full)));
    // Refused, and nothing changed: A and P are still there.
    assert!(pool.contains(&a) && pool.contains(&parent_id));
    assert_eq!(pool.len(), 3);
}

#[test]
fn orphans_wait_for_their_parent() {
    let (mut ledger, mut pool, genesis, owner) = setup();
    let parent = spend(&genesis, &owner, 0, 1_000, 2);
    let parent_id = txid(&parent);
    let child = pay(
        &[(
            OutPoint {
                txid: parent_id,
                index: 0,
            },
            Amount::from_units(EACH - 1_000),
            &key(2),
        )],
        &key(3),
        Amount::from_units(EACH - 3_000),
    );
    let child_id = txid(&child);
    assert_eq!(
        pool.insert(child, &mut ledger).unwrap(),
        Inserted::Orphan { txid: child_id }
    );
    assert!(pool.contains_orphan(&child_id) && !pool.contains(&child_id));
    match pool.insert(parent, &mut ledger).unwrap() {
        Inserted::Accepted { adopted, .. } => assert_eq!(adopted, vec![child_id]),
        other => panic!("{other:?}"),
    }
    assert!(pool.contains(&child_id) && pool.orphan_count() == 0);
    // The child pays a higher rate but comes after its parent.
    let template = pool.block_template(usize::MAX);
    assert_eq!(
        template.txs.iter().map(txid).collect::<Vec<_>>(),
        vec![parent_id, child_id]
    );
}

#[test]
fn orphan_pool_is_bounded() {
    let (mut ledger, _, _, owner) = setup();
    let mut pool = Mempool::new(MempoolConfig {
        max_orphans: 3,
        ..MempoolConfig::default()
    });
    for i in 0..10u32 {
        let missing = OutPoint {
            txid: meshwork_identity::Hash::digest(&i.to_le_bytes()),
            index: 0,
        };
        pool.insert(
            pay(
                &[(missing, Amount::from_units(1_000), &owner)],
                &key(2),
                Amount::from_units(1),
            ),
            &mut ledger,
        )
        .unwrap();
    }
    assert_eq!(pool.orphan_count(), 3);
}

#[test]
fn blocks_remove_confirmed_and_conflicting_and_disconnects_give_them_back() {
    let (mut ledger, mut pool, genesis, owner) = setup();
    let confirmed = spend(&genesis, &owner, 0, 1_000, 2);
    let in_pool_conflict = spend(&genesis, &owner, 1, 1_000, 2);
    let block_conflict = spend(&genesis, &owner, 1, 2_000, 3);
    let untouched = spend(&genesis, &owner, 2, 1_000, 2);
    for tx in [&confirmed, &in_pool_conflict, &untouched] {
        accepted(pool.insert(tx.clone(), &mut ledger));
    }
    let subsidy = ledger
        .config()
        .subsidy(1)
        .checked_add(Amount::from_units(3_000))
        .unwrap();
    let block = child_block(
        &genesis.header,
        &key(9),
        subsidy,
        vec![confirmed.clone().into(), block_conflict.clone().into()],
    );
    ledger.connect_block(&block, 2, NOW).unwrap();
    let dropped = pool.block_connected(&block, &mut ledger);
    assert_eq!(dropped, vec![txid(&in_pool_conflict)]);
    assert_eq!(pool.len(), 1);
    assert!(pool.contains(&txid(&untouched)));

    let disconnected = ledger.disconnect_tip().unwrap();
    let readded = pool.block_disconnected(&disconnected, &mut ledger);
    assert_eq!(readded, vec![txid(&confirmed), txid(&block_conflict)]);
    assert_eq!(pool.len(), 3);
}
