//! Helpers shared by the integration tests: cheap proof of work, chains built block by block.
#![allow(dead_code, unreachable_pub)]

pub mod net;

use meshwork_consensus::pow::mine;
use meshwork_consensus::{BlockStatus, Chain, ChainConfig, genesis_block};
use meshwork_identity::{Keypair, PeerId};
use meshwork_ledger::testkit::coinbase;
use meshwork_ledger::{Block, BlockHeader, ChainStore, MemoryStore, Transaction};

/// A `now` (Unix seconds, year 2096) later than every test block, so no timestamp is too new.
pub const NOW: u64 = 4_000_000_000;

/// Regtest parameters: one hash in two at the limit, 60-second blocks.
pub fn config() -> ChainConfig {
    ChainConfig::regtest()
}

/// Regtest with a one-block half-life, so a few fast blocks change the difficulty a lot.
pub fn twitchy() -> ChainConfig {
    ChainConfig {
        half_life: 60,
        ..ChainConfig::regtest()
    }
}

/// A fresh in-memory chain at its genesis block.
pub fn open(config: &ChainConfig) -> Chain<MemoryStore> {
    let genesis = genesis_block(config);
    let now = genesis.header.timestamp;
    Chain::open(MemoryStore::new(), config.clone(), genesis, now).unwrap()
}

/// Solves `block`'s proof of work (single thread: deterministic).
pub fn solve(mut block: Block) -> Block {
    block.header = mine(block.header, 1, 1 << 24).unwrap();
    block
}

/// A key for miners and payees.
pub fn key(i: u8) -> Keypair {
    Keypair::from_seed([i; 32])
}

/// Mines `n` blocks on `chain`'s tip from its mempool, each `dt` seconds after its parent.
pub fn extend<S: ChainStore>(chain: &mut Chain<S>, miner: &PeerId, n: usize, dt: u64) -> Vec<Block> {
    let mut blocks = Vec::with_capacity(n);
    for _ in 0..n {
        let now = chain.tip().header.timestamp + dt;
        let block = solve(chain.block_template(*miner, now).unwrap());
        let outcome = chain.submit_block(block.clone(), now).unwrap();
        assert_eq!(outcome.status, BlockStatus::Active, "{outcome:?}");
        blocks.push(block);
    }
    blocks
}

/// A solved block on any known `parent` of `chain`, `dt` seconds later, paying the subsidy to `miner`,
/// holding `txs` after the coinbase. If `parent` is not known to `chain`, the parent's own target is used
/// (right for chains on schedule at the proof-of-work limit).
pub fn block_on<S: ChainStore>(
    chain: &Chain<S>,
    parent: &BlockHeader,
    dt: u64,
    miner: &Keypair,
    txs: Vec<Transaction>,
) -> Block {
    let height = parent.height + 1;
    let mut all = vec![coinbase(height, miner, chain.config().ledger.subsidy(height))];
    all.extend(txs);
    let mut block = meshwork_ledger::testkit::block_on(Some(parent), parent.timestamp + dt, all);
    block.header.target = chain.required_target(&parent.id()).unwrap_or(parent.target);
    solve(block)
}

/// Feeds blocks from another chain the way sync does: headers first, then the blocks.
pub fn feed<S: ChainStore>(chain: &mut Chain<S>, blocks: &[Block], now: u64) {
    let headers: Vec<BlockHeader> = blocks.iter().map(|b| b.header).collect();
    let outcome = chain.submit_headers(&headers, now).unwrap();
    assert!(
        matches!(outcome, meshwork_consensus::HeadersOutcome::Accepted { .. }),
        "{outcome:?}"
    );
    for block in blocks {
        chain.submit_block(block.clone(), now).unwrap();
    }
}
