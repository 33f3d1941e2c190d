//! What `meshsim coin` runs: a network of the coin node's own protocol, [`CoinApp`] over an in-memory
//! chain, and the records its events leave.
//!
//! **Nodes.** Each node is exactly the type the coin node registers on its QUIC runtime
//! (`CoinApp<S>`), over a [`MemoryStore`] instead of redb. Kademlia counts connections by address, so
//! each peer gets the synthetic address of [`synthetic_address`] (data only, never used for networking)
//! through [`AppConfig::address_of`]. Nodes start with a few connections of a random regular overlay and
//! join through them (Kademlia bootstrap, gossip join); discovery then tops every node up to its
//! `target_peers`, as on a real network.
//!
//! **Links** are those of the proof-of-work experiments ([`NetArgs`]): the six cloud regions, jitter and
//! per-node upload bandwidth. Every connection's round trip reaches the app as coin-node's QUIC
//! handshake does (`CoinCommand::PeerRoundTrip`, from [`Sim::set_round_trip_hook`]).
//!
//! **Roles.** Miners are spread evenly over the nodes. Censors run the honest protocol with a
//! [`RelayFilter`] that refuses every transaction whose id starts with an even byte (half the workload);
//! Sybils are identities that join and then drop every gossip and sync message they should send (no
//! transaction, block, overlay or sync traffic leaves them: black holes that still answer Kademlia). Crashed nodes restart from their stores (the chain survives,
//! the mempool does not).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use meshwork_coin::{AppConfig, CoinApp, CoinCommand, CoinEvent, CoinMessage, RelayFilter, txid_of};
use meshwork_consensus::pow::mine;
use meshwork_consensus::{Chain, ChainConfig, genesis_block};
use meshwork_identity::Keypair;
use meshwork_kad::PeerInfo;
use meshwork_ledger::{Block, BlockId, MemoryStore, Transfer, TxId};
use meshwork_sim::{Behaviour, NodeId, Sim, SimConfig, Stop, topology};
use meshwork_wire::{Instant, PeerId};

use super::kad_node::synthetic_address;
use super::pow_net::{Mined, NetArgs, Phase, Records as BlockRecords, run_phase};

/// A node of the experiment: the coin node's protocol over an in-memory chain.
pub(crate) type App = CoinApp<MemoryStore>;

/// Connections of the overlay every node starts with (discovery adds the rest).
const INITIAL_DEGREE: usize = 4;

/// The relay filter of a censor: refuses transactions whose id starts with an even byte.
pub(crate) fn censored(txid: &TxId) -> bool {
    txid.as_bytes()[0] % 2 == 0
}

/// The app's settings in the simulator: defaults, with synthetic addresses (a /24 drawn from each
/// node's id) for
/// Kademlia's and gossip's prefix limits. Simulated ids come from the seed and do not solve Kademlia's
/// id puzzle, so it is off here: solving it costs about 90 ms per node, which the simulator skips (ids
/// are free in simulation, the Sybil experiment's attacker included). `compact_blocks` false fetches
/// new blocks whole, the reference for compact block relay's bytes.
pub(crate) fn app_config(compact_blocks: bool) -> AppConfig {
    let mut config = AppConfig {
        address_of: Some(synthetic_address),
        ..AppConfig::default()
    };
    config.kad.puzzle_difficulty = 0;
    config.sync.compact_blocks = compact_blocks;
    config
}

/// Opens a chain on `store` (a fresh one, or a crashed node's).
fn open_chain(store: MemoryStore, config: &ChainConfig) -> Result<Chain<MemoryStore>, String> {
    let genesis = genesis_block(config);
    let now = genesis.header.timestamp;
    Chain::open(store, config.clone(), genesis, now).map_err(|e| e.to_string())
}

/// A node over `chain`; a censor refuses the transactions [`censored`] picks.
fn make_app(
    keypair: &Keypair,
    rng_seed: u64,
    chain: Chain<MemoryStore>,
    config: &AppConfig,
    censor: bool,
) -> App {
    let app = App::new(keypair.clone(), chain, config.clone(), rng_seed);
    if censor {
        let filter: RelayFilter = Arc::new(|tx: &Transfer| !censored(&txid_of(tx)));
        app.with_relay_filter(filter)
    } else {
        app
    }
}

/// Which nodes play which part.
#[derive(Debug, Clone)]
pub(crate) struct Roles {
    pub(crate) censor: Vec<bool>,
    pub(crate) sybil: Vec<bool>,
}

impl Roles {
    /// Follows the consensus rules (everyone but the Sybils).
    pub(crate) fn honest(&self, i: usize) -> bool {
        !self.sybil[i]
    }
}

