//! Starting test nodes on either transport, so each test runs the same code over QUIC and in memory.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_kad::{Address, Command, Kademlia};
use meshwork_node::{Hooks, Node, NodeBuilder};
use meshwork_transport::{Config, MemoryNetwork, MemoryTransport, QuicTransport};

/// Which transport a test runs on.
pub(crate) enum Net {
    /// Real QUIC over loopback.
    Quic,
    /// The in-memory network.
    Memory(MemoryNetwork),
}

impl Net {
    pub(crate) fn memory() -> Self {
        Self::Memory(MemoryNetwork::new())
    }

    /// Binds a transport for `builder`'s protocols at `ip` (any port) and starts the node.
    pub(crate) async fn start(&self, builder: NodeBuilder, key: &Keypair, ip: Ipv4Addr) -> Node {
        let mut config = Config::new(builder.protocols());
        // Fifty nodes in one process on two cores: give slow handshakes room.
        config.timeouts.handshake = Duration::from_secs(30);
        config.limits = config.limits.loopback_devnet();
        let addr = SocketAddr::from((ip, 0));
        match self {
            Self::Quic => builder
                .start(QuicTransport::bind(key, addr, config).await.unwrap())
                .await
                .unwrap(),
            Self::Memory(network) => builder
                .start(MemoryTransport::bind(network, key, addr, config).unwrap())
                .await
                .unwrap(),
        }
    }
}

/// A distinct loopback address per node (all of 127.0.0.0/8 is loopback on Linux), so that per-/24
/// limits see distinct networks as they would on the internet.
pub(crate) fn loopback(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, (i / 250) as u8 + 1, (i % 250) as u8, 1)
}

/// How the runtime asks Kademlia for addresses to dial, and tells it each connection's observed
/// address (for its per-prefix limits).
pub(crate) fn kad_hooks() -> Hooks<Kademlia> {
    Hooks {
        address_of: Some(|kad: &Kademlia, peer: &PeerId| kad.address_of(peer).and_then(Address::socket_addr)),
        on_connected: Some(|peer, addr| {
            Some(Command::PeerAddress {
                peer,
                addr: addr.into(),
            })
        }),
        on_round_trip: None,
    }
}
