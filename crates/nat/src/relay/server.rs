//! The relay role: reservations, circuits and their limits.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::{BoundedBytes, DropReason, Instant, Output};

use super::message::{CircuitEnd, CircuitId, MAX_DATAGRAM, RelayMessage, RelayRefusal};
use super::origins::Origins;
use super::{Relay, RelayTimer};

/// What a relay holds for others, and for how long. Every bound is per relay; a peer that exceeds
/// one is refused, never queued.
#[derive(Clone, Debug)]
pub struct RelayLimits {
    /// Peers reachable through this relay at once.
    pub max_reservations: usize,
    /// How long a reservation holds unless renewed.
    pub reservation_ttl: Duration,
    /// Circuits at once.
    pub max_circuits: usize,
    /// Circuits one peer may be an end of at once.
    pub max_circuits_per_peer: usize,
    /// Circuits between one dialer and one target at once: without it one dialer (which needs no
    /// reservation) takes every circuit slot of a target and every honest dialer is refused.
    pub max_circuits_per_pair: usize,
    /// Reservations held by the peers of one IP prefix (a /24, a /48) at once (`origins.rs`).
    pub max_reservations_per_prefix: usize,
    /// Circuits dialled by the peers of one IP prefix at once (`origins.rs`).
    pub max_circuits_per_prefix: usize,
    /// How long a circuit may carry nothing before it closes (reported as [`CircuitEnd::TimeLimit`]).
    /// A circuit an end opened and left unused would otherwise hold its slots for its whole duration.
    pub circuit_idle: Duration,
    /// Bytes one circuit may carry, both directions together; the circuit closes when a datagram would
    /// take it past this ([`CircuitEnd::ByteLimit`]).
    pub max_circuit_bytes: u64,
    /// How long one circuit may last ([`CircuitEnd::TimeLimit`]).
    pub max_circuit_duration: Duration,
}

impl Default for RelayLimits {
    /// 128 reservations of an hour, 16 per IP prefix; 256 circuits, 8 per peer, 2 per dialer and
    /// target and 32 dialled from one prefix, each of at most 16 MiB and 30 minutes, closed after a
    /// minute without a datagram.
    ///
    /// libp2p's circuit relay v2 defaults to 128 KiB and 2 minutes per circuit, enough to coordinate a
    /// hole punch and no more. Here a peer behind a symmetric NAT has no other path, so a circuit must
    /// carry its share of a coin node's traffic (blocks, votes, transactions) for a while; when it
    /// ends, the peer opens another. These bound what the relay holds at once (256 circuits, 4 GiB of
    /// credit), not its bandwidth over time: a peer may open a new circuit as soon as one ends, so a
    /// relay that must cap its rate does so at the transport (its connection and stream limits) or by
    /// lowering these.
    fn default() -> Self {
        Self {
            max_reservations: 128,
            reservation_ttl: Duration::from_secs(3600),
            max_circuits: 256,
            max_circuits_per_peer: 8,
            max_circuits_per_pair: 2,
            max_reservations_per_prefix: 16,
            max_circuits_per_prefix: 32,
            circuit_idle: Duration::from_secs(60),
            max_circuit_bytes: 16 * 1024 * 1024,
            max_circuit_duration: Duration::from_secs(30 * 60),
        }
    }
}

/// What a relay has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Reservations held now.
    pub reservations: usize,
    /// Circuits open now.
    pub circuits: usize,
    /// Datagram bytes carried, over every circuit ever opened.
    pub bytes_relayed: u64,
    /// Datagrams refused because their circuit reached its byte limit (or did not exist).
    pub datagrams_refused: u64,
    /// Circuits closed at their byte limit.
    pub closed_at_byte_limit: u64,
    /// Circuits closed at their time limit.
    pub closed_at_time_limit: u64,
    /// Circuits closed after carrying nothing for [`RelayLimits::circuit_idle`], or to make room for
    /// another at an end whose slots were full and this one had carried nothing yet.
    pub closed_idle: u64,
}

#[derive(Debug)]
struct Circuit {
    /// The dialer and the target.
    ends: [PeerId; 2],
    bytes: u64,
    /// When it opened.
    opened: Instant,
    /// When each end last sent a datagram on it (when it opened, until then): a QUIC path carries
    /// acknowledgements and keep-alives both ways, so a circuit one end keeps sending on while the
    /// other never answers carries no connection.
    last_from: [Instant; 2],
    /// Whether each end has sent anything yet.
    spoke: [bool; 2],
    /// When its time limit ends it.
    deadline: Instant,
}

