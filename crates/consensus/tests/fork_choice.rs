//! Fork choice by cumulative work, reorganisations, finality, and resuming from a store.
#![allow(clippy::unwrap_used)]

mod support;

use meshwork_consensus::{
    BlockStatus, Chain, ChainError, Finality, FinalityProof, HeadersOutcome, Verdict, genesis_block,
    genesis_key,
};
use meshwork_ledger::testkit::{outpoints, pay};
use meshwork_ledger::{Amount, MemoryStore, RedbStore};
use support::{NOW, block_on, config, extend, feed, key, open, twitchy};

#[test]
fn a_shorter_chain_with_more_work_wins() {
    let cfg = twitchy();
    // The long chain: six blocks on schedule, at the proof-of-work limit (work 2 each).
    let mut chain = open(&cfg);
    extend(&mut chain, &key(1).peer_id(), 6, 60);
    let long_tip = chain.tip();
    assert_eq!(long_tip.height, 6);

    // The short chain: four blocks one second apart. With a one-block half-life each is about twice as
    // hard as its parent, so four of them carry more work than six easy ones.
    let mut other = open(&cfg);
    let short = extend(&mut other, &key(2).peer_id(), 4, 1);
    let short_tip = other.tip();
    assert!(
        short_tip.work > long_tip.work,
        "{} <= {}",
        short_tip.work,
        long_tip.work
    );
    assert!(short_tip.height < long_tip.height);

    let now = long_tip.header.timestamp;
    feed(&mut chain, &short, now);
    assert_eq!(chain.tip().id, short_tip.id);
    assert_eq!(chain.tip().height, 4);
    assert_eq!(chain.block_id_at_height(4), Some(short_tip.id));
    assert_eq!(chain.block_id_at_height(5), None);
}

#[test]
fn equal_work_keeps_the_first_seen() {
    let cfg = config();
    let mut chain = open(&cfg);
    let genesis = chain.tip().header;
    let first = block_on(&chain, &genesis, 60, &key(1), vec![]);
    let second = block_on(&chain, &genesis, 60, &key(2), vec![]);
    assert_eq!(
        chain.submit_block(first.clone(), NOW).unwrap().status,
        BlockStatus::Active
    );
    let outcome = chain.submit_block(second.clone(), NOW).unwrap();
    assert_eq!(outcome.status, BlockStatus::SideChain);
    assert_eq!(outcome.verdict, Verdict::NotYetKnown);
    assert_eq!(chain.tip().id, first.id());
    // One more block on the second branch makes it heavier: reorg.
    let next = block_on(&chain, &second.header, 60, &key(2), vec![]);
    let outcome = chain.submit_block(next.clone(), NOW).unwrap();
    assert_eq!(outcome.status, BlockStatus::Active);
    assert_eq!(outcome.disconnected, vec![first.id()]);
    assert_eq!(outcome.connected, vec![second.id(), next.id()]);
}

#[test]
fn a_reorg_returns_transactions_to_the_mempool_and_matches_a_fresh_replay() {
    let cfg = config();
    let owner = genesis_key();
    let mut chain = open(&cfg);
    let genesis = genesis_block(&cfg);
    let coin = outpoints(&genesis.txs[0])[0];
    let held = genesis.txs[0].outputs()[0].amount;
    let spend = pay(&[(coin, held, &owner)], &key(7), Amount::from_coins(49));
    let txid = meshwork_ledger::Transaction::from(spend.clone()).txid();

    // Branch A: the spend is mined in A1, then A2.
    chain.submit_tx(spend, 0).unwrap();
    assert!(chain.mempool().contains(&txid));
    extend(&mut chain, &key(1).peer_id(), 2, 60);
    assert!(!chain.mempool().contains(&txid));
    assert_eq!(chain.balance(&key(7).peer_id()).unwrap(), Amount::from_coins(49));

    // Branch B: three empty blocks from genesis, built elsewhere.
    let mut other = open(&cfg);
    let branch = extend(&mut other, &key(2).peer_id(), 3, 60);
    let now = chain.tip().header.timestamp;
    feed(&mut chain, &branch, now);

    assert_eq!(chain.tip().id, other.tip().id);
    assert!(
        chain.mempool().contains(&txid),
        "the disconnected spend is back in the pool"
    );
    assert_eq!(chain.balance(&key(7).peer_id()).unwrap(), Amount::ZERO);
    // The UTXO set is exactly that of a node that only ever saw branch B.
    let mut fresh = open(&cfg);
    for block in &branch {
        fresh.submit_block(block.clone(), now).unwrap();
    }
    assert_eq!(
        chain.ledger().utxo_commitment().unwrap(),
        fresh.ledger().utxo_commitment().unwrap()
    );
    // The spend can be mined again on the new branch.
    let mined = extend(&mut chain, &key(1).peer_id(), 1, 60);
    assert_eq!(mined[0].txs.len(), 2);
    assert_eq!(chain.balance(&key(7).peer_id()).unwrap(), Amount::from_coins(49));
}

