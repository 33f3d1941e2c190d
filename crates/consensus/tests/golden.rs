//! Golden vectors: the exact bytes of every sync message (and of a BFT certificate), and the bounds the
//! decoder enforces.
#![allow(clippy::unwrap_used)]

use meshwork_consensus::sync::{
    CompactBlock, MAX_BLOCKS_PER_REQUEST, MAX_HEADERS, MAX_LOCATOR, Message, PrefilledTx, short_id,
};
use meshwork_consensus::{Certificate, Vote};
use meshwork_identity::{Hash, Keypair};
use meshwork_ledger::testkit::{block_on, coinbase, key};
use meshwork_ledger::{Amount, BlockHeader};
use meshwork_wire::{BoundedVec, golden};

fn id(byte: u8) -> Hash {
    Hash::from_bytes([byte; 32])
}

fn header() -> BlockHeader {
    BlockHeader {
        version: 1,
        parent: id(0x22),
        merkle_root: id(0x33),
        timestamp: 1_700_000_000,
        target: 0x207f_ffff,
        nonce: 42,
        height: 7,
    }
}

fn messages() -> Vec<(Message, &'static str)> {
    let block = block_on(
        Some(&header()),
        1_700_000_060,
        vec![coinbase(8, &key(3), Amount::from_coins(50))],
    );
    let coinbase = block.txs[0].clone();
    vec![
        (
            Message::Status {
                tip: id(0x11),
                height: 300,
                work: 601,
            },
            STATUS,
        ),
        (
            Message::GetHeaders {
                locator: vec![id(0x11), id(0x22)].try_into().unwrap(),
                stop: None,
            },
            GET_HEADERS,
        ),
        (
            Message::GetHeaders {
                locator: BoundedVec::new(),
                stop: Some(id(0x44)),
            },
            GET_HEADERS_STOP,
        ),
        (Message::Headers(vec![header()].try_into().unwrap()), HEADERS),
        (Message::GetBlocks(vec![id(0x55)].try_into().unwrap()), GET_BLOCKS),
        (Message::Block(block), BLOCK),
        (Message::NotFound(vec![id(0x66)].try_into().unwrap()), NOT_FOUND),
        (Message::NewTip(header()), NEW_TIP),
        (Message::GetCompactBlock(id(0x77)), GET_COMPACT_BLOCK),
        (
            Message::CompactBlock(CompactBlock {
                header: header(),
                short_ids: vec![[1, 2, 3, 4, 5, 6]].try_into().unwrap(),
                prefilled: vec![PrefilledTx {
                    index: 0,
                    tx: coinbase.clone(),
                }]
                .try_into()
                .unwrap(),
            }),
            COMPACT_BLOCK,
        ),
        (
            Message::GetBlockTxs {
                block: id(0x88),
                indexes: vec![1, 300].try_into().unwrap(),
            },
            GET_BLOCK_TXS,
        ),
        (
            Message::BlockTxs {
                block: id(0x88),
                txs: vec![coinbase].try_into().unwrap(),
            },
            BLOCK_TXS,
        ),
    ]
}