/// How long a circuit that has carried nothing is safe from being closed to make room at a full end:
/// long enough for its ends' handshake to begin.
const UNUSED_GRACE: Duration = Duration::from_secs(10);

/// How often the relay looks for lapsed reservations and circuits past their time limit: one timer
/// for all of them, so the timers a relay holds do not grow with what its peers open and close.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// The relay role's state.
#[derive(Debug)]
pub(crate) struct Server {
    limits: RelayLimits,
    /// Reserved peers and when their reservation expires.
    // Ordered maps: the sweep and a disconnect walk them, and their outputs must come in the same
    // order in every run (the simulator's traces are deterministic).
    reservations: BTreeMap<PeerId, Instant>,
    circuits: BTreeMap<CircuitId, Circuit>,
    per_peer: HashMap<PeerId, usize>,
    /// Where connections come from, for the limits per prefix.
    origins: Origins,
    next: CircuitId,
    stats: RelayStats,
    sweep_scheduled: bool,
}

impl Server {
    pub(crate) fn new(limits: RelayLimits) -> Self {
        Self {
            limits,
            reservations: BTreeMap::new(),
            circuits: BTreeMap::new(),
            per_peer: HashMap::new(),
            origins: Origins::default(),
            next: 0,
            stats: RelayStats::default(),
            sweep_scheduled: false,
        }
    }

    pub(crate) fn stats(&self) -> RelayStats {
        RelayStats {
            reservations: self.reservations.len(),
            circuits: self.circuits.len(),
            ..self.stats
        }
    }

    /// `peer`'s connection comes from `addr`.
    pub(crate) fn observed(&mut self, peer: PeerId, addr: &SocketAddr) {
        self.origins.observed(peer, addr);
    }

    /// Whether the peers of `peer`'s prefix hold their share of reservations.
    fn prefix_reserved(&self, peer: &PeerId) -> bool {
        self.origins.get(peer).is_some_and(|origin| {
            self.origins.count(origin, self.reservations.keys()) >= self.limits.max_reservations_per_prefix
        })
    }

    /// Whether the peers of `dialer`'s prefix dialled their share of circuits.
    fn prefix_dialled(&self, dialer: &PeerId) -> bool {
        self.origins.get(dialer).is_some_and(|origin| {
            let dialers = self.circuits.values().map(|c| &c.ends[0]);
            self.origins.count(origin, dialers) >= self.limits.max_circuits_per_prefix
        })
    }

    pub(crate) fn reserve(&mut self, now: Instant, from: PeerId, out: &mut Vec<Output<Relay>>) {
        let full = self.reservations.len() >= self.limits.max_reservations || self.prefix_reserved(&from);
        if !self.reservations.contains_key(&from) && full {
            out.push(send(
                from,
                RelayMessage::ReserveRefused {
                    reason: RelayRefusal::TooManyReservations,
                },
            ));
            return;
        }
        let ttl = self.limits.reservation_ttl;
        self.reservations.insert(from, now + ttl);
        out.push(Output::Protect {
            peer: from,
            protect: true,
        });
        self.schedule_sweep(out);
        out.push(send(
            from,
            RelayMessage::Reserved {
                ttl_secs: secs(ttl),
                circuit_bytes: self.limits.max_circuit_bytes,
                circuit_secs: secs(self.limits.max_circuit_duration),
            },
        ));
    }

    fn schedule_sweep(&mut self, out: &mut Vec<Output<Relay>>) {
        if !self.sweep_scheduled {
            self.sweep_scheduled = true;
            out.push(Output::Schedule {
                after: SWEEP_EVERY,
                timer: RelayTimer::Sweep,
            });
        }
    }

