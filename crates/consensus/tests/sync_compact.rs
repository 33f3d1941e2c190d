//! Compact block relay (BIP152's low-bandwidth mode) between `ChainSync` nodes driven by hand: a block
//! whose transactions the receiver holds costs it a small part of the block; missing transactions are
//! fetched by position; wrong transactions fall back to the full block; a malformed compact block costs
//! its sender the connection; serving never answers more than the block.
#![allow(clippy::unwrap_used)]

mod support;

use meshwork_consensus::sync::{ChainSync, Command, CompactBlockError, Message, RelayStats};
use meshwork_consensus::{Fault, SyncConfig, genesis_block, genesis_key};
use meshwork_identity::{Keypair, PeerId};
use meshwork_ledger::testkit::pay;
use meshwork_ledger::{Amount, BlockId, OutPoint, Transaction, Transfer, TxOut};
use meshwork_wire::{Input, Instant, Output, Protocol};
use support::net::{Lie, Net};
use support::{config, key, open, solve};

/// Payments in the relayed block.
const PAYMENTS: usize = 100;

/// A miner and a receiver, linked, at genesis.
struct Pair {
    net: Net,
    miner: PeerId,
    receiver: PeerId,
}

impl Pair {
    fn new(receiver_config: SyncConfig) -> Self {
        let genesis = genesis_block(&config());
        let [miner, receiver] = [key(61), key(62)].map(|k| k.peer_id());
        let mut net = Net::new(genesis.header.timestamp + 10);
        net.add(miner, ChainSync::new(open(&config()), SyncConfig::default()));
        net.add(receiver, ChainSync::new(open(&config()), receiver_config));
        net.connect(miner, receiver);
        net.run(1_000);
        Self { net, miner, receiver }
    }

    /// Offers `tx` to the mempools of `nodes`.
    fn submit(&mut self, tx: &Transfer, nodes: &[PeerId]) {
        for node in nodes {
            let command = Command::SubmitTx {
                tx: tx.clone(),
                from: None,
            };
            self.net.command(*node, command);
        }
        self.net.run(1_000);
    }

    /// The miner mines its mempool into a block and relays it; returns the block's id.
    fn mine(&mut self) -> BlockId {
        let block = self.submit_next();
        assert!(self.net.run(10_000) < 10_000);
        block.id()
    }

    /// The miner's next block, a minute after its tip, on its mempool: queued for the miner to take
    /// and relay (nothing runs yet), and returned.
    fn submit_next(&mut self) -> meshwork_ledger::Block {
        let node = self.net.nodes.get_mut(&self.miner).unwrap();
        let now = node.chain().tip().header.timestamp + 60;
        let block = solve(node.chain().block_template(key(61).peer_id(), now).unwrap());
        let command = Command::SubmitBlock {
            block: block.clone(),
            from: None,
        };
        self.net.command(self.miner, command);
        block
    }

    fn relay_stats(&self) -> RelayStats {
        self.net.nodes[&self.receiver].relay_stats()
    }

    fn assert_same_tip(&self) {
        let tip = self.net.nodes[&self.miner].chain().tip();
        assert_eq!(self.net.nodes[&self.receiver].chain().tip(), tip);
    }
}

/// A split of the genesis coin into `PAYMENTS` coins of the payer, and one payment from each, to a
/// third key.
fn payments() -> (Transfer, Vec<Transfer>) {
    let genesis = genesis_block(&config());
    let payer = key(63);
    let coin = OutPoint {
        txid: genesis.txs[0].txid(),
        index: 0,
    };
    let held = genesis.txs[0].outputs()[0].amount;
    // The rest of the coin is the split's fee.
    let each = Amount::from_units(held.units() / (PAYMENTS as u64 + 1));
    let outputs = vec![
        TxOut {
            amount: each,
            owner: payer.peer_id(),
        };
        PAYMENTS
    ];
    let split = Transfer::signed(&[(coin, held, &genesis_key())], outputs);
    let split_id = Transaction::Transfer(split.clone()).txid();
    let pays = (0..PAYMENTS as u32)
        .map(|index| {
            let coin = OutPoint {
                txid: split_id,
                index,
            };
            pay(
                &[(coin, each, &payer)],
                &key(64),
                Amount::from_units(each.units() - 1_000),
            )
        })
        .collect();
    (split, pays)
}

