//! Every rule violation is rejected with its own error variant.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should stop loudly

use meshwork_identity::Keypair;
use meshwork_ledger::testkit::{
    BLOCK_INTERVAL, GENESIS_TIME, block_on, child_block, coinbase, fix_merkle_root, genesis, key, outpoints,
    pay,
};
use meshwork_ledger::{
    Amount, Block, BlockError, Ledger, LedgerConfig, MemoryStore, OutPoint, Transaction, Transfer, TxError,
    TxOut,
};

const NOW: u64 = GENESIS_TIME + 1_000_000;

fn config() -> LedgerConfig {
    LedgerConfig {
        coinbase_maturity: 1,
        ..LedgerConfig::default()
    }
}

/// A ledger with a genesis of 10 outputs of 5 coins owned by `key(1)`.
fn setup() -> (Ledger<MemoryStore>, Block, Keypair) {
    let owner = key(1);
    let mut ledger = Ledger::new(MemoryStore::new(), config());
    let genesis = genesis(&owner, 10, Amount::from_coins(5));
    ledger.connect_block(&genesis, 1, NOW).unwrap();
    (ledger, genesis, owner)
}

fn subsidy() -> Amount {
    config().subsidy(1)
}

fn tx_error(result: Result<meshwork_ledger::BlockUndo, BlockError>) -> TxError {
    match result {
        Err(BlockError::Tx { error, .. }) => error,
        other => panic!("expected a transaction error, got {other:?}"),
    }
}

#[test]
fn a_valid_block_connects() {
    let (mut ledger, genesis, owner) = setup();
    let spend = pay(
        &[(outpoints(&genesis.txs[0])[0], Amount::from_coins(5), &owner)],
        &key(2),
        Amount::from_coins(4),
    );
    let fee = Amount::from_coins(1);
    let block = child_block(
        &genesis.header,
        &key(9),
        subsidy().checked_add(fee).unwrap(),
        vec![spend.into()],
    );
    ledger.connect_block(&block, 2, NOW).unwrap();
    assert_eq!(ledger.tip().unwrap().unwrap().height, 1);
}

#[test]
fn signature_by_the_wrong_key_is_rejected() {
    let (mut ledger, genesis, _owner) = setup();
    let thief = key(66);
    let spend = pay(
        &[(outpoints(&genesis.txs[0])[0], Amount::from_coins(5), &thief)],
        &thief,
        Amount::from_coins(5),
    );
    let block = child_block(&genesis.header, &key(9), subsidy(), vec![spend.into()]);
    assert_eq!(
        tx_error(ledger.connect_block(&block, 2, NOW)),
        TxError::BadSignature { input: 0 }
    );
}

#[test]
fn a_signature_from_another_transaction_is_rejected() {
    let (mut ledger, genesis, owner) = setup();
    let ops = outpoints(&genesis.txs[0]);
    let honest = pay(
        &[(ops[0], Amount::from_coins(5), &owner)],
        &key(2),
        Amount::from_coins(5),
    );
    let mut forged = pay(
        &[(ops[0], Amount::from_coins(5), &owner)],
        &key(3),
        Amount::from_coins(5),
    );
    let mut inputs = forged.inputs.clone().into_inner();
    inputs[0].signature = honest.inputs[0].signature;
    forged.inputs = inputs.try_into().unwrap();
    let block = child_block(&genesis.header, &key(9), subsidy(), vec![forged.into()]);
    assert!(matches!(
        tx_error(ledger.connect_block(&block, 2, NOW)),
        TxError::BadSignature { input: 0 }
    ));
}

#[test]
fn double_spends_are_rejected() {
    let (mut ledger, genesis, owner) = setup();
    let op = outpoints(&genesis.txs[0])[0];
    let first = pay(
        &[(op, Amount::from_coins(5), &owner)],
        &key(2),
        Amount::from_coins(5),
    );
    let second = pay(
        &[(op, Amount::from_coins(5), &owner)],
        &key(3),
        Amount::from_coins(5),
    );

    // Twice in one block.
    let both = child_block(
        &genesis.header,
        &key(9),
        subsidy(),
        vec![first.clone().into(), second.clone().into()],
    );
    assert!(matches!(
        ledger.connect_block(&both, 2, NOW),
        Err(BlockError::DoubleSpendInBlock { index: 2, outpoint }) if outpoint == op
    ));

    // Twice in one transaction.
    let twice = pay(
        &[
            (op, Amount::from_coins(5), &owner),
            (op, Amount::from_coins(5), &owner),
        ],
        &key(2),
        Amount::from_coins(5),
    );
    let block = child_block(&genesis.header, &key(9), subsidy(), vec![twice.into()]);
    assert_eq!(
        tx_error(ledger.connect_block(&block, 2, NOW)),
        TxError::DuplicateInput { outpoint: op }
    );

    // Across blocks.
    let block1 = child_block(&genesis.header, &key(9), subsidy(), vec![first.into()]);
    ledger.connect_block(&block1, 2, NOW).unwrap();
    let block2 = child_block(&block1.header, &key(9), subsidy(), vec![second.into()]);
    let err = ledger.connect_block(&block2, 3, NOW).unwrap_err();
    assert!(matches!(err, BlockError::MissingOrSpentInput { index: 1, outpoint } if outpoint == op));
    assert!(err.is_invalid() && !err.is_missing_data());
}

