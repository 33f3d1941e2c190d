//! Peer addresses as they cross the wire, and the IP prefixes the routing table limits.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use meshwork_identity::PeerId;
use meshwork_wire::BoundedBytes;
use serde::{Deserialize, Serialize};

/// The largest opaque address, in bytes.
pub const MAX_OPAQUE_ADDRESS: usize = 64;

/// Where a peer can be reached, as reported by the driver or by other peers.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Address {
    /// An IPv4 socket address.
    V4 {
        /// The four address bytes.
        ip: [u8; 4],
        /// The UDP port.
        port: u16,
    },
    /// An IPv6 socket address.
    V6 {
        /// The sixteen address bytes.
        ip: [u8; 16],
        /// The UDP port.
        port: u16,
    },
    /// Anything else (an in-memory transport's name, a relay path). The routing table's IP limits do
    /// not apply to it; a record store counts what peers at such addresses send together, as one
    /// prefix ([`crate::store::Sender::Unobserved`]).
    /// Boxed: the rare opaque address would otherwise make every address, in every table entry and
    /// every connection's record, the size of a `Vec` plus its tag (32 bytes, not 24). The box
    /// changes nothing on the wire.
    Opaque(Box<BoundedBytes<MAX_OPAQUE_ADDRESS>>),
}

/// The network prefix the routing table and the record store count peers by: a /24 for IPv4, a /48
/// for IPv6 (the one type every meshwork crate counts networks with).
pub use meshwork_wire::IpPrefix;

impl Address {
    /// The empty opaque address: used for a peer whose address we were never told.
    pub fn unknown() -> Self {
        Self::Opaque(Box::default())
    }

    /// Whether this is [`Address::unknown`].
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Opaque(bytes) if bytes.is_empty())
    }

    /// Whether this is a relay circuit's virtual address ([`meshwork_wire::relayed::is_relayed`]):
    /// one the transport of the node that holds the circuit made up for it, which says nothing of
    /// where the peer is and means nothing to anyone else.
    pub fn is_relayed(&self) -> bool {
        self.socket_addr()
            .is_some_and(|addr| meshwork_wire::relayed::is_relayed(&addr))
    }

    /// The address as a peer named it, with a relay circuit's virtual address, which means nothing
    /// here, made [`Address::unknown`].
    pub fn named(self) -> Self {
        if self.is_relayed() { Self::unknown() } else { self }
    }

    /// The prefix the per-prefix limits count this address under, if it is an IP address.
    pub fn prefix(&self) -> Option<IpPrefix> {
        match self {
            Self::V4 { ip, .. } => Some(IpPrefix::V4([ip[0], ip[1], ip[2]])),
            Self::V6 { ip, .. } => Some(IpPrefix::V6([ip[0], ip[1], ip[2], ip[3], ip[4], ip[5]])),
            Self::Opaque(_) => None,
        }
    }

    /// The socket address, if this is an IP address.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::V4 { ip, port } => Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(*ip)), *port)),
            Self::V6 { ip, port } => Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(*ip)), *port)),
            Self::Opaque(_) => None,
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(a) => Self::V4 {
                ip: a.ip().octets(),
                port: a.port(),
            },
            SocketAddr::V6(a) => Self::V6 {
                ip: a.ip().octets(),
                port: a.port(),
            },
        }
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.socket_addr() {
            Some(addr) => write!(f, "{addr}"),
            None => write!(f, "opaque({} bytes)", self.opaque_len()),
        }
    }
}

impl Address {
    fn opaque_len(&self) -> usize {
        match self {
            Self::Opaque(bytes) => bytes.len(),
            _ => 0,
        }
    }
}

/// A peer and where to reach it: how peers travel in kad messages.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The peer.
    pub id: PeerId,
    /// Its address.
    pub addr: Address,
}
