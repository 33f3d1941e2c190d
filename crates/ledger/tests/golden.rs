//! Golden vectors: the exact bytes of a transaction, a header and a block.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should stop loudly

use meshwork_identity::Hash;
use meshwork_ledger::testkit::{block_on, coinbase, key, pay};
use meshwork_ledger::{Amount, Block, BlockHeader, OutPoint, Transaction};
use meshwork_wire::golden;

fn transfer() -> Transaction {
    let prevout = OutPoint {
        txid: Hash::from_bytes([0x11; 32]),
        index: 3,
    };
    pay(&[(prevout, &key(1))], &key(2), Amount::from_units(1_000)).into()
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

const TX: &str = "01011111111111111111111111111111111111111111111111111111111111111111030dd41efb16ffaac4a273d60d50390c32506f4d855e729def549df21bcc2b973ae03248af5b34809f74fc55624a0fc08ef3967892719ed791fadd3932fdfb120801e8078139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394";
const HEADER: &str = "012222222222222222222222222222222222222222222222222222222222222222333333333333333333333333333333333333333333333333333333333333333380e2cfaa06ffff83e8012a07";
const BLOCK: &str = "01d36f45d460868b1061ff1a63d63b7f0133f45fb57a3fbdcb2ac5eb0bc4d79d933e8da3320c10eaf19dd2f0df48908fe3d7fc1e2b87bd31b097980bd844ab6945bce2cfaa06ffffff830200080200080180e497d012ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d10001011111111111111111111111111111111111111111111111111111111111111111030dd41efb16ffaac4a273d60d50390c32506f4d855e729def549df21bcc2b973ae03248af5b34809f74fc55624a0fc08ef3967892719ed791fadd3932fdfb120801e8078139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394";

#[test]
fn transaction_golden() {
    golden::check(&transfer(), TX);
    // The id (and through it the hash domain) is pinned too.
    assert_eq!(
        transfer().txid().to_string(),
        "670f479e7dcbd5d15561e2a21200879f93fca1fb7492aaa318a88c0519c6bb25"
    );
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
        "1e7990098ac6cf0864a60c31ce0162a3b2d358e0212fada9e5cf93ede5efdbff"
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
