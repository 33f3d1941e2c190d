//! Transactions a node cannot take yet still travel on, and cost their relays nothing. A child relayed
//! ahead of its parent: gossip ignores it where it comes first (its parent is unknown there, so it
//! waits in the orphan pool), and its signed message goes no further; when the parent arrives, the
//! node that adopts the child publishes it again. A spend of a coinbase that is mature one block
//! ahead of a node: ignored there, not rejected, so the relay a block ahead is not penalised.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;

use meshwork_coin::{
    AppConfig, CoinApp, CoinCommand, CoinEvent, CoinMessage, CoinTimer, Submitted, tx_topic, txid_of,
};
use meshwork_consensus::{Chain, ChainConfig, genesis_block, genesis_key, pow::mine};
use meshwork_gossip::{GossipMessage, Message, TreeMessage};
use meshwork_identity::{Keypair, PeerId};
use meshwork_kad::{Address, PeerInfo};
use meshwork_ledger::{Amount, Block, MemoryStore, OutPoint, Transfer, TxId, TxOut, testkit};
use meshwork_wire::{Input, Instant, Output, Protocol};

type App = CoinApp<MemoryStore>;
/// Inputs waiting for delivery, by the index of the node they go to.
type Queue = VecDeque<(usize, Input<App>)>;

/// Three nodes in a line, `a — b — c`, at `now`, at genesis of regtest.
fn line(now: Instant) -> Vec<App> {
    line_with(now, ChainConfig::regtest(), &[], &[])
}

/// [`line`] on `config`'s chain, every node's first taking `blocks`, and `a`'s then `a_only` (the
/// others stay behind: sync messages are not delivered here).
fn line_with(now: Instant, config: ChainConfig, blocks: &[Block], a_only: &[Block]) -> Vec<App> {
    let genesis = genesis_block(&config);
    let secs = now.as_duration().as_secs();
    (1..=3u8)
        .map(|seed| {
            let mut chain =
                Chain::open(MemoryStore::default(), config.clone(), genesis.clone(), secs).unwrap();
            let theirs = if seed == 1 { a_only } else { &[] };
            for block in blocks.iter().chain(theirs) {
                chain.submit_block(block.clone(), secs).unwrap();
            }
            CoinApp::new(
                Keypair::from_seed([seed; 32]),
                chain,
                AppConfig::default(),
                seed.into(),
            )
        })
        .collect()
}

/// Delivers every queued input, and what it makes the nodes send, in order, until all are quiet
/// (bounded); returns the events each node emitted. Of the timers only the ends of the batches' waits
/// fire (at once: the app's for validation, gossip's for origin signatures): nothing comes from a
/// rebroadcast.
fn settle(nodes: &mut [App], ids: &[PeerId], queue: &mut Queue, now: Instant) -> Vec<(usize, CoinEvent)> {
    let mut events = Vec::new();
    for _ in 0..10_000 {
        let Some((to, input)) = queue.pop_front() else {
            return events;
        };
        let mut out = Vec::new();
        nodes[to].handle(now, input, &mut out);
        let (emitted, sent): (Vec<_>, Vec<_>) = out.into_iter().partition(|o| matches!(o, Output::Emit(_)));
        events.extend(emitted.into_iter().filter_map(|o| match o {
            Output::Emit(event) => Some((to, event)),
            _ => None,
        }));
        forward(ids, to, sent, queue);
    }
    panic!("the nodes never went quiet");
}

/// `b` joins through `a`, `c` through `b`, and the links come up.
fn link(nodes: &mut [App], ids: &[PeerId], queue: &mut Queue, now: Instant) {
    for (x, y) in [(0, 1), (1, 2)] {
        let contact = PeerInfo {
            id: ids[x],
            addr: Address::V4 {
                ip: [127, 0, 0, 1],
                port: 7400 + x as u16,
            },
        };
        queue.push_back((y, Input::Command(CoinCommand::Join(vec![contact]))));
        queue.push_back((x, Input::PeerUp(ids[y])));
        queue.push_back((y, Input::PeerUp(ids[x])));
    }
    settle(nodes, ids, queue, now);
}

/// [`line`] at genesis of regtest plus a minute, linked: the genesis, the time, the nodes, their ids
/// and the queue.
fn linked_line() -> (Block, Instant, Vec<App>, Vec<PeerId>, Queue) {
    let genesis = genesis_block(&ChainConfig::regtest());
    let now = Instant::from_duration(std::time::Duration::from_secs(genesis.header.timestamp + 60));
    let mut nodes = line(now);
    let ids: Vec<PeerId> = nodes.iter().map(|n| n.gossip().peer_id()).collect();
    let mut queue = VecDeque::new();
    link(&mut nodes, &ids, &mut queue, now);
    (genesis, now, nodes, ids, queue)
}

