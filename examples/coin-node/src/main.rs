//! `coin-node`: run a meshwork coin node, talk to one, or start a whole local devnet.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use coin_node::bench::{self, BenchOptions};
use coin_node::client::RpcClient;
use coin_node::config::unix_now;
use coin_node::config::{ConsensusParams, read_validators};
use coin_node::devnet::DevnetConsensus;
use coin_node::devnet::{self, DevnetOptions};
use coin_node::nat::NatRole;
use coin_node::rpc::CoinRpcClient;
use coin_node::{CoinNode, DataDir, FileConfig, NetworkParams, NodeOptions, wallet};
use indicatif::{ProgressBar, ProgressStyle};
use meshwork_identity::{Keypair, PeerId};
use meshwork_ledger::{Amount, OutPoint};
use serde_json::{Value, json};

use crate::cli::{Cli, Cmd, ConsensusKind, WalletCmd};

mod cli;

type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn default_config(genesis_time: Option<u64>, listen: SocketAddr, rpc: SocketAddr) -> FileConfig {
    FileConfig {
        network: NetworkParams::devnet(genesis_time.unwrap_or_else(unix_now)),
        listen,
        rpc,
        consensus: ConsensusParams::Pow,
    }
}

fn client(data_dir: &PathBuf) -> AnyResult<RpcClient> {
    let dir = DataDir::new(data_dir);
    let config = dir.load_config()?;
    Ok(RpcClient::new(config.rpc, Some(&dir.read_cookie()?))?)
}

async fn wallet_cmd(data_dir: PathBuf, command: WalletCmd) -> AnyResult<Value> {
    let key = Keypair::load(&DataDir::new(&data_dir).wallet_key())?;
    let address = key.peer_id();
    match command {
        WalletCmd::NewAddress => Ok(json!({ "address": address })),
        WalletCmd::Balance => Ok(serde_json::to_value(client(&data_dir)?.balance(address).await?)?),
        WalletCmd::Send { to, amount, fee } => {
            let rpc = client(&data_dir)?;
            let coins = rpc
                .utxos(address)
                .await?
                .into_iter()
                .map(|coin| {
                    let point = OutPoint {
                        txid: coin.txid,
                        index: coin.index,
                    };
                    (point, Amount::from_units(coin.units))
                })
                .collect();
            let tx = wallet::pay(&key, coins, to, amount, fee)?;
            let raw = hex::encode(meshwork_wire::encode(&tx)?);
            let txid = rpc.send_raw_transaction(raw).await?;
            Ok(json!({ "txid": txid }))
        }
    }
}

/// What `coin-node run` was asked for besides the data directory.
struct RunFlags {
    listen: Option<SocketAddr>,
    bootstrap: Vec<(PeerId, SocketAddr)>,
    threads: usize,
    rpc: Option<SocketAddr>,
    metrics: Option<SocketAddr>,
    explorer: Option<SocketAddr>,
    rpc_allow_remote: bool,
    loopback_devnet: bool,
    nat: NatRole,
}

async fn run_node(data_dir: PathBuf, flags: RunFlags) -> AnyResult<()> {
    let RunFlags {
        listen,
        bootstrap,
        threads,
        rpc,
        metrics,
        explorer,
        rpc_allow_remote,
        loopback_devnet,
        nat,
    } = flags;
    let dir = DataDir::new(&data_dir);
    if !dir.config().exists() {
        dir.init(&default_config(
            None,
            "127.0.0.1:7400".parse()?,
            "127.0.0.1:7401".parse()?,
        ))?;
    }
    let config = dir.load_config()?;
    let mut options = NodeOptions::new(dir, config.network);
    options.consensus = config.consensus;
    options.listen = listen.unwrap_or(config.listen);
    options.rpc = Some(rpc.unwrap_or(config.rpc));
    options.bootstrap = bootstrap;
    options.mine_threads = threads;
    options.seed = unix_now();
    options.metrics = metrics;
    options.explorer = explorer;
    options.rpc_allow_remote = rpc_allow_remote;
    options.loopback_devnet = loopback_devnet;
    options.nat = nat;
    let node = CoinNode::start(options).await?;
    let (height, _) = node.api().tip().await?;
    let metrics = node
        .api()
        .node()
        .metrics_addr()
        .map(|a| format!("; metrics on http://{a}/metrics"))
        .unwrap_or_default();
    let explorer = node
        .explorer_addr()
        .map(|a| format!("; explorer on http://{a}/"))
        .unwrap_or_default();
    println!(
        "node {}@{} at height {height}; rpc on {}; wallet {}{metrics}{explorer}",
        node.api().node().peer_id(),
        node.api().node().local_addr(),
        node.rpc_addr().map(|a| a.to_string()).unwrap_or_default(),
        node.api().wallet().peer_id()
    );
    let syncing = tokio::spawn(show_sync(node.api().clone()));
    tokio::signal::ctrl_c().await?;
    syncing.abort();
    node.shutdown().await;
    Ok(())
}