    /// The sweep: lapsed reservations end, circuits past their time limit close, and the sweep comes
    /// again while anything is left.
    pub(crate) fn sweep(&mut self, now: Instant, out: &mut Vec<Output<Relay>>) {
        self.sweep_scheduled = false;
        let lapsed: Vec<PeerId> = self
            .reservations
            .iter()
            .filter(|(_, expires)| **expires <= now)
            .map(|(&peer, _)| peer)
            .collect();
        for peer in lapsed {
            self.reservations.remove(&peer);
            self.release(peer, out);
        }
        let overdue: Vec<(CircuitId, bool)> = self
            .circuits
            .iter()
            .filter_map(|(&id, c)| {
                let quiet = |end: usize| now.saturating_duration_since(c.last_from[end]);
                let idle = quiet(0).max(quiet(1)) >= self.limits.circuit_idle;
                (c.deadline <= now || idle).then_some((id, c.deadline > now))
            })
            .collect();
        for (circuit, idle) in overdue {
            if idle {
                self.stats.closed_idle += 1;
            } else {
                self.stats.closed_at_time_limit += 1;
            }
            self.close(circuit, CircuitEnd::TimeLimit, None, out);
        }
        if !self.reservations.is_empty() || !self.circuits.is_empty() {
            self.schedule_sweep(out);
        }
    }

    pub(crate) fn connect(
        &mut self,
        now: Instant,
        from: PeerId,
        target: PeerId,
        connected: &BTreeSet<PeerId>,
        out: &mut Vec<Output<Relay>>,
    ) {
        let refusal = if target == from || self.reservations.get(&target).is_none_or(|&e| e <= now) {
            Some(RelayRefusal::NoReservation)
        } else if !connected.contains(&target) {
            Some(RelayRefusal::TargetNotConnected)
        } else if self.pair_count(&from, &target) >= self.limits.max_circuits_per_pair
            || self.prefix_dialled(&from)
            || !self.make_room(now, [from, target], out)
        {
            Some(RelayRefusal::TooManyCircuitsForPeer)
        } else if self.circuits.len() >= self.limits.max_circuits {
            Some(RelayRefusal::TooManyCircuits)
        } else {
            None
        };
        if let Some(reason) = refusal {
            out.push(send(from, RelayMessage::ConnectRefused { target, reason }));
            return;
        }
        let circuit = self.next;
        self.next += 1;
        self.circuits.insert(
            circuit,
            Circuit {
                ends: [from, target],
                bytes: 0,
                opened: now,
                last_from: [now; 2],
                spoke: [false; 2],
                deadline: now + self.limits.max_circuit_duration,
            },
        );
        for end in [from, target] {
            *self.per_peer.entry(end).or_default() += 1;
            out.push(Output::Protect {
                peer: end,
                protect: true,
            });
        }
        self.schedule_sweep(out);
        out.push(send(
            from,
            RelayMessage::Opened {
                circuit,
                peer: target,
            },
        ));
        out.push(send(target, RelayMessage::Incoming { circuit, peer: from }));
    }

    /// An end's datagram: to the other end, unless it would take the circuit past its byte limit.
    pub(crate) fn carry(
        &mut self,
        now: Instant,
        from: PeerId,
        circuit: CircuitId,
        payload: BoundedBytes<MAX_DATAGRAM>,
        out: &mut Vec<Output<Relay>>,
    ) {
        let Some(c) = self.circuits.get_mut(&circuit).filter(|c| c.ends.contains(&from)) else {
            // A datagram sent before the sender learned of the close is common and harmless; it is
            // counted, not punished.
            self.stats.datagrams_refused += 1;
            out.push(Output::Dropped {
                peer: from,
                reason: DropReason::Unsolicited,
            });
            return;
        };
        let len = payload.len() as u64;
        if c.bytes.saturating_add(len) > self.limits.max_circuit_bytes {
            self.stats.datagrams_refused += 1;
            self.stats.closed_at_byte_limit += 1;
            self.close(circuit, CircuitEnd::ByteLimit, None, out);
            return;
        }
        c.bytes += len;
        let end = usize::from(c.ends[1] == from);
        c.last_from[end] = now;
        c.spoke[end] = true;
        self.stats.bytes_relayed += len;
        let to = if c.ends[0] == from { c.ends[1] } else { c.ends[0] };
        out.push(send(to, RelayMessage::Deliver { circuit, payload }));
    }

    /// An end closes its circuit; the other end is told.
    pub(crate) fn close_from(&mut self, from: PeerId, circuit: CircuitId, out: &mut Vec<Output<Relay>>) {
        if self
            .circuits
            .get(&circuit)
            .is_some_and(|c| c.ends.contains(&from))
        {
            self.close(circuit, CircuitEnd::Closed, Some(from), out);
        }
    }