/// The faucet of `genesis` pays `owner` one coin (the parent); `owner` pays on from that output (the
/// child).
fn parent_and_child(genesis: &Block) -> (Transfer, Transfer) {
    let faucet = testkit::outpoints(&genesis.txs[0])[0];
    let held = genesis.txs[0].outputs()[0].amount;
    let owner = Keypair::from_seed([9; 32]);
    let parent = testkit::pay(&[(faucet, held, &genesis_key())], &owner, Amount::from_coins(1));
    let spent = OutPoint {
        txid: txid_of(&parent),
        index: 0,
    };
    let to = Keypair::from_seed([10; 32]);
    let child = testkit::pay(
        &[(spent, Amount::from_coins(1), &owner)],
        &to,
        Amount::from_units(90_000_000),
    );
    (parent, child)
}

/// Every node's mempool holds each of `txids` (not as an orphan).
fn every_node_holds(nodes: &[App], txids: &[TxId]) {
    for (name, node) in ["a", "b", "c"].iter().zip(nodes) {
        let pool = node.chain().mempool();
        assert!(
            txids.iter().all(|txid| pool.contains(txid)),
            "{name} holds {txids:?}"
        );
    }
}

/// Queues the messages in `out`, sent by node `from`, and its batch timers. Sync's messages are left
/// out: these tests are about transaction relay, and keep the nodes' tips apart.
fn forward(ids: &[PeerId], from: usize, out: Vec<Output<App>>, queue: &mut Queue) {
    for output in out {
        match output {
            Output::Send {
                msg: CoinMessage::Sync(_),
                ..
            } => {}
            Output::Send { to, msg } => {
                let to = ids.iter().position(|id| *id == to).unwrap();
                queue.push_back((to, Input::Message { from: ids[from], msg }));
            }
            Output::Schedule {
                timer: timer @ (CoinTimer::Validate | CoinTimer::Gossip(meshwork_gossip::Timer::Verify)),
                ..
            } => queue.push_back((from, Input::Timer(timer))),
            _ => {}
        }
    }
}

#[test]
fn a_child_that_arrived_before_its_parent_is_forwarded_once_the_parent_comes() {
    let (genesis, now, mut nodes, ids, mut queue) = linked_line();
    assert!(
        nodes[1].gossip().active_view().contains(&ids[2]),
        "b and c are gossip neighbours"
    );

    let (parent, child) = parent_and_child(&genesis);
    let (parent_id, child_id) = (txid_of(&parent), txid_of(&child));

    // `a` takes both; the child's message overtakes the parent's on the way to `b` (another stream or
    // path would do that).
    let (mut to_parent, mut to_child) = (Vec::new(), Vec::new());
    nodes[0].submit_local_tx(now, parent, &mut to_parent).unwrap();
    let child_at_a = nodes[0].submit_local_tx(now, child, &mut to_child).unwrap();
    assert_eq!(child_at_a, Submitted::Accepted(child_id));
    forward(&ids, 0, to_child, &mut queue);
    settle(&mut nodes, &ids, &mut queue, now);
    assert!(
        nodes[1].chain().mempool().contains_orphan(&child_id),
        "b holds it as an orphan"
    );
    assert!(
        !nodes[2].chain().mempool().contains_orphan(&child_id),
        "b did not forward it: gossip ignored it there"
    );

    forward(&ids, 0, to_parent, &mut queue);
    settle(&mut nodes, &ids, &mut queue, now);
    every_node_holds(&nodes, &[parent_id, child_id]);
    let (b, c) = (nodes[1].relay_stats(), nodes[2].relay_stats());
    assert_eq!(
        (b.accepted, b.adopted),
        (1, 1),
        "b took the parent, then adopted the child"
    );
    assert_eq!((c.accepted, c.adopted), (2, 0), "c took both as they came");
    assert_eq!((c.rejected, b.rejected), (0, 0));
}

