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
    /// The most relayed transactions judged together (default 64): their signatures are verified in
    /// one batch ([`Chain::preverify_txs`](meshwork_consensus::Chain::preverify_txs)), at half or less of
    /// the cost of one at a time. A batch is judged once it is full or [`validation_delay`] after its
    /// first transaction came; 1 judges each transaction as it comes.
    ///
    /// [`validation_delay`]: Self::validation_delay
    pub validation_batch: usize,
    /// How long a relayed transaction waits for others to be judged with (default 2 ms; zero judges
    /// each as it comes). It delays a hop by at most this much, and only under load: a transaction
    /// that comes this long or longer after the one before is judged at once, and a batch that fills
    /// up is judged when it does.
    pub validation_delay: Duration,
    /// How long local transactions (wallet, RPC) are refused after a data message to most gossip
    /// neighbours was dropped by a full send queue (default 500 ms; zero never refuses): the node then
    /// sends faster than its neighbours read, and what it took from its wallets would crowd out what it
    /// relays for others ([`SubmitError::LinksFull`](crate::SubmitError::LinksFull)). One local
    /// transaction per hold still goes through, so a node whose uplink is always full gets its own
    /// out. A minority of slow neighbours never trips it.
    pub links_full_hold: Duration,
    /// Gossip's settings (transaction relay). The default borrows trees ([`meshwork_gossip::Trees::Borrow`]):
    /// a node's first transactions follow the tree of a node a link or two away instead of flooding.
    pub gossip: meshwork_gossip::Config,
    /// Sync's settings (headers-first block download and relay).
    pub sync: SyncConfig,
    /// Kademlia's settings (peer discovery). The default requires peer ids to solve the S/Kademlia
    /// static puzzle at [`AppConfig::PUZZLE_DIFFICULTY`] and keeps Kademlia's per-prefix limits; the
    /// node's own key must then solve the puzzle too (`Keypair::generate_with_puzzle`), or other nodes
    /// never admit it to their routing tables.
    pub kad: meshwork_kad::Config,
    /// A network whose nodes all run on this machine: every peer shares 127.0.0.1, so Kademlia's
    /// per-prefix limits (a few peers per /24, meant for the internet) would keep all but a handful out
    /// of the routing table, and they are lifted ([`AppConfig::kad_config`]). The only setting that
    /// relaxes them (ARCHITECTURE.md, hostile peers); the puzzle stays on. Default false.
    pub loopback_devnet: bool,
    /// Where a peer is reachable, for drivers whose connections carry no address (the simulator):
    /// Kademlia is told this address when the peer connects. `None` on a real network, where the node
    /// runtime reports the observed address ([`CoinCommand::PeerAddress`](crate::CoinCommand)).
    pub address_of: Option<fn(&PeerId) -> Address>,
}

impl AppConfig {
    /// The S/Kademlia static puzzle difficulty (leading zero bits) the coin's Kademlia requires of peer
    /// ids by default: creating an id costs about 2^12 = 4,096 key generations, 90 ms on one core of the
    /// development machine (22 µs per try; one id in a hundred takes over 0.4 s), and checking one a
    /// single hash (Baumgart & Mies, *S/Kademlia*, ICPADS 2007, §4.1). Enough to price out choosing ids
    /// next to a target key by the million, cheap enough for a node's one-time key generation.
    pub const PUZZLE_DIFFICULTY: u32 = 12;

    /// Per-prefix limits on a [loopback devnet](Self::loopback_devnet): as many peers of one prefix as
    /// a bucket (or the table) holds.
    const LOOPBACK_PREFIX_LIMIT: usize = 1024;

    /// The Kademlia configuration the app runs: [`kad`](Self::kad), with the per-prefix limits lifted on
    /// a [loopback devnet](Self::loopback_devnet).
    pub fn kad_config(&self) -> meshwork_kad::Config {
        let mut kad = self.kad.clone();
        if self.loopback_devnet {
            kad.max_per_prefix_in_bucket = Self::LOOPBACK_PREFIX_LIMIT;
            kad.max_per_prefix_in_table = Self::LOOPBACK_PREFIX_LIMIT;
        }
        kad
    }

    /// The gossip configuration the app runs: [`gossip`](Self::gossip), with HyParView's per-prefix
    /// admission limits lifted on a [loopback devnet](Self::loopback_devnet).
    pub fn gossip_config(&self) -> meshwork_gossip::Config {
        let mut gossip = self.gossip.clone();
        if self.loopback_devnet {
            gossip.admission = gossip.admission.without_prefix_limits();
        }
        gossip
    }
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
            validation_batch: 64,
            validation_delay: Duration::from_millis(2),
            // About as long as a full queue of transactions (768 data messages) takes to drain at the
            // rates `coin-node bench` relays.
            links_full_hold: Duration::from_millis(500),
            // Every node publishes transactions (its wallets'), most of them rarely: a node without a
            // tree of its own borrows a nearby node's rather than flooding (`Trees::Borrow`, with
            // lenders two links away by default: bytes before latency, as transactions want).
            gossip: meshwork_gossip::Config {
                trees: meshwork_gossip::Trees::Borrow,
                ..meshwork_gossip::Config::default()
            },
            sync: SyncConfig::default(),
            kad: {
                let mut kad = meshwork_kad::Config::default();
                kad.puzzle_difficulty = Self::PUZZLE_DIFFICULTY;
                kad
            },
            loopback_devnet: false,
            address_of: None,
        }
    }
}
