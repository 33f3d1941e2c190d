//! Consensus parameters of the chain and limits of block sync.

use std::time::Duration;

use meshwork_identity::{Hash, Keypair, PeerId};
use meshwork_ledger::{LedgerConfig, MempoolConfig};

use crate::bft::ValidatorSet;

const GENESIS_KEY_DOMAIN: &str = "meshwork consensus 2026 genesis key v1";

/// The fixed, **public** key the default genesis coinbase pays: its secret seed is
/// `blake3::derive_key("meshwork consensus 2026 genesis key v1", b"")`, written here for anyone to use.
/// On a development network the genesis coins are therefore a faucet anyone can spend; a real network
/// sets [`ChainConfig::genesis_owner`] to a key of its own (or a key nobody holds).
pub fn genesis_key() -> Keypair {
    Keypair::from_seed(*Hash::derive(GENESIS_KEY_DOMAIN, b"").as_bytes())
}

/// The chain's consensus parameters (every node of a network must use the same) and local limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainConfig {
    /// The ledger's rules (maturity, block size, timestamps, subsidy).
    pub ledger: LedgerConfig,
    /// The mempool's limits (local policy).
    pub mempool: MempoolConfig,
    /// The easiest target allowed, compact. Default `0x1f00_ffff` (about one hash in 65,536).
    pub pow_limit: u32,
    /// The block interval ASERT aims at, in seconds. Default 600.
    pub target_block_time: u64,
    /// ASERT's half-life in seconds: this far behind (ahead of) schedule doubles (halves) the target.
    /// Default 172,800 (two days, as Bitcoin Cash). It also bounds how far ahead of `now` a header may
    /// be dated: at most [`MAX_FUTURE_HALF_LIVES`](crate::pow::MAX_FUTURE_HALF_LIVES) half-lives (or the
    /// ledger's `max_future_secs` if less), so future-dated blocks ease the difficulty 16-fold at most.
    pub half_life: u64,
    /// Confirmations (the block itself included) after which a block on the best chain counts as
    /// [final](crate::Finality). Default 6.
    pub finality_depth: u64,
    /// A header chain is stored only if its cumulative work is at least this (Bitcoin's
    /// `nMinimumChainWork`), in addition to at least the work of our tip. Default 0.
    pub min_chain_work: u128,
    /// Headers kept in memory at most; beyond it the least-work side branches are pruned (the best
    /// chain and the best header chain are never pruned). Default 1,000,000.
    pub max_headers: usize,
    /// Blocks with an unknown parent kept at most, the oldest evicted first. Default 64.
    pub max_orphan_blocks: usize,
    /// Bytes of received blocks held in memory until they can be connected (ahead of the tip, or on a
    /// side branch); beyond it the least useful are dropped (and fetched again if needed).
    /// Default 128 MiB.
    pub max_unconnected_block_bytes: usize,
    /// Ids of invalid blocks remembered (to refuse them cheaply), the oldest forgotten first.
    /// Default 10,000.
    pub max_invalid_remembered: usize,
    /// The genesis block's timestamp (Unix seconds). Default 2026-01-01T00:00:00Z.
    pub genesis_time: u64,
    /// Who the genesis coinbase pays (the subsidy of height 0). Default: [`genesis_key`].
    pub genesis_owner: PeerId,
    /// How the chain picks its tip and decides finality. Default [`ChainRule::ProofOfWork`].
    pub rule: ChainRule,
}

/// How a [`Chain`](crate::Chain) picks its tip and decides finality: the engine is chosen here, and the
/// ledger, mempool and sync stay the same.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ChainRule {
    /// Nakamoto consensus: headers carry proof of work at the ASERT target, the valid chain with the
    /// most work is the tip, and a block is final [`ChainConfig::finality_depth`] blocks deep.
    #[default]
    ProofOfWork,
    /// BFT: a consensus engine ([`Simplex`](crate::bft::Simplex)) certifies blocks and the chain
    /// follows it ([`Chain::follow`](crate::Chain::follow)); a block is final once a
    /// [`Certificate`](crate::Certificate) of more than two thirds of these validators commits it or a
    /// descendant ([`Chain::finalize`](crate::Chain::finalize)). Headers carry no proof of work: every
    /// target must be [`ChainConfig::pow_limit`] and its hash is not checked (the validators, not work,
    /// stop Sybils), so fork choice by work is never used. Blocks may be dated at the median time past
    /// ([`LedgerConfig::timestamp_may_equal_median`]): [`Chain::open`](crate::Chain::open) sets it.
    Certified(ValidatorSet),
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            ledger: LedgerConfig::default(),
            mempool: MempoolConfig::default(),
            pow_limit: 0x1f00_ffff,
            target_block_time: 600,
            half_life: 172_800,
            finality_depth: 6,
            min_chain_work: 0,
            max_headers: 1_000_000,
            max_orphan_blocks: 64,
            max_unconnected_block_bytes: 128 * 1024 * 1024,
            max_invalid_remembered: 10_000,
            genesis_time: 1_767_225_600,
            genesis_owner: genesis_key().peer_id(),
            rule: ChainRule::ProofOfWork,
        }
    }
}