#[test]
fn a_coinbase_spend_mature_only_a_block_ahead_is_ignored_not_rejected() {
    // Block 1 pays `owner`, and with a maturity of two blocks its coinbase is spendable in block 3:
    // from `a`, which holds block 2, but not yet from `b` and `c`, which do not.
    let mut config = ChainConfig::regtest();
    config.ledger.coinbase_maturity = 2;
    let genesis = genesis_block(&config);
    let now = Instant::from_duration(std::time::Duration::from_secs(genesis.header.timestamp + 120));
    let owner = Keypair::from_seed([9; 32]);
    let secs = now.as_duration().as_secs();
    let mut chain = Chain::open(MemoryStore::default(), config.clone(), genesis.clone(), secs).unwrap();
    let mut blocks = Vec::new();
    for dt in [30, 60] {
        let mut block = chain
            .block_template(owner.peer_id(), genesis.header.timestamp + dt)
            .unwrap();
        block.header = mine(block.header, 1, 1 << 24).unwrap();
        chain.submit_block(block.clone(), secs).unwrap();
        blocks.push(block);
    }
    let coinbase = blocks[0].txs[0].clone();
    let mut nodes = line_with(now, config, &blocks[..1], &blocks[1..]);
    let ids: Vec<PeerId> = nodes.iter().map(|n| n.gossip().peer_id()).collect();
    let mut queue = VecDeque::new();
    link(&mut nodes, &ids, &mut queue, now);
    assert_eq!(nodes[0].chain().tip().height, 2);
    assert_eq!(nodes[1].chain().tip().height, 1);
    let coin = testkit::outpoints(&coinbase)[0];
    let held = coinbase.outputs()[0].amount;
    let spend = testkit::pay(
        &[(coin, held, &owner)],
        &Keypair::from_seed([10; 32]),
        Amount::from_units(held.units() - 100_000),
    );
    let mut out = Vec::new();
    let submitted = nodes[0].submit_local_tx(now, spend, &mut out).unwrap();
    assert!(matches!(submitted, Submitted::Accepted(_)), "{submitted:?}");
    forward(&ids, 0, out, &mut queue);
    settle(&mut nodes, &ids, &mut queue, now);
    let b = nodes[1].relay_stats();
    assert_eq!((b.rejected, b.ignored), (0, 1), "{b:?}");
    assert_eq!(
        nodes[1].gossip().score(&ids[0], now),
        0.0,
        "a relayed it honestly"
    );
}

