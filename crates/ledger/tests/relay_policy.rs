//! What relaying costs: the minimum relay fee, replacement (BIP125 rules 3 to 5), Bitcoin Core's package
//! limits, and orphans held to every rule that needs no parent, in a pool bounded in bytes.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should stop loudly

use meshwork_identity::{Hash, Keypair, Signature};
use meshwork_ledger::mempool::Inserted;
use meshwork_ledger::testkit::{GENESIS_TIME, genesis, key, outpoints, pay};
use meshwork_ledger::{
    Amount, Block, Ledger, LedgerConfig, MemoryStore, Mempool, MempoolConfig, MempoolError, OutPoint,
    Transaction, Transfer, TxError, TxId, TxOut,
};

const NOW: u64 = GENESIS_TIME + 1_000_000;
/// Each genesis output: 0.4 coin, so 101 of them fit in the genesis subsidy.
const EACH: u64 = 40_000_000;

/// A ledger whose genesis pays `outputs` outputs of `EACH` to `key(1)`, and a pool with `config`.
fn setup(outputs: usize, config: MempoolConfig) -> (Ledger<MemoryStore>, Mempool, Block, Keypair) {
    let owner = key(1);
    let ledger_config = LedgerConfig {
        coinbase_maturity: 1,
        ..LedgerConfig::default()
    };
    let mut ledger = Ledger::new(MemoryStore::new(), ledger_config);
    let genesis = genesis(&owner, outputs, Amount::from_units(EACH));
    ledger.connect_block(&genesis, 1, NOW).unwrap();
    (ledger, Mempool::new(config), genesis, owner)
}

fn txid(tx: &Transfer) -> TxId {
    Transaction::Transfer(tx.clone()).txid()
}

fn size(tx: &Transfer) -> u64 {
    Transaction::Transfer(tx.clone()).encoded_len() as u64
}

