//! The end's side: reservations at relays, circuits through them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::{DropReason, Instant, Output};

use super::message::{CircuitEnd, CircuitId, RelayMessage, RelayRefusal};
use super::{CONNECT_TIMEOUT, Relay, RelayEvent, RelayTimer};

/// The longest reservation an end believes, whatever the relay says (a day: relays grant an hour
/// by default, [`super::RelayLimits::reservation_ttl`]).
const MAX_RESERVATION_SECS: u32 = 24 * 3600;

/// An end's state.
#[derive(Debug, Default)]
pub(crate) struct Client {
    /// Relays we want a reservation at (kept, renewed, and re-made after a loss, until `Unreserve`).
    pub(crate) wanted: BTreeSet<PeerId>,
    /// Relays that granted one, and until when.
    pub(crate) reserved: BTreeMap<PeerId, Instant>,
    /// Relays asked for a reservation that have not answered: only the answer to a request of ours
    /// is taken. Each `Reserved` schedules a renewal, and the driver holds every timer until it
    /// fires, so a relay repeating `Reserved` unasked would grow our memory by one timer a message.
    pub(crate) asked: BTreeSet<PeerId>,
    /// Circuits asked for and not yet answered: (relay, target), with the generation of the
    /// request's deadline timer.
    pub(crate) connecting: BTreeMap<(PeerId, PeerId), u64>,
    /// Open circuits, by (relay, circuit), with the peer at the other end.
    pub(crate) circuits: BTreeMap<(PeerId, CircuitId), PeerId>,
    /// The latest renewal scheduled per relay, by generation.
    pub(crate) renewals: BTreeMap<PeerId, u64>,
    generation: u64,
}

impl Client {
    /// Schedules the renewal of the reservation at `relay`, superseding any scheduled before.
    pub(crate) fn renew_after(&mut self, relay: PeerId, after: Duration, out: &mut Vec<Output<Relay>>) {
        self.generation += 1;
        self.renewals.insert(relay, self.generation);
        out.push(Output::Schedule {
            after,
            timer: RelayTimer::Renew {
                relay,
                generation: self.generation,
            },
        });
    }

    /// Asks for a circuit to `target` through `relay`, unless one is asked for already; the answer is
    /// due within [`CONNECT_TIMEOUT`]. Returns whether to send the request.
    pub(crate) fn connect(&mut self, relay: PeerId, target: PeerId, out: &mut Vec<Output<Relay>>) -> bool {
        if self.connecting.contains_key(&(relay, target)) {
            return false;
        }
        self.generation += 1;
        self.connecting.insert((relay, target), self.generation);
        out.push(Output::Schedule {
            after: CONNECT_TIMEOUT,
            timer: RelayTimer::ConnectDeadline {
                relay,
                target,
                generation: self.generation,
            },
        });
        true
    }

    /// A circuit request's deadline: if it is still unanswered, the relay is taken as unreachable
    /// (it kept the relay protected, and every later `Connect` to that target through it was
    /// swallowed).
    pub(crate) fn connect_deadline(
        &mut self,
        (relay, target): (PeerId, PeerId),
        generation: u64,
        out: &mut Vec<Output<Relay>>,
    ) {
        if self.connecting.get(&(relay, target)) != Some(&generation) {
            return;
        }
        self.connecting.remove(&(relay, target));
        out.push(Output::Emit(RelayEvent::ConnectRefused {
            relay,
            target,
            reason: RelayRefusal::RelayUnreachable,
        }));
        self.release(relay, out);
    }

    /// Whether `relay` is one we deal with (its answers are solicited).
    pub(crate) fn uses(&self, relay: &PeerId) -> bool {
        self.wanted.contains(relay)
            || self.reserved.contains_key(relay)
            || self.connecting.keys().any(|(r, _)| r == relay)
            || self.circuits.keys().any(|(r, _)| r == relay)
    }

    /// Stops protecting `relay`'s connection once nothing of ours goes through it.
    pub(crate) fn release(&self, relay: PeerId, out: &mut Vec<Output<Relay>>) {
        if !self.uses(&relay) {
            out.push(Output::Protect {
                peer: relay,
                protect: false,
            });
        }
    }

    /// The relay came up: send what waited for it.
    pub(crate) fn peer_up(&mut self, relay: PeerId, out: &mut Vec<Output<Relay>>) {
        if self.wanted.contains(&relay) && !self.reserved.contains_key(&relay) {
            self.asked.insert(relay);
            out.push(send(relay, RelayMessage::Reserve));
        }
        for &(_, target) in self.connecting.keys().filter(|(r, _)| *r == relay) {
            out.push(send(relay, RelayMessage::Connect { target }));
        }
    }

    /// The relay went down: its reservation and circuits are gone.
    pub(crate) fn peer_down(&mut self, relay: PeerId, redial_after: Duration, out: &mut Vec<Output<Relay>>) {
        self.reserved.remove(&relay);
        let lost: Vec<_> = self
            .circuits
            .keys()
            .filter(|(r, _)| *r == relay)
            .copied()
            .collect();
        for key in lost {
            self.circuits.remove(&key);
            out.push(Output::Emit(RelayEvent::CircuitClosed {
                relay,
                circuit: key.1,
                reason: CircuitEnd::Disconnected,
            }));
        }
        let waiting: Vec<_> = self
            .connecting
            .keys()
            .filter(|(r, _)| *r == relay)
            .copied()
            .collect();
        for key in waiting {
            self.connecting.remove(&key);
            out.push(Output::Emit(RelayEvent::ConnectRefused {
                relay,
                target: key.1,
                reason: RelayRefusal::RelayUnreachable,
            }));
        }
        if self.wanted.contains(&relay) {
            self.renew_after(relay, redial_after, out);
        }
    }

