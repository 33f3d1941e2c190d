//! The rendezvous role: registrations, discovery, and coordinating hole punches.

use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::relayed::is_relayed;
use meshwork_wire::{BoundedVec, Instant, Output};

use crate::api::NatTimer;
use crate::message::{NatMessage, Refusal};
use crate::prefix::prefix_of;
use crate::protocol::{Ask, Asker, Bucket, Nat, unsolicited};
use crate::registry::secs;

/// Budgets a rendezvous keeps at most; past it, budgets that refilled are forgotten, and a new asker
/// is refused until one has.
const MAX_BUDGETS: usize = 4096;

/// How often the rendezvous purges expired registrations while it protects a registrant: expired
/// ones hold their protection at most this much longer (the shortest TTL it accepts is 10 s).
const REGISTRY_SWEEP: Duration = Duration::from_secs(10);

impl Nat {
    /// Answers a request `from` a peer; a node without the rendezvous role refuses.
    pub(crate) fn serve(&mut self, now: Instant, from: PeerId, msg: NatMessage, out: &mut Vec<Output<Self>>) {
        let addr = self.direct_addr(&from);
        let Some(registry) = self.registry.as_mut() else {
            refuse(from, msg, Refusal::NotARendezvous, out);
            return;
        };
        match msg {
            NatMessage::Register { namespace, ttl_secs } => {
                let Some(addr) = addr else {
                    // The driver never said where this peer's connection comes from: nothing to
                    // register (a driver without the `on_connected` hook cannot host a rendezvous).
                    refuse(
                        from,
                        NatMessage::Register { namespace, ttl_secs },
                        Refusal::AddressUnknown,
                        out,
                    );
                    return;
                };
                let ttl = Duration::from_secs(u64::from(ttl_secs));
                let reply = match registry.register(now, from, addr, namespace.clone(), ttl) {
                    Ok(ttl) => {
                        self.protect_registrant(from, out);
                        NatMessage::Registered {
                            namespace,
                            ttl_secs: secs(ttl),
                            addr,
                        }
                    }
                    Err(reason) => NatMessage::RegisterRefused { namespace, reason },
                };
                out.push(Output::Send { to: from, msg: reply });
            }
            NatMessage::Unregister { namespace } => {
                registry.unregister(&from, &namespace);
                self.release_registrant(from, out);
            }
            NatMessage::Discover {
                namespace,
                limit,
                after,
            } => {
                if !self.take_token(now, Ask::Discover, from) {
                    let reply = NatMessage::DiscoverRefused {
                        namespace,
                        reason: Refusal::RateLimited,
                    };
                    return out.push(Output::Send { to: from, msg: reply });
                }
                let Some(registry) = self.registry.as_mut() else {
                    return;
                };
                let (page, more) = registry.discover(now, &namespace, &from, after, usize::from(limit));
                // The registry caps a page at the bound, so the conversion cannot fail.
                let registrations = BoundedVec::try_from(page).unwrap_or_default();
                out.push(Output::Send {
                    to: from,
                    msg: NatMessage::Discovered {
                        namespace,
                        registrations,
                        more,
                    },
                });
            }
            NatMessage::Connect { target } => self.coordinate(now, from, target, out),
            _ => unsolicited(from, out),
        }
    }

    /// Protects a peer that registered here (the connection manager must not close it: behind a NAT
    /// it cannot be dialled back), and sets the sweep that releases it once its registrations expire.
    fn protect_registrant(&mut self, peer: PeerId, out: &mut Vec<Output<Self>>) {
        if self.registrants.insert(peer) {
            out.push(Output::Protect { peer, protect: true });
        }
        self.schedule_registry_sweep(out);
    }

    /// Sets the registry's sweep timer, unless it is set.
    fn schedule_registry_sweep(&mut self, out: &mut Vec<Output<Self>>) {
        if !self.registry_sweep_scheduled {
            self.registry_sweep_scheduled = true;
            out.push(Output::Schedule {
                after: REGISTRY_SWEEP,
                timer: NatTimer::RegistryExpiry,
            });
        }
    }

    /// Stops protecting the registrants that no longer hold a registration, unless the client role
    /// still needs them (its own rendezvous, or a punched peer it keeps: one protection bit serves
    /// every role).
    fn release_registrants(&mut self, out: &mut Vec<Output<Self>>) {
        let Some(registry) = self.registry.as_ref() else {
            return;
        };
        let gone: Vec<PeerId> = self
            .registrants
            .iter()
            .filter(|p| !registry.holds(p))
            .copied()
            .collect();
        for peer in gone {
            self.registrants.remove(&peer);
            self.unprotect_unless_needed(peer, out);
        }
    }

