//! `kv`: a key-value store on the Kademlia DHT.
//!
//! ```text
//! kv node --data-dir a --listen 127.0.0.1:7501            # prints <peer-id>@<addr>
//! kv node --data-dir b --bootstrap <peer-id>@127.0.0.1:7501
//! kv put --data-dir b greeting hello                       # {"stored_at":1,"publisher":"…"}
//! kv get --data-dir a greeting                             # hello
//! ```
//!
//! `put` and `get` talk to the running node of `--data-dir` (it writes its API address to
//! `<data-dir>/api.addr`), or to the one at `--api`. Logs go to stderr.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use meshwork_identity::PeerId;
use meshwork_kv::api::{self, KvRpcClient};
use meshwork_kv::{KvNode, KvOptions};

/// A key-value store on the Kademlia DHT.
#[derive(Parser, Debug)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

/// Where `put` and `get` find the node.
#[derive(clap::Args, Debug)]
struct Target {
    /// The running node's data directory (its API address is in `api.addr` there).
    #[arg(long, default_value = "kv-data")]
    data_dir: PathBuf,
    /// The node's API address, instead of reading it from the data directory.
    #[arg(long)]
    api: Option<SocketAddr>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Runs a node until interrupted. Prints `<peer-id>@<addr>` first: others join through it.
    Node {
        /// Its identity and its records.
        #[arg(long, default_value = "kv-data")]
        data_dir: PathBuf,
        /// The UDP address to listen on (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// The local API's address (loopback only).
        #[arg(long, default_value = "127.0.0.1:0")]
        api: SocketAddr,
        /// A node to join through, as `<peer-id>@<addr>`.
        #[arg(long)]
        bootstrap: Option<String>,
        /// Every node runs on this machine and shares one IP: lift the per-IP and per-prefix limits.
        #[arg(long)]
        loopback_devnet: bool,
    },
    /// Stores VALUE under NAME, signed by the node.
    Put {
        /// The name.
        name: String,
        /// The value (text).
        value: String,
        #[command(flatten)]
        target: Target,
    },
    /// Prints the value under NAME; exits with 1 when there is none.
    Get {
        /// The name.
        name: String,
        #[command(flatten)]
        target: Target,
    },
}

type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn parse_contact(text: &str) -> AnyResult<(PeerId, SocketAddr)> {
    let (id, addr) = text
        .split_once('@')
        .ok_or_else(|| format!("--bootstrap wants <peer-id>@<ip>:<port>, got {text:?}"))?;
    Ok((id.parse()?, addr.parse()?))
}

fn api_file(data_dir: &Path) -> PathBuf {
    data_dir.join("api.addr")
}

fn client(target: &Target) -> AnyResult<HttpClient> {
    let addr = match target.api {
        Some(addr) => addr,
        None => {
            let path = api_file(&target.data_dir);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("{}: {e} (is `kv node` running there?)", path.display()))?;
            text.trim().parse()?
        }
    };
    Ok(HttpClientBuilder::default().build(format!("http://{addr}"))?)
}

async fn run_node(
    data_dir: PathBuf,
    listen: SocketAddr,
    api_addr: SocketAddr,
    bootstrap: Option<String>,
    loopback_devnet: bool,
) -> AnyResult<()> {
    let contact = bootstrap.as_deref().map(parse_contact).transpose()?;
    let mut options = KvOptions::new(&data_dir, listen);
    options.loopback_devnet = loopback_devnet;
    let node = KvNode::start(options).await?;
    let (api_addr, server) = api::serve(node.clone(), api_addr).await?;
    std::fs::write(api_file(&data_dir), api_addr.to_string())?;
    println!("{}@{}", node.peer_id(), node.local_addr());
    tracing::info!(%api_addr, "api listening");
    if let Some((peer, addr)) = contact {
        match node.join(peer, addr).await {
            Ok(table) => tracing::info!(table, "joined"),
            Err(error) => tracing::warn!(%error, "could not join"),
        }
    }
    tokio::signal::ctrl_c().await?;
    let _ = server.stop();
    let _ = std::fs::remove_file(api_file(&data_dir));
    node.shutdown().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> AnyResult<ExitCode> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Args::parse().command {
        Cmd::Node {
            data_dir,
            listen,
            api,
            bootstrap,
            loopback_devnet,
        } => run_node(data_dir, listen, api, bootstrap, loopback_devnet).await?,
        Cmd::Put { name, value, target } => {
            let stored = client(&target)?.put(name, value).await?;
            println!("{}", serde_json::to_string(&stored)?);
        }
        Cmd::Get { name, target } => match client(&target)?.get(name.clone()).await? {
            Some(found) => println!("{}", found.value),
            None => {
                eprintln!("no value under {name:?}");
                return Ok(ExitCode::FAILURE);
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}
