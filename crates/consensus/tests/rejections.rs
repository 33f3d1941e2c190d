//! What the chain refuses: too little work, no work, bad timestamps, bad contents, mutated bodies,
//! floods of low-work headers; and what it keeps for later: orphans.
#![allow(clippy::unwrap_used)]

mod support;

use meshwork_consensus::pow::Target;
use meshwork_consensus::{BlockStatus, HeadersOutcome, InvalidReason, Verdict, genesis_block};
use meshwork_ledger::testkit::{coinbase, fix_merkle_root};
use meshwork_ledger::{Amount, Block, BlockHeader};
use support::{NOW, block_on, config, extend, key, open, solve, twitchy};

#[test]
fn a_target_easier_than_required_is_too_little_work() {
    let cfg = twitchy();
    let mut chain = open(&cfg);
    // Fast blocks: the required target drops below the limit.
    extend(&mut chain, &key(1).peer_id(), 3, 1);
    let tip = chain.tip();
    let required = chain.required_target(&tip.id).unwrap();
    assert!(Target::from_compact(required).unwrap() < Target::from_compact(cfg.pow_limit).unwrap());
    let mut block = block_on(&chain, &tip.header, 60, &key(1), vec![]);
    block.header.target = cfg.pow_limit;
    let block = solve(block);
    let outcome = chain.submit_block(block, NOW).unwrap();
    assert_eq!(outcome.status, BlockStatus::Rejected);
    assert_eq!(
        outcome.verdict,
        Verdict::Invalid(InvalidReason::WrongTarget {
            expected: required,
            got: cfg.pow_limit
        })
    );
    assert_eq!(chain.tip(), tip);
}

#[test]
fn an_id_above_the_target_has_no_work() {
    let cfg = config();
    let mut chain = open(&cfg);
    let mut block = block_on(&chain, &chain.tip().header, 60, &key(1), vec![]);
    let target = Target::from_compact(block.header.target).unwrap();
    while target.is_met_by(&block.id()) {
        block.header.nonce += 1;
    }
    let outcome = chain.submit_block(block, NOW).unwrap();
    assert_eq!(outcome.verdict, Verdict::Invalid(InvalidReason::HighHash));
}

#[test]
fn timestamps_not_after_the_median_are_invalid_and_future_ones_wait() {
    let cfg = config();
    let mut chain = open(&cfg);
    extend(&mut chain, &key(1).peer_id(), 11, 60);
    let tip = chain.tip().header;
    // The median of the last 11 timestamps is that of the sixth-newest block.
    let median = chain
        .header(&chain.block_id_at_height(6).unwrap())
        .unwrap()
        .timestamp;
    let mut old = block_on(&chain, &tip, 60, &key(1), vec![]);
    old.header.timestamp = median;
    let old = solve(old);
    let outcome = chain.submit_block(old, NOW).unwrap();
    assert_eq!(
        outcome.verdict,
        Verdict::Invalid(InvalidReason::TimestampTooOld {
            timestamp: median,
            median
        })
    );

    // Two hours and one second ahead of our clock: not invalid, just not yet.
    let now = tip.timestamp + 60;
    let mut ahead = block_on(&chain, &tip, 60, &key(1), vec![]);
    ahead.header.timestamp = now + cfg.ledger.max_future_secs + 1;
    let ahead = solve(ahead);
    let outcome = chain.submit_block(ahead.clone(), now).unwrap();
    assert_eq!(outcome.status, BlockStatus::TooNew);
    assert_eq!(outcome.verdict, Verdict::NotYetKnown);
    assert!(!chain.engine().is_known_invalid(&ahead.id()));
    // Later it is fine.
    let outcome = chain.submit_block(ahead, now + 2).unwrap();
    assert_eq!(outcome.status, BlockStatus::Active);
}

