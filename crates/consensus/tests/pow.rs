//! Proof of work at the chain level: ASERT follows the block rate, and the miner finds nonces.
#![allow(clippy::unwrap_used)]

mod support;

use meshwork_consensus::pow::{Target, mine};
use meshwork_identity::Hash;
use meshwork_ledger::BlockHeader;
use support::{config, extend, key, open, twitchy};

fn target_after(chain: &meshwork_consensus::Chain<meshwork_ledger::MemoryStore>) -> Target {
    Target::from_compact(chain.required_target(&chain.tip().id).unwrap()).unwrap()
}

#[test]
fn blocks_on_schedule_keep_the_target() {
    let cfg = config();
    let mut chain = open(&cfg);
    extend(&mut chain, &key(1).peer_id(), 30, cfg.target_block_time);
    assert_eq!(chain.required_target(&chain.tip().id), Some(cfg.pow_limit));
    // Every block carried the limit and the work adds up: 31 blocks of work 2.
    assert_eq!(chain.tip().work, 31 * 2);
}

#[test]
fn fast_blocks_raise_the_difficulty_and_slow_ones_lower_it_down_to_the_limit() {
    let cfg = twitchy(); // 60-second blocks, 60-second half-life
    let limit = Target::from_compact(cfg.pow_limit).unwrap();
    let mut chain = open(&cfg);
    extend(&mut chain, &key(1).peer_id(), 1, 60);
    assert_eq!(target_after(&chain), limit);

    // Each block one second after its parent: 59 seconds ahead of schedule per block, almost a
    // half-life, so the target roughly halves per block.
    let mut previous = limit;
    for _ in 0..4 {
        extend(&mut chain, &key(1).peer_id(), 1, 1);
        let next = target_after(&chain);
        assert!(next < previous, "{next:?} should be harder than {previous:?}");
        previous = next;
    }
    let hardest = previous;
    assert!(hardest.work() >= 16, "four fast blocks: about 2^4 times harder");

    // Slow blocks: 180 seconds each is 120 seconds (two half-lives) behind per block.
    extend(&mut chain, &key(1).peer_id(), 1, 180);
    let eased = target_after(&chain);
    assert!(eased > hardest);
    // Far behind schedule the target stops at the limit.
    extend(&mut chain, &key(1).peer_id(), 3, 3_600);
    assert_eq!(target_after(&chain), limit);
}

#[test]
fn required_targets_follow_the_asert_formula() {
    let cfg = twitchy();
    let mut chain = open(&cfg);
    let blocks = extend(&mut chain, &key(1).peer_id(), 3, 1);
    let asert = *chain.engine().asert();
    // The anchor is the genesis block, its "parent time" one block interval before it.
    assert_eq!(asert.anchor.height, 0);
    assert_eq!(asert.anchor.parent_time, cfg.genesis_time - 60);
    for block in &blocks[1..] {
        let parent = chain.header(&block.header.parent).unwrap();
        let expected = asert.next_target(parent.height, parent.timestamp).to_compact();
        assert_eq!(block.header.target, expected);
    }
    // By hand for the block after the third: its parent (height 3) is 63 s after the anchor's parent
    // time where 4 intervals (240 s) were due: -177 s, or -177/60 half-lives. exponent =
    // -177 * 65536 / 60 = -193331 (truncated), shifts = -193331 >> 16 = -3, frac = -193331 + 3 * 65536
    // = 3277, factor = 65536 + ((195766423245049 * 3277 + 971821376 * 3277^2 + 5127 * 3277^3 + 2^47)
    // >> 48) = 67853. target = (0x7fffff << 232) * 67853 >> (16 + 3) = 0x1090cfdede6 << 212, whose
    // compact form is 0x201090cf.
    let frac: u128 = 3277;
    let factor = 65536
        + ((195_766_423_245_049 * frac + 971_821_376 * frac * frac + 5127 * frac * frac * frac + (1 << 47))
            >> 48);
    assert_eq!(factor, 67_853);
    assert_eq!(chain.required_target(&chain.tip().id), Some(0x2010_90cf));
}

fn easy_header() -> BlockHeader {
    BlockHeader {
        version: 1,
        parent: Hash::digest(b"parent"),
        merkle_root: Hash::digest(b"txs"),
        timestamp: 1_800_000_000,
        target: 0x2007_ffff, // one hash in sixteen
        nonce: 0,
        height: 5,
    }
}

#[test]
fn the_miner_finds_a_nonce_with_one_and_two_threads() {
    let target = Target::from_compact(easy_header().target).unwrap();
    let one = mine(easy_header(), 1, 100_000).unwrap();
    assert!(target.is_met_by(&one.id()));
    // Single-threaded mining is deterministic: the first nonce that works.
    assert!((0..one.nonce).all(|nonce| {
        !target.is_met_by(
            &BlockHeader {
                nonce,
                ..easy_header()
            }
            .id(),
        )
    }));
    let two = mine(easy_header(), 2, 100_000).unwrap();
    assert!(target.is_met_by(&two.id()));
    assert_eq!(BlockHeader { nonce: 0, ..two }, easy_header());
}

#[test]
fn the_miner_gives_up_within_its_budget() {
    assert_eq!(mine(easy_header(), 2, 0), None);
    let hard = BlockHeader {
        target: 0x1b00_ffff,
        ..easy_header()
    };
    assert_eq!(mine(hard, 2, 64), None);
    let invalid = BlockHeader {
        target: 0,
        ..easy_header()
    };
    assert_eq!(mine(invalid, 1, 64), None);
}