/// What the nodes' events told us.
#[derive(Default)]
pub(crate) struct Records {
    /// Blocks mined, tip changes, reorganisations (the proof-of-work experiments' records).
    pub(crate) blocks: BlockRecords,
    /// Workload transactions: when each was submitted, and which nodes accepted it so far.
    pub(crate) txs: HashMap<TxId, (Instant, Vec<bool>)>,
    /// Submission to acceptance, for every (transaction, honest relaying node) pair, in milliseconds.
    pub(crate) propagation_ms: Vec<f64>,
    /// Nodes whose acceptances count in `propagation_ms` (honest relays that never crashed).
    pub(crate) measured: Vec<bool>,
}

impl Records {
    fn on_event(&mut self, at: Instant, node: NodeId, event: CoinEvent) {
        match event {
            CoinEvent::TxAccepted { txid, .. } => {
                let i = node.index();
                if let Some((submitted, seen)) = self.txs.get_mut(&txid)
                    && !seen[i]
                {
                    seen[i] = true;
                    if self.measured[i] {
                        self.propagation_ms.push((at - *submitted).as_secs_f64() * 1000.0);
                    }
                }
            }
            CoinEvent::Sync(event) => self.blocks.on_event(at, node, event),
            _ => {}
        }
    }
}

/// A network of coin nodes.
pub(crate) struct CoinNet {
    pub(crate) sim: Sim<App>,
    pub(crate) nodes: Vec<NodeId>,
    pub(crate) roles: Roles,
    pub(crate) records: Records,
    /// Virtual time of the genesis block (the clock is Unix time).
    pub(crate) start: Instant,
    /// Remaining event budget.
    pub(crate) budget: u64,
    /// The stores of crashed nodes, taken by the restart factory.
    restarts: Rc<RefCell<HashMap<u32, MemoryStore>>>,
    /// The peers each node first joined through (a restarted node joins through them again, as a
    /// restarted coin node does through its `--bootstrap` peers).
    contacts: Vec<Vec<PeerInfo>>,
}

impl CoinNet {
    /// `n` nodes at genesis with `roles`, each connected to a few others and joining through them.
    pub(crate) fn build(
        seed: u64,
        net: &NetArgs,
        config: &ChainConfig,
        app: &AppConfig,
        roles: Roles,
        max_events: u64,
    ) -> Result<Self, String> {
        let n = roles.censor.len();
        if n < 2 {
            return Err("at least 2 nodes".into());
        }
        let mut sim = Sim::new(SimConfig::new(seed).with_link(net.link()));
        // As coin-node passes the QUIC handshake's round trip (its `on_round_trip` hook): gossip lends
        // trees from the nearest neighbour and learns its graft wait from them.
        sim.set_round_trip_hook(|peer, rtt| Some(CoinCommand::PeerRoundTrip { peer, rtt }));
        let start = Instant::from_duration(Duration::from_secs(config.genesis_time));
        sim.run_until(start, |_, _, _| {});
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let chain = open_chain(MemoryStore::new(), config)?;
            let node = sim
                .add_node(|init| make_app(init.keypair, init.rng_seed, chain, app, roles.censor[i]))
                .map_err(|e| e.to_string())?;
            nodes.push(node);
        }
        // Crashed nodes come back on the store they had when they crashed.
        let restarts: Rc<RefCell<HashMap<u32, MemoryStore>>> = Rc::default();
        let (taken, chain_config, censors) = (restarts.clone(), config.clone(), roles.censor.clone());
        let app = app.clone();
        sim.set_restart(move |init| {
            let store = taken.borrow_mut().remove(&init.id.0).unwrap_or_default();
            let censor = censors[init.id.index()];
            match open_chain(store, &chain_config) {
                Ok(chain) => make_app(init.keypair, init.rng_seed, chain, &app, censor),
                // The store was written by the same rules; a chain that does not reopen is a bug.
                Err(error) => panic!("node {} does not reopen its chain: {error}", init.id.0),
            }
        });
        let edges = topology::random_regular_edges(n, INITIAL_DEGREE.min(n - 1), sim.rng());
        let mut contacts: Vec<Vec<PeerInfo>> = vec![Vec::new(); n];
        for (a, b) in edges {
            sim.connect(a, b).map_err(|e| e.to_string())?;
            for (from, to) in [(a, b), (b, a)] {
                let id = sim.peer_id(to).ok_or("unknown node")?;
                contacts[from.index()].push(PeerInfo {
                    id,
                    addr: synthetic_address(&id),
                });
            }
        }
        for (i, contacts) in contacts.iter().enumerate() {
            sim.command(nodes[i], CoinCommand::Join(contacts.clone()))
                .map_err(|e| e.to_string())?;
            if roles.sybil[i] {
                let drop: Behaviour<App> = Behaviour::DropIf(Box::new(|_: &PeerId, msg: &CoinMessage| {
                    !matches!(msg, CoinMessage::Kad(_))
                }));
                sim.set_adversary(nodes[i], drop).map_err(|e| e.to_string())?;
            }
        }
        let measured = (0..n).map(|i| roles.honest(i) && !roles.censor[i]).collect();
        Ok(Self {
            sim,
            nodes,
            roles,
            records: Records {
                measured,
                ..Records::default()
            },
            start,
            budget: max_events,
            restarts,
            contacts,
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
            |r| r.blocks.order.len(),
        )
    }