#[test]
fn invalid_contents_are_rejected_and_so_are_descendants() {
    let cfg = config();
    let mut chain = open(&cfg);
    let tip = chain.tip();
    let mut greedy = block_on(&chain, &tip.header, 60, &key(1), vec![]);
    greedy.txs = vec![coinbase(1, &key(1), Amount::from_coins(51))]
        .try_into()
        .unwrap();
    fix_merkle_root(&mut greedy);
    let greedy = solve(greedy);
    let outcome = chain.submit_block(greedy.clone(), NOW).unwrap();
    assert_eq!(outcome.status, BlockStatus::Rejected);
    assert!(
        matches!(&outcome.verdict, Verdict::Invalid(InvalidReason::Contents(text)) if text.contains("coinbase")),
        "{outcome:?}"
    );
    assert_eq!(chain.tip(), tip);
    let child = block_on(&chain, &greedy.header, 60, &key(1), vec![]);
    let outcome = chain.submit_block(child, NOW).unwrap();
    assert_eq!(outcome.verdict, Verdict::Invalid(InvalidReason::InvalidAncestor));
}

#[test]
fn a_mutated_body_is_refused_without_condemning_the_header() {
    let cfg = config();
    let mut chain = open(&cfg);
    let good = block_on(&chain, &chain.tip().header, 60, &key(1), vec![]);
    let mut bad = good.clone();
    bad.txs = vec![coinbase(1, &key(66), Amount::from_coins(50))]
        .try_into()
        .unwrap();
    assert_eq!(bad.id(), good.id(), "same header, other body");
    let outcome = chain.submit_block(bad, NOW).unwrap();
    assert!(matches!(
        outcome.verdict,
        Verdict::Invalid(InvalidReason::BodyMismatch(_))
    ));
    let outcome = chain.submit_block(good.clone(), NOW).unwrap();
    assert_eq!(outcome.status, BlockStatus::Active);
    assert_eq!(chain.tip().id, good.id());
}

#[test]
fn an_orphan_waits_for_its_parent_then_both_connect() {
    let cfg = config();
    let mut chain = open(&cfg);
    let mut other = open(&cfg);
    let blocks = extend(&mut other, &key(2).peer_id(), 3, 60);
    let outcome = chain.submit_block(blocks[2].clone(), NOW).unwrap();
    assert_eq!(outcome.status, BlockStatus::Orphan);
    assert!(chain.is_orphan(&blocks[2].id()));
    let outcome = chain.submit_block(blocks[1].clone(), NOW).unwrap();
    assert_eq!(outcome.status, BlockStatus::Orphan);
    assert_eq!(chain.orphan_count(), 2);
    let outcome = chain.submit_block(blocks[0].clone(), NOW).unwrap();
    assert_eq!(outcome.status, BlockStatus::Active);
    assert_eq!(outcome.adopted, vec![blocks[1].id(), blocks[2].id()]);
    assert_eq!(outcome.connected.len(), 3);
    assert_eq!(chain.tip().id, blocks[2].id());
    assert_eq!(chain.orphan_count(), 0);
    // A block without its claimed work is not even kept as an orphan.
    let mut junk: Block = blocks[2].clone();
    junk.header.parent = meshwork_identity::Hash::digest(b"nowhere");
    let target = Target::from_compact(junk.header.target).unwrap();
    while target.is_met_by(&junk.id()) {
        junk.header.nonce += 1;
    }
    assert!(chain.submit_block(junk, NOW).unwrap().verdict.is_invalid());
    assert_eq!(chain.orphan_count(), 0);
}

#[test]
fn an_orphan_larger_than_a_block_may_be_is_not_kept() {
    let mut cfg = config();
    let mut other = open(&cfg);
    let blocks = extend(&mut other, &key(2).peer_id(), 2, 60);
    cfg.ledger.max_block_bytes = 4096;
    let mut chain = open(&cfg);
    // The header and its work are real; the body is padded past what a block may be. Before the
    // parent is known nothing checks the body against the header, so the pool would hold a sync
    // message's bytes, four times a block's, for each of its places.
    let mut padded = blocks[1].clone();
    let coinbase = padded.txs[0].clone();
    let mut txs = padded.txs.clone().into_inner();
    let size = |txs: &Vec<_>| {
        let block = Block {
            header: padded.header,
            txs: txs.clone().try_into().unwrap(),
        };
        block.encoded_len()
    };
    while size(&txs) <= cfg.ledger.max_block_bytes {
        txs.extend(std::iter::repeat_n(coinbase.clone(), 64));
    }
    padded.txs = txs.try_into().unwrap();
    let outcome = chain.submit_block(padded, NOW).unwrap();
    assert!(outcome.verdict.is_invalid(), "{outcome:?}");
    assert_eq!(chain.orphan_count(), 0);
    // The block as mined is kept.
    let outcome = chain.submit_block(blocks[1].clone(), NOW).unwrap();
    assert_eq!(outcome.status, BlockStatus::Orphan);
}

