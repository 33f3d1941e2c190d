//! # meshwork-kv: a key-value store on a Kademlia DHT
//!
//! The second-smallest meshwork application: one protocol, [`Kademlia`], on the node runtime over
//! QUIC, with its records kept in redb ([`RedbRecordStore`]). A [`KvNode`] joins the DHT through one
//! known peer; [`KvNode::put`] stores a value under a name at the `k` (20) peers closest to the name's
//! key, and [`KvNode::get`] finds it from any node. The `kv` binary runs a node (`kv node`) and talks to a
//! running one from the command line (`kv put NAME VALUE`, `kv get NAME`) over a typed JSON-RPC API on
//! loopback ([`api`]).
//!
//! ## Records
//!
//! A name maps to a shared name's key ([`Key::for_name`]): any publisher may take a free name, where a
//! publisher's own key ([`Key::for_record`]) would admit only its publisher. A value is
//! at most [`MAX_VALUE`] bytes. The node signs every record it puts with its own identity (the
//! record's **publisher**), with an expiry 36 hours ahead, and re-publishes it every 12 hours while it
//! runs; every node that stores or returns a record checks the signature and the expiry first, so a
//! peer can neither forge nor alter one. Records persist: a node restarted from its data directory
//! answers from its redb store at once, before it has joined again.
//!
//! ## Conflicts: the first publisher holds a name
//!
//! The storing peers refuse a record for a name whose stored record has another, unexpired publisher,
//! and an older record of the same publisher. So:
//! - a publisher **updates** its own name: the newer record replaces the older one everywhere;
//! - another publisher's put of a held name is refused. [`KvNode::put`] looks the name up first and
//!   answers [`KvError::Conflict`] with the holder, without publishing anything;
//! - a name is free again once its record expires: 36 hours after its publisher stopped re-publishing
//!   it (its node stopped; re-publishing is not persisted across a restart, so a restarted publisher
//!   puts its names again to keep them).
//!
//! Two publishers racing for a free name can each reach part of the closest peers; a get then answers
//! the record most of the peers it asks hold (three answers with a record end it,
//! `Config::value_quorum`), until one expires. A naming system that needs one winner needs
//! consensus; this store does not promise it.
//!
//! ## Example
//!
//! ```no_run
//! # async fn example() -> Result<(), meshwork_kv::KvError> {
//! use meshwork_kv::{KvNode, KvOptions};
//!
//! let a = KvNode::start(KvOptions::new("data/a", "127.0.0.1:0".parse().unwrap())).await?;
//! let b = KvNode::start(KvOptions::new("data/b", "127.0.0.1:0".parse().unwrap())).await?;
//! b.join(a.peer_id(), a.local_addr()).await?;
//! b.put("greeting", b"hello".to_vec()).await?;
//! let entry = a.get("greeting").await?.expect("stored at the closest peers, a among them");
//! assert_eq!((entry.value, entry.publisher), (b"hello".to_vec(), b.peer_id()));
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod api;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshwork_identity::{KeyFileError, Keypair, PeerId};
use meshwork_kad::{Address, Command, Event, Kademlia, Key, MemoryStore, PeerInfo, QueryId, RedbRecordStore};
use meshwork_node::{Handle, Hooks, Node, NodeBuilder, NodeConfig, NodeError};
use meshwork_transport::QuicTransport;
use tokio::sync::oneshot;

pub use meshwork_kad::message::MAX_VALUE;

/// The Kademlia node this store runs: records in redb.
pub type Kad = Kademlia<RedbRecordStore>;