    /// The app of node `i`, if it is up.
    pub(crate) fn app(&self, i: usize) -> Option<&App> {
        self.sim.state(self.nodes[i])
    }

    /// Node `i` mines a block on its own tip now, paying `owner`, and submits it (sync relays it).
    pub(crate) fn mine_block(&mut self, i: usize, owner: PeerId) -> Result<Option<BlockId>, String> {
        let now = self.sim.now();
        let Some(app) = self.app(i) else {
            return Ok(None); // A miner that is down finds nothing.
        };
        let template = app
            .chain()
            .block_template(owner, now.as_duration().as_secs())
            .map_err(|e| e.to_string())?;
        let header = mine(template.header, 1, 1 << 24).ok_or("no nonce found")?;
        let block = Block { header, ..template };
        let id = block.id();
        self.records.blocks.mined.insert(
            id,
            Mined {
                parent: header.parent,
                height: header.height,
                node: i,
                at: now,
                txids: block.txs.iter().map(|tx| tx.txid()).collect(),
            },
        );
        self.records.blocks.order.push(id);
        self.sim
            .command(self.nodes[i], CoinCommand::SubmitBlock(block))
            .map_err(|e| e.to_string())?;
        Ok(Some(id))
    }

    /// Schedules a workload transaction at node `i`, `at`.
    pub(crate) fn schedule_tx(&mut self, at: Instant, i: usize, tx: Transfer) -> Result<(), String> {
        let n = self.nodes.len();
        self.records.txs.insert(txid_of(&tx), (at, vec![false; n]));
        self.sim
            .schedule_command(at, self.nodes[i], CoinCommand::SubmitTx(tx))
            .map_err(|e| e.to_string())
    }

    /// Crashes node `i` now; it restarts from its store when a `Restart` control reaches it.
    pub(crate) fn crash(&mut self, i: usize) -> Result<(), String> {
        let Some(app) = self.app(i) else {
            return Ok(());
        };
        let store = app.chain().ledger().store().clone();
        self.restarts.borrow_mut().insert(self.nodes[i].0, store);
        self.records.measured[i] = false;
        self.sim
            .apply_control(meshwork_sim::Control::Crash(self.nodes[i]))
            .map_err(|e| e.to_string())
    }

    /// Restarts crashed node `i` at `at`, on the store it crashed with, and has it join through its first
    /// contacts again.
    pub(crate) fn restart(&mut self, i: usize, at: Instant) -> Result<(), String> {
        let node = self.nodes[i];
        self.sim
            .schedule_control(at, meshwork_sim::Control::Restart(node))
            .map_err(|e| e.to_string())?;
        let join = CoinCommand::Join(self.contacts[i].clone());
        self.sim
            .schedule_command(at + Duration::from_millis(1), node, join)
            .map_err(|e| e.to_string())
    }

    /// The tips of the honest nodes that are up: (node, tip id, height, work).
    pub(crate) fn honest_tips(&self) -> Vec<(usize, BlockId, u64, u128)> {
        (0..self.nodes.len())
            .filter(|&i| self.roles.honest(i))
            .filter_map(|i| {
                let tip = self.app(i)?.chain().tip();
                Some((i, tip.id, tip.height, tip.work))
            })
            .collect()
    }

    /// The txids in the blocks at heights `from..=to` of node `i`'s best chain.
    pub(crate) fn txids_between(&self, i: usize, from: u64, to: u64) -> HashSet<TxId> {
        let mut txids = HashSet::new();
        let Some(app) = self.app(i) else {
            return txids;
        };
        let chain = app.chain();
        for height in from..=to {
            let block = chain
                .block_id_at_height(height)
                .and_then(|id| chain.block(&id).ok().flatten());
            if let Some(block) = block {
                txids.extend(block.txs.iter().map(|tx| tx.txid()));
            }
        }
        txids
    }
}