/// Mines the split (held by both nodes), then offers the payments to the miner and all but
/// `receiver_lacks` of them to the receiver; returns the pair with the payments in its mempools.
fn pair_with_payments(receiver_config: SyncConfig, receiver_lacks: usize) -> Pair {
    let mut pair = Pair::new(receiver_config);
    let (split, pays) = payments();
    let both = [pair.miner, pair.receiver];
    pair.submit(&split, &both);
    pair.mine();
    pair.assert_same_tip();
    for (i, tx) in pays.iter().enumerate() {
        if i < receiver_lacks {
            pair.submit(tx, &[pair.miner]);
        } else {
            pair.submit(tx, &both);
        }
    }
    assert_eq!(pair.net.nodes[&pair.miner].chain().mempool().len(), PAYMENTS);
    pair
}

#[test]
fn a_block_whose_transactions_the_receiver_holds_costs_it_under_a_tenth_of_the_block() {
    let mut pair = pair_with_payments(SyncConfig::default(), 0);
    let before = pair.relay_stats();
    pair.mine();
    pair.assert_same_tip();
    let stats = pair.relay_stats();
    assert_eq!(stats.blocks - before.blocks, 1);
    assert_eq!(stats.rebuilt - before.rebuilt, 1);
    assert_eq!(stats.rebuilt_with_fetch, 0);
    assert_eq!(stats.fallbacks, 0);
    let bytes = stats.relay_bytes - before.relay_bytes;
    let block = stats.block_bytes - before.block_bytes;
    let ratio = bytes as f64 / block as f64;
    assert!(
        ratio < 0.10,
        "{bytes} relay bytes for a block of {block}: {ratio:.3}"
    );
    // The full block did not cross the link.
    assert_eq!(pair.net.blocks_sent.get(&(pair.miner, pair.receiver)), None);
    assert!(pair.net.faults(pair.receiver).is_empty());
    assert!(pair.net.nodes[&pair.receiver].chain().mempool().is_empty());
}

#[test]
fn with_compact_relay_off_the_same_block_costs_more_than_itself() {
    let config = SyncConfig {
        compact_blocks: false,
        ..SyncConfig::default()
    };
    let mut pair = pair_with_payments(config, 0);
    let before = pair.relay_stats();
    pair.mine();
    pair.assert_same_tip();
    let stats = pair.relay_stats();
    assert_eq!(stats.blocks - before.blocks, 1);
    assert_eq!(stats.rebuilt, 0);
    let ratio =
        (stats.relay_bytes - before.relay_bytes) as f64 / (stats.block_bytes - before.block_bytes) as f64;
    assert!(ratio > 1.0, "{ratio}");
}

#[test]
fn missing_transactions_are_fetched_by_position_and_nothing_else() {
    let lacks = 10;
    let mut pair = pair_with_payments(SyncConfig::default(), lacks);
    pair.mine();
    pair.assert_same_tip();
    let stats = pair.relay_stats();
    assert_eq!(stats.rebuilt, 2);
    assert_eq!(stats.rebuilt_with_fetch, 1);
    assert_eq!(stats.txs_fetched, lacks as u64);
    assert_eq!(stats.fallbacks, 0);
    assert_eq!(pair.net.blocks_sent.get(&(pair.miner, pair.receiver)), None);
    assert!(stats.bytes_over_block_bytes() < 0.5, "{stats:?}");
}

#[test]
fn wrong_missing_transactions_fall_back_to_the_full_block_without_blame() {
    let mut pair = pair_with_payments(SyncConfig::default(), 10);
    pair.net.lies.insert(pair.miner, Lie::WrongBlockTxs);
    pair.mine();
    pair.assert_same_tip();
    let stats = pair.relay_stats();
    assert_eq!(stats.fallbacks, 1);
    assert_eq!(stats.rebuilt, 1, "only the first block was rebuilt");
    assert_eq!(pair.net.blocks_sent[&(pair.miner, pair.receiver)], 1);
    // A short-id collision looks the same to the receiver, so the sender keeps its connection.
    assert!(pair.net.faults(pair.receiver).is_empty());
    assert!(pair.net.is_linked(pair.miner, pair.receiver));
}

#[test]
fn a_malformed_compact_block_costs_its_sender_the_connection() {
    let mut pair = pair_with_payments(SyncConfig::default(), 0);
    pair.net.lies.insert(pair.miner, Lie::BadCompactBlock);
    pair.mine();
    let faults = pair.net.faults(pair.receiver);
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0].0, pair.miner);
    assert!(matches!(
        faults[0].1,
        Fault::BadCompactBlock(CompactBlockError::BadPrefilledIndex { index: u32::MAX, .. })
    ));
    assert!(!pair.net.is_linked(pair.miner, pair.receiver));
    assert_eq!(pair.net.nodes[&pair.receiver].chain().tip().height, 1);
}

