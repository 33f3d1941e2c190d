//! The application's glue between gossip, sync and discovery.
//!
//! - A gossip message on the `tx` topic is validated by handing it to sync (`SubmitTx { from }`); the
//!   mempool's verdict goes back to gossip: accepted → `Accept` (deliver and forward), a broken rule →
//!   `Reject` (counted against the sender), missing inputs or already known → `Ignore`. The `block`
//!   topic works the same with `SubmitBlock` (active → `Accept`, invalid → `Reject`, orphan, side branch or
//!   too new → `Ignore`). Verdicts are matched to messages by txid / block id; a message whose verdict
//!   never comes is ignored after [`VALIDATION_TIMEOUT`].
//! - Discovery: every [`DISCOVERY_INTERVAL`] the node asks Kademlia for its routing table and dials peers
//!   it is not connected to until it has `target_peers` connections; every few rounds it looks itself up
//!   (a bootstrap) to learn of nodes that joined since.
//!
//! - Metrics: the [`Gauges`] (chain height, mempool size, orphans) are set when the tip changes and
//!   refreshed on every discovery tick (local `submit_tx` calls change the mempool without an event).
//!
//! A [`RelayFilter`] lets a node refuse to relay chosen transactions (tests build censoring nodes with it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use meshwork_consensus::{Command as SyncCommand, Event as SyncEvent};
use meshwork_gossip::{Command as GossipCommand, Event as GossipEvent, Gossip, MessageId, TopicId, Verdict};
use meshwork_identity::PeerId;
use meshwork_kad::{Address, Command as KadCommand, Kademlia, PeerInfo, QueryId};
use meshwork_ledger::{Block, BlockId, Transfer, TxId};
use meshwork_node::{Events, Gauge, Metrics};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::api::{NodeApi, txid_of};
use crate::node::Sync;

/// Decides whether this node relays a transaction (`true`: validate and relay as usual).
pub type RelayFilter = Arc<dyn Fn(&Transfer) -> bool + Send + std::marker::Sync>;

/// A validation whose verdict has not come after this long is answered `Ignore`.
pub const VALIDATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Every how many discovery ticks local transactions still in the mempool are published again.
const REBROADCAST_EVERY_TICKS: u64 = 5;

/// How often discovery tops up connections.
pub const DISCOVERY_INTERVAL: Duration = Duration::from_secs(2);

/// The gossip topic of transactions.
pub fn tx_topic() -> TopicId {
    TopicId::from_name("meshwork-coin/tx/1")
}

/// The gossip topic of blocks.
pub fn block_topic() -> TopicId {
    TopicId::from_name("meshwork-coin/block/1")
}

/// The coin node's own gauges on the node's metrics page (`meshwork_<name>`).
#[derive(Clone, Debug)]
pub struct Gauges {
    chain_height: Gauge,
    best_header_height: Gauge,
    mempool_transactions: Gauge,
    mempool_bytes: Gauge,
    mempool_orphans: Gauge,
    orphan_blocks: Gauge,
    last_refresh: Option<Instant>,
}

/// The tip is read at most this often when it changes quickly (during sync); ticks refresh anyway.
const GAUGE_MIN_INTERVAL: Duration = Duration::from_millis(250);

fn as_gauge(value: impl TryInto<i64>) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

impl Gauges {
    /// Registers the gauges on `metrics` (before the node starts or after).
    pub fn register(metrics: &Metrics) -> Self {
        Self {
            chain_height: metrics.gauge("chain_height", "Height of the best chain's tip"),
            best_header_height: metrics.gauge(
                "best_header_height",
                "Height of the best header known (above chain_height while syncing)",
            ),
            mempool_transactions: metrics.gauge("mempool_transactions", "Transactions in the mempool"),
            mempool_bytes: metrics.gauge("mempool_bytes", "Encoded bytes of the mempool's transactions"),
            mempool_orphans: metrics.gauge(
                "mempool_orphans",
                "Transactions waiting for unknown inputs (the mempool's orphan pool)",
            ),
            orphan_blocks: metrics.gauge("orphan_blocks", "Blocks held whose parent is unknown"),
            last_refresh: None,
        }
    }

    /// Reads the chain and mempool (one call into the node task) and sets every gauge.
    pub async fn refresh(&mut self, api: &NodeApi) {
        let read = api
            .sync()
            .with(|s| {
                let chain = s.chain();
                let pool = chain.mempool();
                [
                    as_gauge(chain.tip().height),
                    as_gauge(chain.best_header().height),
                    as_gauge(pool.len()),
                    as_gauge(pool.bytes()),
                    as_gauge(pool.orphan_count()),
                    as_gauge(chain.orphan_count()),
                ]
            })
            .await;
        if let Ok([height, header, txs, bytes, tx_orphans, block_orphans]) = read {
            self.chain_height.set(height);
            self.best_header_height.set(header);
            self.mempool_transactions.set(txs);
            self.mempool_bytes.set(bytes);
            self.mempool_orphans.set(tx_orphans);
            self.orphan_blocks.set(block_orphans);
        }
        self.last_refresh = Some(Instant::now());
    }

