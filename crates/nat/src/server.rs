//! The rendezvous role: registrations, discovery, and coordinating hole punches.

use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::{BoundedVec, Instant, Output};

use crate::message::{NatMessage, Refusal};
use crate::protocol::{Bucket, Nat, unsolicited};
use crate::registry::secs;

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
                    Ok(ttl) => NatMessage::Registered {
                        namespace,
                        ttl_secs: secs(ttl),
                        addr,
                    },
                    Err(reason) => NatMessage::RegisterRefused { namespace, reason },
                };
                out.push(Output::Send { to: from, msg: reply });
            }
            NatMessage::Unregister { namespace } => registry.unregister(&from, &namespace),
            NatMessage::Discover {
                namespace,
                limit,
                after,
            } => {
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

    /// Tells `from` and `target` to dial each other at once, each at the address its connection to
    /// us comes from.
    fn coordinate(&mut self, now: Instant, from: PeerId, target: PeerId, out: &mut Vec<Output<Self>>) {
        let refused = |reason| Output::Send {
            to: from,
            msg: NatMessage::ConnectRefused { target, reason },
        };
        if !self.take_token(now, from) {
            out.push(refused(Refusal::RateLimited));
            return;
        }
        let ends = (self.direct_addr(&from), self.direct_addr(&target));
        let (Some(from_addr), Some(target_addr)) = ends else {
            out.push(refused(Refusal::TargetNotConnected));
            return;
        };
        if from == target {
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

    /// Takes one of `peer`'s coordinated punches for this minute, if it has one left.
    fn take_token(&mut self, now: Instant, peer: PeerId) -> bool {
        let rate = f64::from(self.config.connects_per_minute);
        let bucket = self.buckets.entry(peer).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * rate / 60.0;
        bucket.tokens = (bucket.tokens + refill).min(rate);
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