impl ChainConfig {
    /// Parameters for tests and local networks: proof of work at one hash in two (`0x207f_ffff`),
    /// 60-second blocks, a one-hour half-life and coinbase maturity 1, so chains are cheap to build.
    pub fn regtest() -> Self {
        Self {
            ledger: LedgerConfig {
                coinbase_maturity: 1,
                ..LedgerConfig::default()
            },
            pow_limit: 0x207f_ffff,
            target_block_time: 60,
            half_life: 3_600,
            ..Self::default()
        }
    }
}

/// Limits and timeouts of [`ChainSync`](crate::ChainSync).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncConfig {
    /// Blocks requested from one peer and not yet received, at most. Default 16.
    pub max_blocks_in_flight_per_peer: usize,
    /// Blocks are only requested up to this many heights above our tip. Default 1024.
    pub download_window: u64,
    /// A peer that has not delivered a requested block after this long is dropped as stalling.
    /// Default 20 s.
    pub block_timeout: Duration,
    /// A peer that has not answered a header request after this long is dropped. Default 20 s.
    pub headers_timeout: Duration,
    /// Headers held per peer while its chain does not (yet) carry more work than our tip; beyond this
    /// the peer is dropped for a low-work header flood. Default 16,000 (eight full messages). The
    /// peers we did not choose to download from share a pool of four times this; a batch beyond it is
    /// not held.
    pub max_pending_headers: usize,
    /// Header messages (`Headers` or `NewTip`) that connect to nothing we know a peer may send within
    /// one [`unconnecting_window`](Self::unconnecting_window): one more drops it. The count starts again
    /// only when the window is over, or when the peer sends headers that extend our header chain or that
    /// answer a request of ours. A header we already know does not restart it: anyone can resend one,
    /// and it let a peer send 990 unconnecting messages without being dropped. Default 10 (Bitcoin
    /// Core's `MAX_NUM_UNCONNECTING_HEADERS_MSGS`, `net_processing.cpp`).
    pub max_unconnecting_headers: u32,
    /// The window over which unconnecting header messages are counted, from the first one counted.
    /// Default 10 minutes: an honest peer whose announcements race their parents has its count restarted
    /// by the answer to our header request long before.
    pub unconnecting_window: Duration,
    /// Peers asked for headers at once because they claim more work than our best header: the best
    /// claimants first (0 counts as 1). Default 2, so a claimant that stalls or lies does not hold up the
    /// download while it times out: the second is already fetching.
    pub header_download_peers: usize,
    /// Bytes of answers (`Headers`, `Block`, `NotFound`) one peer is served per second, on average, in
    /// driver time. Default 4 MiB/s (32 Mbit/s to each peer, more than one honest downloader asks of one
    /// of its several sources). A request over it waits (see `sync/serve.rs`): a peer that only asks
    /// costs us no more than this, however fast it asks.
    pub serve_bytes_per_sec: u64,
    /// Bytes of answers one peer may be served at once before [`serve_bytes_per_sec`](Self::serve_bytes_per_sec)
    /// paces it. Default 32 MiB: two full `GetBlocks` answers of 16 blocks at the ledger's default
    /// 1 MB block limit, so the first requests of an initial block download go out at once. An answer
    /// is never split: one started with budget left may overdraw it, and the overdraft is repaid first.
    pub serve_burst_bytes: u64,
    /// Bytes of answers served to all peers together per second. Default 32 MiB/s. When it is spent,
    /// waiting requests are answered in turn, one per peer and kind per round (round robin), so a
    /// flooding peer cannot crowd out one that asks once.
    pub serve_total_bytes_per_sec: u64,
    /// Bytes of answers served to all peers together at once. Default 64 MiB.
    pub serve_total_burst_bytes: u64,
    /// Headers one peer may have brought into (or relayed within) a certified chain's index that no
    /// certificate vouches for (above the final block, off the chosen block's chain; below it, off
    /// the final block's ancestry): past it, its oldest such header with nothing built on it leaves
    /// its allowance, and the index too unless another peer's allowance holds it
    /// (`sync/uncertified.rs`). Default 512, twice
    /// [`UNCERTIFIED_HORIZON`](crate::UNCERTIFIED_HORIZON): one batch up to the horizon above the tip,
    /// with the tip not yet final, fits. Ignored under proof of work.
    pub max_uncertified_headers: usize,
    /// Whether the block that extends our tip is fetched as a compact block and rebuilt from the
    /// mempool (BIP152) rather than whole. Default on.
    pub compact_blocks: bool,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            max_blocks_in_flight_per_peer: 16,
            download_window: 1024,
            block_timeout: Duration::from_secs(20),
            headers_timeout: Duration::from_secs(20),
            max_pending_headers: 16_000,
            max_unconnecting_headers: 10,
            unconnecting_window: Duration::from_secs(600),
            header_download_peers: 2,
            serve_bytes_per_sec: 4 * 1024 * 1024,
            serve_burst_bytes: 32 * 1024 * 1024,
            serve_total_bytes_per_sec: 32 * 1024 * 1024,
            serve_total_burst_bytes: 64 * 1024 * 1024,
            max_uncertified_headers: 2 * crate::UNCERTIFIED_HORIZON as usize,
            compact_blocks: true,
        }
    }
}
