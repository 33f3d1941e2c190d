//! What an application sees of the [`Nat`](crate::Nat) protocol: its configuration, the commands it
//! takes, the events it emits and the timers it asks the driver for.

use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::PeerId;

use crate::message::{Namespace, Refusal, Registration};
use crate::registry::RegistryLimits;

/// How a node takes part.
#[derive(Clone, Debug)]
pub struct NatConfig {
    /// Serve as a rendezvous: keep a registry and coordinate hole punches between connected peers.
    /// Only a publicly reachable node should.
    pub rendezvous: Option<RegistryLimits>,
    /// Distinct networks (the /24 or /48 a reporting peer's connection comes from) that must report
    /// an address before it is confirmed.
    pub confirmations: usize,
    /// How long a report of our address stays fresh.
    pub observation_ttl: Duration,
    /// The most reporters (networks; peers where we were not told the network) whose reports are kept.
    pub max_reporters: usize,
    /// How long a hole punch may take before it is reported failed.
    pub punch_timeout: Duration,
    /// Dials per punch: a failed dial is retried until this many were made or the timeout passes
    /// (libp2p's DCUtR makes 3 attempts).
    pub punch_attempts: u32,
    /// The most hole punches in flight; a `Punch` past it is dropped and counted.
    pub max_punches: usize,
    /// Hole punches a rendezvous coordinates per requesting network (/24, /48) per minute.
    pub connects_per_minute: u32,
    /// `Discover`s a rendezvous answers per requesting network per minute (each costs it a purge of
    /// the namespace and a page of up to 100 registrations).
    pub discovers_per_minute: u32,
    /// The first wait before dialling a lost rendezvous again (doubling up to 64 times it).
    pub redial_after: Duration,
    /// Peers reached by a hole punch whose connection the protocol protects for as long as it lasts,
    /// the most recent this many of the punches this node asked for, and as many of those others asked
    /// for (0: none). A punched connection cost a coordinated punch and may not come back (NAT mappings
    /// change, the peer may have no other way in), yet a connection manager above its watermark trims
    /// any unprotected connection a second after its first exchange, before the application knows
    /// whether it wants the peer. Both ends of a punch protect it; kept apart, punches others ask for
    /// cannot push out ours.
    pub max_punched_kept: usize,
}

impl Default for NatConfig {
    /// A client (no rendezvous role): two confirmations within 10 minutes, 64 reporters, punches of
    /// at most 15 s and 3 dials, 16 at once, the last 8 punched connections of each kind kept (asked for
    /// by us, by others); a rendezvous would coordinate 10 punches and answer 60 discoveries a minute
    /// per network.
    fn default() -> Self {
        Self {
            rendezvous: None,
            confirmations: 2,
            observation_ttl: Duration::from_secs(600),
            max_reporters: 64,
            punch_timeout: Duration::from_secs(15),
            punch_attempts: 3,
            max_punches: 16,
            connects_per_minute: 10,
            discovers_per_minute: 60,
            redial_after: Duration::from_secs(5),
            // Bitcoin Core's eight outbound connections: enough to stay in the network behind a NAT.
            max_punched_kept: 8,
        }
    }
}

impl NatConfig {
    /// The default configuration with the rendezvous role and its default limits.
    pub fn rendezvous() -> Self {
        Self {
            rendezvous: Some(RegistryLimits::default()),
            ..Self::default()
        }
    }
}

/// What the application asks.
#[derive(Clone, Debug)]
pub enum NatCommand {
    /// A connection to `peer` came up from `addr` (the driver's `on_connected` hook, [`Nat::on_connected`](crate::Nat::on_connected)).
    Connected {
        /// The peer.
        peer: PeerId,
        /// Where its connection comes from, as this node sees it.
        addr: SocketAddr,
    },
    /// Register under `namespace` at `rendezvous`, renewing before the TTL runs out, until
    /// `Unregister`. The rendezvous connection is protected meanwhile and dialled again if lost.
    Register {
        /// The rendezvous.
        rendezvous: PeerId,
        /// Where.
        namespace: Namespace,
        /// For how long each registration holds.
        ttl: Duration,
    },
    /// Stop registering under `namespace` at `rendezvous`.
    Unregister {
        /// The rendezvous.
        rendezvous: PeerId,
        /// Where.
        namespace: Namespace,
    },
    /// Ask `rendezvous` who is registered under `namespace`.
    Discover {
        /// The rendezvous.
        rendezvous: PeerId,
        /// Where.
        namespace: Namespace,
        /// The most to return.
        limit: u16,
        /// Continue after this peer (the last one of the previous answer).
        after: Option<PeerId>,
    },
    /// Reach `target` directly: `rendezvous`, connected to both, tells both sides to dial each other
    /// at once. If we are connected to `target` through a relay circuit, a punch that gets through
    /// upgrades that connection to a direct one.
    Connect {
        /// The rendezvous.
        rendezvous: PeerId,
        /// The peer to reach.
        target: PeerId,
    },
}