#[test]
fn overspend_is_rejected() {
    let (mut ledger, genesis, owner) = setup();
    let spend = pay(
        &[(outpoints(&genesis.txs[0])[0], Amount::from_coins(5), &owner)],
        &key(2),
        Amount::from_coins(6),
    );
    let block = child_block(&genesis.header, &key(9), subsidy(), vec![spend.into()]);
    assert_eq!(
        tx_error(ledger.connect_block(&block, 2, NOW)),
        TxError::Overspend {
            inputs: Amount::from_coins(5),
            outputs: Amount::from_coins(6)
        }
    );
}

#[test]
fn oversized_block_is_rejected() {
    let owner = key(1);
    let small = LedgerConfig {
        max_block_bytes: 300,
        ..config()
    };
    let mut ledger = Ledger::new(MemoryStore::new(), small);
    let genesis = genesis(&owner, 10, Amount::from_coins(5));
    assert!(matches!(
        ledger.connect_block(&genesis, 1, NOW),
        Err(BlockError::TooLarge { max: 300, .. })
    ));
}

#[test]
fn duplicating_the_last_transaction_is_caught_by_the_merkle_root() {
    let (mut ledger, genesis, owner) = setup();
    let spend = pay(
        &[(outpoints(&genesis.txs[0])[0], Amount::from_coins(5), &owner)],
        &key(2),
        Amount::from_coins(5),
    );
    let block = child_block(&genesis.header, &key(9), subsidy(), vec![spend.into()]);
    let mut mutated = block.clone();
    let mut txs = mutated.txs.clone().into_inner();
    txs.push(txs.last().unwrap().clone());
    mutated.txs = txs.try_into().unwrap();
    assert_eq!(mutated.id(), block.id(), "same header");
    assert!(matches!(
        ledger.connect_block(&mutated, 2, NOW),
        Err(BlockError::BadMerkleRoot { .. })
    ));
    // The genuine block is still fine afterwards.
    ledger.connect_block(&block, 2, NOW).unwrap();
}

#[test]
fn coinbase_rules() {
    let (mut ledger, genesis, _) = setup();
    let greedy = child_block(
        &genesis.header,
        &key(9),
        Amount::from_units(subsidy().units() + 1),
        vec![],
    );
    assert!(matches!(
        ledger.connect_block(&greedy, 2, NOW),
        Err(BlockError::CoinbaseTooLarge { .. })
    ));

    let mut wrong_height = child_block(&genesis.header, &key(9), subsidy(), vec![]);
    let mut txs = wrong_height.txs.clone().into_inner();
    txs[0] = coinbase(7, &key(9), subsidy());
    wrong_height.txs = txs.try_into().unwrap();
    fix_merkle_root(&mut wrong_height);
    assert!(matches!(
        ledger.connect_block(&wrong_height, 2, NOW),
        Err(BlockError::BadCoinbaseHeight { expected: 1, got: 7 })
    ));

    let no_coinbase = block_on(Some(&genesis.header), GENESIS_TIME + 60, vec![]);
    assert!(matches!(
        ledger.connect_block(&no_coinbase, 2, NOW),
        Err(BlockError::MissingCoinbase)
    ));

    let two = child_block(
        &genesis.header,
        &key(9),
        subsidy(),
        vec![coinbase(1, &key(8), Amount::ZERO)],
    );
    assert!(matches!(
        ledger.connect_block(&two, 2, NOW),
        Err(BlockError::ExtraCoinbase { index: 1 })
    ));
}

#[test]
fn coinbase_maturity() {
    let owner = key(1);
    let mut ledger = Ledger::new(MemoryStore::new(), LedgerConfig::default());
    let genesis = genesis(&owner, 1, Amount::from_coins(50));
    ledger.connect_block(&genesis, 1, NOW).unwrap();
    let spend = pay(
        &[(outpoints(&genesis.txs[0])[0], Amount::from_coins(50), &owner)],
        &key(2),
        Amount::from_coins(50),
    );
    let block = child_block(
        &genesis.header,
        &key(9),
        Amount::from_coins(50),
        vec![spend.into()],
    );
    let error = tx_error(ledger.connect_block(&block, 2, NOW));
    assert!(matches!(
        error,
        TxError::ImmatureCoinbase {
            created: 0,
            spendable: 100,
            ..
        }
    ));
    // A loose transaction failing so may become valid as the chain grows: not held against its
    // relay, nor missing data to wait for.
    assert!(error.may_become_valid() && !error.is_missing_data());
    let loose = meshwork_ledger::MempoolError::Invalid(error);
    assert!(!loose.is_invalid() && !loose.is_missing_data());
    let forged = meshwork_ledger::MempoolError::Invalid(TxError::BadSignature { input: 0 });
    assert!(forged.is_invalid());
}

