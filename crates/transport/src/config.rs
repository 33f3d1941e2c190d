//! What a transport speaks and how much it may hold: protocols, limits and timeouts.

use std::time::Duration;

use meshwork_wire::{ProtocolId, frame};

/// A protocol this transport carries: its id (sent in each stream's header) and the largest frame body it
/// accepts. Frames over `max_message_size` are refused from their 4-byte header, before any allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolSpec {
    /// The versioned id, e.g. `/meshwork/kad/1`.
    pub id: ProtocolId,
    /// The largest frame body, in bytes (capped at [`frame::ABSOLUTE_MAX`]).
    pub max_message_size: usize,
}

impl ProtocolSpec {
    /// A protocol with its maximum message size.
    pub const fn new(id: ProtocolId, max_message_size: usize) -> Self {
        let max_message_size = if max_message_size > frame::ABSOLUTE_MAX {
            frame::ABSOLUTE_MAX
        } else {
            max_message_size
        };
        Self { id, max_message_size }
    }

    /// The spec of a sans-IO [`meshwork_wire::Protocol`]: its `ID` and `MAX_MESSAGE_SIZE`.
    pub const fn of<P: meshwork_wire::Protocol>() -> Self {
        Self::new(P::ID, P::MAX_MESSAGE_SIZE)
    }
}

/// Every bound the transport enforces (ARCHITECTURE.md: everything is bounded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Inbound connections held at once (established or in handshake). One more is refused at once.
    pub max_inbound: usize,
    /// Outbound connections held at once. A dial beyond it fails with `DialError::TooManyConnections`.
    pub max_outbound: usize,
    /// Streams a peer may have open to us at once (QUIC `max_concurrent_bidi_streams`). Opening one more
    /// waits until a stream closes: back-pressure, not an error.
    pub max_streams_per_connection: u32,
    /// Bytes one peer may have in flight towards us across all streams (QUIC connection receive window,
    /// and our send window towards it); a sender that hits it waits. In memory, each stream's pipe holds at
    /// most `min(max_queued_bytes_per_stream, max_queued_bytes_per_peer)`, so a peer queues at most
    /// `max_streams_per_connection` times that.
    pub max_queued_bytes_per_peer: u64,
    /// Bytes in flight on one stream (QUIC stream receive window; the in-memory pipe's buffer).
    pub max_queued_bytes_per_stream: u64,
    /// Bytes of received frames one peer may make us hold: frames being read (counted from their
    /// header, before the body is allocated) and frames read but not yet handled by the application.
    /// A frame that would pass it waits for earlier ones to be handled (back-pressure). A frame larger
    /// than this budget may still arrive, alone.
    pub max_frame_bytes_per_peer: u64,
    /// The same budget across all peers: what every peer's frames in flight may hold in total.
    pub max_frame_bytes: u64,
    /// QUIC handshakes in progress at once (half-open inbound connections). Past it, an Initial from an
    /// address not yet validated is answered with a stateless Retry, so a spoofed or silent source
    /// holds no state; one already validated still gets in (honest peers answer the Retry), bounded
    /// by the per-address caps and by `max_handshakes`.
    pub max_half_open: usize,
    /// Inbound handshakes in progress at most, those from addresses that answered a Retry included
    /// (they get a handshake past `max_half_open`; taken as at least `max_half_open`). Past it, a
    /// newcomer evicts the oldest handshake of the most crowded network group (IPv4 /16, IPv6 /32;
    /// unproven sources one group, a relayed peer a group of its own), or is refused if its own
    /// group is at least as crowded (`quic/handshakes.rs`): stalled handshakes are bounded however
    /// many networks an attacker holds, and an honest newcomer still gets in. Default 128 (four
    /// times `max_half_open`).
    pub max_handshakes: usize,
    /// Inbound connections from one IP address: established ones, and handshakes from an address that
    /// answered a Retry (an unproven handshake counts once it completes).
    pub max_inbound_per_ip: usize,
    /// Inbound connections from one network prefix: a /24 for IPv4, a /48 for IPv6.
    pub max_inbound_per_prefix: usize,
    /// Inbound connections from one IPv6 /32, the block a provider is allocated (Bitcoin Core's
    /// network group for IPv6): it holds 65,536 /48s, which cost nothing to use within it, so the
    /// per-prefix cap alone let one provider's addresses hold thousands of stalled handshakes (the
    /// validated ones have no other ceiling: see `quic/listener.rs`). Default 64, four /48s' worth.
    /// The price: one renter in a provider's /32 can fill it and leave that provider's other IPv6
    /// peers without inbound places here (they still dial out, and other nodes take them). Teredo
    /// and 6to4 addresses count as the IPv4 address they carry.
    pub max_inbound_per_ipv6_block: usize,
}

