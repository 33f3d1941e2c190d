//! The [`Nat`] protocol: its state, and the input dispatch (its configuration, commands, events and
//! timers are in `api.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::relayed::is_relayed;
use meshwork_wire::{DropReason, Input, Instant, IpPrefix, Output, Protocol, ProtocolId};

use crate::api::{NatCommand, NatConfig, NatEvent, NatTimer};
use crate::message::{Namespace, NatMessage};
use crate::observed::{AddressChange, ObservedAddresses};
use crate::punch::Punches;
use crate::registry::Registry;

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
    /// Rendezvous being dialled again after a loss, each with the generation of its chain of
    /// redials: only the current chain's timer dials.
    pub(crate) redialling: BTreeMap<PeerId, u64>,
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
            redialling: BTreeMap::new(),
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
