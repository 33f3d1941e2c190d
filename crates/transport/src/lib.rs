//! # meshwork-transport: authenticated connections and framed streams between peers
//!
//! This is meshwork's IO layer (ARCHITECTURE.md). The protocol crates never see it: the node runtime drives
//! them over a [`Transport`]. It owns sockets, tasks and the real clock.
//!
//! ## The model
//!
//! - A **peer is its ed25519 key** ([`PeerId`]). A [`Transport`] dials a peer *at an address* and the
//!   handshake proves the key: if whoever answers holds another key, the dial fails with
//!   [`DialError::PeerIdMismatch`]. Every [`Connection`] knows its remote `PeerId`, inbound ones too.
//! - A connection carries **streams**, each for one protocol. The opener sends a stream header naming a
//!   versioned [`ProtocolId`] ([`stream_header`]); the accepting side refuses ids it does not speak, so no
//!   byte of an unknown protocol reaches a decoder. Many protocols share one connection at once.
//! - A [`Stream`] carries **frames** ([`meshwork_wire::frame`]): a 4-byte length, then a postcard body.
//!   The length is checked against the protocol's maximum ([`ProtocolSpec`]) **before** any buffer is
//!   allocated: a peer announcing 4 GiB costs four bytes of reading and gets [`RecvError::TooLarge`].
//! - **Everything is bounded** ([`Limits`], [`Timeouts`]): inbound and outbound connections (one more is
//!   refused and counted), streams per connection and bytes in flight per peer and per stream (a full
//!   window makes the sender wait: back-pressure, never an unbounded buffer), handshake and idle time
//!   with keep-alives. Refusals are counted in [`CountersSnapshot`].
//! - **One connection per peer.** Dialing a connected peer returns the connection it has; when two peers
//!   dial each other at once, both keep the connection dialed by the smaller `PeerId`. The other stays
//!   open so messages already in flight on it still arrive: the application closes it once both sides
//!   are done with it (the node runtime does), and the transport at the latest [`DUPLICATE_GRACE`]
//!   later.
//!
//! ## What the counters mean
//!
//! [`Connection::stats`] gives one connection's traffic below the streams ([`ConnectionStats`]), and
//! [`Transport::counters`] the same summed over every connection the transport ever had, closed ones
//! included, with how many closed for each reason ([`ClosedByReason`]). Over QUIC the figures are UDP
//! payload bytes and datagrams as quinn counts them: packet headers, the handshake, acknowledgements,
//! retransmissions, keep-alives and closes included, so they exceed the frames the application sent; the
//! difference is what the transport costs. In memory, each write into a stream pipe (frames and stream
//! headers) counts as one datagram, and nothing is ever lost.
//!
//! Two implementations share these semantics and one stream type:
//!
//! - [`QuicTransport`]: QUIC (quinn) with TLS 1.3 (rustls, ring). Each side presents a self-signed
//!   certificate made from its ed25519 key. There is no CA and no name check: our verifiers read the
//!   certificate's ed25519 `subjectPublicKeyInfo` strictly, verify the TLS 1.3 handshake signature with
//!   exactly that key, and (on the dialing side) compare it with the `PeerId` being dialed.
//! - [`MemoryTransport`] on a [`MemoryNetwork`]: bounded in-process pipes, for tests and examples.
//!
//! ## Example
//!
//! ```
//! use meshwork_identity::Keypair;
//! use meshwork_transport::{Config, Connection, MemoryNetwork, MemoryTransport, ProtocolSpec, Transport};
//! use meshwork_wire::ProtocolId;
//!
//! const CHAT: ProtocolId = ProtocolId::new("/example/chat/1");
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let config = Config::new([ProtocolSpec::new(CHAT, 1024)]);
//! let network = MemoryNetwork::new();
//! let (alice, bob) = (Keypair::from_seed([1; 32]), Keypair::from_seed([2; 32]));
//! let any = "127.0.0.1:0".parse()?;
//! let alice = MemoryTransport::bind(&network, &alice, any, config.clone())?;
//! let bob = MemoryTransport::bind(&network, &bob, any, config)?;
//!
//! // Alice dials Bob by key and address; Bob accepts and learns who she is.
//! let to_bob = alice.dial(bob.peer_id(), bob.local_addr()).await?;
//! let from_alice = bob.accept().await?;
//! assert_eq!(from_alice.remote_peer_id(), alice.peer_id());
//!
//! // A stream for the chat protocol: framed, bounded messages both ways.
//! let mut out = to_bob.open(CHAT).await?;
//! out.send("hello bob").await?;
//! let mut inc = from_alice.accept_stream().await?;
//! assert_eq!(inc.protocol(), CHAT);
//! assert_eq!(inc.recv::<String>().await?.as_deref(), Some("hello bob"));
//!
//! // Over the protocol's maximum: refused, nothing sent.
//! assert!(out.send(&vec![0u8; 4096]).await.is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same code runs over QUIC with `QuicTransport::bind(&keypair, addr, config).await`.
#![deny(missing_docs)]
// This IO crate owns the real clock (timeouts) through tokio; it never needs `Instant::now` itself.

mod admission;
mod budget;
mod close;
mod config;
mod counters;
mod error;
pub mod memory;
mod negotiate;
pub mod quic;
mod registry;
mod stats;
mod stream;
pub mod stream_header;
mod traffic;
mod traits;

pub use budget::{FRAME_FLOOR_BYTES, Reserved};
pub use close::CloseReason;
pub use config::{Config, Limits, ProtocolSpec, Timeouts};
pub use counters::CountersSnapshot;
pub use error::{
    AcceptError, AcceptStreamError, BindError, DialError, OpenStreamError, RecvError, SendError,
};
pub use memory::{MemoryConnection, MemoryNetwork, MemoryStream, MemoryTransport};
pub use meshwork_identity::PeerId;
pub use meshwork_wire::ProtocolId;
pub use quic::{QuicConnection, QuicStream, QuicTransport};
pub use registry::DUPLICATE_GRACE;
pub use stats::{ClosedByReason, ConnectionStats};
pub use stream::{Frame, Stream};
pub use traits::{Connection, Direction, Transport};
