//! What the proof-of-work experiments share: a network of [`ChainSync`] nodes over [`MemoryStore`], miners
//! as Poisson processes, and the records their events leave.
//!
//! **Links.** Nodes are placed at random in the six cloud regions of [`RegionMatrix::cloud6`] (one-way
//! delay half the measured RTT), with up to `--jitter-ms` of extra delay and `--upload-kbps` of upload
//! bandwidth per node; each node opens `--degree` connections (a random regular overlay, like Bitcoin
//! Core's eight outbound peers). Blocks travel by `ChainSync` alone: `NewTip`, then `GetBlocks`, then
//! `Block`, i.e. three one-way delays per hop (headers-first, as Bitcoin's `headers`/`getdata`/`block`).
//!
//! **Mining.** Miner `i` holds a share `1/M` of the hash power and finds blocks as a Poisson process of
//! rate `1 / (M T)`: its next block comes an exponential time after its last one, drawn from an RNG seeded
//! by the run seed (the sum of the M processes is the network's Poisson process of rate `1/T`). When its
//! timer fires the miner takes [`Chain::block_template`] on *its own* current tip and grinds a real nonce
//! ([`mine`]), so every node runs the real header checks (proof of work, ASERT target, timestamps).
//!
//! **Difficulty.** The simulated hash rate is what the timers say, not what the grinding costs, so the
//! chain runs at the regtest proof-of-work limit (one hash in two) and ASERT is configured with
//! `target_block_time = T` and a half-life of 288 blocks (Bitcoin Cash's two days at T = 600 s). Mining on
//! schedule keeps the required target at the limit; a chain ahead of schedule by `k` block times gets a
//! target harder by `2^(k/288)` (a few percent at most here), which the miner simply grinds, and which
//! makes block work differ slightly, as in a real network. Fork choice is by work.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use clap::Args as ClapArgs;
use meshwork_consensus::pow::mine;
use meshwork_consensus::sync::{ChainSync, Command, Event};
use meshwork_consensus::{Chain, ChainConfig, SyncConfig, TipInfo, genesis_block};
use meshwork_identity::Keypair;
use meshwork_ledger::{Block, BlockId, MemoryStore, Transfer, TxId};
use meshwork_sim::{ChaCha8Rng, Latency, LinkConfig, NodeId, RegionMatrix, Sim, SimConfig, Stop, topology};
use meshwork_wire::{Instant, PeerId, Protocol};
use rand::{Rng, SeedableRng};

use crate::clock::Progress;

/// A node: headers-first sync and block relay over an in-memory chain.
pub(crate) type Node = ChainSync<MemoryStore>;

/// Network options of the proof-of-work experiments.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct NetArgs {
    /// Connections per node (random regular overlay; Bitcoin Core opens 8 outbound).
    #[arg(long, default_value_t = 8)]
    pub(crate) degree: usize,
    /// Upload bandwidth of each node, in kilobytes per second (0: unlimited).
    #[arg(long, default_value_t = 1000)]
    pub(crate) upload_kbps: u64,
    /// Extra random delay per message, up to this many milliseconds.
    #[arg(long, default_value_t = 10)]
    pub(crate) jitter_ms: u64,
}

impl NetArgs {
    /// The link model these options describe (cloud6 region latencies).
    pub(crate) fn link(&self) -> LinkConfig {
        let mut link = LinkConfig {
            latency: Latency::Regions(RegionMatrix::cloud6()),
            ..LinkConfig::default()
        }
        .with_jitter(Duration::from_millis(self.jitter_ms));
        if self.upload_kbps > 0 {
            link = link.with_upload(self.upload_kbps.saturating_mul(1000));
        }
        link
    }
}

/// Regtest rules (limit one hash in two, coinbase maturity 1) with ASERT aimed at `block_time` seconds
/// and a half-life of 288 blocks.
pub(crate) fn chain_config(block_time: u64) -> ChainConfig {
    let block_time = block_time.max(1);
    ChainConfig {
        target_block_time: block_time,
        half_life: block_time.saturating_mul(288),
        ..ChainConfig::regtest()
    }
}

/// A fresh node at the genesis block of `config`.
pub(crate) fn fresh_node(config: &ChainConfig) -> Result<Node, String> {
    let genesis = genesis_block(config);
    let now = genesis.header.timestamp;
    let chain = Chain::open(MemoryStore::new(), config.clone(), genesis, now).map_err(|e| e.to_string())?;
    Ok(ChainSync::new(chain, SyncConfig::default()))
}

/// `at` as virtual seconds since `start`.
pub(crate) fn secs_since(at: Instant, start: Instant) -> f64 {
    (at - start).as_secs_f64()
}

/// A block some miner found.
pub(crate) struct Mined {
    pub(crate) parent: BlockId,
    pub(crate) height: u64,
    /// The node that mined it.
    pub(crate) node: usize,
    pub(crate) at: Instant,
    pub(crate) txids: Vec<TxId>,
}

