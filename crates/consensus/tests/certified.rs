//! A chain under `ChainRule::Certified`: it follows the blocks the engine certifies (reorganising off a
//! skipped branch), certificates make blocks final and nothing final is ever disconnected, forged or
//! conflicting certificates are refused, and headers need no proof of work but the fixed target.
#![allow(clippy::unwrap_used)]

use meshwork_consensus::bft::ValidatorSet;
use meshwork_consensus::{
    BlockStatus, Certificate, Chain, ChainConfig, ChainError, ChainRule, Finality, FinalityProof,
    InvalidReason, Verdict, genesis_block,
};
use meshwork_identity::Keypair;
use meshwork_ledger::{Block, BlockId, MemoryStore};

const NOW: u64 = 4_000_000_000;

fn validators() -> Vec<Keypair> {
    (1..=4).map(|i| Keypair::from_seed([i; 32])).collect()
}

fn certified_chain() -> (Chain<MemoryStore>, BlockId) {
    let set = ValidatorSet::new(validators().iter().map(Keypair::peer_id).collect()).unwrap();
    let config = ChainConfig {
        rule: ChainRule::Certified(set),
        ..ChainConfig::regtest()
    };
    let genesis = genesis_block(&config);
    let id = genesis.id();
    (Chain::open(MemoryStore::new(), config, genesis, NOW).unwrap(), id)
}

/// A block on the tip paying `owner` (so two owners give two siblings).
fn template(chain: &Chain<MemoryStore>, owner: u8) -> Block {
    chain
        .block_template(Keypair::from_seed([100 + owner; 32]).peer_id(), NOW)
        .unwrap()
}

/// `signers` sign a finality certificate for `block` at `height` in `round`.
fn certificate(
    genesis: &BlockId,
    signers: &[Keypair],
    block: &Block,
    round: u64,
    parent_round: u64,
) -> Certificate {
    let height = block.header.height;
    let votes: Vec<_> = signers
        .iter()
        .map(|key| Certificate::sign_vote(key, genesis, &block.id(), height, round, parent_round))
        .collect();
    Certificate {
        block: block.id(),
        height,
        round,
        parent_round,
        votes: votes.try_into().unwrap(),
    }
}

#[test]
fn the_tip_follows_certified_blocks_and_final_blocks_stay() {
    let (mut chain, genesis) = certified_chain();
    let b1 = template(&chain, 1);
    // Stored, but not connected: nothing certified it yet.
    let outcome = chain.submit_block(b1.clone(), NOW).unwrap();
    assert_eq!(outcome.status, BlockStatus::SideChain);
    assert_eq!(chain.tip().height, 0);
    let moved = chain.follow(b1.id(), 1, NOW).unwrap();
    assert_eq!(moved.connected, vec![b1.id()]);

    // Two proposals on b1: view 2's is notarized, then view 2 is skipped and view 3's notarized too.
    let (b2a, b2b) = (template(&chain, 2), template(&chain, 3));
    assert_ne!(b2a.id(), b2b.id());
    chain.submit_block(b2a.clone(), NOW).unwrap();
    chain.submit_block(b2b.clone(), NOW).unwrap();
    chain.follow(b2a.id(), 2, NOW).unwrap();
    assert_eq!(chain.tip().id, b2a.id());
    let reorg = chain.follow(b2b.id(), 3, NOW).unwrap();
    assert_eq!(
        (reorg.disconnected, reorg.connected),
        (vec![b2a.id()], vec![b2b.id()])
    );
    // A late notarization of an older view does not move the tip back.
    assert!(!chain.follow(b2a.id(), 2, NOW).unwrap().tip_changed());
    assert_eq!(chain.finality(&b1.id()), Finality::Pending);

    // A quorum (3 of 4) finalises b2b: it and b1 are final by that certificate.
    let keys = validators();
    let cert = certificate(&genesis, &keys[..3], &b2b, 3, 1);
    chain.finalize(cert.clone(), NOW).unwrap();
    for id in [b1.id(), b2b.id()] {
        assert_eq!(
            chain.finality(&id),
            Finality::Final {
                by: FinalityProof::Certificate(cert.clone())
            }
        );
    }
    // The skipped branch can never come back, whatever view claims it.
    assert!(!chain.follow(b2a.id(), 9, NOW).unwrap().tip_changed());
    assert_eq!(chain.tip().id, b2b.id());
    // A certificate for the other block at the final height proves a third of the validators faulty.
    let conflicting = certificate(&genesis, &keys[1..], &b2a, 2, 1);
    assert!(matches!(
        chain.finalize(conflicting, NOW),
        Err(ChainError::ConflictingFinality { .. })
    ));
    assert_eq!(chain.tip().id, b2b.id());
}

