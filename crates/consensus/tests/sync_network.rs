//! Several `ChainSync` nodes driven by hand: a late node syncs a few hundred blocks from three peers,
//! one of which lies or stalls and is dropped; new blocks are relayed; a healed partition reorganises.
#![allow(clippy::unwrap_used)]

mod support;

use meshwork_consensus::sync::{ChainSync, Command, Event};
use meshwork_consensus::{Chain, Fault, InvalidReason, SyncConfig, genesis_block};
use meshwork_identity::PeerId;
use meshwork_ledger::testkit::pay;
use meshwork_ledger::{Amount, MemoryStore, OutPoint};
use support::net::{Lie, Net, Node};
use support::{config, extend, key, open, solve};

const HEIGHT: usize = 300;

/// A chain of `HEIGHT` blocks, some carrying payments, and the store holding it.
fn source_chain() -> Chain<MemoryStore> {
    let cfg = config();
    let mut chain = open(&cfg);
    let miner = key(1);
    for round in 0..HEIGHT / 10 {
        if round > 0 {
            // Spend the coinbase of ten blocks ago.
            let height = (round * 10 - 9) as u64;
            let block = chain
                .block(&chain.block_id_at_height(height).unwrap())
                .unwrap()
                .unwrap();
            let coinbase = OutPoint {
                txid: block.txs[0].txid(),
                index: 0,
            };
            let held = block.txs[0].outputs()[0].amount;
            let tx = pay(&[(coinbase, held, &miner)], &key(2), Amount::from_coins(49));
            chain.submit_tx(tx, 0).unwrap();
        }
        extend(&mut chain, &miner.peer_id(), 10, 60);
    }
    chain
}

/// A node resuming from a copy of `store`.
fn node_from(store: &MemoryStore) -> Node {
    let cfg = config();
    let chain = Chain::open(store.clone(), cfg.clone(), genesis_block(&cfg), 0).unwrap();
    ChainSync::new(chain, SyncConfig::default())
}

fn fresh_node() -> Node {
    ChainSync::new(open(&config()), SyncConfig::default())
}

/// Three serving peers (the third dishonest), a late node connected to all three; runs to quiescence.
fn late_node_scenario(lie: Lie) -> (Net, [PeerId; 4]) {
    let source = source_chain();
    let now = source.tip().header.timestamp + 100;
    let store = source.ledger().store().clone();
    let [a, b, liar, late] = [key(11), key(12), key(13), key(14)].map(|k| k.peer_id());
    let mut net = Net::new(now);
    net.add(a, node_from(&store));
    net.add(b, node_from(&store));
    net.add(liar, node_from(&store));
    net.add(late, fresh_node());
    net.lies.insert(liar, lie);
    // The liar connects first, so its (inflated) status is heard first and it is asked for headers.
    for peer in [liar, a, b] {
        net.connect(late, peer);
    }
    let steps = net.run(200_000);
    assert!(steps < 200_000, "the network went quiet");
    (net, [a, b, liar, late])
}

fn assert_synced_and_liar_dropped(net: &Net, [a, b, liar, late]: [PeerId; 4]) -> Fault {
    let expected = net.nodes[&a].chain().tip();
    let got = net.nodes[&late].chain().tip();
    assert_eq!(got, expected, "the late node reached the honest tip");
    assert_eq!(got.height, HEIGHT as u64);
    assert_eq!(
        net.nodes[&late].chain().ledger().utxo_commitment().unwrap(),
        net.nodes[&a].chain().ledger().utxo_commitment().unwrap()
    );
    let faults = net.faults(late);
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0].0, liar);
    assert!(!net.is_linked(late, liar));
    assert!(net.is_linked(late, a) && net.is_linked(late, b));
    assert!(
        net.events[&late]
            .iter()
            .any(|e| matches!(e, Event::Synced { height, .. } if *height == HEIGHT as u64))
    );
    faults[0].1.clone()
}

#[test]
fn a_late_node_syncs_from_three_peers_and_drops_one_sending_bad_blocks() {
    let (net, ids) = late_node_scenario(Lie::CorruptBlocks);
    let fault = assert_synced_and_liar_dropped(&net, ids);
    assert!(
        matches!(fault, Fault::InvalidData(InvalidReason::BodyMismatch(_))),
        "{fault:?}"
    );
    // Blocks came in parallel from both honest peers.
    let [a, b, _, late] = ids;
    let from_a = net.blocks_sent.get(&(a, late)).copied().unwrap_or(0);
    let from_b = net.blocks_sent.get(&(b, late)).copied().unwrap_or(0);
    assert!(from_a > 20 && from_b > 20, "a: {from_a}, b: {from_b}");
    assert!(from_a + from_b >= HEIGHT);
}

#[test]
fn a_peer_sending_broken_headers_is_dropped() {
    let (net, ids) = late_node_scenario(Lie::CorruptHeaders);
    let fault = assert_synced_and_liar_dropped(&net, ids);
    assert!(
        matches!(
            fault,
            Fault::InvalidData(InvalidReason::NotContinuous { index: 1 })
        ),
        "{fault:?}"
    );
}

