//! The client side: registering, discovering, asking for hole punches and carrying them out.

use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::relayed::is_relayed;
use meshwork_wire::{DropReason, Instant, Output};

use crate::api::{NatCommand, NatEvent, NatTimer, PunchFailure};
use crate::message::{Namespace, NatMessage};
use crate::protocol::{Nat, unsolicited};

impl Nat {
    pub(crate) fn command(&mut self, now: Instant, command: NatCommand, out: &mut Vec<Output<Self>>) {
        match command {
            NatCommand::Connected { .. } => {}
            NatCommand::Register {
                rendezvous,
                namespace,
                ttl,
            } => {
                self.generation += 1;
                let generation = self.generation;
                self.registrations
                    .insert((rendezvous, namespace.clone()), (ttl, generation));
                out.push(Output::Protect {
                    peer: rendezvous,
                    protect: true,
                });
                if self.connected.contains_key(&rendezvous) {
                    send_register(rendezvous, namespace.clone(), ttl, out);
                } else {
                    self.redial(now, rendezvous, out);
                }
                schedule_renewal(rendezvous, namespace, ttl, generation, out);
            }
            NatCommand::Unregister {
                rendezvous,
                namespace,
            } => {
                if self
                    .registrations
                    .remove(&(rendezvous, namespace.clone()))
                    .is_some()
                {
                    out.push(Output::Send {
                        to: rendezvous,
                        msg: NatMessage::Unregister { namespace },
                    });
                    self.release_if_unused(rendezvous, out);
                }
            }
            NatCommand::Discover {
                rendezvous,
                namespace,
                limit,
                after,
            } => self.discover(rendezvous, namespace, (limit, after), out),
            NatCommand::Connect { rendezvous, target } => self.connect(now, rendezvous, target, out),
        }
    }

    fn connect(&mut self, now: Instant, rendezvous: PeerId, target: PeerId, out: &mut Vec<Output<Self>>) {
        let failed = |reason| Output::Emit(NatEvent::PunchFailed { peer: target, reason });
        // Connected through a relay circuit: the punch goes ahead, to upgrade it.
        if self.directly_connected(&target) {
            out.push(Output::Emit(NatEvent::AlreadyConnected(target)));
            return;
        }
        if !self.connected.contains_key(&rendezvous) {
            out.push(failed(PunchFailure::RendezvousNotConnected));
            return;
        }
        let Some(pending) = self.punches.start(now, target, rendezvous, true) else {
            out.push(failed(PunchFailure::TooMany));
            return;
        };
        let attempt = pending.attempt;
        out.push(Output::Schedule {
            after: self.config.punch_timeout,
            timer: NatTimer::PunchDeadline {
                peer: target,
                attempt,
            },
        });
        out.push(Output::Send {
            to: rendezvous,
            msg: NatMessage::Connect { target },
        });
    }

    /// Handles an answer from a rendezvous; one we did not ask for is counted and dropped.
    pub(crate) fn answer(
        &mut self,
        now: Instant,
        from: PeerId,
        msg: NatMessage,
        out: &mut Vec<Output<Self>>,
    ) {
        match msg {
            NatMessage::Registered {
                namespace,
                ttl_secs,
                addr,
            } if self.registrations.contains_key(&(from, namespace.clone())) => {
                let granted = Duration::from_secs(u64::from(ttl_secs));
                // A rendezvous may grant less than we asked: renewing at what we asked would leave
                // us unregistered from the grant's end to our renewal. We ask for the grant from now
                // on, and renew within it.
                let key = (from, namespace.clone());
                if let Some((ttl, generation)) = self.registrations.get_mut(&key)
                    && granted < *ttl
                {
                    self.generation += 1;
                    (*ttl, *generation) = (granted, self.generation);
                    schedule_renewal(from, namespace.clone(), granted, self.generation, out);
                }
                out.push(Output::Emit(NatEvent::Registered {
                    rendezvous: from,
                    namespace,
                    ttl: granted,
                    addr,
                }));
            }
            NatMessage::RegisterRefused { namespace, reason }
                if self.registrations.remove(&(from, namespace.clone())).is_some() =>
            {
                self.release_if_unused(from, out);
                out.push(Output::Emit(NatEvent::RegisterRefused {
                    rendezvous: from,
                    namespace,
                    reason,
                }));
            }
            NatMessage::Discovered {
                namespace,
                registrations,
                more,
            } if self.discovered(from, &namespace) => {
                out.push(Output::Emit(NatEvent::Discovered {
                    rendezvous: from,
                    namespace,
                    registrations: registrations.into_inner(),
                    more,
                }));
            }
            NatMessage::DiscoverRefused { namespace, reason } if self.discovered(from, &namespace) => {
                out.push(Output::Emit(NatEvent::DiscoverRefused {
                    rendezvous: from,
                    namespace,
                    reason,
                }));
            }
            NatMessage::ConnectRefused { target, reason }
                if self.punches.get(&target).is_some_and(|p| p.via == from) =>
            {
                self.punches.finish(&target);
                out.push(Output::Emit(NatEvent::PunchFailed {
                    peer: target,
                    reason: PunchFailure::Refused(reason),
                }));
            }
            NatMessage::Punch { peer, addr } => self.punch(now, from, peer, addr, out),
            _ => unsolicited(from, out),
        }
    }