    /// The tip moved to `height`: set the height now, the rest unless it was read very recently.
    async fn tip_changed(&mut self, api: &NodeApi, height: u64) {
        self.chain_height.set(as_gauge(height));
        if self
            .last_refresh
            .is_none_or(|at| at.elapsed() >= GAUGE_MIN_INTERVAL)
        {
            self.refresh(api).await;
        }
    }
}

/// The event streams the loop consumes.
pub(crate) struct Streams {
    pub(crate) sync: Events<Sync>,
    pub(crate) gossip: Events<Gossip>,
    pub(crate) kad: Events<Kademlia>,
}

/// Gossip messages waiting for sync's verdict.
#[derive(Default)]
struct Pending {
    txs: HashMap<TxId, Vec<(MessageId, Instant)>>,
    blocks: HashMap<BlockId, Vec<(MessageId, Instant)>>,
}

/// Maps a gossip validation request to a sync command, or answers it at once.
enum Validation {
    Tx(TxId, Transfer),
    Block(BlockId, Block),
    Now(Verdict),
}

fn classify(topic: TopicId, payload: &[u8], filter: &RelayFilter) -> Validation {
    if topic == tx_topic() {
        match meshwork_wire::decode::<Transfer>(payload) {
            Ok(tx) if filter(&tx) => Validation::Tx(txid_of(&tx), tx),
            Ok(_) => Validation::Now(Verdict::Ignore),
            Err(_) => Validation::Now(Verdict::Reject),
        }
    } else if topic == block_topic() {
        match meshwork_wire::decode::<Block>(payload) {
            Ok(block) => Validation::Block(block.id(), block),
            Err(_) => Validation::Now(Verdict::Reject),
        }
    } else {
        Validation::Now(Verdict::Ignore)
    }
}