#[test]
fn a_peer_that_stalls_is_dropped_after_its_timeout() {
    let (net, ids) = late_node_scenario(Lie::Silent);
    let fault = assert_synced_and_liar_dropped(&net, ids);
    assert_eq!(fault, Fault::Stalled);
    // Virtual time had to pass the header timeout before anyone else was asked.
    let start = config().genesis_time + 60 * HEIGHT as u64 + 100;
    let waited = net.now.as_duration().as_secs() - start;
    assert!(
        waited >= SyncConfig::default().headers_timeout.as_secs(),
        "waited {waited} s"
    );
}

#[test]
fn new_blocks_are_relayed_along_a_line_of_nodes() {
    let cfg = config();
    let genesis = genesis_block(&cfg);
    let [x, y, z] = [key(21), key(22), key(23)].map(|k| k.peer_id());
    let mut net = Net::new(genesis.header.timestamp + 10);
    for id in [x, y, z] {
        net.add(id, fresh_node());
    }
    net.connect(x, y);
    net.connect(y, z);
    net.run(1_000);
    for _ in 0..5 {
        let miner = net.nodes.get_mut(&x).unwrap();
        let now = miner.chain().tip().header.timestamp + 60;
        let block = solve(miner.chain().block_template(key(21).peer_id(), now).unwrap());
        net.command(x, Command::SubmitBlock { block, from: None });
        net.run(10_000);
    }
    let tip = net.nodes[&x].chain().tip();
    assert_eq!(tip.height, 5);
    assert_eq!(net.nodes[&y].chain().tip(), tip);
    assert_eq!(net.nodes[&z].chain().tip(), tip);
    assert!(
        net.events[&z]
            .iter()
            .any(|e| matches!(e, Event::BlockAccepted { from: Some(from), .. } if *from == y))
    );
}

#[test]
fn a_healed_partition_converges_on_the_heavier_chain() {
    let cfg = config();
    let mut light = open(&cfg);
    let mut heavy = open(&cfg);
    extend(&mut light, &key(31).peer_id(), 3, 60);
    extend(&mut heavy, &key(32).peer_id(), 5, 60);
    let heavy_tip = heavy.tip();
    let [l, h] = [key(31), key(32)].map(|k| k.peer_id());
    let mut net = Net::new(heavy_tip.header.timestamp + 10);
    net.add(l, ChainSync::new(light, SyncConfig::default()));
    net.add(h, ChainSync::new(heavy, SyncConfig::default()));
    net.connect(l, h);
    net.run(10_000);
    assert_eq!(net.nodes[&l].chain().tip(), heavy_tip);
    assert!(
        net.events[&l]
            .iter()
            .any(|e| matches!(e, Event::TipChanged { disconnected: 3, .. }))
    );
    assert!(net.faults(l).is_empty() && net.faults(h).is_empty());
}

#[test]
fn transactions_are_taken_into_the_mempool() {
    let cfg = config();
    let genesis = genesis_block(&cfg);
    let mut node = fresh_node();
    let coin = OutPoint {
        txid: genesis.txs[0].txid(),
        index: 0,
    };
    let tx = pay(
        &[(
            coin,
            genesis.txs[0].outputs()[0].amount,
            &meshwork_consensus::genesis_key(),
        )],
        &key(2),
        Amount::from_coins(10),
    );
    let mut out = Vec::new();
    let now = meshwork_wire::Instant::from_duration(std::time::Duration::from_secs(genesis.header.timestamp));
    meshwork_wire::Protocol::handle(
        &mut node,
        now,
        meshwork_wire::Input::Command(Command::SubmitTx {
            tx: tx.clone(),
            from: None,
        }),
        &mut out,
    );
    assert!(matches!(
        out[0],
        meshwork_wire::Output::Emit(Event::TxAccepted { .. })
    ));
    out.clear();
    meshwork_wire::Protocol::handle(
        &mut node,
        now,
        meshwork_wire::Input::Command(Command::SubmitTx { tx, from: None }),
        &mut out,
    );
    assert!(matches!(
        out[0],
        meshwork_wire::Output::Emit(Event::TxRejected { .. })
    ));
    assert_eq!(node.chain().mempool().len(), 1);
}

#[test]
fn sync_completes_when_waiting_blocks_barely_fit_in_memory() {
    let source = source_chain();
    let now = source.tip().header.timestamp + 100;
    let store = source.ledger().store().clone();
    let [a, b, late] = [key(41), key(42), key(43)].map(|k| k.peer_id());
    // Room for about three waiting blocks: downloads ahead of the tip are cut back to the next one.
    let tight = meshwork_consensus::ChainConfig {
        max_unconnected_block_bytes: 1_000,
        ..config()
    };
    let genesis = genesis_block(&tight);
    let chain = Chain::open(
        MemoryStore::new(),
        tight,
        genesis.clone(),
        genesis.header.timestamp,
    )
    .unwrap();
    let mut net = Net::new(now);
    net.add(a, node_from(&store));
    net.add(b, node_from(&store));
    net.add(late, ChainSync::new(chain, SyncConfig::default()));
    net.connect(late, a);
    net.connect(late, b);
    assert!(net.run(200_000) < 200_000);
    assert_eq!(net.nodes[&late].chain().tip(), source.tip());
    assert!(net.faults(late).is_empty());
    assert!(net.nodes[&late].chain().unconnected_blocks().1 <= 1_000);
}
