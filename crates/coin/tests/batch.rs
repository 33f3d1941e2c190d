//! Relayed transactions are judged in batches under load: their signatures verified together, their
//! verdicts given once the batch is full or its short wait ends (`AppConfig::validation_batch`,
//! `validation_delay`); one that comes alone is judged at once. Gossip checks their origin signatures
//! in batches first (`meshwork_gossip::Config::verify_batch`): a batch of those is judged at once.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;

use meshwork_coin::{AppConfig, CoinApp, CoinCommand, CoinTimer, txid_of};
use meshwork_consensus::{Chain, ChainConfig, genesis_block, genesis_key};
use meshwork_gossip::Timer as GossipTimer;
use meshwork_identity::{Keypair, PeerId};
use meshwork_kad::{Address, PeerInfo};
use meshwork_ledger::{Amount, MemoryStore, OutPoint, Transfer, TxOut, testkit};
use meshwork_wire::{Input, Instant, Output, Protocol};

type App = CoinApp<MemoryStore>;

struct Pair {
    nodes: [App; 2],
    ids: [PeerId; 2],
    queue: VecDeque<(usize, Input<App>)>,
    /// The app's batch timers scheduled by each node.
    timers: [usize; 2],
    /// Gossip's batch timers (for origin signatures) scheduled by each node.
    verify_timers: [usize; 2],
    now: Instant,
}

impl Pair {
    /// `a — b`, gossip neighbours, `b` judging with `config`.
    fn new(config: AppConfig) -> Self {
        let chain_config = ChainConfig::regtest();
        let genesis = genesis_block(&chain_config);
        let now = Instant::from_duration(std::time::Duration::from_secs(genesis.header.timestamp + 60));
        let secs = now.as_duration().as_secs();
        let node = |seed: u8, config: AppConfig| {
            let chain = Chain::open(
                MemoryStore::default(),
                chain_config.clone(),
                genesis.clone(),
                secs,
            )
            .unwrap();
            CoinApp::new(Keypair::from_seed([seed; 32]), chain, config, seed.into())
        };
        let nodes = [node(1, AppConfig::default()), node(2, config)];
        let ids = [nodes[0].gossip().peer_id(), nodes[1].gossip().peer_id()];
        let mut pair = Self {
            nodes,
            ids,
            queue: VecDeque::new(),
            timers: [0; 2],
            verify_timers: [0; 2],
            now,
        };
        let contact = PeerInfo {
            id: ids[1],
            addr: Address::V4 {
                ip: [127, 0, 0, 1],
                port: 7401,
            },
        };
        pair.queue
            .push_back((0, Input::Command(CoinCommand::Join(vec![contact]))));
        pair.queue.push_back((0, Input::PeerUp(ids[1])));
        pair.queue.push_back((1, Input::PeerUp(ids[0])));
        pair.settle();
        assert!(pair.nodes[1].gossip().active_view().contains(&ids[0]));
        pair
    }

    /// Delivers every queued input and what it makes the nodes send (bounded); counts batch timers.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let Some((to, input)) = self.queue.pop_front() else {
                return;
            };
            let mut out = Vec::new();
            self.nodes[to].handle(self.now, input, &mut out);
            self.carry(to, out);
        }
        panic!("the nodes never went quiet");
    }

    fn carry(&mut self, from: usize, out: Vec<Output<App>>) {
        for output in out {
            match output {
                Output::Send { to, msg } => {
                    let to = self.ids.iter().position(|id| *id == to).unwrap();
                    self.queue.push_back((
                        to,
                        Input::Message {
                            from: self.ids[from],
                            msg,
                        },
                    ));
                }
                Output::Schedule {
                    timer: CoinTimer::Validate,
                    ..
                } => self.timers[from] += 1,
                Output::Schedule {
                    timer: CoinTimer::Gossip(GossipTimer::Verify),
                    ..
                } => self.verify_timers[from] += 1,
                _ => {}
            }
        }
    }

    /// `a` submits `txs` and relays them to `b`.
    fn submit(&mut self, txs: &[Transfer]) {
        for tx in txs {
            let mut out = Vec::new();
            self.nodes[0]
                .submit_local_tx(self.now, tx.clone(), &mut out)
                .unwrap();
            self.carry(0, out);
        }
        self.settle();
    }

    /// Fires `b`'s batch timer.
    fn fire(&mut self) {
        self.queue.push_back((1, Input::Timer(CoinTimer::Validate)));
        self.settle();
    }

    /// Fires `b`'s gossip batch timer.
    fn fire_gossip(&mut self) {
        self.queue
            .push_back((1, Input::Timer(CoinTimer::Gossip(GossipTimer::Verify))));
        self.settle();
    }
}