/// Why a hole punch failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PunchFailure {
    /// The rendezvous refused to coordinate it.
    #[error("the rendezvous refused: {0}")]
    Refused(Refusal),
    /// This node is not connected to the rendezvous it named.
    #[error("not connected to the rendezvous")]
    RendezvousNotConnected,
    /// Every dial failed: the NATs did not let the packets through (a symmetric NAT on one side, or
    /// filtering that a punch cannot open). Only a relay connects such peers.
    #[error("{attempts} dials failed")]
    DialsFailed {
        /// How many were made.
        attempts: u32,
    },
    /// No connection came up within the punch timeout.
    #[error("no connection within the punch timeout")]
    TimedOut,
    /// Too many punches were in flight.
    #[error("too many hole punches in flight")]
    TooMany,
}

/// What the protocol tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NatEvent {
    /// Enough peers report this external address (see [`crate::observed`]).
    AddressConfirmed(SocketAddr),
    /// A confirmed address lost its reports.
    AddressExpired(SocketAddr),
    /// A rendezvous registered us.
    Registered {
        /// The rendezvous.
        rendezvous: PeerId,
        /// Where.
        namespace: Namespace,
        /// For how long.
        ttl: Duration,
        /// At which address (our NAT's mapping, as the rendezvous saw it).
        addr: SocketAddr,
    },
    /// A rendezvous refused to register us; we stop asking it for this namespace.
    RegisterRefused {
        /// The rendezvous.
        rendezvous: PeerId,
        /// Where.
        namespace: Namespace,
        /// Why.
        reason: Refusal,
    },
    /// The answer to a `Discover`.
    Discovered {
        /// The rendezvous.
        rendezvous: PeerId,
        /// Where.
        namespace: Namespace,
        /// Who is there.
        registrations: Vec<Registration>,
        /// Whether more follow (ask again after the last).
        more: bool,
    },
    /// A `Discover` of ours will get no answer: the rendezvous is not connected or went down, did not
    /// answer within 30 s, one of that namespace is waiting there already, or 64 are waiting in all.
    DiscoverFailed {
        /// The rendezvous.
        rendezvous: PeerId,
        /// Where.
        namespace: Namespace,
    },
    /// A rendezvous refused a `Discover`.
    DiscoverRefused {
        /// The rendezvous.
        rendezvous: PeerId,
        /// Where.
        namespace: Namespace,
        /// Why.
        reason: Refusal,
    },
    /// `Connect` named a peer this node is already connected to directly: nothing to punch. (Over a
    /// relay circuit only, the punch goes ahead: a direct connection then replaces the relayed one.)
    AlreadyConnected(PeerId),
    /// A punched connection to `peer` came up (the first connection to it, or the direct one that
    /// replaced a relayed one).
    HolePunched {
        /// The peer.
        peer: PeerId,
        /// The address dialled, if the rendezvous's `Punch` came before the connection (the other
        /// side's dial may get through first).
        addr: Option<SocketAddr>,
        /// From the `Connect` (or the rendezvous's `Punch`) until the connection was up.
        elapsed: Duration,
    },
    /// A hole punch towards `peer` failed.
    PunchFailed {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: PunchFailure,
    },
}

/// The protocol's timers.
#[derive(Clone, Debug)]
pub enum NatTimer {
    /// Check the reports of our address for expiry.
    ObservationExpiry,
    /// Renew a registration.
    Renew {
        /// The rendezvous.
        rendezvous: PeerId,
        /// Where.
        namespace: Namespace,
        /// The registration's generation when this was scheduled.
        generation: u64,
    },
    /// A hole punch's deadline.
    PunchDeadline {
        /// The peer.
        peer: PeerId,
        /// Which punch (a later one to the same peer has its own deadline).
        attempt: u64,
    },
    /// The rendezvous role's sweep: purge expired registrations and stop protecting the peers that
    /// no longer hold one.
    RegistryExpiry,
    /// A discovery's answer is due.
    DiscoverDeadline {
        /// The rendezvous asked.
        rendezvous: PeerId,
        /// Where.
        namespace: Namespace,
        /// Which discovery (a later one of the same namespace there has its own deadline).
        generation: u64,
    },
    /// Dial a lost rendezvous again.
    Redial {
        /// The rendezvous.
        rendezvous: PeerId,
        /// The wait that led here; the next is twice it.
        backoff: Duration,
        /// Which chain of redials: one that a connection ended (a later loss starts another) stops.
        generation: u64,
    },
}
