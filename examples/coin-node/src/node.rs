//! [`CoinNode`]: the assembled node. The coin's logic is one protocol, [`App`] (gossip, sync and
//! Kademlia composed by `meshwork_coin::CoinApp`); this module registers it on the runtime over QUIC
//! and adds what needs tokio: the redb store, the miner's threads, the RPC server, metrics gauges.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use meshwork_coin::{AppConfig, BftSetup, CoinApp, CoinCommand};
use meshwork_consensus::bft::{AnyJournal, BftConfig, FileJournal};
use meshwork_consensus::{Chain, ChainRule, SyncConfig, genesis_block};
use meshwork_identity::{Keypair, PeerId};
use meshwork_kad::{Address, PeerInfo};
use meshwork_ledger::{RedbStore, StoreError, Transfer};

use crate::store::MeteredStore;
use meshwork_nat::bridge::spawn_bridge;
use meshwork_nat::{Nat, Relay};
use meshwork_node::{Hooks, NodeBuilder, NodeConfig, NodeError};
use meshwork_transport::{BindError, Config as TransportConfig, QuicTransport};
use meshwork_wire::relayed::is_relayed;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::NodeApi;
use crate::app::{self, RelayFilter};
use crate::config::{ConfigError, ConsensusParams, DataDir, NetworkParams};
use crate::explorer;
use crate::miner;
use crate::nat::{self, NatRole};
use crate::rpc::{self, RpcError};

/// The coin's logic over the redb store: the one protocol the node runs.
pub type App = CoinApp<MeteredStore<RedbStore>>;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Keys or files of the data directory.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The chain database.
    #[error("chain database: {0}")]
    Store(#[from] StoreError),
    /// The chain does not open (wrong genesis for this database, say).
    #[error("chain: {0}")]
    Chain(#[from] meshwork_consensus::ChainError),
    /// The node runtime.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The QUIC transport.
    #[error("transport: {0}")]
    Transport(#[from] BindError),
    /// The RPC server.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The explorer's socket.
    #[error("explorer: {0}")]
    Explorer(std::io::Error),
}

/// How to run one node.
#[derive(Clone)]
pub struct NodeOptions {
    /// Keys, chain database, cookie.
    pub data_dir: DataDir,
    /// The network's consensus parameters.
    pub network: NetworkParams,
    /// Proof of work or BFT. Under BFT a node whose key is a validator's runs the engine (and never
    /// mines); any other node follows the validators' certificates.
    pub consensus: ConsensusParams,
    /// The QUIC address to bind (`127.0.0.1:0` picks a port).
    pub listen: SocketAddr,
    /// Peers to join through.
    pub bootstrap: Vec<(PeerId, SocketAddr)>,
    /// Mine with this many threads (0: do not mine).
    pub mine_threads: usize,
    /// Serve JSON-RPC here: a loopback address unless `rpc_allow_remote`.
    pub rpc: Option<SocketAddr>,
    /// Allow `rpc` on a non-loopback address (with a warning: the cookie travels in clear).
    pub rpc_allow_remote: bool,
    /// Serve the block explorer here (off: `None`).
    pub explorer: Option<SocketAddr>,
    /// Connections the discovery loop aims to keep.
    pub target_peers: usize,
    /// Which transactions this node relays (tests use it to make censoring nodes).
    pub relay_filter: RelayFilter,
    /// Seeds the protocols' RNGs.
    pub seed: u64,
    /// Serve Prometheus metrics (`GET /metrics`) here (off: `None`).
    pub metrics: Option<SocketAddr>,
    /// The app's event queue (`NodeConfig::event_queue`). Only the log reads it: relay and validation
    /// happen inside the app, so a full queue drops log lines, never a verdict.
    pub event_queue: usize,
    /// Every peer of this network shares one machine (127.0.0.1): lift the limits meant for the
    /// internet that would treat them as one operator — the transport's per-IP and per-prefix
    /// caps on inbound connections, and Kademlia's per-prefix table limits. Off by default; the
    /// devnet and tests turn it on, `coin-node run --loopback-devnet` on request.
    pub loopback_devnet: bool,
    /// This node's part in reaching peers behind NATs ([`NatRole`]).
    pub nat: NatRole,
    /// A UDP socket the caller bound, used instead of binding `listen`: one bound inside another
    /// network namespace (the NAT testbed's hosts). Non-blocking.
    pub socket: Option<Arc<std::net::UdpSocket>>,
}

impl std::fmt::Debug for NodeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeOptions")
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field("mine_threads", &self.mine_threads)
            .field("nat", &self.nat)
            .finish_non_exhaustive()
    }
}