/// The genesis faucet's coin split in `n` outputs, and a spend of each.
fn transfers(n: usize) -> (Transfer, Vec<Transfer>) {
    let genesis = genesis_block(&ChainConfig::regtest());
    let faucet = testkit::outpoints(&genesis.txs[0])[0];
    let held = genesis.txs[0].outputs()[0].amount;
    let owner = Keypair::from_seed([9; 32]);
    let output = TxOut {
        amount: Amount::from_coins(1),
        owner: owner.peer_id(),
    };
    let split = Transfer::signed(&[(faucet, held, &genesis_key())], vec![output; n]);
    let spends = (0..n)
        .map(|i| {
            let coin = OutPoint {
                txid: txid_of(&split),
                index: u32::try_from(i).unwrap(),
            };
            let to = Keypair::from_seed([10; 32]);
            testkit::pay(
                &[(coin, Amount::from_coins(1), &owner)],
                &to,
                Amount::from_units(90_000_000),
            )
        })
        .collect();
    (split, spends)
}

fn in_mempool(app: &App, txs: &[Transfer]) -> usize {
    txs.iter()
        .filter(|tx| app.chain().mempool().contains(&txid_of(tx)))
        .count()
}

/// The app's own batches, with gossip's off: the wait is the app's.
fn app_batches_only(validation_batch: usize) -> AppConfig {
    let defaults = AppConfig::default();
    AppConfig {
        validation_batch,
        gossip: meshwork_gossip::Config {
            verify_batch: 1,
            ..defaults.gossip.clone()
        },
        ..defaults
    }
}

#[test]
fn transactions_that_come_together_wait_for_the_batch_timer_and_are_verified_together() {
    let mut pair = Pair::new(app_batches_only(64));
    let (split, spends) = transfers(3);
    // The first comes alone: judged at once.
    pair.submit(std::slice::from_ref(&split));
    assert_eq!(pair.timers[1], 0);
    assert_eq!(in_mempool(&pair.nodes[1], std::slice::from_ref(&split)), 1);
    // Three more in the same instant, within the wait after it: gathered.
    pair.submit(&spends);
    assert_eq!(pair.timers[1], 1, "one timer for the three");
    assert_eq!(
        in_mempool(&pair.nodes[1], &spends),
        0,
        "none judged before the wait ends"
    );
    pair.fire();
    assert_eq!(in_mempool(&pair.nodes[1], &spends), 3);
    let stats = pair.nodes[1].relay_stats();
    assert_eq!((stats.batches, stats.batch_verified, stats.accepted), (1, 3, 4));
}

#[test]
fn a_batch_of_origin_signatures_is_judged_as_one_batch_without_a_second_wait() {
    let mut pair = Pair::new(AppConfig::default());
    let (split, spends) = transfers(3);
    pair.submit(std::slice::from_ref(&split));
    assert_eq!(pair.verify_timers[1], 0, "the first came alone");
    // Three more in the same instant: gossip holds them for one check of their origin signatures.
    pair.submit(&spends);
    assert_eq!(pair.verify_timers[1], 1);
    assert_eq!(in_mempool(&pair.nodes[1], &spends), 0);
    pair.fire_gossip();
    // Judged at once, in one batch of the ledger's: no timer of the app's.
    assert_eq!(in_mempool(&pair.nodes[1], &spends), 3);
    assert_eq!(pair.timers[1], 0);
    let stats = pair.nodes[1].relay_stats();
    assert_eq!((stats.batches, stats.batch_verified, stats.accepted), (1, 3, 4));
    let gossip = pair.nodes[1].gossip().stats();
    assert_eq!((gossip.signature_batches, gossip.signatures_batched), (1, 3));
}

#[test]
fn transactions_that_come_sparsely_are_judged_at_once() {
    let mut pair = Pair::new(AppConfig::default());
    let (split, spends) = transfers(2);
    pair.submit(&[split]);
    for tx in &spends {
        // Each as long after the one before as the batch's wait.
        pair.now += AppConfig::default().validation_delay;
        pair.submit(std::slice::from_ref(tx));
        assert_eq!(in_mempool(&pair.nodes[1], std::slice::from_ref(tx)), 1);
    }
    assert_eq!(pair.timers[1], 0);
    assert_eq!(pair.nodes[1].relay_stats().batches, 0);
}

#[test]
fn a_full_batch_is_judged_without_waiting() {
    let mut pair = Pair::new(app_batches_only(2));
    let (split, spends) = transfers(2);
    pair.submit(&[split]);
    pair.submit(&spends);
    assert_eq!(
        in_mempool(&pair.nodes[1], &spends),
        2,
        "judged when the second came"
    );
    assert_eq!(
        pair.timers[1], 1,
        "the first spend began a wait that the second ended"
    );
    let stats = pair.nodes[1].relay_stats();
    assert_eq!((stats.batches, stats.batch_verified), (1, 2));
}

#[test]
fn batches_of_one_judge_each_transaction_as_it_comes() {
    let config = AppConfig {
        validation_batch: 1,
        ..AppConfig::default()
    };
    let mut pair = Pair::new(config);
    let (split, spends) = transfers(2);
    pair.submit(&[split]);
    pair.submit(&spends);
    assert_eq!(in_mempool(&pair.nodes[1], &spends), 2);
    assert_eq!(pair.timers[1], 0);
    assert_eq!(pair.nodes[1].relay_stats().batches, 0);
}
