//! What crosses the wire on `/meshwork/nat/1`.

use std::net::SocketAddr;

use meshwork_identity::PeerId;
use meshwork_wire::{BoundedString, BoundedVec};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The longest namespace name, in bytes.
pub const MAX_NAMESPACE: usize = 64;

/// The most registrations one `Discovered` answer carries; ask again with `after` for the rest.
pub const MAX_DISCOVERED: usize = 100;

/// A rendezvous namespace: peers register under one and discover the others registered there.
pub type Namespace = BoundedString<MAX_NAMESPACE>;

/// One peer registered under a namespace, as the rendezvous saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The registered peer.
    pub peer: PeerId,
    /// The address the rendezvous observed the peer's connection at (its NAT's mapping, for a peer
    /// behind one).
    pub addr: SocketAddr,
    /// Seconds left before the registration expires.
    pub ttl_secs: u32,
}

/// Why a rendezvous refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Error)]
pub enum Refusal {
    /// The peer asked does not serve as a rendezvous.
    #[error("the peer is not a rendezvous")]
    NotARendezvous,
    /// The TTL asked for is shorter than the rendezvous accepts.
    #[error("the TTL is below the rendezvous's minimum")]
    InvalidTtl,
    /// The peer holds as many registrations as one peer may.
    #[error("the peer holds as many registrations as one peer may")]
    TooManyNamespaces,
    /// The namespace holds as many registrations as it may, in all or from the peer's network
    /// ([`RegistryLimits::registrations_per_network`](crate::RegistryLimits::registrations_per_network)).
    #[error("the namespace is full")]
    NamespaceFull,
    /// The rendezvous holds as many registrations as it may.
    #[error("the rendezvous is full")]
    RegistryFull,
    /// The peer to punch towards is not connected to the rendezvous, or holds no registration there
    /// (it takes a `Punch` only from a rendezvous it registered with), so it cannot be told to punch.
    #[error("the target is not connected to the rendezvous or not registered there")]
    TargetNotConnected,
    /// The peer's network asked for more hole punches, or discoveries, than the rendezvous answers
    /// per minute.
    #[error("too many requests from this network")]
    RateLimited,
    /// The rendezvous does not know the address the peer's connection comes from (its driver does
    /// not report connection addresses), so it has nothing to register or hand out.
    #[error("the rendezvous does not know the peer's address")]
    AddressUnknown,
}

/// A message of the NAT protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NatMessage {
    /// "I see your connection coming from `addr`": sent once to every peer when a connection comes up,
    /// as libp2p's identify reports the observed address.
    Observed(SocketAddr),
    /// Register the sender under `namespace` for `ttl_secs`, at the address its connection comes from.
    Register {
        /// Where.
        namespace: Namespace,
        /// For how long, in seconds (the rendezvous lowers it to its maximum).
        ttl_secs: u32,
    },
    /// The rendezvous's answer to `Register`.
    Registered {
        /// Where.
        namespace: Namespace,
        /// For how long the rendezvous keeps it, in seconds.
        ttl_secs: u32,
        /// The address the rendezvous registered.
        addr: SocketAddr,
    },
    /// The rendezvous refused a `Register`.
    RegisterRefused {
        /// Where.
        namespace: Namespace,
        /// Why.
        reason: Refusal,
    },
    /// Remove the sender's registration under `namespace`.
    Unregister {
        /// Where.
        namespace: Namespace,
    },
    /// Ask for the peers registered under `namespace`, in peer-id order, after `after` if given.
    Discover {
        /// Where.
        namespace: Namespace,
        /// The most to return (the rendezvous also caps it at [`MAX_DISCOVERED`]).
        limit: u16,
        /// Continue after this peer: the last of the previous page.
        after: Option<PeerId>,
    },
    /// The answer to `Discover`.
    Discovered {
        /// Where.
        namespace: Namespace,
        /// The live registrations, the asker's own left out.
        registrations: BoundedVec<Registration, MAX_DISCOVERED>,
        /// Whether more follow: ask again after the last one.
        more: bool,
    },
    /// The rendezvous refused a `Discover`.
    DiscoverRefused {
        /// Where.
        namespace: Namespace,
        /// Why.
        reason: Refusal,
    },
    /// Ask the rendezvous to coordinate a hole punch between the sender and `target`.
    Connect {
        /// The peer to reach.
        target: PeerId,
    },
    /// The rendezvous refused a `Connect`.
    ConnectRefused {
        /// The peer the sender wanted to reach.
        target: PeerId,
        /// Why.
        reason: Refusal,
    },
    /// From the rendezvous: dial `peer` at `addr` now; it is dialling you at the same moment.
    Punch {
        /// The other side.
        peer: PeerId,
        /// Where the rendezvous observed it.
        addr: SocketAddr,
    },
}
