//! [`AppConfig`]: the coin node's relay and discovery settings, and its children's configurations.

use std::time::Duration;

use meshwork_consensus::SyncConfig;
use meshwork_identity::PeerId;
use meshwork_kad::Address;

/// How a [`CoinApp`](crate::CoinApp) relays and discovers, and how its children are configured.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// Connections discovery aims to keep (Bitcoin Core keeps 8 outbound).
    pub target_peers: usize,
    /// Above this many connections, discovery closes idle ones (no gossip neighbour, no Kademlia request
    /// and no sync download in flight) until `low_watermark` are left. Kademlia dials every peer a lookup
    /// asks, so without it a node ends up connected to most of the network.
    pub high_watermark: usize,
    /// Where trimming stops (at least `target_peers`).
    pub low_watermark: usize,
    /// How often discovery tops up connections and repairs the gossip overlay.
    pub discovery_interval: Duration,
    /// Every how many discovery rounds Kademlia bootstraps again while its routing table holds fewer
    /// than `target_peers` peers (a node whose contacts left, or that was cut off).
    pub rebootstrap_every: u64,
    /// How often local transactions still in the mempool are published again.
    pub rebroadcast_interval: Duration,
    /// The most local transactions remembered for rebroadcast (the oldest is forgotten).
    pub max_local_txs: usize,
    /// The most peers remembered as ever connected, to redial when the routing table runs dry.
    pub max_seen_peers: usize,
    /// Gossip's settings (transaction relay).
    pub gossip: meshwork_gossip::Config,
    /// Sync's settings (headers-first block download and relay).
    pub sync: SyncConfig,
    /// Kademlia's settings (peer discovery).
    pub kad: meshwork_kad::Config,
    /// Where a peer is reachable, for drivers whose connections carry no address (the simulator):
    /// Kademlia is told this address when the peer connects. `None` on a real network, where the node
    /// runtime reports the observed address ([`CoinCommand::PeerAddress`](crate::CoinCommand)).
    pub address_of: Option<fn(&PeerId) -> Address>,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            target_peers: 8,
            high_watermark: 32,
            low_watermark: 16,
            discovery_interval: Duration::from_secs(2),
            rebootstrap_every: 15,
            rebroadcast_interval: Duration::from_secs(10),
            max_local_txs: 256,
            max_seen_peers: 256,
            gossip: meshwork_gossip::Config::default(),
            sync: SyncConfig::default(),
            kad: meshwork_kad::Config::default(),
            address_of: None,
        }
    }
}
