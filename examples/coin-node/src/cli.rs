//! The `coin-node` binary's command line: its subcommands and flags, as clap parses them. The
//! binary's own module, not the library's.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use coin_node::wallet;
use meshwork_identity::PeerId;
use meshwork_ledger::Amount;

/// A proof-of-work coin node built from meshwork's crates: QUIC, Kademlia discovery, gossip relay,
/// headers-first sync, a redb ledger, a miner, a wallet and a JSON-RPC API.
///
/// Quick start: `coin-node devnet` runs five nodes on 127.0.0.1 in one process and shows blocks being
/// mined, payments confirmed and a late node catching up.
///
/// Real nodes: `coin-node init --data-dir a`, then `coin-node run --data-dir a --mine`; a second node
/// (initialised with the same `--genesis-time`) joins with `--bootstrap <peer-id>@<addr>` as printed by
/// the first. Wallet commands talk to the node over RPC with the cookie in the data dir.
#[derive(Parser, Debug)]
#[command(name = "coin-node", version, verbatim_doc_comment)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Cmd,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Cmd {
    /// Create a data dir: node key and wallet key (owner-only files) and config.json.
    Init {
        /// The data directory.
        #[arg(long, default_value = "coin-data")]
        data_dir: PathBuf,
        /// The network's genesis time (Unix seconds). Every node of one network must use the same;
        /// default: now (a new network).
        #[arg(long)]
        genesis_time: Option<u64>,
        /// QUIC address to listen on.
        #[arg(long, default_value = "127.0.0.1:7400")]
        listen: SocketAddr,
        /// JSON-RPC address (keep it on loopback).
        #[arg(long, default_value = "127.0.0.1:7401")]
        rpc: SocketAddr,
        /// The network's consensus: proof of work, or Simplex BFT among the nodes of --validators.
        #[arg(long, value_enum, default_value_t = ConsensusKind::Pow)]
        consensus: ConsensusKind,
        /// Under `--consensus bft`: a file of the validators' node ids, one per line, in leader order
        /// (`coin-node init` prints each node's id). Every node of the network uses the same file.
        #[arg(long, required_if_eq("consensus", "bft"))]
        validators: Option<PathBuf>,
    },
    /// Run a node from its data dir (created with defaults if missing).
    Run {
        /// The data directory.
        #[arg(long, default_value = "coin-data")]
        data_dir: PathBuf,
        /// QUIC address to listen on (default: the config file's).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// A peer to join through, `<peer-id>@<ip:port>`; repeatable.
        #[arg(long, value_parser = parse_peer)]
        bootstrap: Vec<(PeerId, SocketAddr)>,
        /// Mine, paying the wallet.
        #[arg(long)]
        mine: bool,
        /// Mining threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// JSON-RPC address (default: the config file's). Loopback only, unless --rpc-allow-remote.
        #[arg(long)]
        rpc: Option<SocketAddr>,
        /// Allow a non-loopback --rpc address. The cookie then travels in clear over HTTP: use it only
        /// behind a TLS proxy or on a private network.
        #[arg(long)]
        rpc_allow_remote: bool,
        /// Lift the limits meant for the internet that would treat peers sharing 127.0.0.1 as one
        /// operator (per-IP and per-prefix caps, Kademlia's prefix limits): for a devnet on one machine.
        #[arg(long)]
        loopback_devnet: bool,
        /// Serve as the rendezvous and relay for peers behind NATs: they register here, find each
        /// other, punch holes through their NATs, and relay through this node when a punch fails. Only
        /// on a publicly reachable node.
        #[arg(long, conflicts_with = "use_rendezvous")]
        rendezvous: bool,
        /// This node is behind a NAT: register at this rendezvous, `<peer-id>@<ip:port>` (a node run
        /// with --rendezvous), and reach the peers registered there directly or through its relay.
        #[arg(long, value_parser = parse_peer, value_name = "PEER")]
        use_rendezvous: Option<(PeerId, SocketAddr)>,
        /// Serve Prometheus metrics at `http://<addr>/metrics` (off by default): the runtime's
        /// counters plus `meshwork_chain_height`, `meshwork_mempool_transactions`, `meshwork_mempool_bytes`,
        /// `meshwork_orphan_blocks`...
        #[arg(long, value_name = "ADDR")]
        metrics: Option<SocketAddr>,
        /// Serve the block explorer at `http://<addr>/` (off by default; keep it on loopback unless the
        /// chain is public anyway: it needs no cookie).
        #[arg(long, value_name = "ADDR")]
        explorer: Option<SocketAddr>,
    },
    /// Wallet commands (the node must be running).
    Wallet {
        /// The data directory (for the wallet key and the RPC cookie); before or after the subcommand.
        #[arg(long, default_value = "coin-data", global = true)]
        data_dir: PathBuf,
        #[command(subcommand)]
        command: WalletCmd,
    },
    /// Print the running node's status.
    Status {
        /// The data directory (for the RPC address and cookie).
        #[arg(long, default_value = "coin-data")]
        data_dir: PathBuf,
    },
    /// Run a local network in this process (temporary data dirs, real QUIC on 127.0.0.1).
    Devnet {
        /// Nodes in all; the last joins late to show sync.
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// Seconds to run (0: until Ctrl-C).
        #[arg(long, default_value_t = 60)]
        duration: u64,
        /// How many nodes mine.
        #[arg(long, default_value_t = 2)]
        miners: usize,
        /// The first node's block explorer (port 0: any free port; printed at the start).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
        explorer: SocketAddr,
        /// Proof of work (`--miners` mine), or Simplex BFT: the first four nodes are the validators
        /// (three if there are only four nodes), the others follow their certificates, and a payment
        /// counts as confirmed once its block is final.
        #[arg(long, value_enum, default_value_t = ConsensusKind::Pow)]
        consensus: ConsensusKind,
    },
    /// Measure the node: confirmed transactions per second, sync speed against the ledger's own connect
    /// rate, idle memory.
    ///
    /// 1. tx_confirmed_per_sec: a devnet of --nodes in-process nodes (real QUIC on 127.0.0.1, --miners
    ///    mining, ASERT aiming at --block-time); wallets submit transactions as fast as their node's mempool
    ///    takes them for --duration seconds (--tx-rate caps them; 0, the default, does not); counted:
    ///    transfers in the blocks every node agrees on, per second from the start until the tips agree
    ///    (tx_accepted_per_sec: what the mempools took). Blocks bound it: 1 MB and 16,384 transactions
    ///    per block interval (tx_bound_per_sec). block_relay_bytes_over_block_bytes: the
    ///    sync bytes each relayed block cost its receivers (compact blocks rebuilt from the mempool) over
    ///    the block's size. Where the window's CPU time went: cpu_secs (the process) split into
    ///    cpu_mining_secs, cpu_wallets_secs, cpu_node_core_secs (of which cpu_tx_signatures_secs,
    ///    cpu_gossip_signatures_secs, cpu_store_secs, cpu_core_other_secs) and cpu_transport_secs;
    ///    measured by CPU clocks, or counted and costed (cost_*) in the same run.
    /// 2. A chain of --blocks blocks with --txs-per-block transfers each is built at the easiest target;
    ///    (b) connected directly into a fresh Chain on redb (connect_blocks_per_sec), (a) synced by a fresh
    ///    node from 3 peers over QUIC (sync_blocks_per_sec); sync_over_connect is their ratio.
    /// 3. idle_rss_bytes: VmRSS of a `coin-node run` child process synced to that chain, after 5 s idle.
    ///
    /// Prints a table, or one JSON object with --json (keys carry their units: _secs, _bytes, _per_sec).
    #[command(verbatim_doc_comment)]
    Bench {
        /// Nodes of the throughput devnet.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Of which mine (one thread each).
        #[arg(long, default_value_t = 1)]
        miners: usize,
        /// Seconds the wallets submit transactions.
        #[arg(long, default_value_t = 30)]
        duration: u64,
        /// Block interval ASERT aims at on the throughput devnet (seconds; the devnet's is 4).
        #[arg(long, default_value_t = 4)]
        block_time: u64,
        /// Transactions per second offered by all wallets together, at most (0: no cap, each wallet
        /// submits as fast as its node's mempool answers).
        #[arg(long, default_value_t = 0.0)]
        tx_rate: f64,
        /// Blocks of the chain that is synced and connected.
        #[arg(long, default_value_t = 2000)]
        blocks: u64,
        /// Transfers in each of those blocks.
        #[arg(long, default_value_t = 20)]
        txs_per_block: usize,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// The consensus of a network, as flags name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ConsensusKind {
    /// Nakamoto proof of work.
    Pow,
    /// Simplex BFT among a fixed validator set.
    Bft,
}

#[derive(Subcommand, Debug)]
pub(crate) enum WalletCmd {
    /// Print the wallet's address (its public key; coinbases and payments go there).
    NewAddress,
    /// Print the wallet's confirmed balance.
    Balance,
    /// Pay `--amount` coins to `--to`, leaving `--fee` coins for the miner.
    Send {
        /// The recipient's address.
        #[arg(long)]
        to: PeerId,
        /// Coins, up to eight decimals (`1.5`).
        #[arg(long, value_parser = parse_coins)]
        amount: Amount,
        /// Fee in coins.
        #[arg(long, value_parser = parse_coins, default_value = "0.0001")]
        fee: Amount,
    },
}

fn parse_peer(text: &str) -> Result<(PeerId, SocketAddr), String> {
    let (id, addr) = text.split_once('@').ok_or("expected <peer-id>@<ip:port>")?;
    Ok((
        id.parse().map_err(|e| format!("{e}"))?,
        addr.parse().map_err(|e| format!("{e}"))?,
    ))
}

fn parse_coins(text: &str) -> Result<Amount, String> {
    wallet::parse_amount(text).ok_or_else(|| format!("not an amount of coins: {text}"))
}