/// Drives one node by hand: what it sends back to `peer` for `msg`, `secs` after `NOW` (a second apart
/// between requests, so an answer in flight does not hold the next one back).
fn answers(
    node: &mut ChainSync<meshwork_ledger::MemoryStore>,
    peer: PeerId,
    secs: u64,
    msg: Message,
) -> Vec<Message> {
    let now = Instant::from_duration(std::time::Duration::from_secs(support::NOW + secs));
    let mut out = Vec::new();
    node.handle(now, Input::Message { from: peer, msg }, &mut out);
    out.into_iter()
        .filter_map(|output| match output {
            Output::Send { to, msg } if to == peer => Some(msg),
            _ => None,
        })
        .collect()
}

#[test]
fn serving_answers_compact_requests_and_refuses_positions_that_could_grow_the_answer() {
    let mut chain = open(&config());
    let blocks = support::extend(&mut chain, &key(65).peer_id(), 1, 60);
    let block = &blocks[0];
    let id = block.id();
    let mut node = ChainSync::new(chain, SyncConfig::default());
    let peer = Keypair::from_seed([66; 32]).peer_id();
    let now = Instant::from_duration(std::time::Duration::from_secs(support::NOW));
    node.handle(now, Input::PeerUp(peer), &mut Vec::new());

    let compact = answers(&mut node, peer, 1, Message::GetCompactBlock(id));
    let [Message::CompactBlock(compact)] = compact.as_slice() else {
        panic!("{compact:?}");
    };
    assert_eq!(compact.header, block.header);
    assert_eq!(compact.len(), block.txs.len());
    assert_eq!(
        compact.prefilled[0].tx, block.txs[0],
        "the coinbase is sent whole"
    );

    let txs = answers(
        &mut node,
        peer,
        2,
        Message::GetBlockTxs {
            block: id,
            indexes: vec![0].try_into().unwrap(),
        },
    );
    assert!(matches!(txs.as_slice(), [Message::BlockTxs { txs, .. }] if txs[0] == block.txs[0]));

    // The same position twice, or one past the end: no answer larger than the block.
    for (secs, indexes) in [(3, vec![0, 0]), (4, vec![5])] {
        let refused = answers(
            &mut node,
            peer,
            secs,
            Message::GetBlockTxs {
                block: id,
                indexes: indexes.try_into().unwrap(),
            },
        );
        assert!(
            matches!(refused.as_slice(), [Message::NotFound(ids)] if ids[0] == id),
            "{refused:?}"
        );
    }
}