#[test]
fn forged_and_short_certificates_are_refused() {
    let (mut chain, genesis) = certified_chain();
    let b1 = template(&chain, 1);
    chain.submit_block(b1.clone(), NOW).unwrap();
    let outsiders: Vec<Keypair> = (50..54).map(|i| Keypair::from_seed([i; 32])).collect();
    for cert in [
        certificate(&genesis, &outsiders, &b1, 1, 0),
        certificate(&genesis, &validators()[..2], &b1, 1, 0),
        // Signed for another chain.
        certificate(&BlockId::ZERO, &validators(), &b1, 1, 0),
    ] {
        assert!(matches!(
            chain.finalize(cert, NOW),
            Err(ChainError::Certificate(_))
        ));
    }
    assert!(chain.final_certificate().is_none());
    assert_eq!(chain.tip().height, 0);
    // A proof-of-work chain refuses the calls.
    let mut pow = Chain::open(
        MemoryStore::new(),
        ChainConfig::regtest(),
        genesis_block(&ChainConfig::regtest()),
        NOW,
    )
    .unwrap();
    assert!(matches!(
        pow.follow(b1.id(), 1, NOW),
        Err(ChainError::NotCertified)
    ));
}

#[test]
fn certified_headers_carry_the_fixed_target_and_no_work() {
    let (mut chain, _) = certified_chain();
    let block = template(&chain, 1);
    // Any nonce will do: the hash is not checked.
    let mut unworked = block.clone();
    unworked.header.nonce = 12_345;
    assert_eq!(
        chain.submit_block(unworked.clone(), NOW).unwrap().status,
        BlockStatus::SideChain
    );
    // Another target is refused, and the block's verdict says why.
    let mut other = block;
    other.header.target = 0x1f00_ffff;
    let outcome = chain.submit_block(other, NOW).unwrap();
    assert!(matches!(
        outcome.verdict,
        Verdict::Invalid(InvalidReason::WrongTarget { .. })
    ));
    // What a validator checks before it votes: the block on its parent, the tip.
    assert_eq!(
        chain.validate_on_tip(&unworked.id(), NOW).unwrap(),
        Verdict::Valid
    );
    assert_eq!(
        chain.validate_on_tip(&BlockId::ZERO, NOW).unwrap(),
        Verdict::NotYetKnown
    );
}

