//! The coin under BFT consensus in the simulator: four validators run Simplex inside `CoinApp`, a fifth
//! node outside the set follows their finality certificates, and a payment it sends is confirmed at
//! finality on every node.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use meshwork_coin::bft::Engine;
use meshwork_coin::{AppConfig, BftSetup, CoinApp, CoinCommand, CoinEvent, txid_of};
use meshwork_consensus::bft::{AnyJournal, BftConfig, Event, MemoryJournal, ValidatorSet};
use meshwork_consensus::{
    Chain, ChainConfig, ChainRule, Finality, FinalityProof, genesis_block, genesis_key,
};
use meshwork_identity::{Keypair, PeerId};
use meshwork_kad::{Address, PeerInfo};
use meshwork_ledger::{Amount, MemoryStore, testkit};
use meshwork_sim::{Control, NodeId, Sim, SimConfig, node_keypair};
use meshwork_wire::Instant;

type App = CoinApp<MemoryStore>;

const SEED: u64 = 17;
const VALIDATORS: usize = 4;

fn address(peer: &PeerId) -> Address {
    let b = peer.as_bytes();
    Address::V4 {
        ip: [10, b[0], b[1], b[2]],
        port: 4001,
    }
}

/// Four validators and one observer (index 4), every validator linked to every other, the observer to
/// validator 1 only; the clock at the genesis time.
fn network() -> (Sim<App>, Vec<NodeId>, ChainConfig) {
    let keys: Vec<Keypair> = (0..VALIDATORS as u32).map(|i| node_keypair(SEED, i)).collect();
    let set = ValidatorSet::new(keys.iter().map(Keypair::peer_id).collect()).unwrap();
    let config = ChainConfig {
        rule: ChainRule::Certified(set.clone()),
        ..ChainConfig::regtest()
    };
    let genesis = genesis_block(&config);
    let bft = BftConfig::new(set, genesis.id());
    let mut sim: Sim<App> = Sim::new(SimConfig::new(SEED));
    sim.run_until(
        Instant::from_duration(Duration::from_secs(config.genesis_time)),
        |_, _, _| {},
    );
    let mut nodes = Vec::new();
    for i in 0..=VALIDATORS {
        let chain = Chain::open(
            MemoryStore::new(),
            config.clone(),
            genesis.clone(),
            config.genesis_time,
        )
        .unwrap();
        let setup = BftSetup {
            config: bft.clone(),
            journal: AnyJournal::Memory(MemoryJournal::new()),
            coinbase_owner: genesis_key().peer_id(),
        };
        let node = sim
            .add_node(|init| {
                let mut app_config = AppConfig {
                    address_of: Some(address),
                    ..AppConfig::default()
                };
                app_config.kad.puzzle_difficulty = 0;
                let app = App::new(init.keypair.clone(), chain, app_config, init.rng_seed);
                if i < VALIDATORS { app.with_bft(setup) } else { app }
            })
            .unwrap();
        nodes.push(node);
    }
    for a in 0..VALIDATORS {
        for b in a + 1..VALIDATORS {
            sim.connect(nodes[a], nodes[b]).unwrap();
        }
    }
    sim.connect(nodes[VALIDATORS], nodes[1]).unwrap();
    for (i, node) in nodes.iter().enumerate() {
        let contact = if i == 1 { nodes[0] } else { nodes[1] };
        let id = sim.peer_id(contact).unwrap();
        let join = CoinCommand::Join(vec![PeerInfo {
            id,
            addr: address(&id),
        }]);
        sim.command(*node, join).unwrap();
    }
    (sim, nodes, config)
}