    /// The rendezvous `from` tells us to dial `peer` at `addr` now. Only a rendezvous we registered
    /// with, or asked for this punch, may: anyone else could make us send packets to any address.
    fn punch(
        &mut self,
        now: Instant,
        from: PeerId,
        peer: PeerId,
        addr: std::net::SocketAddr,
        out: &mut Vec<Output<Self>>,
    ) {
        let asked = self.punches.get(&peer).is_some_and(|p| p.via == from);
        let registered = self.registered_at(&from);
        // Only the rendezvous coordinating a punch may say where to dial, once: a second `Punch`, or
        // one from another rendezvous, would have us dial wherever it said, as often as it said. Nor
        // is an address that cannot be a peer's (unspecified, multicast, broadcast, port 0, a relay
        // circuit's) dialled.
        let pending = self.punches.get(&peer);
        if asked && pending.is_some_and(|p| p.addr.is_some()) {
            // Both sides asked at once (or the rendezvous repeated itself): one dial plan is enough,
            // and the rendezvous did nothing wrong.
            return;
        }
        let elsewhere = pending.is_some_and(|p| p.via != from);
        // The rendezvous hands out addresses as it observes them, so none reaches less far than our
        // own connection to it: a public rendezvous naming a loopback or private address would have
        // us send packets to our own machine's or network's services.
        let bogus = is_relayed(&addr) || !meshwork_wire::dialable(addr, self.direct_addr(&from));
        if (!asked && !registered) || elsewhere || bogus {
            unsolicited(from, out);
            return;
        }
        if self.directly_connected(&peer) {
            // The other side's dial got through first; `PeerUp` already settled the punch.
            return;
        }
        let timeout = self.config.punch_timeout;
        let Some(pending) = self.punches.start(now, peer, from, false) else {
            out.push(Output::Dropped {
                peer: from,
                reason: DropReason::RateLimited,
            });
            return;
        };
        let fresh = pending.dials == 0 && pending.addr.is_none() && !asked;
        pending.addr = Some(addr);
        pending.dials += 1;
        let attempt = pending.attempt;
        if fresh {
            out.push(Output::Schedule {
                after: timeout,
                timer: NatTimer::PunchDeadline { peer, attempt },
            });
        }
        out.push(Output::Dial(peer));
    }

    /// A direct connection to `peer` is up: a punch towards it, if one was under way, succeeded, and
    /// the connection is kept (protected) while it lasts, among the last
    /// [`NatConfig::max_punched_kept`](crate::NatConfig::max_punched_kept) punched.
    pub(crate) fn punched(&mut self, now: Instant, peer: PeerId, out: &mut Vec<Output<Self>>) {
        if let Some(pending) = self.punches.finish(&peer) {
            self.keep_punched(peer, pending.asked, out);
            let addr = pending.addr.or_else(|| self.direct_addr(&peer));
            out.push(Output::Emit(NatEvent::HolePunched {
                peer,
                addr,
                elapsed: now.saturating_duration_since(pending.started),
            }));
        }
    }

    pub(crate) fn peer_up(&mut self, now: Instant, peer: PeerId, out: &mut Vec<Output<Self>>) {
        // Up through a relay circuit settles no punch: its upgrade does ([`NatCommand::Connected`]
        // with a direct address).
        if self.directly_connected(&peer) {
            self.punched(now, peer, out);
        }
        if self.redialling.remove(&peer).is_some() {
            let again: Vec<(Namespace, Duration)> = self
                .registrations
                .iter()
                .filter(|((r, _), _)| *r == peer)
                .map(|((_, ns), (ttl, _))| (ns.clone(), *ttl))
                .collect();
            for (namespace, ttl) in again {
                send_register(peer, namespace, ttl, out);
            }
        }
    }

