//! Future-dated blocks against ASERT: a miner dates a few blocks as far ahead as nodes accept, takes the
//! median-time-past window with them, and every honest block after must be dated later still. The lead
//! over the schedule eases the difficulty by one half per half-life; the engine's future bound
//! ([`MAX_FUTURE_HALF_LIVES`] half-lives) caps it. Parameters of the coin devnet: 4-second blocks and a
//! 30-second half-life, against the ledger's two hours.
#![allow(clippy::unwrap_used)]

use meshwork_consensus::pow::{Asert, MAX_FUTURE_HALF_LIVES, Target, mine};
use meshwork_consensus::{ChainConfig, Consensus, Nakamoto, Verdict};
use meshwork_identity::Hash;
use meshwork_ledger::BlockHeader;

const GENESIS_TIME: u64 = 1_767_225_600;
/// The median-time-past window (the ledger's default).
const SPAN: usize = 11;
/// Attacking blocks: the majority of the median-time-past window.
const ATTACK: usize = 6;
/// Honest blocks on schedule before the attack.
const HONEST: u64 = 20;

fn devnet() -> ChainConfig {
    ChainConfig {
        target_block_time: 4,
        half_life: 30,
        // One hash in two: the easiest the difficulty can fall to.
        pow_limit: 0x207f_ffff,
        genesis_time: GENESIS_TIME,
        ..ChainConfig::regtest()
    }
}

/// A genesis header at one hash in 4,096 (below the limit, so there is room to ease).
fn genesis() -> BlockHeader {
    let header = BlockHeader {
        version: 1,
        parent: Hash::ZERO,
        merkle_root: Hash::digest(b"future-dated"),
        timestamp: GENESIS_TIME,
        target: 0x1f0f_ffff,
        nonce: 0,
        height: 0,
    };
    mine(header, 1, u64::MAX).unwrap()
}

/// A valid child of `parent` dated `timestamp`, added to `engine` at `now`.
fn child(engine: &mut Nakamoto, parent: &BlockHeader, timestamp: u64, now: u64) -> (BlockHeader, Verdict) {
    let header = BlockHeader {
        version: 1,
        parent: parent.id(),
        merkle_root: Hash::digest(&parent.height.to_le_bytes()),
        timestamp,
        target: engine.required_target(&parent.id()).unwrap(),
        nonce: 0,
        height: parent.height + 1,
    };
    let header = mine(header, 1, u64::MAX).unwrap();
    let verdict = engine.on_header(&header, now);
    (header, verdict)
}

fn median(times: &[u64]) -> u64 {
    let mut window: Vec<u64> = times[times.len().saturating_sub(SPAN)..].to_vec();
    window.sort_unstable();
    window[window.len() / 2]
}

/// What the attack does to a network of constant hash rate, by the ASERT formula: `ATTACK` blocks
/// dated `bound` seconds ahead after `HONEST` on schedule, then honest blocks, each dated at the later of
/// the clock and one second past the median time past, found after `4 s × its work / base work` (the
/// hash rate that finds a block every 4 s at the pre-attack difficulty), and waiting for the clock
/// where it is dated beyond `bound`. Returns (blocks at the proof-of-work limit, blocks at least twice
/// too easy) among the honest blocks after the attack.
fn aftermath(asert: &Asert, bound: u64) -> (usize, usize) {
    let base = asert.anchor.target.work();
    let mut times: Vec<u64> = (0..=HONEST).map(|h| GENESIS_TIME + 4 * h).collect();
    let mut clock = *times.last().unwrap() as f64;
    for _ in 0..ATTACK {
        times.push(clock as u64 + bound);
    }
    let (mut at_limit, mut eased) = (0, 0);
    for _ in 0..10_000 {
        let height = times.len() as u64 - 1;
        let target = asert.next_target(height, *times.last().unwrap());
        if target.work() * 2 > base {
            // Back within a factor of two of the pre-attack difficulty.
            break;
        }
        eased += 1;
        at_limit += usize::from(target == asert.pow_limit);
        clock += 4.0 * target.work() as f64 / base as f64;
        let timestamp = (clock as u64).max(median(&times) + 1);
        clock = clock.max((timestamp - bound) as f64);
        times.push(timestamp);
    }
    (at_limit, eased)
}

#[test]
fn the_future_bound_is_at_most_four_half_lives() {
    let cfg = devnet();
    let engine = Nakamoto::new(&genesis(), &cfg).unwrap();
    assert_eq!(cfg.ledger.max_future_secs, 7_200);
    assert_eq!(engine.max_future_secs(), MAX_FUTURE_HALF_LIVES * 30);
    // A two-day half-life (the default) keeps the ledger's two hours.
    let two_days = ChainConfig {
        pow_limit: 0x207f_ffff,
        genesis_time: GENESIS_TIME,
        ..ChainConfig::default()
    };
    let default = Nakamoto::new(&genesis(), &two_days).unwrap();
    assert_eq!(default.max_future_secs(), 7_200);
}

#[test]
fn a_few_future_dated_blocks_ease_the_difficulty_at_most_sixteen_fold() {
    let cfg = devnet();
    let genesis = genesis();
    let mut engine = Nakamoto::new(&genesis, &cfg).unwrap();
    let bound = engine.max_future_secs();

    let mut tip = genesis;
    for _ in 0..HONEST {
        let now = tip.timestamp + 4;
        let (header, verdict) = child(&mut engine, &tip, now, now);
        assert_eq!(verdict, Verdict::Valid);
        tip = header;
    }
    let now = tip.timestamp;
    let base = Target::from_compact(engine.required_target(&tip.id()).unwrap()).unwrap();
    assert_eq!(
        base.to_compact(),
        0x1f0f_ffff,
        "on schedule: the genesis difficulty"
    );

    // Dated a second past the bound: not yet valid (taken once the clock gets there).
    let (_, verdict) = child(&mut engine, &tip, now + bound + 1, now);
    assert_eq!(verdict, Verdict::NotYetKnown);
    // At the bound, six blocks take the median time past with them.
    for _ in 0..ATTACK {
        let (header, verdict) = child(&mut engine, &tip, now + bound, now);
        assert_eq!(verdict, Verdict::Valid);
        tip = header;
    }
    let eased = Target::from_compact(engine.required_target(&tip.id()).unwrap()).unwrap();
    // 120 s of lead less the 6 × 4 s the attacking blocks are due: 96 / 30 half-lives, 2^3.2 ≈ 9.
    assert!(eased > base);
    assert!(
        eased.work() * 16 >= base.work(),
        "eased {}x",
        base.work() / eased.work()
    );
    assert!(eased.work() * 8 < base.work(), "about nine-fold");
    // What the ledger's two hours would have allowed: 7,176 / 30 half-lives, the proof-of-work limit.
    let asert = *engine.asert();
    let limit = asert.pow_limit;
    assert_eq!(asert.next_target(tip.height, now + 7_200), limit);

    // The aftermath at constant hash rate. Before (two hours): 1,786 blocks at the proof-of-work limit
    // (1,865 at least twice too easy), as the red team found. Now: none at the limit, and 18 blocks
    // before the difficulty is back within a factor of two of where it was.
    let (at_limit, eased_blocks) = aftermath(&asert, 7_200);
    assert!(at_limit > 1_500, "before: {at_limit} blocks at the limit");
    assert!(eased_blocks > 1_500, "before: {eased_blocks} eased blocks");
    let (at_limit, eased_blocks) = aftermath(&asert, bound);
    assert_eq!(at_limit, 0);
    assert!(eased_blocks <= 30, "after: {eased_blocks} eased blocks");
}
