//! # meshwork-node: the tokio runtime that drives pure protocols over a transport
//!
//! The protocol crates (gossip, kad, consensus) are state machines with no IO (ARCHITECTURE.md). This crate
//! is the driver that gives them a real network and a real clock; `meshwork-sim` is the other driver,
//! with virtual ones. The same protocol code runs under both.
//!
//! ## The model
//!
//! - **One node task owns every protocol's state.** Protocols are [registered](NodeBuilder::register)
//!   before the node starts; each gets a [`Handle`] (a cloneable mailbox) and an [`Events`] stream. The
//!   node task is the only place protocol code runs, so there are no locks around protocol state.
//! - **A router by protocol id.** Each connection carries one stream per protocol and direction; the
//!   stream's header names the protocol ([`meshwork_wire::ProtocolId`]), and its frames reach that
//!   protocol only. A frame that is too large or does not decode as the protocol's message gets the
//!   peer **disconnected** (hostile input never goes further) and is counted.
//! - **Per-connection tasks own the streams.** A writer task per protocol drains a bounded queue of
//!   encoded messages; a reader task per stream decodes frames into the node's bounded inbox, and waits
//!   when it is full, which pushes back on the peer through the transport's flow control.
//! - **Timers are data.** `Output::Schedule` puts the protocol's timer value in a heap; when it is due,
//!   the protocol gets it back as `Input::Timer`.
//! - **Time is Unix time.** Protocols get `now` as nanoseconds since the Unix epoch, read from the wall
//!   clock once at start and advanced by the monotonic clock after that.
//! - **Dials** resolve a peer's address from the node's address book (filled by [`Node::add_address`],
//!   [`Node::dial`], and every connection's observed address) or from a protocol's
//!   [`Hooks::address_of`] (Kademlia knows addresses from its lookups). A relay circuit's address
//!   (`meshwork_wire::relayed`) is never kept: it dies with its circuit, so `Node::dial` dials it as
//!   given and a relayed connection's address stays out of the book. A failed dial is reported to the
//!   protocols as `PeerDown`.
//! - **Few connections** ([`ConnectionLimits`]): protocols protect the peers they need
//!   (`Output::Protect`); the connection manager closes the others once idle, and trims the least
//!   recently active when the node holds more than its high watermark, never one in its grace period.
//! - **Everything is bounded** ([`NodeConfig`]): the inbox, each peer's send queue per protocol, each
//!   event queue. A full send or event queue is an explicit, counted drop.
//! - **Nothing is lost silently.** A connection is reported closed only after every frame that arrived
//!   on it was handed to its protocol; a writer that cannot write gives its frames back, to go on
//!   another connection to the peer; the loser of a simultaneous dial and the connection of a peer no
//!   protocol wants close gracefully (streams finished and read to the end by the peer, within
//!   [`NodeConfig::drain_deadline`]), so a protocol's last message arrives; a message sent while every
//!   connection to its peer closes that way (or is trimmed) waits for the next connection, which the
//!   node dials once the old ones have closed. Whatever is dropped anyway
//!   is counted by reason in `meshwork_dropped_total{protocol, reason}` (the reasons of
//!   [`meshwork_wire::DropReason`], which protocols report too with `Output::Dropped`) and logged at
//!   debug level with the peer.
//! - **Metrics** in the Prometheus text format: peers, messages and bytes by protocol, drops by reason,
//!   invalid frames, dials, the transport's traffic (UDP datagrams and bytes, lost packets, over every
//!   connection ever held), connections closed by reason and what the transport refused
//!   (`meshwork_transport_*`, also [`Node::transport_counters`]), and any gauge the application adds
//!   ([`Metrics::gauge`]), optionally served at `GET /metrics` ([`NodeConfig::metrics_addr`]).
//!
//! ## Example
//!
//! Two nodes on the in-memory transport run a ping-pong protocol; swapping in
//! `QuicTransport::bind(&key, addr, config).await?` runs the same code over QUIC.
//!
//! ```
//! use meshwork_identity::Keypair;
//! use meshwork_node::{NodeBuilder, NodeConfig};
//! use meshwork_transport::{Config, MemoryNetwork, MemoryTransport, Transport};
//! use meshwork_wire::{Input, Instant, Output, Protocol, ProtocolId};
//!
//! /// Pings every new peer once; answers pings; reports pongs.
//! struct Ping;
//! #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
//! enum Msg { Ping(u32), Pong(u32) }
//!
//! impl Protocol for Ping {
//!     type Message = Msg;
//!     type Command = ();
//!     type Event = u32;
//!     type Timer = ();
//!     const ID: ProtocolId = ProtocolId::new("/example/ping/1");
//!     const MAX_MESSAGE_SIZE: usize = 16;
//!     fn handle(&mut self, _now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
//!         match input {
//!             Input::PeerUp(peer) => out.push(Output::Send { to: peer, msg: Msg::Ping(7) }),
//!             Input::Message { from, msg: Msg::Ping(n) } => out.push(Output::Send { to: from, msg: Msg::Pong(n) }),
//!             Input::Message { msg: Msg::Pong(n), .. } => out.push(Output::Emit(n)),
//!             _ => {}
//!         }
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let network = MemoryNetwork::new();
//! let mut nodes = Vec::new();
//! let mut events = Vec::new();
//! for seed in [1u8, 2] {
//!     let mut builder = NodeBuilder::new(NodeConfig::default());
//!     let (_handle, pongs) = builder.register(Ping)?;
//!     let key = Keypair::from_seed([seed; 32]);
//!     let transport = MemoryTransport::bind(&network, &key, "127.0.0.1:0".parse()?, Config::new(builder.protocols()))?;
//!     nodes.push(builder.start(transport).await?);
//!     events.push(pongs);
//! }
//! nodes[0].dial(nodes[1].peer_id(), nodes[1].local_addr()).await?;
//! // Both sides ping on PeerUp, so both hear a pong.
//! assert_eq!(events[0].recv().await, Some(7));
//! assert_eq!(events[1].recv().await, Some(7));
//! for node in &nodes { node.shutdown().await?; }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod config;
mod connection;
mod cpu;
mod error;
mod handle;
mod manager;
mod metrics;
mod node;
mod runtime;
mod send_budget;
mod slot;
mod transport_metrics;

pub use config::NodeConfig;
pub use cpu::{process_cpu_time, thread_cpu_time};
pub use error::NodeError;
pub use handle::{Events, Handle};
pub use manager::ConnectionLimits;
pub use metrics::Metrics;
pub use node::{Node, NodeBuilder, wall_clock};
/// A gauge an application sets (returned by [`Metrics::gauge`]); re-exported so applications need no
/// direct dependency on `prometheus-client`.
pub use prometheus_client::metrics::gauge::Gauge;
pub use runtime::{CLOSE_IDLE, CLOSE_PROTOCOL_VIOLATION, CLOSE_REQUESTED, CLOSE_STALLED, CLOSE_TRIMMED};
pub use slot::{Hooks, OnConnected, OnRoundTrip};
