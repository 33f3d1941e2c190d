//! The signature hash commits to the spent outputs: a signer told a wrong amount (or owner) makes a
//! signature that fails, instead of a transaction that burns the difference as fee.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should stop loudly

use std::collections::HashMap;

use meshwork_identity::{Keypair, Signature};
use meshwork_ledger::testkit::{GENESIS_TIME, child_block, genesis, key, outpoints, pay};
use meshwork_ledger::{
    Amount, Block, BlockError, Ledger, LedgerConfig, MemoryStore, TX_SIGNING, Transfer, TxError, TxOut,
};

const NOW: u64 = GENESIS_TIME + 1_000_000;

/// A ledger with a genesis of 10 outputs of 5 coins owned by `key(1)`.
fn setup() -> (Ledger<MemoryStore>, Block, Keypair) {
    let owner = key(1);
    let config = LedgerConfig {
        coinbase_maturity: 1,
        ..LedgerConfig::default()
    };
    let mut ledger = Ledger::new(MemoryStore::new(), config);
    let genesis = genesis(&owner, 10, Amount::from_coins(5));
    ledger.connect_block(&genesis, 1, NOW).unwrap();
    (ledger, genesis, owner)
}

fn check(ledger: &mut Ledger<MemoryStore>, tx: &Transfer) -> Result<Amount, TxError> {
    ledger
        .check_transfer(tx, &HashMap::new())
        .unwrap()
        .map(|checked| checked.fee)
}

#[test]
fn a_signature_over_another_spent_amount_fails() {
    let (mut ledger, genesis, owner) = setup();
    let coin = outpoints(&genesis.txs[0])[0];
    // A lying backend says the 5-coin output holds 4; the wallet pays 3 and means to leave 1 of fee.
    // Under the old sighash this was a valid transaction burning 2 coins of fee.
    let lied_to = pay(
        &[(coin, Amount::from_coins(4), &owner)],
        &key(2),
        Amount::from_coins(3),
    );
    assert_eq!(
        check(&mut ledger, &lied_to),
        Err(TxError::BadSignature { input: 0 })
    );
    let block = child_block(
        &genesis.header,
        &key(9),
        ledger.config().subsidy(1),
        vec![lied_to.into()],
    );
    assert!(matches!(
        ledger.connect_block(&block, 2, NOW),
        Err(BlockError::Tx {
            error: TxError::BadSignature { input: 0 },
            ..
        })
    ));
    // Told the truth, the same payment is valid and pays the 2 coins it visibly leaves.
    let honest = pay(
        &[(coin, Amount::from_coins(5), &owner)],
        &key(2),
        Amount::from_coins(3),
    );
    assert_eq!(check(&mut ledger, &honest), Ok(Amount::from_coins(2)));
}

#[test]
fn every_input_commits_to_every_spent_output() {
    let (mut ledger, genesis, owner) = setup();
    let ops = outpoints(&genesis.txs[0]);
    // Input 1 is signed with the right amount for itself but a wrong one for input 0 (BIP341 commits
    // each input to all amounts; BIP143 would only have covered its own).
    let outputs = vec![TxOut {
        amount: Amount::from_coins(9),
        owner: key(2).peer_id(),
    }];
    let mut tx = Transfer::signed(
        &[
            (ops[0], Amount::from_coins(5), &owner),
            (ops[1], Amount::from_coins(5), &owner),
        ],
        outputs,
    );
    let lie = [
        TxOut {
            amount: Amount::from_coins(4),
            owner: owner.peer_id(),
        },
        TxOut {
            amount: Amount::from_coins(5),
            owner: owner.peer_id(),
        },
    ];
    let mut inputs = tx.inputs.clone().into_inner();
    inputs[1].signature = owner.sign(TX_SIGNING, tx.sighash(&lie).as_bytes());
    tx.inputs = inputs.try_into().unwrap();
    assert_eq!(check(&mut ledger, &tx), Err(TxError::BadSignature { input: 1 }));
    // The owners are committed too: a sighash naming another owner for input 0 does not verify.
    let mut other_owner = lie;
    other_owner[0] = TxOut {
        amount: Amount::from_coins(5),
        owner: key(7).peer_id(),
    };
    let mut inputs = tx.inputs.clone().into_inner();
    inputs[1].signature = owner.sign(TX_SIGNING, tx.sighash(&other_owner).as_bytes());
    tx.inputs = inputs.try_into().unwrap();
    assert_eq!(check(&mut ledger, &tx), Err(TxError::BadSignature { input: 1 }));
}

/// `tx` with input 0's signature scalar replaced by `s` (little-endian).
fn with_scalar(mut tx: Transfer, s: [u8; 32]) -> Transfer {
    let mut inputs = tx.inputs.clone().into_inner();
    let mut bytes = *inputs[0].signature.as_bytes();
    bytes[32..].copy_from_slice(&s);
    inputs[0].signature = Signature::from_bytes(bytes);
    tx.inputs = inputs.try_into().unwrap();
    tx
}

#[test]
fn a_signature_scalar_of_the_group_order_or_more_is_malformed() {
    let (mut ledger, genesis, owner) = setup();
    let coin = outpoints(&genesis.txs[0])[0];
    let tx = pay(
        &[(coin, Amount::from_coins(5), &owner)],
        &key(2),
        Amount::from_coins(4),
    );
    let mut order = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    for s in [order, [0xff; 32]] {
        let bad = with_scalar(tx.clone(), s);
        assert_eq!(
            check(&mut ledger, &bad),
            Err(TxError::MalformedSignature { input: 0 })
        );
    }
    // ℓ − 1 is canonical: judged by verification, where it fails as any wrong signature does.
    order[0] -= 1;
    let below = with_scalar(tx.clone(), order);
    assert_eq!(
        check(&mut ledger, &below),
        Err(TxError::BadSignature { input: 0 })
    );
    assert_eq!(check(&mut ledger, &tx), Ok(Amount::from_coins(1)));
}