/// Shows the initial sync on stderr, blocks connected against the best header known, until the node
/// says it is synced. indicatif draws nothing when stderr is not a terminal.
async fn show_sync(api: coin_node::NodeApi) {
    let style = ProgressStyle::with_template("sync {bar:30} {pos}/{len} blocks, {per_sec}, eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::new(0).with_style(style);
    let mut every = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        every.tick().await;
        let Ok(status) = api.status().await else {
            break;
        };
        if status.synced && status.height >= status.headers {
            break;
        }
        bar.set_length(status.headers);
        bar.set_position(status.height);
    }
    bar.finish_and_clear();
}

async fn run(cli: Cli) -> AnyResult<()> {
    match cli.command {
        Cmd::Init {
            data_dir,
            genesis_time,
            listen,
            rpc,
            consensus,
            validators,
        } => {
            let dir = DataDir::new(&data_dir);
            let mut config = default_config(genesis_time, listen, rpc);
            if let (ConsensusKind::Bft, Some(path)) = (consensus, validators) {
                config.consensus = ConsensusParams::Bft {
                    validators: read_validators(&path)?,
                };
            }
            dir.init(&config)?;
            // A data dir initialised before the validator set was known (to learn its node id) takes
            // the consensus now, as long as it holds no chain yet.
            let mut written = dir.load_config()?;
            if written.consensus != config.consensus {
                if dir.chain_db().exists() {
                    return Err(format!("{} already holds a chain", data_dir.display()).into());
                }
                written.consensus = config.consensus;
                dir.write_config(&written)?;
            }
            let wallet = Keypair::load(&dir.wallet_key())?.peer_id();
            let node = Keypair::load(&dir.node_key())?.peer_id();
            println!("initialised {}: node {node}, wallet {wallet}", data_dir.display());
        }
        Cmd::Run {
            data_dir,
            listen,
            bootstrap,
            mine,
            threads,
            rpc,
            rpc_allow_remote,
            loopback_devnet,
            metrics,
            explorer,
            rendezvous,
            use_rendezvous,
        } => {
            let nat = match (rendezvous, use_rendezvous) {
                (true, _) => NatRole::Rendezvous,
                (false, Some((peer, addr))) => NatRole::Client(peer, addr),
                (false, None) => NatRole::Direct,
            };
            let flags = RunFlags {
                listen,
                bootstrap,
                threads: if mine { threads.max(1) } else { 0 },
                rpc,
                metrics,
                explorer,
                rpc_allow_remote,
                loopback_devnet,
                nat,
            };
            run_node(data_dir, flags).await?
        }
        Cmd::Wallet { data_dir, command } => println!("{}", wallet_cmd(data_dir, command).await?),
        Cmd::Status { data_dir } => {
            let status = client(&data_dir)?.status().await?;
            println!("{:#}", serde_json::to_value(status)?);
        }
        Cmd::Devnet {
            nodes,
            duration,
            miners,
            explorer,
            consensus,
        } => {
            let summary = devnet::run(DevnetOptions {
                nodes,
                duration,
                miners,
                report_every: 3,
                explorer: Some(explorer),
                consensus: match consensus {
                    ConsensusKind::Pow => DevnetConsensus::Pow,
                    ConsensusKind::Bft => DevnetConsensus::Bft,
                },
            })
            .await?;
            println!("{}", summary.line());
        }
        Cmd::Bench {
            nodes,
            miners,
            duration,
            block_time,
            tx_rate,
            blocks,
            txs_per_block,
            json,
        } => {
            let report = bench::run(BenchOptions {
                nodes,
                miners,
                duration,
                block_time,
                tx_rate,
                blocks,
                txs_per_block,
                exe: std::env::current_exe().ok(),
            })
            .await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", bench::table(&report));
            }
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    // A panic anywhere (the node task, a connection task) ends the process: tokio would otherwise
    // keep the RPC answering for a node whose state machine is gone.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
    let cli = Cli::parse();
    let quiet = matches!(cli.command, Cmd::Devnet { .. } | Cmd::Bench { .. });
    let default = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