/// Runs the glue until `stop` turns true or the node stops.
pub(crate) async fn run(
    api: NodeApi,
    mut streams: Streams,
    filter: RelayFilter,
    target_peers: usize,
    mut gauges: Gauges,
    mut stop: watch::Receiver<bool>,
) {
    gauges.refresh(&api).await;
    let mut pending = Pending::default();
    let mut tick = tokio::time::interval(DISCOVERY_INTERVAL);
    let mut rounds = 0u64;
    let mut seen = Seen::default();
    loop {
        let verdicts = tokio::select! {
            _ = stop.changed() => return,
            event = streams.gossip.recv() => match event {
                Some(event) => on_gossip(&api, event, &filter, &mut pending).await,
                None => return,
            },
            event = streams.sync.recv() => match event {
                Some(event) => {
                    if let SyncEvent::TipChanged { height, .. } = &event {
                        gauges.tip_changed(&api, *height).await;
                    }
                    on_sync(event, &mut pending)
                }
                None => return,
            },
            event = streams.kad.recv() => {
                if event.is_none() { return; }
                Vec::new()
            }
            _ = tick.tick() => {
                rounds += 1;
                discover(&api, target_peers, rounds, &mut seen).await;
                if rounds % REBROADCAST_EVERY_TICKS == 0 {
                    let _ = api.rebroadcast_local().await;
                }
                gauges.refresh(&api).await;
                expire(&mut pending)
            }
        };
        for (id, verdict) in verdicts {
            if api
                .gossip()
                .command(GossipCommand::Validated(id, verdict))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

async fn on_gossip(
    api: &NodeApi,
    event: GossipEvent,
    filter: &RelayFilter,
    pending: &mut Pending,
) -> Vec<(MessageId, Verdict)> {
    let GossipEvent::Validate { id, message, from } = event else {
        return Vec::new();
    };
    let now = Instant::now();
    let command = match classify(message.topic, &message.payload, filter) {
        Validation::Now(verdict) => return vec![(id, verdict)],
        Validation::Tx(txid, tx) => {
            pending.txs.entry(txid).or_default().push((id, now));
            SyncCommand::SubmitTx { tx, from: Some(from) }
        }
        Validation::Block(block_id, block) => {
            pending.blocks.entry(block_id).or_default().push((id, now));
            SyncCommand::SubmitBlock {
                block,
                from: Some(from),
            }
        }
    };
    if let Err(error) = api.sync().command(command).await {
        warn!(%error, "sync stopped");
    }
    Vec::new()
}

fn answer<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Vec<(MessageId, Instant)>>,
    key: &K,
    verdict: Verdict,
) -> Vec<(MessageId, Verdict)> {
    map.remove(key)
        .unwrap_or_default()
        .into_iter()
        .map(|(id, _)| (id, verdict))
        .collect()
}

fn on_sync(event: SyncEvent, pending: &mut Pending) -> Vec<(MessageId, Verdict)> {
    match event {
        SyncEvent::TxAccepted { txid, .. } => answer(&mut pending.txs, &txid, Verdict::Accept),
        SyncEvent::TxPending { txid, .. } => answer(&mut pending.txs, &txid, Verdict::Ignore),
        SyncEvent::TxRejected { txid, error, .. } => {
            let invalid =
                matches!(error, meshwork_ledger::MempoolError::Invalid(_)) && !error.is_missing_data();
            debug!(%txid, %error, "transaction refused");
            let verdict = if invalid { Verdict::Reject } else { Verdict::Ignore };
            answer(&mut pending.txs, &txid, verdict)
        }
        SyncEvent::BlockAccepted { id, height, .. } => {
            debug!(%id, height, "block accepted");
            answer(&mut pending.blocks, &id, Verdict::Accept)
        }
        SyncEvent::BlockRejected { id, reason, .. } => {
            warn!(%id, ?reason, "block rejected");
            answer(&mut pending.blocks, &id, Verdict::Reject)
        }
        SyncEvent::BlockPending { id, .. } => answer(&mut pending.blocks, &id, Verdict::Ignore),
        SyncEvent::Synced { height, .. } => {
            info!(height, "synced");
            Vec::new()
        }
        SyncEvent::PeerFaulted { peer, fault } => {
            warn!(%peer, ?fault, "sync dropped a peer");
            Vec::new()
        }
        SyncEvent::StoreFailed(error) => {
            warn!(%error, "chain store failed");
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// Answers `Ignore` to validations that waited too long.
fn expire(pending: &mut Pending) -> Vec<(MessageId, Verdict)> {
    let now = Instant::now();
    let mut out = Vec::new();
    for list in pending.txs.values_mut().chain(pending.blocks.values_mut()) {
        list.retain(|(id, since)| {
            let keep = now.duration_since(*since) < VALIDATION_TIMEOUT;
            if !keep {
                out.push((*id, Verdict::Ignore));
            }
            keep
        });
    }
    pending.txs.retain(|_, list| !list.is_empty());
    pending.blocks.retain(|_, list| !list.is_empty());
    out
}

/// Peers this node has been connected to, with their addresses (bounded; the oldest is forgotten).
#[derive(Debug, Default)]
pub(crate) struct Seen {
    order: std::collections::VecDeque<PeerId>,
    addrs: HashMap<PeerId, std::net::SocketAddr>,
}

impl Seen {
    const MAX: usize = 256;

    fn remember(&mut self, peer: PeerId, addr: std::net::SocketAddr) {
        if self.addrs.insert(peer, addr).is_none() {
            self.order.push_back(peer);
            if self.order.len() > Self::MAX {
                if let Some(old) = self.order.pop_front() {
                    self.addrs.remove(&old);
                }
            }
        }
    }

    fn peers(&self) -> Vec<(PeerId, std::net::SocketAddr)> {
        self.order
            .iter()
            .filter_map(|p| self.addrs.get(p).map(|a| (*p, *a)))
            .collect()
    }
}

/// Dials peers from Kademlia's table, then peers seen before, until `target` are connected;
/// re-bootstraps every 15 rounds.
async fn discover(api: &NodeApi, target: usize, rounds: u64, seen: &mut Seen) {
    let Ok(connected) = api.node().peers().await else {
        return;
    };
    for (peer, addr) in &connected {
        seen.remember(*peer, *addr);
    }
    let me = api.node().peer_id();
    let known: Vec<(PeerId, Option<std::net::SocketAddr>)> = api
        .kad()
        .with(|kad| {
            kad.routing_table()
                .iter()
                .map(|entry| (entry.peer, entry.addr.socket_addr()))
                .collect()
        })
        .await
        .unwrap_or_default();
    let mut missing = target.saturating_sub(connected.len());
    for (peer, addr) in &known {
        if missing == 0 {
            break;
        }
        if *peer == me || connected.iter().any(|(p, _)| p == peer) {
            continue;
        }
        if let Some(addr) = addr {
            if api.node().dial(*peer, *addr).await.is_ok() {
                missing -= 1;
            }
        }
    }
    // Kademlia forgets peers whose requests failed, so a node whose connections all closed at once (a
    // contact shut down, evictions) can be left with an empty table: fall back on every peer it was ever
    // connected to, so it never stays alone while any of them is up.
    for (peer, addr) in seen.peers() {
        if missing == 0 {
            break;
        }
        if peer == me || connected.iter().any(|(p, _)| *p == peer) || known.iter().any(|(p, _)| *p == peer) {
            continue;
        }
        if api.node().dial(peer, addr).await.is_ok() {
            missing -= 1;
        }
    }
    // Gossip repair: if the overlay's active view is thin (a contact left), join again through the peers we
    // are connected to.
    let active = api
        .gossip()
        .with(|g| g.active_view().len())
        .await
        .unwrap_or_default();
    if active < 2 && !connected.is_empty() {
        let contacts = connected.iter().map(|(peer, _)| *peer).collect();
        let _ = api.gossip().command(GossipCommand::Join(contacts)).await;
    }
    if rounds % 15 == 1 && !connected.is_empty() {
        let peers = connected
            .iter()
            .map(|(id, addr)| PeerInfo {
                id: *id,
                addr: Address::from(*addr),
            })
            .collect();
        let _ = api
            .kad()
            .command(KadCommand::Bootstrap {
                query: QueryId(rounds),
                peers,
            })
            .await;
    }
}
