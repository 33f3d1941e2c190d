//! Golden vectors: the exact bytes of a transaction, a header and a block, and the digest a transaction's
//! inputs sign (which commits to the spent outputs since sighash v2).
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should stop loudly

use meshwork_identity::Hash;
use meshwork_ledger::testkit::{block_on, coinbase, key, pay};
use meshwork_ledger::{Amount, Block, BlockHeader, OutPoint, Transaction, TxOut};
use meshwork_wire::golden;

/// The output the golden transfer spends: 1,500 units owned by `key(1)`.
fn spent() -> TxOut {
    TxOut {
        amount: Amount::from_units(1_500),
        owner: key(1).peer_id(),
    }
}

fn transfer() -> Transaction {
    let prevout = OutPoint {
        txid: Hash::from_bytes([0x11; 32]),
        index: 3,
    };
    pay(
        &[(prevout, spent().amount, &key(1))],
        &key(2),
        Amount::from_units(1_000),
    )
    .into()
}

fn header() -> BlockHeader {
    BlockHeader {
        version: 1,
        parent: Hash::from_bytes([0x22; 32]),
        merkle_root: Hash::from_bytes([0x33; 32]),
        timestamp: 1_700_000_000,
        target: 0x1d00_ffff,
        nonce: 42,
        height: 7,
    }
}

fn block() -> Block {
    block_on(
        Some(&header()),
        1_700_000_060,
        vec![coinbase(8, &key(3), Amount::from_coins(50)), transfer()],
    )
}

const TX: &str = "010111111111111111111111111111111111111111111111111111111111111111110351e8cf9e0ecb08d9b304f002113128f2aeb5c0c764acba9cf0ac99ce06e660f223a819b4d7b7fc856948e6431aa1dabeff11cdcb0d9ede684b9740ef167db60101e8078139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394";
const SIGHASH: &str = "458c4eb36456c472bcb425b3e2a0a89e50863e8e14a387a750d3fc73b9438942";
const HEADER: &str = "012222222222222222222222222222222222222222222222222222222222222222333333333333333333333333333333333333333333333333333333333333333380e2cfaa06ffff83e8012a07";
const BLOCK: &str = "01d36f45d460868b1061ff1a63d63b7f0133f45fb57a3fbdcb2ac5eb0bc4d79d93010406e29436ae1b6e4ea7f5afa9671611de66e121e959bdbbf50b6a51261e2bbce2cfaa06ffffff830200080200080180e497d012ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d100010111111111111111111111111111111111111111111111111111111111111111110351e8cf9e0ecb08d9b304f002113128f2aeb5c0c764acba9cf0ac99ce06e660f223a819b4d7b7fc856948e6431aa1dabeff11cdcb0d9ede684b9740ef167db60101e8078139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394";

#[test]
fn transaction_golden() {
    golden::check(&transfer(), TX);
    // The id (and through it the hash domain) is pinned too.
    assert_eq!(
        transfer().txid().to_string(),
        "4e4a3cbda11244913d163a8c8b9ade9ec976ea2a1bc933aa129a80215937cb61"
    );
}

#[test]
fn sighash_golden() {
    let Transaction::Transfer(transfer) = transfer() else {
        unreachable!("pay builds a transfer")
    };
    assert_eq!(transfer.sighash(&[spent()]).to_string(), SIGHASH);
    // The digest changes with the spent amount: a signer told another amount signs another message.
    let mut lie = spent();
    lie.amount = Amount::from_units(1_501);
    assert_ne!(transfer.sighash(&[lie]).to_string(), SIGHASH);
}

#[test]
fn header_golden() {
    golden::check(&header(), HEADER);
}

#[test]
fn block_golden() {
    golden::check(&block(), BLOCK);
    assert_eq!(
        block().id().to_string(),
        "eae9dd14d59e6770f09eb86e8af607bf8764dba03a7d46b3ed6e0b8dcd51a177"
    );
}

#[test]
fn trailing_bytes_and_over_long_collections_are_refused() {
    let mut bytes = meshwork_wire::encode(&block()).unwrap();
    bytes.push(0);
    assert!(meshwork_wire::decode::<Block>(&bytes).is_err());
    // A transfer announcing more than MAX_INPUTS inputs: tag 1, then a varint of 1025.
    assert!(meshwork_wire::decode::<Transaction>(&[0x01, 0x81, 0x08]).is_err());
}