impl Limits {
    /// The limits for a devnet on one machine, where every peer shares 127.0.0.1: the per-IP,
    /// per-prefix and per-IPv6-block caps are lifted to [`Limits::max_inbound`], and
    /// `max_handshakes` is lifted (its eviction goes by prefix, and here there is one). Nothing else
    /// changes; use it only for a loopback network.
    #[must_use]
    pub fn loopback_devnet(mut self) -> Self {
        self.max_inbound_per_ip = self.max_inbound;
        self.max_inbound_per_prefix = self.max_inbound;
        self.max_inbound_per_ipv6_block = self.max_inbound;
        self.max_handshakes = usize::MAX;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_inbound: 256,
            max_outbound: 256,
            // quinn allocates the state of every stream the peer may open when the connection starts
            // (about 200 bytes each way per stream); the node runtime keeps one stream per protocol
            // channel open (the coin node has three), so 16 leaves room and costs a quarter of 64.
            max_streams_per_connection: 16,
            // 2 MiB in flight per connection carries 20 MiB/s at a 100 ms round trip, and bounds what
            // quinn buffers for a peer that stops reading (its send window) or stops being read.
            max_queued_bytes_per_peer: 2 * 1024 * 1024,
            max_queued_bytes_per_stream: 1024 * 1024,
            // Two frames of the largest protocol here (sync, 4 MiB) at once.
            max_frame_bytes_per_peer: 8 * 1024 * 1024,
            max_frame_bytes: 32 * 1024 * 1024,
            max_half_open: 32,
            max_handshakes: 128,
            max_inbound_per_ip: 4,
            max_inbound_per_prefix: 16,
            max_inbound_per_ipv6_block: 64,
        }
    }
}

/// Time bounds on connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// A dial or an inbound handshake that has not finished in this time fails.
    pub handshake: Duration,
    /// A connection that hears nothing for this long is closed.
    pub idle: Duration,
    /// Send a keep-alive this often so a quiet but healthy connection is not idled out. Must be shorter
    /// than `idle`; `None` lets quiet connections close.
    pub keep_alive: Option<Duration>,
    /// How long an opener waits for the peer to answer a stream header. A peer that never answers
    /// fails the open (and the writer waiting on it) instead of holding it.
    pub stream_open: Duration,
    /// How long the body of a frame may take to arrive once its header has been read. A peer that
    /// announces a frame and trickles it fails the stream with `RecvError::FrameTimeout`.
    pub frame: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            handshake: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            keep_alive: Some(Duration::from_secs(10)),
            stream_open: Duration::from_secs(10),
            frame: Duration::from_secs(30),
        }
    }
}

/// A transport's configuration: the protocols it speaks, its limits and its timeouts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The protocols streams may carry. A stream opened for any other id is refused by the accepting side.
    pub protocols: Vec<ProtocolSpec>,
    /// Connection, stream and byte limits.
    pub limits: Limits,
    /// Handshake, idle and keep-alive times.
    pub timeouts: Timeouts,
}

impl Config {
    /// A configuration speaking `protocols`, with default limits and timeouts.
    pub fn new(protocols: impl IntoIterator<Item = ProtocolSpec>) -> Self {
        Self {
            protocols: protocols.into_iter().collect(),
            ..Self::default()
        }
    }

    /// The spec for `id`, if this transport speaks it.
    pub fn protocol(&self, id: ProtocolId) -> Option<ProtocolSpec> {
        self.protocols.iter().copied().find(|spec| spec.id == id)
    }

    /// The known ids, in the order given.
    pub(crate) fn protocol_ids(&self) -> Vec<ProtocolId> {
        self.protocols.iter().map(|spec| spec.id).collect()
    }
}