impl NodeOptions {
    /// A non-mining node without RPC in `data_dir`, listening on `127.0.0.1:0`.
    pub fn new(data_dir: DataDir, network: NetworkParams) -> Self {
        Self {
            data_dir,
            network,
            consensus: ConsensusParams::Pow,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            bootstrap: Vec::new(),
            mine_threads: 0,
            rpc: None,
            rpc_allow_remote: false,
            explorer: None,
            target_peers: 8,
            relay_filter: Arc::new(|_: &Transfer| true),
            seed: 0,
            metrics: None,
            event_queue: NodeConfig::default().event_queue,
            loopback_devnet: false,
            nat: NatRole::Direct,
            socket: None,
        }
    }
}

/// A running coin node.
#[derive(Debug)]
pub struct CoinNode {
    api: NodeApi,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    rpc: Option<rpc::RpcServer>,
    explorer: Option<explorer::ExplorerServer>,
}

/// Kademlia knows addresses from its lookups, gossip from its membership messages; both count the
/// addresses connections come from, except a relayed connection's (a relay circuit's virtual address,
/// useless to anyone else).
fn app_hooks() -> Hooks<App> {
    Hooks {
        address_of: Some(|app: &App, peer: &PeerId| {
            app.kad()
                .address_of(peer)
                .and_then(Address::socket_addr)
                .or_else(|| app.gossip().address_of(peer))
        }),
        on_connected: Some(|peer, addr| {
            (!is_relayed(&addr)).then(|| CoinCommand::PeerAddress {
                peer,
                addr: addr.into(),
            })
        }),
        on_round_trip: Some(|peer, rtt| Some(CoinCommand::PeerRoundTrip { peer, rtt })),
    }
}

impl CoinNode {
    /// Opens the data directory (creating keys if missing) and starts the node.
    pub async fn start(options: NodeOptions) -> Result<Self, StartError> {
        let dir = &options.data_dir;
        std::fs::create_dir_all(dir.path()).map_err(|source| ConfigError::Io {
            path: dir.path().to_path_buf(),
            source,
        })?;
        // The node's id must solve the S/Kademlia puzzle the coin's Kademlia requires, or other nodes
        // never admit it to their routing tables (about 4,096 key generations, under 0.1 s).
        let node_key_difficulty = AppConfig::PUZZLE_DIFFICULTY;
        for (path, difficulty) in [(dir.node_key(), node_key_difficulty), (dir.wallet_key(), 0)] {
            if !path.exists() {
                Keypair::generate_with_puzzle(&mut rand_core::OsRng, difficulty)
                    .save(&path)
                    .map_err(ConfigError::from)?;
            }
        }
        let node_key = Keypair::load(&dir.node_key()).map_err(ConfigError::from)?;
        if !meshwork_identity::puzzle::solves(&node_key.peer_id(), node_key_difficulty) {
            tracing::warn!(
                peer = %node_key.peer_id(),
                "the node key does not solve the S/Kademlia puzzle: other nodes' Kademlia will not list this node"
            );
        }
        let wallet = Keypair::load(&dir.wallet_key()).map_err(ConfigError::from)?;

        let config = options.consensus.chain_config(&options.network)?;
        // Under BFT a node whose key is in the set runs the engine, with the set the chain checks.
        let validators = match &config.rule {
            ChainRule::Certified(set) if set.contains(&node_key.peer_id()) => Some(set.clone()),
            _ => None,
        };
        let genesis = genesis_block(&config);
        let genesis_id = genesis.id();
        let store = RedbStore::open(&dir.chain_db())?;
        let reader = store.reader();
        let chain = Chain::open(
            MeteredStore::new(store),
            config,
            genesis,
            crate::config::unix_now(),
        )?;

        let mut builder = NodeBuilder::new(NodeConfig {
            metrics_addr: options.metrics,
            event_queue: options.event_queue,
            ..NodeConfig::default()
        });
        let gauges = app::Gauges::register(builder.metrics());
        let app = CoinApp::new(
            node_key.clone(),
            chain,
            app_config(options.target_peers, options.loopback_devnet),
            options.seed,
        )
        .with_relay_filter(options.relay_filter.clone());
        let mine_threads = if options.consensus == ConsensusParams::Pow {
            options.mine_threads
        } else {
            0
        };
        let app = match validators {
            Some(validators) => app.with_bft(BftSetup {
                config: BftConfig::new(validators, genesis_id),
                journal: AnyJournal::File(FileJournal::new(dir.vote_journal())),
                coinbase_owner: wallet.peer_id(),
            }),
            None => app,
        };
        let (handle, events) = builder.register_with(app, app_hooks())?;
        let (nat_config, relay_config) = options.nat.configs();
        let nat_hooks = Hooks {
            address_of: Some(Nat::address_of),
            on_connected: Some(Nat::on_connected),
            ..Hooks::default()
        };
        let (nat, nat_events) = builder.register_with(Nat::new(nat_config), nat_hooks)?;
        let relay_hooks = Hooks {
            on_connected: Some(Relay::on_connected),
            ..Hooks::default()
        };
        let (relay, relay_events) = builder.register_with(Relay::new(relay_config), relay_hooks)?;
        let mut transport_config = TransportConfig::new(builder.protocols());
        // Many nodes in one process on few cores: give slow handshakes room.
        transport_config.timeouts.handshake = Duration::from_secs(30);
        if options.loopback_devnet {
            transport_config.limits = transport_config.limits.loopback_devnet();
        }
        let transport = match &options.socket {
            Some(socket) => {
                QuicTransport::with_socket(
                    &node_key,
                    socket.try_clone().map_err(BindError::from)?,
                    transport_config,
                )
                .await?
            }
            None => QuicTransport::bind(&node_key, options.listen, transport_config).await?,
        };
        let bridge = spawn_bridge(transport.clone(), relay.clone(), relay_events);
        let node = builder.start(transport).await?;

        for (peer, addr) in &options.bootstrap {
            node.add_address(*peer, *addr).await?;
        }
        if !options.bootstrap.is_empty() {
            for (peer, addr) in &options.bootstrap {
                node.dial(*peer, *addr).await?;
            }
            let contacts = options
                .bootstrap
                .iter()
                .map(|(id, addr)| PeerInfo {
                    id: *id,
                    addr: (*addr).into(),
                })
                .collect();
            handle.command(CoinCommand::Join(contacts)).await?;
        }

        let api = NodeApi::new(node, handle, reader, wallet, mine_threads > 0);
        let (stop, stopped) = watch::channel(false);
        gauges.refresh(&api).await;
        let mut tasks = vec![
            tokio::spawn(app::refresh_gauges(api.clone(), gauges, stopped.clone())),
            tokio::spawn(app::log_events(events, stopped.clone())),
            tokio::spawn(nat::run(
                api.clone(),
                nat::Parts {
                    nat,
                    nat_events,
                    relay,
                    bridge,
                },
                options.nat,
                nat::namespace(genesis_id.as_bytes()),
                stopped.clone(),
            )),
        ];
        if mine_threads > 0 {
            tasks.push(tokio::spawn(miner::run(api.clone(), mine_threads, stopped)));
        }
        let rpc = match options.rpc {
            Some(addr) => Some(rpc::serve(api.clone(), addr, &dir.cookie(), options.rpc_allow_remote).await?),
            None => None,
        };
        let explorer = match options.explorer {
            Some(addr) => Some(
                explorer::serve(api.clone(), addr)
                    .await
                    .map_err(StartError::Explorer)?,
            ),
            None => None,
        };
        Ok(Self {
            api,
            stop,
            tasks,
            rpc,
            explorer,
        })
    }