#[test]
fn one_message_of_bad_headers_does_not_flush_what_we_know_is_invalid() {
    let cfg = meshwork_consensus::ChainConfig {
        max_invalid_remembered: 4,
        ..config()
    };
    let mut chain = open(&cfg);
    let mut other = open(&cfg);
    let good: Vec<BlockHeader> = extend(&mut other, &key(2).peer_id(), 8, 60)
        .iter()
        .map(|b| b.header)
        .collect();
    // A header with its work but dated before what the chain allows: invalid, and remembered (one
    // without its work would not be: checking it again costs one hash).
    let stale = |seed: &[u8]| {
        let header = BlockHeader {
            timestamp: 1,
            merkle_root: meshwork_identity::Hash::digest(seed),
            ..good[0]
        };
        meshwork_consensus::pow::mine(header, 1, 1 << 24).unwrap()
    };
    let bad = stale(b"first");
    assert!(matches!(
        chain.submit_headers(&[bad], NOW).unwrap(),
        HeadersOutcome::Invalid { index: 0, .. }
    ));
    // Eight linked headers whose first is invalid so (the rest, linked to it, unchecked).
    let mut batch = vec![stale(b"second")];
    for header in &good[1..] {
        let parent = batch.last().unwrap().id();
        batch.push(BlockHeader { parent, ..*header });
    }
    assert!(matches!(
        chain.submit_headers(&batch, NOW).unwrap(),
        HeadersOutcome::Invalid { index: 0, .. }
    ));
    // The first bad header is still known: refused without a check.
    assert!(matches!(
        chain.submit_headers(&[bad], NOW).unwrap(),
        HeadersOutcome::Invalid {
            reason: InvalidReason::KnownInvalid,
            ..
        }
    ));
}

#[test]
fn a_flood_of_low_work_headers_is_not_stored() {
    let cfg = config();
    let mut chain = open(&cfg);
    extend(&mut chain, &key(1).peer_id(), 20, 60);
    // A valid but lighter chain forking at genesis: ten headers with real (cheap) proof of work.
    let mut attacker = open(&cfg);
    let fork: Vec<BlockHeader> = extend(&mut attacker, &key(9).peer_id(), 10, 60)
        .iter()
        .map(|b| b.header)
        .collect();
    let before = chain.engine().header_count();
    let outcome = chain.submit_headers(&fork, NOW).unwrap();
    assert!(
        matches!(outcome, HeadersOutcome::InsufficientWork { .. }),
        "{outcome:?}"
    );
    assert_eq!(chain.engine().header_count(), before);
    assert!(chain.header(&fork[0].id()).is_none());
    // Nor are its blocks, one by one.
    let block = attacker.block(&fork[0].id()).unwrap().unwrap();
    let outcome = chain.submit_block(block, NOW).unwrap();
    assert_eq!(outcome.status, BlockStatus::InsufficientWork);
    // With a minimum chain work above it, even an empty node refuses it.
    let strict = meshwork_consensus::ChainConfig {
        min_chain_work: 1_000,
        ..cfg
    };
    let mut fresh = open(&strict);
    assert!(matches!(
        fresh.submit_headers(&fork, NOW).unwrap(),
        HeadersOutcome::InsufficientWork { .. }
    ));
    // Headers that do not link, or do not connect, are refused too.
    let mut gapped = fork.clone();
    gapped.remove(3);
    assert!(matches!(
        chain.submit_headers(&gapped, NOW).unwrap(),
        HeadersOutcome::Invalid {
            index: 3,
            reason: InvalidReason::NotContinuous { index: 3 }
        }
    ));
    assert!(matches!(
        chain.submit_headers(&fork[5..], NOW).unwrap(),
        HeadersOutcome::Unconnected { .. }
    ));
}

#[test]
fn genesis_is_deterministic_and_meets_the_limit() {
    let cfg = config();
    let a = genesis_block(&cfg);
    assert_eq!(a, genesis_block(&cfg));
    assert!(Target::from_compact(cfg.pow_limit).unwrap().is_met_by(&a.id()));
    assert_eq!(a.header.height, 0);
    assert_eq!(
        a.txs[0].outputs()[0].owner,
        meshwork_consensus::genesis_key().peer_id()
    );
}
