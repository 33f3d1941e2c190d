//! The node side of the coin's logic. The logic itself — relay policy, validation against the mempool,
//! discovery, rebroadcast — is [`meshwork_coin::CoinApp`], one pure protocol that the runtime drives
//! (and that `meshsim coin` runs at scale). What is left here needs the tokio side: the metrics gauges,
//! read from the app every few seconds, and a task that logs what the app reports.

use std::time::Duration;

use meshwork_coin::CoinEvent;
use meshwork_consensus::Event as SyncEvent;
use meshwork_node::{Events, Gauge, Metrics};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::api::NodeApi;
use crate::node::App;

pub use meshwork_coin::{RelayFilter, tx_topic};

/// How often the gauges are read.
pub const GAUGE_INTERVAL: Duration = Duration::from_secs(2);

/// The coin node's own gauges on the node's metrics page (`meshwork_<name>`).
#[derive(Clone, Debug)]
pub struct Gauges {
    chain_height: Gauge,
    best_header_height: Gauge,
    mempool_transactions: Gauge,
    mempool_bytes: Gauge,
    mempool_orphans: Gauge,
    orphan_blocks: Gauge,
}

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
        }
    }

    /// Reads the chain and mempool (one call into the node task; every read is O(1)) and sets every
    /// gauge.
    pub async fn refresh(&self, api: &NodeApi) {
        let read = api
            .app()
            .with(|app| {
                let chain = app.chain();
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
    }
}

/// Refreshes the gauges every [`GAUGE_INTERVAL`] until `stop` turns true or the node stops.
pub(crate) async fn refresh_gauges(api: NodeApi, gauges: Gauges, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(GAUGE_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => gauges.refresh(&api).await,
        }
    }
}

/// Logs what the app reports until `stop` turns true or the node stops. Nothing depends on these
/// events: a full queue only drops log lines (counted in the metrics).
pub(crate) async fn log_events(mut events: Events<App>, mut stop: watch::Receiver<bool>) {
    loop {
        let event = tokio::select! {
            _ = stop.changed() => return,
            event = events.recv() => match event {
                Some(event) => event,
                None => return,
            },
        };
        match event {
            CoinEvent::Sync(SyncEvent::TipChanged {
                height, disconnected, ..
            }) if disconnected > 0 => {
                info!(height, disconnected, "reorganised");
            }
            CoinEvent::Sync(SyncEvent::BlockRejected { id, reason, .. }) => {
                warn!(%id, ?reason, "block rejected")
            }
            CoinEvent::Sync(SyncEvent::Synced { height, .. }) => info!(height, "synced"),
            CoinEvent::Sync(SyncEvent::PeerFaulted { peer, fault }) => {
                warn!(%peer, ?fault, "sync dropped a peer")
            }
            CoinEvent::Sync(SyncEvent::StoreFailed(error)) => warn!(%error, "chain store failed"),
            CoinEvent::Gossip(meshwork_gossip::Event::PeerBanned(peer)) => {
                warn!(%peer, "gossip banned a peer")
            }
            CoinEvent::TxRejected { txid, error, .. } => debug!(%txid, %error, "relayed transaction refused"),
            _ => {}
        }
    }
}