    pub(crate) fn peer_down(&mut self, now: Instant, peer: PeerId, out: &mut Vec<Output<Self>>) {
        let attempts = self.config.punch_attempts;
        if let Some(pending) = self.punches.get_mut(&peer)
            && pending.addr.is_some()
        {
            // A punch dial failed: the NATs let nothing through in time. Try again while attempts
            // and time are left; the mappings our earlier packets opened are still there.
            if pending.dials < attempts {
                pending.dials += 1;
                out.push(Output::Dial(peer));
            } else {
                self.punches.finish(&peer);
                out.push(Output::Emit(NatEvent::PunchFailed {
                    peer,
                    reason: PunchFailure::DialsFailed { attempts },
                }));
            }
        }
        self.discoveries_down(&peer, out);
        for target in self.punches.waiting_on(&peer) {
            self.punches.finish(&target);
            out.push(Output::Emit(NatEvent::PunchFailed {
                peer: target,
                reason: PunchFailure::RendezvousNotConnected,
            }));
        }
        if self.registered_at(&peer) {
            self.redial(now, peer, out);
        }
    }

    pub(crate) fn timer(&mut self, now: Instant, timer: NatTimer, out: &mut Vec<Output<Self>>) {
        match timer {
            NatTimer::ObservationExpiry => {
                let changes = self.observed.expire(now);
                self.tell(changes, out);
                self.schedule_expiry(now, out);
            }
            NatTimer::Renew {
                rendezvous,
                namespace,
                generation,
            } => {
                let key = (rendezvous, namespace);
                let Some((ttl, current)) = self.registrations.get(&key).copied() else {
                    return;
                };
                if current != generation {
                    return;
                }
                if self.connected.contains_key(&rendezvous) {
                    send_register(rendezvous, key.1.clone(), ttl, out);
                }
                schedule_renewal(rendezvous, key.1, ttl, generation, out);
            }
            NatTimer::PunchDeadline { peer, attempt } => {
                if self.punches.get(&peer).is_some_and(|p| p.attempt == attempt) {
                    self.punches.finish(&peer);
                    out.push(Output::Emit(NatEvent::PunchFailed {
                        peer,
                        reason: PunchFailure::TimedOut,
                    }));
                }
            }
            NatTimer::RegistryExpiry => self.sweep_registry(now, out),
            NatTimer::DiscoverDeadline {
                rendezvous,
                namespace,
                generation,
            } => self.discover_deadline(rendezvous, namespace, generation, out),
            NatTimer::Redial {
                rendezvous,
                backoff,
                generation,
            } => {
                // A chain that a connection ended, whether or not another loss started a new one
                // since: without this check every connection the rendezvous accepted and closed
                // left one more chain dialling it forever.
                if self.redialling.get(&rendezvous) != Some(&generation) {
                    return;
                }
                let wanted = self.registered_at(&rendezvous);
                if !wanted || self.connected.contains_key(&rendezvous) {
                    self.redialling.remove(&rendezvous);
                    return;
                }
                out.push(Output::Dial(rendezvous));
                let next = (backoff * 2).min(self.config.redial_after * 64);
                out.push(Output::Schedule {
                    after: next,
                    timer: NatTimer::Redial {
                        rendezvous,
                        backoff: next,
                        generation,
                    },
                });
            }
        }
    }

    /// Dials `rendezvous` now and again with backoff until it is connected; at most one chain of
    /// redials per rendezvous.
    fn redial(&mut self, _now: Instant, rendezvous: PeerId, out: &mut Vec<Output<Self>>) {
        if self.redialling.contains_key(&rendezvous) {
            return;
        }
        self.generation += 1;
        let generation = self.generation;
        self.redialling.insert(rendezvous, generation);
        out.push(Output::Dial(rendezvous));
        out.push(Output::Schedule {
            after: self.config.redial_after,
            timer: NatTimer::Redial {
                rendezvous,
                backoff: self.config.redial_after,
                generation,
            },
        });
    }

    /// Whether the client role holds a registration at `rendezvous`.
    pub(crate) fn registered_at(&self, rendezvous: &PeerId) -> bool {
        self.registrations.keys().any(|(r, _)| r == rendezvous)
    }