/// How long one query may take before the caller gives up on it. Kademlia bounds each request by its
/// own timeout (10 s); a lookup in a large network takes a few rounds of them.
pub const QUERY_DEADLINE: Duration = Duration::from_secs(60);

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The data directory could not be created or read.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    /// The node's key file.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The record database.
    #[error("record store: {0}")]
    Store(#[from] meshwork_kad::RecordError),
    /// The QUIC endpoint could not bind.
    #[error(transparent)]
    Bind(#[from] meshwork_transport::BindError),
    /// The node runtime stopped.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The value is larger than a record may hold.
    #[error("value of {len} bytes; a record holds at most {max}")]
    TooLarge {
        /// The value's size.
        len: usize,
        /// [`MAX_VALUE`].
        max: usize,
    },
    /// Another publisher holds the name until its record expires.
    #[error("the name is held by {publisher} until its record expires")]
    Conflict {
        /// The holder.
        publisher: PeerId,
    },
    /// No peer stored the record (none was reachable, or all refused it).
    #[error("no peer stored the record")]
    NotStored,
    /// Kademlia's query failed (the node knows no peers, say).
    #[error("query failed: {0}")]
    Query(#[from] meshwork_kad::QueryError),
    /// The query did not end within [`QUERY_DEADLINE`].
    #[error("no answer within {QUERY_DEADLINE:?}")]
    Timeout,
}

/// A value found under a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The value.
    pub value: Vec<u8>,
    /// Who signed it.
    pub publisher: PeerId,
    /// When it expires unless re-published, in Unix seconds.
    pub expires_unix_secs: u64,
}

/// Where a node keeps its state and how it reaches the network.
#[derive(Clone, Debug)]
pub struct KvOptions {
    /// Its identity (`node.key`, created on first start) and its records (`records.redb`).
    pub data_dir: PathBuf,
    /// The UDP address to listen on.
    pub listen: SocketAddr,
    /// Every node on this machine shares 127.0.0.1: lift Kademlia's per-prefix limits (the routing
    /// table's and the record store's), which are meant for the internet. Never on a public network.
    pub loopback_devnet: bool,
}

impl KvOptions {
    /// A node keeping its state in `data_dir` and listening on `listen`, with the internet's limits.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen,
            loopback_devnet: false,
        }
    }
}

/// Queries waiting for their answer, by id.
type Pending = Arc<Mutex<HashMap<QueryId, oneshot::Sender<Event>>>>;

/// A running key-value node. Cheap to clone.
#[derive(Clone)]
pub struct KvNode {
    node: Node,
    kad: Handle<Kad>,
    pending: Pending,
    next_query: Arc<AtomicU64>,
}

impl std::fmt::Debug for KvNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvNode")
            .field("peer_id", &self.node.peer_id())
            .finish()
    }
}

/// The key of a name: a shared name's (see the crate docs).
pub fn key_of(name: &str) -> Key {
    Key::for_name(name.as_bytes())
}

fn load_or_create_key(path: &Path) -> Result<Keypair, KvError> {
    if !path.exists() {
        Keypair::generate(&mut rand_core::OsRng).save(path)?;
    }
    Ok(Keypair::load(path)?)
}