/// What the nodes' events told us.
#[derive(Default)]
pub(crate) struct Records {
    pub(crate) mined: HashMap<BlockId, Mined>,
    /// Mined blocks in the order they were found.
    pub(crate) order: Vec<BlockId>,
    /// (block, node) pairs whose block has been on the node's best chain.
    accepted: HashSet<(BlockId, u32)>,
    /// Mining to first acceptance at each other node, in milliseconds.
    pub(crate) delays_ms: Vec<f64>,
    /// Reorganisations: when, where, how many blocks were disconnected.
    pub(crate) reorgs: Vec<(Instant, NodeId, usize)>,
    /// The last tip change of each node.
    pub(crate) last_tip_change: HashMap<NodeId, Instant>,
    /// Peers dropped for misbehaving: when, by whom, which peer, why.
    pub(crate) faults: Vec<(Instant, NodeId, PeerId, String)>,
    /// `Synced` events: when, where, height.
    pub(crate) synced: Vec<(Instant, NodeId, u64)>,
}

impl Records {
    pub(crate) fn on_event(&mut self, at: Instant, node: NodeId, event: Event) {
        match event {
            Event::TipChanged {
                id,
                connected,
                disconnected,
                ..
            } => {
                if disconnected > 0 {
                    self.reorgs.push((at, node, disconnected));
                }
                self.last_tip_change.insert(node, at);
                // The connected blocks are the tip and its ancestors.
                let mut current = id;
                for _ in 0..connected {
                    let Some(mined) = self.mined.get(&current) else {
                        break;
                    };
                    if self.accepted.insert((current, node.0)) && mined.node != node.index() {
                        self.delays_ms.push((at - mined.at).as_secs_f64() * 1000.0);
                    }
                    current = mined.parent;
                }
            }
            Event::PeerFaulted { peer, fault } => self.faults.push((at, node, peer, format!("{fault:?}"))),
            Event::Synced { height, .. } => self.synced.push((at, node, height)),
            _ => {}
        }
    }
}

/// The miners: who they are and when each finds its next block.
pub(crate) struct Miners {
    rng: ChaCha8Rng,
    /// Blocks per second of each miner.
    rates: Vec<f64>,
    /// Next block of each miner, in seconds since the start.
    next: Vec<f64>,
    /// The node each miner runs on.
    pub(crate) nodes: Vec<usize>,
    /// The key each miner's coinbases pay.
    pub(crate) keys: Vec<Keypair>,
}

impl Miners {
    /// `count` miners of equal hash power spread evenly over `n` nodes, together finding a block every
    /// `block_time` seconds on average, their first blocks drawn after `from` seconds.
    pub(crate) fn new(seed: u64, n: usize, count: usize, block_time: f64, from: f64) -> Self {
        let count = count.clamp(1, n.max(1));
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6d69_6e65_7273);
        let rates = vec![1.0 / (block_time * count as f64); count];
        let next = rates
            .iter()
            .map(|&rate| from + exponential(&mut rng, rate))
            .collect();
        let nodes = (0..count).map(|i| i * n / count).collect();
        let keys = (0..count)
            .map(|i| {
                let mut key = [0u8; 32];
                key[..8].copy_from_slice(&seed.to_le_bytes());
                key[8..16].copy_from_slice(&(i as u64).to_le_bytes());
                key[16] = 0x4d;
                Keypair::from_seed(key)
            })
            .collect();
        Self {
            rng,
            rates,
            next,
            nodes,
            keys,
        }
    }

    /// The miner whose block comes next, and when (seconds since the start).
    pub(crate) fn peek(&self) -> (f64, usize) {
        let mut best = (f64::INFINITY, 0);
        for (i, &t) in self.next.iter().enumerate() {
            if t < best.0 {
                best = (t, i);
            }
        }
        best
    }

    /// Miner `i` found its block: draw its next one.
    pub(crate) fn fire(&mut self, i: usize) {
        let gap = exponential(&mut self.rng, self.rates[i]);
        self.next[i] += gap;
    }
}

/// An exponential draw of rate `rate` (inverse transform).
fn exponential(rng: &mut ChaCha8Rng, rate: f64) -> f64 {
    let u: f64 = rng.r#gen();
    -(1.0 - u).ln() / rate
}

/// A network of proof-of-work nodes.
pub(crate) struct PowNet {
    pub(crate) sim: Sim<Node>,
    pub(crate) nodes: Vec<NodeId>,
    pub(crate) records: Records,
    /// Remaining event budget.
    pub(crate) budget: u64,
    /// Virtual time of the genesis block (the clock is Unix time).
    pub(crate) start: Instant,
}

