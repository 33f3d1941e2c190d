//! Sync messages: hostile bytes decode without panicking (within bounds, canonically), and whatever
//! decodes, fed to a `ChainSync` holding a small chain, never panics nor lowers the work of its tip.
//! Inputs that are not one message are read as up to eight `u16`-length-prefixed messages, so the fuzzer
//! can reach states that take a conversation (headers, then blocks).
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use meshwork_consensus::pow::mine;
use meshwork_consensus::sync::{ChainSync, Message};
use meshwork_consensus::{Chain, ChainConfig, SyncConfig, genesis_block};
use meshwork_identity::Keypair;
use meshwork_ledger::{Block, MemoryStore};
use meshwork_wire::{Input, Instant, Protocol, decode, encode};

/// A regtest chain of twenty blocks, built once and cloned per input.
static CHAIN: LazyLock<(MemoryStore, Block, u64)> = LazyLock::new(|| {
    let config = ChainConfig::regtest();
    let genesis = genesis_block(&config);
    let mut now = genesis.header.timestamp;
    let mut chain = Chain::open(MemoryStore::new(), config, genesis.clone(), now).expect("genesis");
    let miner = Keypair::from_seed([1; 32]).peer_id();
    for _ in 0..20 {
        now += 60;
        let mut block = chain.block_template(miner, now).expect("template");
        block.header = mine(block.header, 1, 1 << 20).expect("easy target");
        chain.submit_block(block, now).expect("memory store");
    }
    (chain.into_store(), genesis, now)
});

fn messages(data: &[u8]) -> Vec<Message> {
    if let Ok(msg) = decode::<Message>(data) {
        assert_eq!(
            encode(&msg).expect("a decoded message encodes"),
            data,
            "non-canonical encoding"
        );
        return vec![msg];
    }
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() < 8 && rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        if let Ok(msg) = decode::<Message>(&rest[2..2 + len]) {
            out.push(msg);
        }
        rest = &rest[2 + len..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let msgs = messages(data);
    if msgs.is_empty() {
        return;
    }
    let (store, genesis, tip_time) = &*CHAIN;
    let chain =
        Chain::open(store.clone(), ChainConfig::regtest(), genesis.clone(), *tip_time).expect("reopen");
    let work = chain.tip().work;
    let mut node = ChainSync::new(chain, SyncConfig::default());
    let peer = Keypair::from_seed([7; 32]).peer_id();
    let now = Instant::from_duration(Duration::from_secs(tip_time + 100));
    let mut out = Vec::new();
    node.handle(now, Input::PeerUp(peer), &mut out);
    for msg in msgs {
        node.handle(now, Input::Message { from: peer, msg }, &mut out);
    }
    assert!(node.chain().tip().work >= work, "the tip never loses work");
});