#[test]
fn transaction_shape_rules() {
    let (mut ledger, genesis, owner) = setup();
    let op = outpoints(&genesis.txs[0])[0];
    let cases: Vec<(Transfer, TxError)> = vec![
        (
            Transfer::signed(
                &[],
                vec![TxOut {
                    amount: Amount::ZERO,
                    owner: owner.peer_id(),
                }],
            ),
            TxError::NoInputs,
        ),
        (
            Transfer::signed(&[(op, Amount::from_coins(5), &owner)], vec![]),
            TxError::NoOutputs,
        ),
        (
            Transfer::signed(
                &[(op, Amount::from_coins(5), &owner)],
                vec![TxOut {
                    amount: Amount::from_units(u64::MAX),
                    owner: owner.peer_id(),
                }],
            ),
            TxError::AmountOutOfRange,
        ),
    ];
    for (tx, expected) in cases {
        let block = child_block(&genesis.header, &key(9), subsidy(), vec![tx.into()]);
        assert_eq!(tx_error(ledger.connect_block(&block, 2, NOW)), expected);
    }
}

#[test]
fn header_rules_and_missing_data() {
    let (mut ledger, genesis, _) = setup();
    let block = child_block(&genesis.header, &key(9), subsidy(), vec![]);

    let mut orphan = block.clone();
    orphan.header.parent = meshwork_identity::Hash::digest(b"nowhere");
    let err = ledger.connect_block(&orphan, 2, NOW).unwrap_err();
    assert!(matches!(err, BlockError::UnknownParent { .. }));
    assert!(err.is_missing_data() && !err.is_invalid());

    let mut bad_height = block.clone();
    bad_height.header.height = 5;
    assert!(matches!(
        ledger.connect_block(&bad_height, 2, NOW),
        Err(BlockError::BadHeight { expected: 1, got: 5 })
    ));

    let mut old = block.clone();
    old.header.timestamp = GENESIS_TIME;
    assert!(matches!(
        ledger.connect_block(&old, 2, NOW),
        Err(BlockError::TimestampTooOld { .. })
    ));

    let early_now = GENESIS_TIME + BLOCK_INTERVAL - config().max_future_secs - 1;
    assert!(matches!(
        ledger.connect_block(&block, 2, early_now),
        Err(BlockError::TimestampTooFarAhead { .. })
    ));

    ledger.connect_block(&block, 2, NOW).unwrap();
    let sibling = child_block(&genesis.header, &key(8), subsidy(), vec![]);
    assert!(matches!(
        ledger.connect_block(&sibling, 2, NOW),
        Err(BlockError::NotOnTip { .. })
    ));
    let err = ledger.connect_block(&sibling, 2, NOW).unwrap_err();
    assert!(!err.is_invalid() && !err.is_missing_data());
}

#[test]
fn a_loose_transaction_with_an_unknown_input_is_missing_data() {
    let (mut ledger, _, owner) = setup();
    let unknown = OutPoint {
        txid: meshwork_identity::Hash::digest(b"future"),
        index: 0,
    };
    let tx = pay(
        &[(unknown, Amount::from_coins(5), &owner)],
        &key(2),
        Amount::from_coins(1),
    );
    let err = ledger
        .check_transfer(&tx, &std::collections::HashMap::new())
        .unwrap()
        .unwrap_err();
    assert!(err.is_missing_data());
    let as_tx: Transaction = tx.into();
    assert!(!ledger.sig_cache().contains(&as_tx.txid()));
}

#[test]
fn a_block_may_be_dated_at_the_median_time_past_only_where_the_network_allows_it() {
    // The genesis block is the only one before: the median time past is its timestamp.
    for (may_equal, accepted) in [(false, false), (true, true)] {
        let config = LedgerConfig {
            timestamp_may_equal_median: may_equal,
            ..config()
        };
        let owner = key(1);
        let mut ledger = Ledger::new(MemoryStore::new(), config);
        let genesis = genesis(&owner, 1, Amount::from_coins(5));
        ledger.connect_block(&genesis, 1, NOW).unwrap();
        let mut block = child_block(&genesis.header, &key(9), subsidy(), vec![]);
        block.header.timestamp = genesis.header.timestamp;
        // Earlier than the median is refused either way.
        let mut earlier = block.clone();
        earlier.header.timestamp -= 1;
        assert!(matches!(
            ledger.validate_block(&earlier, NOW),
            Err(BlockError::TimestampTooOld { .. })
        ));
        let result = ledger.connect_block(&block, 2, NOW);
        assert_eq!(result.is_ok(), accepted, "{result:?}");
    }
}