    /// A peer's connection closed: its registrations go with it ([`crate::Registry::remove_peer`]),
    /// and its protection if nothing else holds it. It registers again when it reconnects.
    pub(crate) fn registrant_down(&mut self, peer: &PeerId, out: &mut Vec<Output<Self>>) {
        if let Some(registry) = self.registry.as_mut() {
            registry.remove_peer(peer);
            self.release_registrant(*peer, out);
        }
    }

    /// Stops protecting `peer` if it no longer holds a registration (and the client role does not
    /// need it): one peer's change looks at that peer only, not at every registrant.
    fn release_registrant(&mut self, peer: PeerId, out: &mut Vec<Output<Self>>) {
        let holds = self.registry.as_ref().is_some_and(|r| r.holds(&peer));
        if !holds && self.registrants.remove(&peer) {
            self.unprotect_unless_needed(peer, out);
        }
    }

    /// The registry's sweep: expired registrations go, and so does their peers' protection; set again
    /// while anyone is protected.
    pub(crate) fn sweep_registry(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        self.registry_sweep_scheduled = false;
        if let Some(registry) = self.registry.as_mut() {
            registry.expire(now);
        }
        self.release_registrants(out);
        if !self.registrants.is_empty() {
            self.schedule_registry_sweep(out);
        }
    }

    /// Tells `from` and `target` to dial each other at once, each at the address its connection to
    /// us comes from. Only for a target that holds a registration here: registering is how a peer
    /// consents to being found, and a peer merely connected (one whose id is public, say) would
    /// otherwise have its address handed to anyone who names it. It would drop our `Punch` anyway,
    /// taking one only from a rendezvous it registered with (`client.rs`).
    fn coordinate(&mut self, now: Instant, from: PeerId, target: PeerId, out: &mut Vec<Output<Self>>) {
        let refused = |reason| Output::Send {
            to: from,
            msg: NatMessage::ConnectRefused { target, reason },
        };
        if !self.take_token(now, Ask::Punch, from) {
            out.push(refused(Refusal::RateLimited));
            return;
        }
        let ends = (self.direct_addr(&from), self.direct_addr(&target));
        let (Some(from_addr), Some(target_addr)) = ends else {
            out.push(refused(Refusal::TargetNotConnected));
            return;
        };
        let registered = self.registry.as_ref().is_some_and(|r| r.holds(&target));
        if from == target || !registered {
            out.push(refused(Refusal::TargetNotConnected));
            return;
        }
        // The target first: its `Punch` then leaves no later than the asker's, and the asker, which
        // waited for this, dials at about the moment the target does.
        out.push(Output::Send {
            to: target,
            msg: NatMessage::Punch {
                peer: from,
                addr: from_addr,
            },
        });
        out.push(Output::Send {
            to: from,
            msg: NatMessage::Punch {
                peer: target,
                addr: target_addr,
            },
        });
    }

    /// Takes one of the asker's requests of kind `ask` for this minute, if it has one left. The budget
    /// is the asker's network's (its prefix; the peer itself if we were not told where it is or it is
    /// on loopback; one shared by all peers on relayed connections), and
    /// outlives its connection: identities are free, and a peer that reconnected started with a full
    /// budget. (No punch budget per target: one asker could then spend a peer's for everyone. A
    /// target bounds the punches others ask of it itself, `punch.rs`.)
    fn take_token(&mut self, now: Instant, ask: Ask, from: PeerId) -> bool {
        let asker = match self.connected.get(&from).copied().flatten() {
            Some(addr) if is_relayed(&addr) => Asker::Relayed,
            Some(addr) => prefix_of(addr.ip()).map_or(Asker::Peer(from), Asker::Net),
            None => Asker::Peer(from),
        };
        let key = (ask, asker);
        let config = &self.config;
        let rate_of = |ask: Ask| {
            f64::from(match ask {
                Ask::Punch => config.connects_per_minute,
                Ask::Discover => config.discovers_per_minute,
            })
        };
        let rate = rate_of(ask);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= MAX_BUDGETS {
            // Forget the budgets that refilled: they are what a new one starts as.
            self.buckets
                .retain(|(ask, _), bucket| bucket.refilled(now, rate_of(*ask)) < rate_of(*ask));
            if self.buckets.len() >= MAX_BUDGETS {
                return false;
            }
        }
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        bucket.tokens = bucket.refilled(now, rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The refusal that answers `msg`, if it is a request that has one.
fn refuse(to: PeerId, msg: NatMessage, reason: Refusal, out: &mut Vec<Output<Nat>>) {
    let reply = match msg {
        NatMessage::Register { namespace, .. } => NatMessage::RegisterRefused { namespace, reason },
        NatMessage::Connect { target } => NatMessage::ConnectRefused { target, reason },
        NatMessage::Discover { namespace, .. } => NatMessage::DiscoverRefused { namespace, reason },
        _ => return,
    };
    out.push(Output::Send { to, msg: reply });
}
