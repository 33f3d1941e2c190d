//! The [`Nat`] protocol: its configuration, commands, events and timers, and the input dispatch.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::relayed::is_relayed;
use meshwork_wire::{DropReason, Input, Instant, IpPrefix, Output, Protocol, ProtocolId};

use crate::message::{Namespace, NatMessage, Refusal, Registration};
use crate::observed::{AddressChange, ObservedAddresses};
use crate::punch::Punches;
use crate::registry::{Registry, RegistryLimits};

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
    /// A connection to `peer` came up from `addr` (the driver's `on_connected` hook, [`Nat::on_connected`]).
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
    },
}

/// A rendezvous's budget of coordinated punches or answered discoveries: a token bucket refilled per
/// minute.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    pub(crate) tokens: f64,
    pub(crate) at: Instant,
}

impl Bucket {
    /// Its tokens at `now`, refilled at `rate` a minute up to `rate`.
    pub(crate) fn refilled(&self, now: Instant, rate: f64) -> f64 {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * rate / 60.0;
        (self.tokens + refill).min(rate)
    }
}

/// What a budget of the rendezvous role pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Ask {
    /// Coordinated punches (`Connect`).
    Punch,
    /// Pages of registrations (`Discover`).
    Discover,
}

/// Whose budget a request spends (`server.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Asker {
    /// The askers of one IP prefix.
    Net(IpPrefix),
    /// An asker whose address we were not told, or on loopback.
    Peer(PeerId),
    /// Every asker on a relayed connection.
    Relayed,
}

/// Observed addresses, rendezvous (either role) and hole punching, as one pure protocol on
/// `/meshwork/nat/1`. See the crate docs for the model.
#[derive(Debug)]
pub struct Nat {
    pub(crate) config: NatConfig,
    /// Connected peers, with the address their connection comes from once the driver told us.
    pub(crate) connected: BTreeMap<PeerId, Option<SocketAddr>>,
    pub(crate) observed: ObservedAddresses,
    pub(crate) expiry_scheduled: bool,
    /// The rendezvous role's registry.
    pub(crate) registry: Option<Registry>,
    /// Registrants the rendezvous role protects: a rendezvous must keep the connection to a peer
    /// behind a NAT (it cannot dial it back) to tell it to punch. Bounded by the registry's limits.
    pub(crate) registrants: BTreeSet<PeerId>,
    /// Whether the registry's sweep timer is set.
    pub(crate) registry_sweep_scheduled: bool,
    /// The rendezvous role's budgets, kept past the connections they were spent on.
    pub(crate) buckets: HashMap<(Ask, Asker), Bucket>,
    /// The client's registrations: what to renew, and which rendezvous may tell us to punch.
    /// Each maps to the TTL asked for and a generation, which tells the current renewal timer from
    /// those of earlier `Register` commands.
    pub(crate) registrations: BTreeMap<(PeerId, Namespace), (Duration, u64)>,
    pub(crate) generation: u64,
    /// Discover requests waiting for an answer, each with the generation of its deadline timer
    /// (`discover.rs`).
    pub(crate) discovering: BTreeMap<(PeerId, Namespace), u64>,
    /// Rendezvous being dialled again after a loss.
    pub(crate) redialling: BTreeSet<PeerId>,
    pub(crate) punches: Punches,
    /// Peers whose punched connection is protected while it lasts, oldest first, each with whether this
    /// node asked for the punch: at most [`NatConfig::max_punched_kept`] of either kind.
    pub(crate) punched_kept: VecDeque<(PeerId, bool)>,
}

impl Nat {
    /// A node in the given role.
    pub fn new(config: NatConfig) -> Self {
        Self {
            observed: ObservedAddresses::new(
                config.confirmations,
                config.observation_ttl,
                config.max_reporters,
            ),
            registry: config.rendezvous.clone().map(Registry::new),
            registrants: BTreeSet::new(),
            registry_sweep_scheduled: false,
            punches: Punches::new(config.max_punches),
            config,
            connected: BTreeMap::new(),
            expiry_scheduled: false,
            buckets: HashMap::new(),
            registrations: BTreeMap::new(),
            generation: 0,
            discovering: BTreeMap::new(),
            redialling: BTreeSet::new(),
            punched_kept: VecDeque::new(),
        }
    }

    /// Whether a role still needs `peer` protected: our rendezvous, a registrant of our rendezvous
    /// role, or a punched peer kept (one protection bit per peer serves every role).
    pub(crate) fn needs_protection(&self, peer: &PeerId) -> bool {
        self.registered_at(peer)
            || self.registrants.contains(peer)
            || self.punched_kept.iter().any(|(kept, _)| kept == peer)
    }

    /// For the node runtime's `on_connected` hook: the command that tells the protocol where a new
    /// connection comes from (the runtime runs it again when a relayed connection is upgraded to a
    /// direct one). A relayed connection's address ([`meshwork_wire::relayed`]) is the relay
    /// circuit's, not the peer's: it is neither reported to the peer nor registered, but it tells the
    /// protocol that a punch towards the peer is still worth trying.
    pub fn on_connected(peer: PeerId, addr: SocketAddr) -> Option<NatCommand> {
        Some(NatCommand::Connected { peer, addr })
    }