    /// Stops protecting `rendezvous` once no registration needs it.
    fn release_if_unused(&mut self, rendezvous: PeerId, out: &mut Vec<Output<Self>>) {
        if !self.registered_at(&rendezvous) {
            self.redialling.remove(&rendezvous);
            self.unprotect_unless_needed(rendezvous, out);
        }
    }

    /// Protects the punched connection to `peer`. Punches this node `asked` for and those others asked
    /// for are kept apart, each up to the bound, the oldest released past it: peers that ask our
    /// rendezvous to punch to us, under as many identities as they like, cannot push out the
    /// connections we punched for ourselves.
    fn keep_punched(&mut self, peer: PeerId, asked: bool, out: &mut Vec<Output<Self>>) {
        let max = self.config.max_punched_kept;
        if max == 0 || self.punched_kept.iter().any(|(kept, _)| *kept == peer) {
            return;
        }
        let side = self.punched_kept.iter().filter(|(_, a)| *a == asked).count();
        if side >= max
            && let Some(at) = self.punched_kept.iter().position(|(_, a)| *a == asked)
            && let Some((oldest, _)) = self.punched_kept.remove(at)
        {
            self.unprotect_unless_needed(oldest, out);
        }
        self.punched_kept.push_back((peer, asked));
        out.push(Output::Protect { peer, protect: true });
    }

    /// The connection to `peer` is gone: a punched peer kept is released (a new connection is a new
    /// punch's to keep).
    pub(crate) fn release_punched(&mut self, peer: &PeerId, out: &mut Vec<Output<Self>>) {
        let Some(at) = self.punched_kept.iter().position(|(kept, _)| kept == peer) else {
            return;
        };
        self.punched_kept.remove(at);
        self.unprotect_unless_needed(*peer, out);
    }

    /// A role let go of `peer`: its connection is unprotected, unless another role still needs it
    /// (one protection bit per peer serves every role: [`Nat::needs_protection`]).
    pub(crate) fn unprotect_unless_needed(&self, peer: PeerId, out: &mut Vec<Output<Self>>) {
        if !self.needs_protection(&peer) {
            out.push(Output::Protect { peer, protect: false });
        }
    }
}

fn send_register(rendezvous: PeerId, namespace: Namespace, ttl: Duration, out: &mut Vec<Output<Nat>>) {
    out.push(Output::Send {
        to: rendezvous,
        msg: NatMessage::Register {
            namespace,
            ttl_secs: crate::registry::secs(ttl),
        },
    });
}

/// Renews at three quarters of the TTL, so a late renewal still lands before the registration expires.
fn schedule_renewal(
    rendezvous: PeerId,
    namespace: Namespace,
    ttl: Duration,
    generation: u64,
    out: &mut Vec<Output<Nat>>,
) {
    out.push(Output::Schedule {
        after: (ttl * 3 / 4).max(Duration::from_secs(1)),
        timer: NatTimer::Renew {
            rendezvous,
            namespace,
            generation,
        },
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NatConfig;

    fn peer(n: u8) -> PeerId {
        meshwork_identity::Keypair::from_seed([n; 32]).peer_id()
    }

    /// The peers `out` stops protecting.
    fn released(out: &[Output<Nat>]) -> Vec<PeerId> {
        out.iter()
            .filter_map(|o| match o {
                Output::Protect { peer, protect: false } => Some(*peer),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_punched_peer_another_role_needs_stays_protected_when_it_is_no_longer_kept() {
        let mut nat = Nat::new(NatConfig {
            max_punched_kept: 1,
            ..NatConfig::default()
        });
        let (rendezvous, registrant, other) = (peer(1), peer(2), peer(3));
        let namespace: Namespace = "coin".try_into().unwrap();
        nat.registrations
            .insert((rendezvous, namespace), (Duration::from_secs(60), 1));
        nat.registrants.insert(registrant);
        let mut out = Vec::new();
        // Our rendezvous, punched to and kept, pushed out by our next punch: its registration still
        // needs it.
        nat.keep_punched(rendezvous, true, &mut out);
        nat.keep_punched(other, true, &mut out);
        assert!(released(&out).is_empty());
        // A registrant of our rendezvous role, kept, then gone as a punched peer: still protected.
        nat.keep_punched(registrant, false, &mut out);
        nat.release_punched(&registrant, &mut out);
        assert!(released(&out).is_empty());
        // A punched peer no other role needs is released with its connection.
        nat.release_punched(&other, &mut out);
        assert_eq!(released(&out), vec![other]);
    }
}