#[test]
fn validators_finalise_blocks_and_an_observer_confirms_a_payment_at_finality() {
    let (mut sim, nodes, config) = network();
    let observer = nodes[VALIDATORS];
    let mut nullified = std::collections::BTreeSet::new();
    let mut refused = Vec::new();
    let mut observer_finals = 0;
    let mut on_event = |_: Instant, node: NodeId, event: CoinEvent| match event {
        CoinEvent::Bft(Event::Nullified { view }) => {
            nullified.insert(view);
        }
        CoinEvent::Bft(Event::InvalidProposal { reason, .. }) => refused.push(reason.to_string()),
        CoinEvent::Consensus(error) => refused.push(error.to_string()),
        CoinEvent::Finalized { .. } if node == observer => observer_finals += 1,
        _ => {}
    };
    sim.advance(Duration::from_secs(10), &mut on_event);

    // The genesis faucet pays the observer's wallet; the observer sends it into the network.
    let genesis = genesis_block(&config);
    let faucet = testkit::outpoints(&genesis.txs[0])[0];
    let held = genesis.txs[0].outputs()[0].amount;
    let wallet = Keypair::from_seed([9; 32]);
    let tx = testkit::pay(&[(faucet, held, &genesis_key())], &wallet, Amount::from_coins(3));
    let txid = txid_of(&tx);
    sim.command(observer, CoinCommand::SubmitTx(tx)).unwrap();
    sim.advance(Duration::from_secs(10), &mut on_event);

    assert!(refused.is_empty(), "refused: {refused:?}");
    let final_height = sim
        .state(nodes[0])
        .unwrap()
        .chain()
        .final_certificate()
        .map(|c| c.height);
    assert!(
        nullified.is_empty(),
        "skipped views {nullified:?}; final height {final_height:?}"
    );
    let chains: Vec<&Chain<MemoryStore>> = nodes.iter().map(|n| sim.state(*n).unwrap().chain()).collect();
    let certificate = chains[VALIDATORS]
        .final_certificate()
        .expect("the observer heard of finality")
        .clone();
    assert!(
        certificate.height >= 20,
        "final height {} after 20 s",
        certificate.height
    );
    assert!(observer_finals > 0);
    // Every node holds the same final block at that height, and reports it final by that certificate.
    // Every node holds the same blocks up to the observer's tip, final by a certificate.
    let height = chains[VALIDATORS].tip().height;
    assert!(
        height + 3 >= certificate.height,
        "the observer lags: tip {height}"
    );
    let block = chains[VALIDATORS].block_id_at_height(height).unwrap();
    for chain in &chains {
        assert_eq!(chain.block_id_at_height(height), Some(block));
        match chain.finality(&block) {
            Finality::Final {
                by: FinalityProof::Certificate(_),
            } => {}
            other => panic!("not final by certificate: {other:?}"),
        }
    }
    // The payment is in a final block on the observer, and the wallet holds it.
    let observer_chain = chains[VALIDATORS];
    let paid = observer_chain.balance(&wallet.peer_id()).unwrap();
    assert_eq!(paid, Amount::from_coins(3));
    let coins = observer_chain.coins_of(&wallet.peer_id()).unwrap();
    let height = coins[0].1.height;
    let block = observer_chain.block_id_at_height(height).unwrap();
    assert!(matches!(observer_chain.finality(&block), Finality::Final { .. }));
    assert!(!observer_chain.mempool().contains(&txid));
    // The observer ran no engine; validators did, each in the same view.
    let engine = |i: usize| -> &Engine { sim.state(nodes[i]).unwrap().bft().unwrap() };
    assert!(sim.state(observer).unwrap().bft().is_none());
    assert!(engine(0).finalized().height >= certificate.height);
}

#[test]
fn a_partition_without_a_quorum_stops_finality_and_the_heal_resumes_it_on_one_chain() {
    let (mut sim, nodes, _) = network();
    let observer = nodes[VALIDATORS];
    let mut refused = Vec::new();
    let mut on_event = |_: Instant, _: NodeId, event: CoinEvent| match event {
        CoinEvent::Bft(Event::InvalidProposal { reason, .. }) => refused.push(reason.to_string()),
        CoinEvent::Consensus(error) => refused.push(error.to_string()),
        _ => {}
    };
    let final_height = |sim: &Sim<App>, i: usize| {
        sim.state(nodes[i])
            .unwrap()
            .chain()
            .final_certificate()
            .map_or(0, |c| c.height)
    };
    sim.advance(Duration::from_secs(5), &mut on_event);
    // Two validators (and the observer, with validator 1) on each side: no side has a quorum of 3.
    sim.apply_control(Control::Partition(vec![vec![nodes[0], nodes[1], observer]]))
        .unwrap();
    sim.advance(Duration::from_secs(1), &mut on_event);
    let cut_at = (0..VALIDATORS).map(|i| final_height(&sim, i)).max().unwrap();
    sim.advance(Duration::from_secs(20), &mut on_event);
    let during = (0..VALIDATORS).map(|i| final_height(&sim, i)).max().unwrap();
    assert_eq!(during, cut_at, "no block is final without a quorum");
    sim.apply_control(Control::Heal).unwrap();
    sim.advance(Duration::from_secs(20), &mut on_event);

    assert!(refused.is_empty(), "refused: {refused:?}");
    let chains: Vec<&Chain<MemoryStore>> = nodes.iter().map(|n| sim.state(*n).unwrap().chain()).collect();
    let heights: Vec<u64> = (0..=VALIDATORS).map(|i| final_height(&sim, i)).collect();
    assert!(
        heights.iter().all(|h| *h > during + 20),
        "final heights after the heal: {heights:?}"
    );
    let height = chains[VALIDATORS].tip().height;
    let block = chains[VALIDATORS].block_id_at_height(height);
    assert!(
        chains
            .iter()
            .all(|chain| chain.block_id_at_height(height) == block)
    );
}