const STATUS: &str = "001111111111111111111111111111111111111111111111111111111111111111ac02d904";
const GET_HEADERS: &str = "01021111111111111111111111111111111111111111111111111111111111111111222222222222222222222222222222222222222222222222222222222222222200";
const GET_HEADERS_STOP: &str = "0100014444444444444444444444444444444444444444444444444444444444444444";
const HEADERS: &str = "0201012222222222222222222222222222222222222222222222222222222222222222333333333333333333333333333333333333333333333333333333333333333380e2cfaa06ffffff83022a07";
const GET_BLOCKS: &str = "03015555555555555555555555555555555555555555555555555555555555555555";
const BLOCK: &str = "0401cb014af779ce1e76fffe1163805a8f7021ef781790ea44bea60a114bade7b071306ac547976852cf0b1dec8fcbbb19c54f391f8e1b278fc2173c3f1f58f5cec0bce2cfaa06ffffff830200080100080180e497d012ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d100";
const NOT_FOUND: &str = "05016666666666666666666666666666666666666666666666666666666666666666";
const SHORT_ID: &str = "4f8bb8fb1bc3";
const GET_COMPACT_BLOCK: &str = "077777777777777777777777777777777777777777777777777777777777777777";
const COMPACT_BLOCK: &str = "08012222222222222222222222222222222222222222222222222222222222222222333333333333333333333333333333333333333333333333333333333333333380e2cfaa06ffffff83022a0701010203040506010000080180e497d012ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d100";
const GET_BLOCK_TXS: &str = "0988888888888888888888888888888888888888888888888888888888888888880201ac02";
const BLOCK_TXS: &str = "0a88888888888888888888888888888888888888888888888888888888888888880100080180e497d012ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d100";
const NEW_TIP: &str = "06012222222222222222222222222222222222222222222222222222222222222222333333333333333333333333333333333333333333333333333333333333333380e2cfaa06ffffff83022a07";
// The parent round and the chain joined the signed bytes with the Simplex engine (before any engine
// produced certificates): a finalization can no longer be re-pointed at another parent.
const CERTIFICATE: &str = "7777777777777777777777777777777777777777777777777777777777777777090201038a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c375d66d4b35c2ce72fd44d9df960d66a13ff8b579e184468847c27bf67089a8612ffc391e10764fe4af1bd9e47b1a114233049ffb992a81b5d929fb7385350028139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b39418d64eb3f111edeb3e7fdf2d7fa9a4f1ecaf1ada33858daeb1a8486989ac7486dc7b000d00e19ac72d24a16192e8ddcd4cae45d5288bcf1adc9102c4c6bb0e0eed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1a15d1e017e15d1b496702391469b678655e63d107676f94736d98fce03cb4348585f8ef3abef66a4360264c57546a461f1353fcb1d562971730b0280d141ab06";

#[test]
fn every_sync_message_has_pinned_bytes() {
    for (msg, hex) in messages() {
        golden::check(&msg, hex);
    }
}

#[test]
fn short_ids_are_pinned() {
    // Both ends of a compact block must compute the same six bytes.
    assert_eq!(hex::encode(short_id(&id(0x01), &id(0x02))), SHORT_ID);
}

#[test]
fn a_certificate_has_pinned_bytes_and_verifies() {
    golden::check(&certificate(), CERTIFICATE);
    let validators: Vec<_> = [1u8, 2, 3, 4]
        .iter()
        .map(|i| Keypair::from_seed([*i; 32]).peer_id())
        .collect();
    assert_eq!(certificate().verify(&id(0x01), &validators), Ok(()));
}

#[test]
fn the_decoder_enforces_every_bound_and_refuses_trailing_bytes() {
    // Tag, then a length one above each bound (postcard varints).
    let varint = |n: usize| {
        let mut bytes = Vec::new();
        let mut n = n as u64;
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                bytes.push(byte);
                return bytes;
            }
            bytes.push(byte | 0x80);
        }
    };
    for (tag, bound) in [
        (1u8, MAX_LOCATOR),
        (2, MAX_HEADERS),
        (3, MAX_BLOCKS_PER_REQUEST),
        (5, MAX_BLOCKS_PER_REQUEST),
    ] {
        let mut bytes = vec![tag];
        bytes.extend(varint(bound + 1));
        assert!(meshwork_wire::decode::<Message>(&bytes).is_err(), "tag {tag}");
    }
    // `GetBlockTxs`: a block id, then one position more than a block may hold.
    let mut bytes = vec![9];
    bytes.extend([0x88; 32]);
    bytes.extend(varint(meshwork_ledger::MAX_BLOCK_TXS + 1));
    assert!(meshwork_wire::decode::<Message>(&bytes).is_err(), "positions");
    let mut bytes = meshwork_wire::encode(&Message::NewTip(header())).unwrap();
    bytes.push(0);
    assert!(meshwork_wire::decode::<Message>(&bytes).is_err());
    assert!(
        meshwork_wire::decode::<Message>(&[11]).is_err(),
        "unknown variant"
    );
}

fn certificate() -> Certificate {
    let block = id(0x77);
    let votes: Vec<Vote> = [1u8, 2, 3]
        .iter()
        .map(|i| Certificate::sign_vote(&Keypair::from_seed([*i; 32]), &id(0x01), &block, 9, 2, 1))
        .collect();
    Certificate {
        block,
        height: 9,
        round: 2,
        parent_round: 1,
        votes: votes.try_into().unwrap(),
    }
}