#[test]
fn an_unsolicited_compact_block_is_ignored() {
    let mut chain = open(&config());
    let block = support::extend(&mut chain, &key(67).peer_id(), 1, 60).remove(0);
    let mut node = ChainSync::new(open(&config()), SyncConfig::default());
    let peer = Keypair::from_seed([68; 32]).peer_id();
    let now = Instant::from_duration(std::time::Duration::from_secs(support::NOW));
    node.handle(now, Input::PeerUp(peer), &mut Vec::new());
    let msg = Message::CompactBlock(meshwork_consensus::sync::CompactBlock::of(&block));
    let mut out = Vec::new();
    node.handle(now, Input::Message { from: peer, msg }, &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(node.chain().tip().height, 0);
    assert_eq!(node.relay_stats(), RelayStats::default());
}

#[test]
fn a_new_tip_is_not_announced_back_to_peers_that_announced_it() {
    let mut chain = open(&config());
    let block = support::extend(&mut chain, &key(69).peer_id(), 1, 60).remove(0);
    let mut node = ChainSync::new(open(&config()), SyncConfig::default());
    let [a, b] = [70u8, 71].map(|i| Keypair::from_seed([i; 32]).peer_id());
    let now = Instant::from_duration(std::time::Duration::from_secs(support::NOW));
    let mut out = Vec::new();
    for peer in [a, b] {
        node.handle(now, Input::PeerUp(peer), &mut out);
    }
    for peer in [a, b] {
        let msg = Message::NewTip(block.header);
        node.handle(now, Input::Message { from: peer, msg }, &mut out);
    }
    let asked: Vec<PeerId> = out
        .drain(..)
        .filter_map(|output| match output {
            Output::Send {
                to,
                msg: Message::GetCompactBlock(id),
            } if id == block.id() => Some(to),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 1, "one peer is asked");
    let msg = Message::CompactBlock(meshwork_consensus::sync::CompactBlock::of(&block));
    node.handle(now, Input::Message { from: asked[0], msg }, &mut out);
    assert_eq!(node.chain().tip().id, block.id());
    let announced: Vec<&PeerId> = out
        .iter()
        .filter_map(|output| match output {
            Output::Send {
                to,
                msg: Message::NewTip(_),
            } => Some(to),
            _ => None,
        })
        .collect();
    assert!(announced.is_empty(), "announced back to {announced:?}");
}

#[test]
fn a_block_answered_whole_ends_its_relay_so_the_next_one_is_asked_for_compact_again() {
    let mut chain = open(&config());
    let blocks = support::extend(&mut chain, &key(72).peer_id(), 2, 60);
    let mut node = ChainSync::new(open(&config()), SyncConfig::default());
    let peer = Keypair::from_seed([73; 32]).peer_id();
    let now = Instant::from_duration(std::time::Duration::from_secs(support::NOW));
    node.handle(now, Input::PeerUp(peer), &mut Vec::new());
    let asked = |out: Vec<Output<ChainSync<meshwork_ledger::MemoryStore>>>| -> Vec<Message> {
        out.into_iter()
            .filter_map(|output| match output {
                Output::Send { msg, .. } if !matches!(msg, Message::NewTip(_)) => Some(msg),
                _ => None,
            })
            .collect()
    };
    for block in &blocks {
        let mut out = Vec::new();
        let msg = Message::NewTip(block.header);
        node.handle(now, Input::Message { from: peer, msg }, &mut out);
        assert_eq!(asked(out), vec![Message::GetCompactBlock(block.id())]);
        // The peer answers with the whole block instead.
        let mut out = Vec::new();
        let msg = Message::Block(block.clone());
        node.handle(now, Input::Message { from: peer, msg }, &mut out);
        assert_eq!(node.chain().tip().id, block.id());
    }
}

#[test]
fn a_compact_block_repeating_a_short_id_is_not_rebuilt_but_fetched_whole() {
    // One short id at 16,382 positions, naming one transaction of our mempool, and a made-up one:
    // rebuilt, that is 16,382 clones held while the made-up one is fetched, then all hashed.
    let mut pair = pair_with_payments(SyncConfig::default(), 0);
    pair.net.lies.insert(pair.miner, Lie::RepeatedShortIds);
    let before = pair.relay_stats();
    pair.mine();
    pair.assert_same_tip();
    let stats = pair.relay_stats();
    assert_eq!(stats.fallbacks - before.fallbacks, 1);
    assert_eq!(stats.rebuilt_with_fetch, 0, "no missing transaction asked for");
    assert_eq!(stats.rebuilt - before.rebuilt, 0);
    assert_eq!(pair.net.blocks_sent[&(pair.miner, pair.receiver)], 1);
    // A chance collision looks the same: the sender keeps its connection.
    assert!(pair.net.faults(pair.receiver).is_empty());
}

#[test]
fn a_block_another_peer_brings_ends_a_relay_still_waiting_for_missing_transactions() {
    let mut pair = pair_with_payments(SyncConfig::default(), 10);
    let other = key(65).peer_id();
    pair.net
        .add(other, ChainSync::new(open(&config()), SyncConfig::default()));
    pair.net.connect(other, pair.receiver);
    pair.net.run(10_000);
    // The miner never sends the missing transactions of its next block: the receiver's relay with it
    // waits, and nothing else happens before its timer (which is not fired here).
    pair.net.lies.insert(pair.miner, Lie::SilentBlockTxs);
    let block = pair.submit_next();
    let x = block.id();
    assert!(pair.net.settle(10_000) < 10_000);
    assert_ne!(pair.net.nodes[&pair.receiver].chain().tip().id, x);
    // Another peer brings the block.
    pair.net.deliver(other, pair.receiver, Message::Block(block));
    assert!(pair.net.settle(10_000) < 10_000);
    assert_eq!(pair.net.nodes[&pair.receiver].chain().tip().id, x);
    // The miner's next block is asked for compact again, not whole behind a relay that is over.
    let before = pair.relay_stats();
    let y = pair.submit_next().id();
    // Timers run now: the miner's next answer waits on its serving timer.
    assert!(pair.net.run(10_000) < 10_000);
    assert_eq!(pair.net.nodes[&pair.receiver].chain().tip().id, y);
    assert_eq!(pair.relay_stats().rebuilt - before.rebuilt, 1);
    assert_eq!(pair.net.blocks_sent.get(&(pair.miner, pair.receiver)), None);
}