    /// A peer disconnected: its reservation and its circuits end, and its protection with them.
    pub(crate) fn peer_down(&mut self, peer: PeerId, out: &mut Vec<Output<Relay>>) {
        self.origins.forget(&peer);
        let reserved = self.reservations.remove(&peer).is_some();
        let mine: Vec<CircuitId> = self
            .circuits
            .iter()
            .filter(|(_, c)| c.ends.contains(&peer))
            .map(|(&id, _)| id)
            .collect();
        let had_circuits = !mine.is_empty();
        for circuit in mine {
            self.close(circuit, CircuitEnd::Disconnected, Some(peer), out);
        }
        self.per_peer.remove(&peer);
        if reserved && !had_circuits {
            // `close` released the ends of its circuits; a peer that only held a reservation is
            // released here.
            self.release(peer, out);
        }
    }

    /// Closes `circuit`, telling its ends (but `quiet`, which knows already) why.
    fn close(
        &mut self,
        circuit: CircuitId,
        reason: CircuitEnd,
        quiet: Option<PeerId>,
        out: &mut Vec<Output<Relay>>,
    ) {
        let Some(c) = self.circuits.remove(&circuit) else {
            return;
        };
        for end in c.ends {
            if Some(end) != quiet {
                out.push(send(end, RelayMessage::Closed { circuit, reason }));
            }
            if let Some(n) = self.per_peer.get_mut(&end) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_peer.remove(&end);
                }
            }
            self.release(end, out);
        }
    }

    fn count(&self, peer: &PeerId) -> usize {
        self.per_peer.get(peer).copied().unwrap_or(0)
    }

    /// Circuits open to `target` from `dialer`, or from any dialer of its IP prefix: identities
    /// are free, and a limit per dialer identity let one host take a target's every slot.
    fn pair_count(&self, dialer: &PeerId, target: &PeerId) -> usize {
        let origin = self.origins.get(dialer);
        self.circuits
            .values()
            .filter(|c| c.ends[1] == *target)
            .filter(|c| {
                c.ends[0] == *dialer || origin.is_some_and(|o| self.origins.get(&c.ends[0]) == Some(o))
            })
            .count()
    }

    /// Whether each of `ends` has a circuit slot free, after closing, for each end at its limit, its
    /// oldest circuit on which one end has sent nothing for [`UNUSED_GRACE`]: circuits a dialer
    /// opens and leaves unused (made-up dialers need no reservation), or keeps alive from its side
    /// alone, give way to one that will be used. Nothing is closed unless both ends get room.
    fn make_room(&mut self, now: Instant, ends: [PeerId; 2], out: &mut Vec<Output<Relay>>) -> bool {
        let mut give_way = Vec::new();
        for end in ends {
            if self.count(&end) < self.limits.max_circuits_per_peer {
                continue;
            }
            let unused = self
                .circuits
                .iter()
                .filter(|(id, c)| c.ends.contains(&end) && !give_way.contains(*id))
                .filter(|(_, c)| !(c.spoke[0] && c.spoke[1]))
                .filter(|(_, c)| now.saturating_duration_since(c.opened) >= UNUSED_GRACE)
                .min_by_key(|(id, c)| (c.opened, **id))
                .map(|(&id, _)| id);
            let Some(circuit) = unused else {
                return false;
            };
            give_way.push(circuit);
        }
        for circuit in give_way {
            self.stats.closed_idle += 1;
            self.close(circuit, CircuitEnd::TimeLimit, None, out);
        }
        true
    }

    /// Whether `peer` holds a reservation or a circuit here (its connection must be kept).
    pub(crate) fn holds(&self, peer: &PeerId) -> bool {
        self.reservations.contains_key(peer) || self.count(peer) > 0
    }

    /// Stops protecting `peer`'s connection once it holds neither a reservation nor a circuit.
    fn release(&self, peer: PeerId, out: &mut Vec<Output<Relay>>) {
        if !self.holds(&peer) {
            out.push(Output::Protect { peer, protect: false });
        }
    }
}

fn send(to: PeerId, msg: RelayMessage) -> Output<Relay> {
    Output::Send { to, msg }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}