/// Spends genesis output `i` to `key(to)`, paying `fee`.
fn spend(genesis: &Block, owner: &Keypair, i: usize, fee: u64, to: u8) -> Transfer {
    let op = outpoints(&genesis.txs[0])[i];
    pay(
        &[(op, Amount::from_units(EACH), owner)],
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

/// `tx` with input 0's signature scalar set to the group order ℓ: never valid, whatever it spends.
fn with_non_canonical_signature(mut tx: Transfer) -> Transfer {
    const GROUP_ORDER: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut inputs = tx.inputs.clone().into_inner();
    let mut bytes = *inputs[0].signature.as_bytes();
    bytes[32..].copy_from_slice(&GROUP_ORDER);
    inputs[0].signature = Signature::from_bytes(bytes);
    tx.inputs = inputs.try_into().unwrap();
    tx
}

#[test]
fn the_minimum_relay_fee_is_on_by_default() {
    let (mut ledger, mut pool, genesis, owner) = setup(3, MempoolConfig::default());
    assert_eq!(MempoolConfig::default().min_relay_fee_rate, 1);
    let bytes = size(&spend(&genesis, &owner, 0, 1_000, 2));
    // One unit short of one unit per byte.
    let short = spend(&genesis, &owner, 0, bytes - 1, 2);
    assert_eq!(size(&short), bytes);
    match pool.insert(short, &mut ledger) {
        Err(MempoolError::FeeRateTooLow { fee, size, min_fee }) => {
            assert_eq!(fee, Amount::from_units(bytes - 1));
            assert_eq!(size as u64, bytes);
            assert_eq!(min_fee, Amount::from_units(bytes));
        }
        other => panic!("expected FeeRateTooLow, got {other:?}"),
    }
    let free = spend(&genesis, &owner, 1, 0, 2);
    assert!(matches!(
        pool.insert(free, &mut ledger),
        Err(MempoolError::FeeRateTooLow { .. })
    ));
    assert!(pool.is_empty());
    // Exactly the minimum is enough.
    let exact = spend(&genesis, &owner, 0, bytes, 2);
    assert_eq!(size(&exact), bytes);
    accepted(pool.insert(exact, &mut ledger));
}

#[test]
fn a_replacement_pays_the_replaced_fees_plus_its_own_relay() {
    let (mut ledger, mut pool, genesis, owner) = setup(3, MempoolConfig::default());
    let original = accepted(pool.insert(spend(&genesis, &owner, 0, 1_000, 2), &mut ledger));
    let bytes = size(&spend(&genesis, &owner, 0, 2_000, 3));

    // The old rule's one-unit bump is refused.
    let bump = spend(&genesis, &owner, 0, 1_001, 3);
    match pool.insert(bump, &mut ledger) {
        Err(MempoolError::ReplacementTooCheap { fee, required }) => {
            assert_eq!(fee, Amount::from_units(1_001));
            assert_eq!(required, Amount::from_units(1_000 + bytes));
        }
        other => panic!("expected ReplacementTooCheap, got {other:?}"),
    }
    // One unit short of the incremental relay fee for its own bytes.
    let short = spend(&genesis, &owner, 0, 1_000 + bytes - 1, 3);
    assert_eq!(size(&short), bytes);
    assert!(matches!(
        pool.insert(short, &mut ledger),
        Err(MempoolError::ReplacementTooCheap { .. })
    ));
    assert!(pool.contains(&original) && pool.len() == 1);

    let enough = spend(&genesis, &owner, 0, 1_000 + bytes, 3);
    assert_eq!(size(&enough), bytes);
    match pool.insert(enough, &mut ledger).unwrap() {
        Inserted::Accepted { replaced, .. } => assert_eq!(replaced, vec![original]),
        other => panic!("{other:?}"),
    }
    assert!(!pool.contains(&original) && pool.len() == 1);
}

#[test]
fn a_replacement_evicts_at_most_one_hundred_transactions() {
    let (mut ledger, mut pool, genesis, owner) = setup(101, MempoolConfig::default());
    for i in 0..101 {
        accepted(pool.insert(spend(&genesis, &owner, i, 1_000, 2), &mut ledger));
    }
    // One transaction conflicting with all 101, paying far more than all of them together.
    let spends: Vec<(OutPoint, Amount, &Keypair)> = outpoints(&genesis.txs[0])
        .into_iter()
        .map(|op| (op, Amount::from_units(EACH), &owner))
        .collect();
    let sweep = pay(&spends, &key(3), Amount::from_units(EACH));
    match pool.insert(sweep, &mut ledger) {
        Err(MempoolError::TooManyReplacements { count, max }) => assert_eq!((count, max), (101, 100)),
        other => panic!("expected TooManyReplacements, got {other:?}"),
    }
    assert_eq!(pool.len(), 101);
}

/// A chain of `len` transactions from genesis output 0, each spending its parent's only output and
/// paying 1,000 units.
fn chain(genesis: &Block, owner: &Keypair, len: usize) -> Vec<Transfer> {
    let mut txs = Vec::with_capacity(len);
    let (mut point, mut amount) = (outpoints(&genesis.txs[0])[0], EACH);
    for _ in 0..len {
        let tx = pay(
            &[(point, Amount::from_units(amount), owner)],
            owner,
            Amount::from_units(amount - 1_000),
        );
        point = OutPoint {
            txid: txid(&tx),
            index: 0,
        };
        amount -= 1_000;
        txs.push(tx);
    }
    txs
}

#[test]
fn the_twenty_sixth_transaction_of_a_chain_is_refused() {
    let (mut ledger, mut pool, genesis, owner) = setup(1, MempoolConfig::default());
    let mut txs = chain(&genesis, &owner, 26);
    let last = txs.pop().unwrap();
    for tx in txs {
        accepted(pool.insert(tx, &mut ledger));
    }
    assert_eq!(pool.len(), 25);
    assert!(matches!(
        pool.insert(last.clone(), &mut ledger),
        Err(MempoolError::TooManyAncestors { max: 25 })
    ));
    assert!(!pool.contains(&txid(&last)) && !pool.contains_orphan(&txid(&last)));
}

#[test]
fn a_parent_takes_at_most_twenty_four_children() {
    let (mut ledger, mut pool, genesis, owner) = setup(1, MempoolConfig::default());
    // A parent with 25 outputs.
    let each = EACH / 25 - 1_000;
    let outputs = vec![
        TxOut {
            amount: Amount::from_units(each),
            owner: owner.peer_id(),
        };
        25
    ];
    let op = outpoints(&genesis.txs[0])[0];
    let parent = Transfer::signed(&[(op, Amount::from_units(EACH), &owner)], outputs);
    let parent_id = accepted(pool.insert(parent, &mut ledger));
    let child = |i: u32| {
        let point = OutPoint {
            txid: parent_id,
            index: i,
        };
        pay(
            &[(point, Amount::from_units(each), &owner)],
            &key(2),
            Amount::from_units(each - 1_000),
        )
    };
    for i in 0..24 {
        accepted(pool.insert(child(i), &mut ledger));
    }
    match pool.insert(child(24), &mut ledger) {
        Err(MempoolError::TooManyDescendants { ancestor, max }) => {
            assert_eq!((ancestor, max), (parent_id, 25));
        }
        other => panic!("expected TooManyDescendants, got {other:?}"),
    }
    assert_eq!(pool.len(), 25);
}

#[test]
fn a_chain_heavier_than_its_byte_limit_is_refused() {
    let config = MempoolConfig::default();
    let (_, _, genesis, owner) = setup(1, config.clone());
    let txs = chain(&genesis, &owner, 3);
    let two = (size(&txs[0]) + size(&txs[1])) as usize;
    let config = MempoolConfig {
        max_ancestor_bytes: two,
        ..config
    };
    let (mut ledger, mut pool, _, _) = setup(1, config);
    accepted(pool.insert(txs[0].clone(), &mut ledger));
    accepted(pool.insert(txs[1].clone(), &mut ledger));
    assert!(matches!(
        pool.insert(txs[2].clone(), &mut ledger),
        Err(MempoolError::AncestorsTooLarge { max }) if max == two
    ));
}

#[test]
fn an_orphan_with_a_malformed_signature_is_refused_before_it_is_held() {
    let (mut ledger, mut pool, _, owner) = setup(1, MempoolConfig::default());
    let missing = OutPoint {
        txid: Hash::digest(b"no such parent"),
        index: 0,
    };
    let orphan = pay(
        &[(missing, Amount::from_coins(1), &owner)],
        &key(2),
        Amount::from_units(1),
    );
    let bad = with_non_canonical_signature(orphan.clone());
    assert!(matches!(
        pool.insert(bad, &mut ledger),
        Err(MempoolError::Invalid(TxError::MalformedSignature { input: 0 }))
    ));
    // A malformed orphan is also refused (two inputs spending the same missing outpoint).
    let twice = pay(
        &[
            (missing, Amount::from_coins(1), &owner),
            (missing, Amount::from_coins(1), &owner),
        ],
        &key(2),
        Amount::from_units(1),
    );
    assert!(matches!(
        pool.insert(twice, &mut ledger),
        Err(MempoolError::Invalid(TxError::DuplicateInput { .. }))
    ));
    assert_eq!((pool.orphan_count(), pool.orphan_bytes()), (0, 0));
    // The well-formed one waits.
    assert!(matches!(
        pool.insert(orphan, &mut ledger),
        Ok(Inserted::Orphan { .. })
    ));
    assert_eq!(pool.orphan_count(), 1);
}

#[test]
fn an_orphan_signed_over_a_wrong_amount_is_dropped_when_its_parent_arrives() {
    // Its signatures commit to the parent's output, so they can only be checked once it is known.
    let (mut ledger, mut pool, genesis, owner) = setup(1, MempoolConfig::default());
    let parent = spend(&genesis, &owner, 0, 1_000, 2);
    let point = OutPoint {
        txid: txid(&parent),
        index: 0,
    };
    // The parent's output holds EACH - 1,000; the child's signer was told EACH.
    let child = pay(
        &[(point, Amount::from_units(EACH), &key(2))],
        &key(3),
        Amount::from_units(EACH - 5_000),
    );
    let child_id = txid(&child);
    assert!(matches!(
        pool.insert(child, &mut ledger),
        Ok(Inserted::Orphan { .. })
    ));
    match pool.insert(parent, &mut ledger).unwrap() {
        Inserted::Accepted { adopted, .. } => assert!(adopted.is_empty()),
        other => panic!("{other:?}"),
    }
    assert!(!pool.contains(&child_id) && !pool.contains_orphan(&child_id));
    assert_eq!(pool.len(), 1);
}

#[test]
fn the_orphan_pool_is_bounded_in_bytes() {
    let (mut ledger, _, _, owner) = setup(1, MempoolConfig::default());
    let orphan = |i: u32| {
        let missing = OutPoint {
            txid: Hash::digest(&i.to_le_bytes()),
            index: 0,
        };
        pay(
            &[(missing, Amount::from_coins(1), &owner)],
            &key(2),
            Amount::from_units(1),
        )
    };
    let one = size(&orphan(0)) as usize;
    let mut pool = Mempool::new(MempoolConfig {
        max_orphan_bytes: 2 * one + one / 2,
        ..MempoolConfig::default()
    });
    let ids: Vec<TxId> = (0..5).map(|i| txid(&orphan(i))).collect();
    for i in 0..5 {
        assert!(matches!(
            pool.insert(orphan(i), &mut ledger),
            Ok(Inserted::Orphan { .. })
        ));
        assert!(pool.orphan_bytes() <= 2 * one + one / 2);
    }
    // The two newest are held.
    assert_eq!(pool.orphan_count(), 2);
    assert!(pool.contains_orphan(&ids[3]) && pool.contains_orphan(&ids[4]));

    // An orphan larger than the whole orphan pool is refused.
    let mut tiny = Mempool::new(MempoolConfig {
        max_orphan_bytes: one - 1,
        ..MempoolConfig::default()
    });
    assert!(matches!(
        tiny.insert(orphan(9), &mut ledger),
        Err(MempoolError::OrphanTooLarge { .. })
    ));
    assert_eq!(tiny.orphan_count(), 0);
}

#[test]
fn policy_refusals_are_not_invalid() {
    // A relaying peer is blamed for `Invalid` alone: fees and limits depend on the pool, which differs
    // between honest nodes.
    let (mut ledger, mut pool, genesis, owner) = setup(1, MempoolConfig::default());
    let error = pool
        .insert(spend(&genesis, &owner, 0, 0, 2), &mut ledger)
        .unwrap_err();
    assert!(!matches!(error, MempoolError::Invalid(_)) && !error.is_missing_data());
}

#[test]
fn a_transaction_the_policy_refuses_costs_no_signature_verification() {
    let (mut ledger, mut pool, genesis, owner) = setup(1, MempoolConfig::default());
    // A thief's zero-fee spend: refused for its fee, before its signature is looked at.
    let thief = spend(&genesis, &key(66), 0, 0, 66);
    assert!(matches!(
        pool.insert(thief, &mut ledger),
        Err(MempoolError::FeeRateTooLow { .. })
    ));
    // An honest zero-fee spend is refused the same way, and its signatures were not verified (the
    // cache, which records every verified transaction, does not know it).
    let free = spend(&genesis, &owner, 0, 0, 2);
    assert!(matches!(
        pool.insert(free.clone(), &mut ledger),
        Err(MempoolError::FeeRateTooLow { .. })
    ));
    assert!(!ledger.sig_cache().contains(&txid(&free)));
    let paid = spend(&genesis, &owner, 0, 1_000, 2);
    accepted(pool.insert(paid.clone(), &mut ledger));
    assert!(ledger.sig_cache().contains(&txid(&paid)));
}