    /// The node's API (what RPC, the devnet and the tests use).
    pub fn api(&self) -> &NodeApi {
        &self.api
    }

    /// Where the RPC server listens, if it runs.
    pub fn rpc_addr(&self) -> Option<SocketAddr> {
        self.rpc.as_ref().map(rpc::RpcServer::addr)
    }

    /// Where the block explorer listens, if it runs.
    pub fn explorer_addr(&self) -> Option<SocketAddr> {
        self.explorer.as_ref().map(explorer::ExplorerServer::addr)
    }

    /// Stops the miner, the app loop, the RPC server, the explorer and the node (closing the chain database).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Some(rpc) = self.rpc {
            rpc.stop().await;
        }
        if let Some(explorer) = self.explorer {
            explorer.stop().await;
        }
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        let _ = self.api.node().shutdown().await;
    }
}

/// The app's settings for this node.
///
/// Sync: devnet blocks come every few seconds, and far faster while ASERT settles after genesis, so
/// new-tip announcements often outrun the answer to a header request on a loaded machine. The default of
/// 10 unconnecting messages (then counted in a row) dropped honest peers and isolated nodes in the
/// end-to-end tests; 100 within `SyncConfig::unconnecting_window` still drops a peer that never connects.
///
/// Kademlia: the coin's defaults (the S/Kademlia puzzle on, Kademlia's per-prefix limits). Only a
/// `loopback_devnet`, where every node shares 127.0.0.1, lifts the per-prefix limits.
fn app_config(target_peers: usize, loopback_devnet: bool) -> AppConfig {
    AppConfig {
        target_peers,
        sync: SyncConfig {
            max_unconnecting_headers: 100,
            ..SyncConfig::default()
        },
        loopback_devnet,
        ..AppConfig::default()
    }
}