impl PowNet {
    /// `n` nodes at genesis, connected in a random regular overlay, the clock at the genesis time.
    pub(crate) fn build(
        n: usize,
        seed: u64,
        net: &NetArgs,
        config: &ChainConfig,
        max_events: u64,
    ) -> Result<Self, String> {
        if n < 2 {
            return Err("at least 2 nodes".into());
        }
        let mut sim = Sim::new(SimConfig::new(seed).with_link(net.link()));
        let start = Instant::from_duration(Duration::from_secs(config.genesis_time));
        sim.run_until(start, |_, _, _| {});
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n {
            let node = fresh_node(config)?;
            nodes.push(sim.add_node(|_| node).map_err(|e| e.to_string())?);
        }
        topology::connect_random_regular(&mut sim, net.degree.max(1)).map_err(|e| e.to_string())?;
        Ok(Self {
            sim,
            nodes,
            records: Records::default(),
            budget: max_events,
            start,
        })
    }

    /// `secs` seconds after the start.
    pub(crate) fn at_secs(&self, secs: f64) -> Instant {
        self.start + Duration::from_secs_f64(secs.max(0.0))
    }

    /// Runs until `until` (or the event budget, or no event is left), with progress on stderr.
    pub(crate) fn run_until(&mut self, until: Instant, phase: &str) -> Stop {
        let phase = Phase {
            start: self.start,
            until,
            name: phase,
        };
        run_phase(
            &mut self.sim,
            &mut self.budget,
            &phase,
            &mut self.records,
            Records::on_event,
            |r| r.order.len(),
        )
    }

    /// The best tip of node `i`.
    pub(crate) fn tip(&self, i: usize) -> Option<TipInfo> {
        self.sim.state(self.nodes[i]).map(|state| state.chain().tip())
    }

    /// Node `i` mines a block on its own tip now, paying `owner`, and submits it.
    pub(crate) fn mine_block(&mut self, i: usize, owner: PeerId) -> Result<BlockId, String> {
        let now = self.sim.now();
        let now_secs = now.as_duration().as_secs();
        let state = self.sim.state(self.nodes[i]).ok_or("a miner is down")?;
        let template = state
            .chain()
            .block_template(owner, now_secs)
            .map_err(|e| e.to_string())?;
        let header = mine(template.header, 1, 1 << 24).ok_or("no nonce found")?;
        let block = Block { header, ..template };
        let id = block.id();
        self.records.mined.insert(
            id,
            Mined {
                parent: header.parent,
                height: header.height,
                node: i,
                at: now,
                txids: block.txs.iter().map(|tx| tx.txid()).collect(),
            },
        );
        self.records.order.push(id);
        self.sim
            .command(self.nodes[i], Command::SubmitBlock { block, from: None })
            .map_err(|e| e.to_string())?;
        Ok(id)
    }

    /// Hands `tx` to node `i`'s mempool now.
    pub(crate) fn submit_tx(&mut self, i: usize, tx: Transfer) -> Result<(), String> {
        self.sim
            .command(self.nodes[i], Command::SubmitTx { tx, from: None })
            .map_err(|e| e.to_string())
    }
}

/// A stretch of a proof-of-work run, for [`run_phase`].
pub(crate) struct Phase<'a> {
    /// Virtual time of the genesis block.
    pub(crate) start: Instant,
    /// Where the phase ends.
    pub(crate) until: Instant,
    /// Its name in progress lines.
    pub(crate) name: &'a str,
}

/// Runs `sim` to the end of `phase` within `budget` events, handing every event to `on_event` with
/// `records`, and printing progress (virtual time, `mined(records)` blocks, events) on stderr.
pub(crate) fn run_phase<P: Protocol, R>(
    sim: &mut Sim<P>,
    budget: &mut u64,
    phase: &Phase<'_>,
    records: &mut R,
    on_event: impl Fn(&mut R, Instant, NodeId, P::Event),
    mined: impl Fn(&R) -> usize,
) -> Stop {
    let mut progress = Progress::new();
    let mut stop = Stop::Idle;
    while *budget > 0 {
        let outcome = sim.run(phase.until, (*budget).min(200_000), |at, node, event| {
            on_event(records, at, node, event);
        });
        *budget = budget.saturating_sub(outcome.events);
        stop = outcome.stop;
        if stop != Stop::EventLimit {
            break;
        }
        progress.tick(|| {
            format!(
                "{}: virtual {:.0}s, {} blocks mined, {} events",
                phase.name,
                secs_since(sim.now(), phase.start),
                mined(records),
                sim.stats().events
            )
        });
    }
    stop
}

/// Counts by depth, as a JSON object (`{"1": 4, "2": 1}`).
pub(crate) fn depth_histogram(depths: impl Iterator<Item = usize>) -> serde_json::Value {
    let mut counts = std::collections::BTreeMap::new();
    for depth in depths {
        *counts.entry(depth).or_insert(0u64) += 1;
    }
    serde_json::Value::Object(
        counts
            .into_iter()
            .map(|(depth, count)| (depth.to_string(), count.into()))
            .collect(),
    )
}