#[test]
fn blocks_far_above_the_final_one_wait_for_a_certificate() {
    use meshwork_consensus::UNCERTIFIED_HORIZON;
    // A chain of free blocks up to the horizon is taken (kept aside, nothing certified it); one past
    // it is not yet, and is not held against its sender.
    let (mut chain, genesis) = certified_chain();
    let (mut source, _) = certified_chain();
    let mut blocks = Vec::new();
    for round in 1..=UNCERTIFIED_HORIZON + 1 {
        let block = template(&source, 1);
        source.submit_block(block.clone(), NOW).unwrap();
        source.follow(block.id(), round, NOW).unwrap();
        blocks.push(block);
    }
    for block in &blocks[..UNCERTIFIED_HORIZON as usize] {
        assert_eq!(
            chain.submit_block(block.clone(), NOW).unwrap().status,
            BlockStatus::SideChain
        );
    }
    let last = blocks.last().unwrap().clone();
    let outcome = chain.submit_block(last.clone(), NOW).unwrap();
    assert_eq!(
        (outcome.status, outcome.verdict),
        (BlockStatus::TooNew, Verdict::NotYetKnown)
    );
    // A certificate for block 10 raises the horizon: the block is taken, and the tip moves to block 10.
    let keys = validators();
    let tenth = &blocks[9];
    chain
        .finalize(certificate(&genesis, &keys[..3], tenth, 10, 9), NOW)
        .unwrap();
    assert_eq!(chain.tip().id, tenth.id());
    assert_eq!(
        chain.submit_block(last, NOW).unwrap().status,
        BlockStatus::SideChain
    );
}

#[test]
fn the_engine_builds_below_a_skipped_views_block_and_a_higher_certificate_must_extend_the_final_one() {
    let (mut chain, genesis) = certified_chain();
    let b1 = template(&chain, 1);
    chain.submit_block(b1.clone(), NOW).unwrap();
    chain.follow(b1.id(), 1, NOW).unwrap();
    let b2 = template(&chain, 2);
    chain.submit_block(b2.clone(), NOW).unwrap();
    chain.follow(b2.id(), 2, NOW).unwrap();
    assert_eq!(chain.tip().id, b2.id());
    // View 2 was skipped as well as notarized: view 3's leader builds on b1, and so must we.
    let back = chain.build_on(b1.id(), 3, NOW).unwrap();
    assert_eq!((back.disconnected, chain.tip().id), (vec![b2.id()], b1.id()));
    // A late notarization of view 2 does not take us back up.
    assert!(!chain.follow(b2.id(), 2, NOW).unwrap().tip_changed());
    let b2b = template(&chain, 3);
    chain.submit_block(b2b.clone(), NOW).unwrap();
    chain.follow(b2b.id(), 3, NOW).unwrap();
    let keys = validators();
    chain
        .finalize(certificate(&genesis, &keys[..3], &b2b, 3, 1), NOW)
        .unwrap();
    // More than a third of the validators also certify a child of the abandoned b2: refused, and
    // the final block stays.
    let mut child = b2.clone();
    child.header.parent = b2.id();
    child.header.height = 3;
    chain.submit_block(child.clone(), NOW).unwrap();
    let conflicting = certificate(&genesis, &keys[1..], &child, 5, 2);
    assert!(matches!(
        chain.finalize(conflicting, NOW),
        Err(ChainError::ConflictingFinality { .. })
    ));
    assert_eq!(chain.final_certificate().unwrap().block, b2b.id());
    assert_eq!(chain.tip().id, b2b.id());
}

#[test]
fn a_header_batch_is_taken_up_to_the_horizon() {
    use meshwork_consensus::{HeadersOutcome, UNCERTIFIED_HORIZON};
    let (mut chain, _) = certified_chain();
    let (mut source, _) = certified_chain();
    let mut headers = Vec::new();
    for round in 1..=UNCERTIFIED_HORIZON + 10 {
        let block = template(&source, 1);
        source.submit_block(block.clone(), NOW).unwrap();
        source.follow(block.id(), round, NOW).unwrap();
        headers.push(block.header);
    }
    let at_horizon = headers[UNCERTIFIED_HORIZON as usize - 1].id();
    assert_eq!(
        chain.submit_headers(&headers, NOW).unwrap(),
        HeadersOutcome::Accepted {
            new: UNCERTIFIED_HORIZON as usize,
            last: Some(at_horizon)
        }
    );
    // The rest waits, and is no one's fault.
    let rest = &headers[UNCERTIFIED_HORIZON as usize..];
    assert!(matches!(
        chain.submit_headers(rest, NOW).unwrap(),
        HeadersOutcome::TooNew { .. }
    ));
}