/// A forged child relayed ahead of its parent cannot be caught when it comes (its signature commits
/// to the parent's output), so it waits as an orphan; when the parent comes and the signature fails,
/// the peer that relayed it is blamed: gossip charges it a rejection. The nodes downstream never see
/// the forgery, and nobody else is charged. A node's own orphan (its wallet's, an RPC user's) is not
/// published until its parent comes, so a forged one costs its node nothing with its neighbours.
#[test]
fn a_forged_orphan_is_blamed_on_its_relay_when_the_parent_comes() {
    let (genesis, now, mut nodes, ids, mut queue) = linked_line();

    let faucet = testkit::outpoints(&genesis.txs[0])[0];
    let held = genesis.txs[0].outputs()[0].amount;
    let owner = Keypair::from_seed([9; 32]);
    let parent = Transfer::signed(
        &[(faucet, held, &genesis_key())],
        vec![
            TxOut {
                amount: Amount::from_coins(1),
                owner: owner.peer_id(),
            };
            2
        ],
    );
    // Children signed by someone other than the owner of the outputs they spend.
    let forger = Keypair::from_seed([11; 32]);
    let forged = |index| {
        let spent = OutPoint {
            txid: txid_of(&parent),
            index,
        };
        testkit::pay(
            &[(spent, Amount::from_coins(1), &forger)],
            &forger,
            Amount::from_units(90_000_000),
        )
    };
    let (relayed, own) = (forged(0), forged(1));
    let forged_id = txid_of(&relayed);

    // `a` relays the forgery to `b` as a hostile relay would: a message of its own, published raw.
    let payload = meshwork_wire::encode(&relayed).unwrap().try_into().unwrap();
    let message = GossipMessage::sign(&forger, tx_topic(), 1, payload);
    let msg = CoinMessage::Gossip(Message::Tree(TreeMessage::Gossip { message, hops: 1 }));
    queue.push_back((1, Input::Message { from: ids[0], msg }));
    // `c`'s wallet (or an RPC user) submits the other forgery: held, not published.
    let mut out = Vec::new();
    let submitted = nodes[2].submit_local_tx(now, own.clone(), &mut out).unwrap();
    assert_eq!(submitted, Submitted::Orphan(txid_of(&own)));
    forward(&ids, 2, out, &mut queue);
    settle(&mut nodes, &ids, &mut queue, now);
    assert!(nodes[1].chain().mempool().contains_orphan(&forged_id));
    assert!(
        !nodes[1].chain().mempool().contains_orphan(&txid_of(&own)),
        "c kept its own"
    );
    assert_eq!(nodes[1].gossip().score(&ids[0], now), 0.0, "nothing is known yet");

    let mut out = Vec::new();
    nodes[0].submit_local_tx(now, parent, &mut out).unwrap();
    forward(&ids, 0, out, &mut queue);
    let rejected: Vec<_> = settle(&mut nodes, &ids, &mut queue, now)
        .into_iter()
        .filter_map(|(at, event)| match event {
            CoinEvent::TxRejected { txid, from, .. } => Some((at, txid, from)),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, vec![(1, forged_id, ids[0])]);
    assert_eq!(nodes[1].relay_stats().blamed_orphans, 1);
    assert!(nodes[1].gossip().score(&ids[0], now) < 0.0, "a is charged");
    assert_eq!(nodes[1].gossip().score(&ids[2], now), 0.0, "c is not");
    assert_eq!(nodes[2].relay_stats().blamed_orphans, 0);
    for node in &nodes {
        assert!(!node.chain().mempool().contains(&forged_id));
        assert!(!node.chain().mempool().contains(&txid_of(&own)));
    }
}

/// A node's own orphan (its wallet's, an RPC user's) waits unpublished, and goes out after its parent
/// once the parent comes by relay: every node then holds both.
#[test]
fn a_local_orphan_is_published_once_its_parent_comes() {
    let (genesis, now, mut nodes, ids, mut queue) = linked_line();
    let (parent, child) = parent_and_child(&genesis);
    let (parent_id, child_id) = (txid_of(&parent), txid_of(&child));

    let mut out = Vec::new();
    let submitted = nodes[0].submit_local_tx(now, child, &mut out).unwrap();
    assert_eq!(submitted, Submitted::Orphan(child_id));
    forward(&ids, 0, out, &mut queue);
    settle(&mut nodes, &ids, &mut queue, now);
    assert!(
        !nodes[1].chain().mempool().contains_orphan(&child_id),
        "not published"
    );

    let mut out = Vec::new();
    nodes[2].submit_local_tx(now, parent, &mut out).unwrap();
    forward(&ids, 2, out, &mut queue);
    settle(&mut nodes, &ids, &mut queue, now);
    every_node_holds(&nodes, &[parent_id, child_id]);
    assert_eq!(
        nodes[0].relay_stats().adopted,
        1,
        "a published it after the parent"
    );
}

/// A block brings the parent of a node's own orphan: the orphan goes out in that step, not at the
/// next rebroadcast (which `settle` never fires), and the neighbours, which hold the block, take it.
#[test]
fn a_local_orphan_is_published_when_its_parent_comes_in_a_block() {
    let (genesis, now, mut nodes, ids, mut queue) = linked_line();
    let (parent, child) = parent_and_child(&genesis);
    let child_id = txid_of(&child);

    let mut out = Vec::new();
    let submitted = nodes[0].submit_local_tx(now, child, &mut out).unwrap();
    assert_eq!(submitted, Submitted::Orphan(child_id));
    forward(&ids, 0, out, &mut queue);
    settle(&mut nodes, &ids, &mut queue, now);

    // A miner elsewhere puts the parent in block 1; every node connects it (`a` last).
    let secs = now.as_duration().as_secs();
    let config = ChainConfig::regtest();
    let mut miner = Chain::open(MemoryStore::default(), config, genesis.clone(), secs).unwrap();
    miner.submit_tx(parent, secs).unwrap();
    let mut block = miner
        .block_template(
            Keypair::from_seed([11; 32]).peer_id(),
            genesis.header.timestamp + 30,
        )
        .unwrap();
    block.header = mine(block.header, 1, 1 << 24).unwrap();
    assert_eq!(block.txs.len(), 2, "the coinbase and the parent");
    for at in [1, 2, 0] {
        queue.push_back((at, Input::Command(CoinCommand::SubmitBlock(block.clone()))));
    }
    settle(&mut nodes, &ids, &mut queue, now);
    for (name, node) in ["a", "b", "c"].iter().zip(&nodes) {
        assert_eq!(node.chain().tip().height, 1, "{name} took the block");
        assert!(
            node.chain().mempool().contains(&child_id),
            "{name} holds the child"
        );
    }
    assert_eq!(nodes[0].relay_stats().adopted, 1, "a published it with the block");
}