    /// Where `peer`'s connection comes from, if it is direct (or the driver never said): `None` if
    /// not connected or connected only through a relay circuit.
    pub(crate) fn direct_addr(&self, peer: &PeerId) -> Option<SocketAddr> {
        self.connected
            .get(peer)
            .copied()
            .flatten()
            .filter(|addr| !is_relayed(addr))
    }

    /// Whether `peer` is connected directly: connected, and not through a relay circuit (a driver
    /// without the `on_connected` hook never says, and its connections count as direct).
    pub(crate) fn directly_connected(&self, peer: &PeerId) -> bool {
        self.connected
            .get(peer)
            .is_some_and(|addr| addr.is_none_or(|addr| !is_relayed(&addr)))
    }

    /// For the node runtime's `address_of` hook: where a peer we were told to punch towards is.
    pub fn address_of(&self, peer: &PeerId) -> Option<SocketAddr> {
        self.punches.address_of(peer)
    }

    /// Our confirmed external addresses.
    pub fn external_addresses(&self) -> &[SocketAddr] {
        self.observed.confirmed()
    }

    /// The rendezvous role's registry, if this node serves as one.
    pub fn registry(&self) -> Option<&Registry> {
        self.registry.as_ref()
    }

    fn on_observed(&mut self, now: Instant, from: PeerId, addr: SocketAddr, out: &mut Vec<Output<Self>>) {
        // Over a relay circuit the peer sees the relay, not us: we never send one there, and take none.
        let seen_from = self.connected.get(&from).copied().flatten();
        if seen_from.is_some_and(|seen| is_relayed(&seen)) {
            return unsolicited(from, out);
        }
        let changes = self
            .observed
            .report(now, from, seen_from.map(|seen| seen.ip()), addr);
        self.tell(changes, out);
        if !self.expiry_scheduled {
            self.schedule_expiry(now, out);
        }
    }

    pub(crate) fn schedule_expiry(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        self.expiry_scheduled = false;
        if let Some(at) = self.observed.next_expiry() {
            self.expiry_scheduled = true;
            out.push(Output::Schedule {
                after: at.saturating_duration_since(now),
                timer: NatTimer::ObservationExpiry,
            });
        }
    }

    pub(crate) fn tell(&self, changes: Vec<AddressChange>, out: &mut Vec<Output<Self>>) {
        for change in changes {
            out.push(Output::Emit(match change {
                AddressChange::Confirmed(addr) => NatEvent::AddressConfirmed(addr),
                AddressChange::Expired(addr) => NatEvent::AddressExpired(addr),
            }));
        }
    }
}

impl Protocol for Nat {
    type Message = NatMessage;
    type Command = NatCommand;
    type Event = NatEvent;
    type Timer = NatTimer;
    const ID: ProtocolId = ProtocolId::new("/meshwork/nat/1");
    /// A full `Discovered` page: 100 registrations of at most 58 bytes, and the namespace.
    const MAX_MESSAGE_SIZE: usize = 8 * 1024;

    fn handle(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        match input {
            Input::PeerUp(peer) => {
                self.connected.entry(peer).or_insert(None);
                self.peer_up(now, peer, out);
            }
            Input::PeerDown(peer) => {
                self.connected.remove(&peer);
                self.release_punched(&peer, out);
                self.registrant_down(&peer, out);
                self.peer_down(now, peer, out);
            }
            Input::Command(NatCommand::Connected { peer, addr }) => {
                let was_relayed = self.connected.contains_key(&peer) && !self.directly_connected(&peer);
                self.connected.insert(peer, Some(addr));
                if is_relayed(&addr) {
                    return;
                }
                out.push(Output::Send {
                    to: peer,
                    msg: NatMessage::Observed(addr),
                });
                if was_relayed {
                    // The relayed connection was upgraded: a punch got through.
                    self.punched(now, peer, out);
                }
            }
            Input::Command(command) => self.command(now, command, out),
            Input::Timer(timer) => self.timer(now, timer, out),
            Input::Message { from, msg } => match msg {
                NatMessage::Observed(addr) => self.on_observed(now, from, addr, out),
                NatMessage::Register { .. }
                | NatMessage::Unregister { .. }
                | NatMessage::Discover { .. }
                | NatMessage::Connect { .. } => self.serve(now, from, msg, out),
                NatMessage::Registered { .. }
                | NatMessage::RegisterRefused { .. }
                | NatMessage::Discovered { .. }
                | NatMessage::DiscoverRefused { .. }
                | NatMessage::ConnectRefused { .. }
                | NatMessage::Punch { .. } => self.answer(now, from, msg, out),
            },
        }
    }
}

/// Counts something `peer` sent that we did not ask for.
pub(crate) fn unsolicited(peer: PeerId, out: &mut Vec<Output<Nat>>) {
    out.push(Output::Dropped {
        peer,
        reason: DropReason::Unsolicited,
    });
}