#[test]
fn an_invalid_block_in_a_heavier_branch_falls_back_to_the_old_chain() {
    let cfg = config();
    let mut chain = open(&cfg);
    let old = extend(&mut chain, &key(1).peer_id(), 2, 60);
    let genesis = genesis_block(&cfg);
    // A heavier branch whose second block pays its miner too much: its header is fine, its contents not.
    let b1 = block_on(&chain, &genesis.header, 60, &key(2), vec![]);
    let mut b2 = block_on(&chain, &b1.header, 60, &key(2), vec![]);
    b2.txs = vec![meshwork_ledger::testkit::coinbase(
        2,
        &key(2),
        Amount::from_coins(51),
    )]
    .try_into()
    .unwrap();
    meshwork_ledger::testkit::fix_merkle_root(&mut b2);
    let b2 = support::solve(b2);
    let b3 = block_on(&chain, &b2.header, 60, &key(2), vec![]);
    let headers = [b1.header, b2.header, b3.header];
    assert!(matches!(
        chain.submit_headers(&headers, NOW).unwrap(),
        HeadersOutcome::Accepted { new: 3, .. }
    ));
    chain.submit_block(b1, NOW).unwrap();
    chain.submit_block(b2.clone(), NOW).unwrap();
    let outcome = chain.submit_block(b3.clone(), NOW).unwrap();
    // The branch was tried: b1 connected, b2 failed, and the old chain came back.
    assert_eq!(outcome.status, BlockStatus::Rejected);
    assert_eq!(
        outcome.verdict,
        Verdict::Invalid(meshwork_consensus::InvalidReason::InvalidAncestor)
    );
    assert_eq!(outcome.invalidated.len(), 1);
    assert_eq!(outcome.invalidated[0].0, b2.id());
    assert_eq!(chain.tip().id, old[1].id());
    assert!(chain.engine().is_known_invalid(&b2.id()));
    assert!(chain.engine().is_known_invalid(&b3.id()));
    // Known-invalid blocks are refused at once afterwards.
    assert!(chain.submit_block(b3, NOW).unwrap().verdict.is_invalid());
}

#[test]
fn finality_is_confirmation_depth_on_the_best_chain() {
    let cfg = config(); // finality depth 6
    let mut chain = open(&cfg);
    let blocks = extend(&mut chain, &key(1).peer_id(), 6, 60);
    assert_eq!(chain.finality(&blocks[5].id()), Finality::Pending);
    assert_eq!(
        chain.finality(&blocks[0].id()),
        Finality::Final {
            by: FinalityProof::Depth(6)
        }
    );
    let side = block_on(&chain, &blocks[0].header, 61, &key(2), vec![]);
    chain.submit_block(side.clone(), NOW).unwrap();
    assert_eq!(chain.finality(&side.id()), Finality::Pending);
}

#[test]
fn a_restarted_node_resumes_the_same_tip_from_its_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let cfg = config();
    let genesis = genesis_block(&cfg);
    let (tip, ids) = {
        let store = RedbStore::open(&path).unwrap();
        let mut chain = Chain::open(store, cfg.clone(), genesis.clone(), genesis.header.timestamp).unwrap();
        extend(&mut chain, &key(1).peer_id(), 12, 60);
        let ids: Vec<_> = (0..=12).map(|h| chain.block_id_at_height(h).unwrap()).collect();
        (chain.tip(), ids)
    };
    let store = RedbStore::open(&path).unwrap();
    let mut chain = Chain::open(store, cfg.clone(), genesis, 0).unwrap();
    assert_eq!(chain.tip(), tip);
    for (height, id) in ids.iter().enumerate() {
        assert_eq!(chain.block_id_at_height(height as u64), Some(*id));
    }
    assert_eq!(
        chain.balance(&key(1).peer_id()).unwrap(),
        Amount::from_coins(50 * 12)
    );
    // It keeps going from there.
    extend(&mut chain, &key(1).peer_id(), 1, 60);
    assert_eq!(chain.tip().height, 13);
    drop(chain);

    // A store from another network is refused.
    let other = meshwork_consensus::ChainConfig {
        genesis_time: cfg.genesis_time + 1,
        ..cfg
    };
    let store = RedbStore::open(&path).unwrap();
    let error = Chain::open(store, other.clone(), genesis_block(&other), 0).unwrap_err();
    assert!(matches!(error, ChainError::WrongGenesis { .. }), "{error:?}");
}

#[test]
fn reopening_a_memory_store_gives_the_same_chain() {
    let cfg = config();
    let mut chain = open(&cfg);
    extend(&mut chain, &key(3).peer_id(), 5, 60);
    let tip = chain.tip();
    let store: MemoryStore = chain.into_store();
    let chain = Chain::open(store, cfg.clone(), genesis_block(&cfg), 0).unwrap();
    assert_eq!(chain.tip(), tip);
    assert_eq!(chain.best_header().id, tip.id);
}