impl KvNode {
    /// Starts a node from `options.data_dir` (created if missing) on a QUIC endpoint at
    /// `options.listen`. It knows no peers until [`KvNode::join`].
    pub async fn start(options: KvOptions) -> Result<Self, KvError> {
        std::fs::create_dir_all(&options.data_dir)?;
        let key = load_or_create_key(&options.data_dir.join("node.key"))?;
        let mut limits = MemoryStore::default();
        if options.loopback_devnet {
            limits = limits.with_prefix_share(usize::MAX, usize::MAX);
        }
        let store = RedbRecordStore::open(
            &options.data_dir.join("records.redb"),
            limits,
            meshwork_node::wall_clock(),
        )?;
        let mut config = meshwork_kad::Config::default();
        if options.loopback_devnet {
            config.max_per_prefix_in_bucket = config.k;
            config.max_per_prefix_in_table = usize::MAX;
        }
        let seed = rand_core::RngCore::next_u64(&mut rand_core::OsRng);
        let kad = Kademlia::with_store(key.clone(), config, store, seed);
        let mut builder = NodeBuilder::new(NodeConfig::default());
        let (handle, mut events) = builder.register_with(kad, hooks())?;
        let mut transport = meshwork_transport::Config::new(builder.protocols());
        if options.loopback_devnet {
            transport.limits = transport.limits.loopback_devnet();
        }
        let node = builder
            .start(QuicTransport::bind(&key, options.listen, transport).await?)
            .await?;
        let pending = Pending::default();
        let answers = pending.clone();
        // Ends when the node stops (its event queue closes).
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let waiting = answers
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&event.query());
                if let Some(waiting) = waiting {
                    let _ = waiting.send(event);
                }
            }
        });
        Ok(Self {
            node,
            kad: handle,
            pending,
            next_query: Arc::new(AtomicU64::new(1)),
        })
    }

    /// The node's identity: the publisher of what it puts.
    pub fn peer_id(&self) -> PeerId {
        self.node.peer_id()
    }

    /// Its QUIC address.
    pub fn local_addr(&self) -> SocketAddr {
        self.node.local_addr()
    }

    /// The node runtime, for its metrics and peers.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The Kademlia protocol's handle, to read its routing table and statistics.
    pub fn kad(&self) -> &Handle<Kad> {
        &self.kad
    }

    /// Sends the command `make` builds with a fresh query id and waits for its answer.
    async fn query(&self, make: impl FnOnce(QueryId) -> Command) -> Result<Event, KvError> {
        let query = QueryId(self.next_query.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        self.lock().insert(query, tx);
        let answered = async {
            self.kad.command(make(query)).await?;
            rx.await.map_err(|_| KvError::Node(NodeError::Stopped))
        };
        let result = tokio::time::timeout(QUERY_DEADLINE, answered).await;
        self.lock().remove(&query);
        match result {
            Ok(Ok(Event::Failed { error, .. })) => Err(error.into()),
            Ok(answer) => answer,
            Err(_) => Err(KvError::Timeout),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<QueryId, oneshot::Sender<Event>>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Joins the DHT through `peer` at `addr`; answers how many peers the routing table holds then.
    pub async fn join(&self, peer: PeerId, addr: SocketAddr) -> Result<usize, KvError> {
        self.node.add_address(peer, addr).await?;
        let contact = PeerInfo {
            id: peer,
            addr: Address::from(addr),
        };
        match self
            .query(|query| Command::Bootstrap {
                query,
                peers: vec![contact],
            })
            .await?
        {
            Event::Bootstrapped { table_size, .. } => Ok(table_size),
            _ => Ok(0),
        }
    }

    /// The value under `name`: from this node's own store if it holds one, else from the closest peers.
    pub async fn get(&self, name: &str) -> Result<Option<Entry>, KvError> {
        let key = key_of(name);
        let record = match self.query(|query| Command::GetValue { query, key }).await? {
            Event::GetValue { record, .. } => record,
            _ => None,
        };
        Ok(record.map(|record| Entry {
            value: record.value.to_vec(),
            publisher: record.publisher,
            expires_unix_secs: record.expires / 1_000_000_000,
        }))
    }

    /// Stores `value` under `name`, signed by this node, at the closest peers; answers how many stored
    /// it. A name held by another publisher is refused with [`KvError::Conflict`] (see the crate docs).
    pub async fn put(&self, name: &str, value: Vec<u8>) -> Result<usize, KvError> {
        if value.len() > MAX_VALUE {
            return Err(KvError::TooLarge {
                len: value.len(),
                max: MAX_VALUE,
            });
        }
        if let Some(held) = self.get(name).await? {
            if held.publisher != self.peer_id() {
                return Err(KvError::Conflict {
                    publisher: held.publisher,
                });
            }
        }
        let key = key_of(name);
        match self
            .query(|query| Command::PutValue { query, key, value })
            .await?
        {
            Event::PutValue { stored_at, .. } if stored_at > 0 => Ok(stored_at),
            _ => Err(KvError::NotStored),
        }
    }

    /// Stops the node, closing its connections.
    pub async fn shutdown(&self) -> Result<(), KvError> {
        Ok(self.node.shutdown().await?)
    }
}

/// The node runtime's hooks for Kademlia: dial a peer at the address Kademlia knows for it, and tell
/// Kademlia the observed address of each new connection (its per-prefix limits count by it).
pub fn hooks() -> Hooks<Kad> {
    Hooks {
        address_of: Some(|kad: &Kad, peer: &PeerId| kad.address_of(peer).and_then(Address::socket_addr)),
        on_connected: Some(|peer, addr| {
            Some(Command::PeerAddress {
                peer,
                addr: addr.into(),
            })
        }),
        on_round_trip: None,
    }
}