    pub(crate) fn answer(
        &mut self,
        now: Instant,
        relay: PeerId,
        msg: RelayMessage,
        max_circuits: usize,
        out: &mut Vec<Output<Relay>>,
    ) {
        if !self.uses(&relay) {
            if let RelayMessage::Incoming { circuit, .. } = msg {
                // Closed, as below: the relay frees its slots and the dialer stops waiting.
                out.push(send(relay, RelayMessage::Close { circuit }));
            }
            out.push(Output::Dropped {
                peer: relay,
                reason: DropReason::Unsolicited,
            });
            return;
        }
        match msg {
            RelayMessage::Reserved {
                ttl_secs,
                circuit_bytes,
                circuit_secs,
            } if self.wanted.contains(&relay) && self.asked.remove(&relay) => {
                let ttl = Duration::from_secs(u64::from(ttl_secs.clamp(4, MAX_RESERVATION_SECS)));
                self.reserved.insert(relay, now + ttl);
                self.renew_after(relay, ttl * 3 / 4, out);
                out.push(Output::Emit(RelayEvent::Reserved {
                    relay,
                    ttl,
                    circuit_bytes,
                    circuit_duration: Duration::from_secs(u64::from(circuit_secs)),
                }));
            }
            // A relay that is full now may have room later (others leave, reservations lapse): we ask
            // again after `RESERVE_RETRY`, as for a lost answer. Any other refusal is final.
            RelayMessage::ReserveRefused {
                reason: reason @ RelayRefusal::TooManyReservations,
            } if self.wanted.contains(&relay) && self.asked.remove(&relay) => {
                self.reserved.remove(&relay);
                out.push(Output::Emit(RelayEvent::ReserveRefused { relay, reason }));
            }
            RelayMessage::ReserveRefused { reason }
                if self.asked.remove(&relay) && self.wanted.remove(&relay) =>
            {
                self.reserved.remove(&relay);
                out.push(Output::Emit(RelayEvent::ReserveRefused { relay, reason }));
                self.release(relay, out);
            }
            // A number we hold already would take the circuit of another peer: the relay's fault,
            // counted below, and our connect stays pending until its answer or the relay goes.
            RelayMessage::Opened { circuit, peer }
                if !self.circuits.contains_key(&(relay, circuit))
                    && self.connecting.remove(&(relay, peer)).is_some() =>
            {
                self.circuits.insert((relay, circuit), peer);
                out.push(Output::Emit(RelayEvent::CircuitOpened {
                    relay,
                    circuit,
                    peer,
                    outbound: true,
                }));
            }
            RelayMessage::ConnectRefused { target, reason }
                if self.connecting.remove(&(relay, target)).is_some() =>
            {
                out.push(Output::Emit(RelayEvent::ConnectRefused {
                    relay,
                    target,
                    reason,
                }));
                self.release(relay, out);
            }
            // A number already open is a relay repeating itself (or restarted): the circuit we hold
            // stays, and the repeat is counted below.
            RelayMessage::Incoming { circuit, peer }
                if self.reserved.contains_key(&relay) && !self.circuits.contains_key(&(relay, circuit)) =>
            {
                if self.circuits.len() >= max_circuits {
                    out.push(send(relay, RelayMessage::Close { circuit }));
                    out.push(Output::Dropped {
                        peer: relay,
                        reason: DropReason::Full,
                    });
                    return;
                }
                self.circuits.insert((relay, circuit), peer);
                out.push(Output::Emit(RelayEvent::CircuitOpened {
                    relay,
                    circuit,
                    peer,
                    outbound: false,
                }));
            }
            // A circuit to us through a relay we hold no reservation at (we gave it up, or it lapsed
            // here first): closed, so that the relay frees its slots and the dialer stops waiting.
            RelayMessage::Incoming { circuit, .. } if !self.reserved.contains_key(&relay) => {
                out.push(send(relay, RelayMessage::Close { circuit }));
                out.push(Output::Dropped {
                    peer: relay,
                    reason: DropReason::Unsolicited,
                });
            }
            RelayMessage::Deliver { circuit, payload } if self.circuits.contains_key(&(relay, circuit)) => {
                out.push(Output::Emit(RelayEvent::Datagram {
                    relay,
                    circuit,
                    payload: payload.into_inner(),
                }));
            }
            RelayMessage::Closed { circuit, reason } if self.circuits.remove(&(relay, circuit)).is_some() => {
                out.push(Output::Emit(RelayEvent::CircuitClosed {
                    relay,
                    circuit,
                    reason,
                }));
                self.release(relay, out);
            }
            // A circuit opened for a request that ended (its deadline passed), or under a number we
            // hold: closed, so that the relay frees its slots and the target stops waiting.
            RelayMessage::Opened { circuit, .. } => {
                if !self.circuits.contains_key(&(relay, circuit)) {
                    out.push(send(relay, RelayMessage::Close { circuit }));
                }
                out.push(Output::Dropped {
                    peer: relay,
                    reason: DropReason::Unsolicited,
                });
            }
            // Answers to nothing we asked (or a datagram of a circuit already closed): counted.
            _ => out.push(Output::Dropped {
                peer: relay,
                reason: DropReason::Unsolicited,
            }),
        }
    }
}

fn send(to: PeerId, msg: RelayMessage) -> Output<Relay> {
    Output::Send { to, msg }
}
