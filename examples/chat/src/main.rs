//! `chat`: a gossip chat in the terminal. Prints its own `<peer-id>@<addr>` first, then every line
//! peers say as `[nick] text`; each line typed on stdin is said to everyone. Logs go to stderr.

use std::net::SocketAddr;

use clap::Parser;
use meshwork_chat::{ChatApp, ChatCommand, ChatConfig, ChatEvent};
use meshwork_identity::{Keypair, PeerId};
use meshwork_kad::PeerInfo;
use meshwork_node::{NodeBuilder, NodeConfig};
use meshwork_transport::QuicTransport;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A gossip chat over meshwork.
#[derive(Parser, Debug)]
struct Args {
    /// The UDP address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// A peer to join through, as `<peer-id>@<addr>` (another node's first line of output).
    #[arg(long)]
    bootstrap: Option<String>,
    /// The name shown with your lines (1 to 32 bytes).
    #[arg(long)]
    nick: String,
    /// Every peer runs on this machine and shares one IP: lift the per-IP and per-prefix limits.
    #[arg(long)]
    loopback_devnet: bool,
}

/// Why the chat could not start.
#[derive(Debug, thiserror::Error)]
enum ChatError {
    /// `--bootstrap` is not `<peer-id>@<addr>`.
    #[error("--bootstrap wants <peer-id>@<ip>:<port>, got {0:?}")]
    BadContact(String),
    /// The node runtime failed.
    #[error(transparent)]
    Node(#[from] meshwork_node::NodeError),
    /// The transport could not bind.
    #[error(transparent)]
    Bind(#[from] meshwork_transport::BindError),
    /// Reading stdin failed.
    #[error("stdin: {0}")]
    Stdin(#[from] std::io::Error),
}

fn parse_contact(text: &str) -> Result<(PeerId, SocketAddr), ChatError> {
    let bad = || ChatError::BadContact(text.to_owned());
    let (id, addr) = text.split_once('@').ok_or_else(bad)?;
    Ok((id.parse().map_err(|_| bad())?, addr.parse().map_err(|_| bad())?))
}

#[tokio::main]
async fn main() -> Result<(), ChatError> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let contact = args.bootstrap.as_deref().map(parse_contact).transpose()?;

    let key = Keypair::generate(&mut rand_core::OsRng);
    let config = ChatConfig {
        loopback_devnet: args.loopback_devnet,
    };
    let mut builder = NodeBuilder::new(NodeConfig::default());
    let chat = ChatApp::new(
        key.clone(),
        &config,
        rand_core::RngCore::next_u64(&mut rand_core::OsRng),
    );
    let (chat, mut events) = builder.register_with(chat, meshwork_chat::hooks())?;
    let mut transport = meshwork_transport::Config::new(builder.protocols());
    if args.loopback_devnet {
        transport.limits = transport.limits.loopback_devnet();
    }
    let node = builder
        .start(QuicTransport::bind(&key, args.listen, transport).await?)
        .await?;
    println!("{}@{}", node.peer_id(), node.local_addr());
    if let Some((id, addr)) = contact {
        node.add_address(id, addr).await?;
        chat.command(ChatCommand::Join(PeerInfo {
            id,
            addr: addr.into(),
        }))
        .await?;
    }

    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut reading = true;
    loop {
        tokio::select! {
            line = stdin.next_line(), if reading => match line? {
                Some(text) if text.trim().is_empty() => {}
                Some(text) => chat.command(ChatCommand::Say { nick: args.nick.clone(), text }).await?,
                // End of input: keep relaying and printing until interrupted.
                None => reading = false,
            },
            event = events.recv() => match event {
                Some(ChatEvent::Line { nick, text, .. }) => println!("[{nick}] {text}"),
                Some(ChatEvent::NotSent(why)) => tracing::warn!("not sent: {why}"),
                Some(ChatEvent::JoinFailed(why)) => tracing::warn!("could not join: {why}"),
                Some(other) => tracing::info!("{other:?}"),
                None => break,
            },
        }
    }
    node.shutdown().await?;
    Ok(())
}
