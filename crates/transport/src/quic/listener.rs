//! The QUIC transport's listener: admits inbound handshakes within the limits (half-open budget,
//! per-address caps, eviction when every slot is taken) and hands authenticated connections on.

use std::collections::hash_map::RandomState;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use meshwork_identity::PeerId;
use meshwork_wire::IpPrefix;
use meshwork_wire::relayed::is_relayed;
use tokio::sync::mpsc;

use super::cert::peer_id_of_cert;
use super::connection::{QuicConnection, close_quinn};
use super::handshakes::{Admitted, Crowd, Handshakes, Place};
use super::paths::RelayPaths;
use crate::admission::{AddrSlot, Admission, Candidate, NetGroup, select_victim};
use crate::budget::GlobalBudget;
use crate::counters::Counters;
use crate::registry::{Registry, Slot, watch};
use crate::{CloseReason, Config, Connection, Direction};

/// Accepts QUIC handshakes within the limits and hands authenticated connections to `accept`.
///
/// Admission (ARCHITECTURE.md, hostile peers): at most `max_half_open` handshakes at once, past which an
/// unvalidated source gets a stateless Retry (it must prove it receives at its address before we hold
/// anything for it); caps per IP and per prefix; at most `max_handshakes` under way, the oldest of the
/// most crowded network group evicted past it (`handshakes.rs`); and when every inbound slot is taken, an
/// eviction ([`crate::admission`]) instead of a lock-out.
///
/// An unproven source's handshake takes its place under the per-address caps only once it
/// completes, which proves the address (the handshake's packets reached it). Counted from its first
/// packet, as it once was, a few Initials with a victim's forged source address, never answered,
/// held the victim's IP at its cap for a handshake timeout each: four datagrams every ten seconds
/// kept a chosen peer (or, sixteen, its /24) from connecting to us. An unproven source whose address
/// is at its cap gets a Retry, so an honest one proves itself and is counted then.
pub(super) struct Listener {
    pub(super) endpoint: quinn::Endpoint,
    pub(super) config: Arc<Config>,
    pub(super) counters: Arc<Counters>,
    pub(super) budget: GlobalBudget,
    pub(super) seq: Arc<AtomicU64>,
    pub(super) admission: Arc<Admission>,
    pub(super) salt: RandomState,
    pub(super) registry: Arc<Registry<QuicConnection>>,
    pub(super) paths: RelayPaths,
    pub(super) tx: mpsc::Sender<QuicConnection>,
    /// The handshakes in progress, for eviction past `Limits::max_handshakes`.
    pub(super) handshakes: Arc<Mutex<Handshakes>>,
}

impl Listener {
    pub(super) async fn run(self) {
        let this = Arc::new(self);
        while let Some(incoming) = this.endpoint.accept().await {
            let from = incoming.remote_address();
            let validated = incoming.remote_address_validated();
            let Some(half_open) = half_open_slot(&this.counters, &this.config.limits, validated) else {
                if !validated && incoming.may_retry() {
                    // An error means quinn refused it instead, which is as good.
                    if incoming.retry().is_ok() {
                        Counters::bump(&this.counters.retries_sent);
                    }
                } else {
                    Counters::bump(&this.counters.inbound_refused);
                    tracing::debug!(%from, "inbound handshake refused: half-open limit");
                    incoming.refuse();
                }
                continue;
            };
            let admitted = if validated {
                let Some(admitted) = this.admission.admit(from.ip()) else {
                    Counters::bump(&this.counters.refused_by_address);
                    tracing::debug!(%from, "inbound connection refused: per-IP or per-prefix cap");
                    incoming.refuse();
                    continue;
                };
                Some(admitted)
            } else if this.admission.has_room(from.ip()) {
                None // counted once the handshake proves the address
            } else {
                // At its cap, and unproven: a forged source gets nothing, an honest one answers.
                if !incoming.may_retry() {
                    Counters::bump(&this.counters.refused_by_address);
                    incoming.refuse();
                } else if incoming.retry().is_ok() {
                    Counters::bump(&this.counters.retries_sent);
                }
                continue;
            };
            // Only a validated source gets a place past `max_half_open`, so only one can meet the
            // ceiling: it evicts a handshake under way, or is refused.
            let crowd = if !validated {
                Crowd::Unproven
            } else if is_relayed(&from) {
                Crowd::Relayed(from.ip())
            } else {
                Crowd::Group(NetGroup::of(from.ip()))
            };
            let limits = &this.config.limits;
            let max = limits.max_handshakes.max(limits.max_half_open);
            let (place, cancelled) = match Handshakes::admit(&this.handshakes, crowd, max) {
                Admitted::Place {
                    place,
                    cancelled,
                    evicted,
                } => {
                    if evicted {
                        Counters::bump(&this.counters.handshakes_evicted);
                    }
                    (place, cancelled)
                }
                Admitted::Refused => {
                    Counters::bump(&this.counters.inbound_refused);
                    tracing::debug!(%from, "inbound handshake refused: no handshake it may evict");
                    incoming.refuse();
                    continue;
                }
            };
            let handshake = Handshake {
                incoming,
                half_open,
                admitted,
                place,
                cancelled,
            };
            tokio::spawn(this.clone().handshake(handshake));
        }
    }

    /// Completes an inbound handshake, unless it times out or is evicted first.
    async fn handshake(self: Arc<Self>, handshake: Handshake) {
        let Handshake {
            incoming,
            half_open,
            admitted,
            place,
            cancelled,
        } = handshake;
        let timeout = self.config.timeouts.handshake;
        let conn = match incoming.accept() {
            Ok(connecting) => tokio::select! {
                conn = tokio::time::timeout(timeout, connecting) => conn.ok(),
                // Evicted: dropping `connecting` closes quinn's connection.
                _ = cancelled => None,
            },
            Err(err) => Some(Err(err)),
        };
        // The table's place first: it never holds more than the half-open count shows.
        drop(place);
        drop(half_open);
        let Some(Ok(conn)) = conn else {
            Counters::bump(&self.counters.handshake_failures);
            return;
        };
        let Some(peer) = remote_peer(&conn) else {
            Counters::bump(&self.counters.handshake_failures);
            conn.close(0u32.into(), b"no peer identity");
            return;
        };
        let from = conn.remote_address();
        if is_relayed(&from) && !self.paths.admits(from, peer) {
            // Over a relay path opened for another peer (or closed since): the relay handed us a
            // circuit from someone it did not name. Checked before a slot is found, so it evicts nobody.
            Counters::bump(&self.counters.handshake_failures);
            tracing::debug!(%peer, "inbound connection over a relay path that is not this peer's: refused");
            close_quinn(&conn, &CloseReason::Evicted);
            return;
        }
        let Some(admitted) = admitted.or_else(|| self.admission.admit(from.ip())) else {
            Counters::bump(&self.counters.refused_by_address);
            tracing::debug!(%peer, %from, "inbound connection refused: per-IP or per-prefix cap");
            close_quinn(&conn, &CloseReason::Evicted);
            return;
        };
        let Some(slot) = self.inbound_slot() else {
            Counters::bump(&self.counters.inbound_refused);
            tracing::debug!(%peer, "inbound connection refused: every slot is protected");
            close_quinn(&conn, &CloseReason::Evicted);
            return;
        };
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let conn = QuicConnection::new(
            conn,
            peer,
            Direction::Inbound,
            self.config.clone(),
            self.counters.clone(),
            self.budget.for_connection(),
            seq,
        );
        watch(self.registry.clone(), conn.clone(), (slot, Some(admitted)));
        if is_relayed(&from) {
            self.paths.established(from);
        }
        // Kept or not, the application gets it: a connection that lost a simultaneous-dial tie-break
        // still carries what the peer sent before it learned of the winner, until it closes.
        self.registry.offer(conn.clone());
        if self.tx.send(conn.clone()).await.is_err() {
            Connection::close(&conn, CloseReason::Shutdown);
        }
    }

    /// An inbound slot: a free one, or one made by evicting a connection; `None` if every inbound
    /// connection is protected.
    fn inbound_slot(&self) -> Option<Slot> {
        let limit = self.config.limits.max_inbound;
        if let Some(slot) = Slot::acquire(&self.counters, |c| &c.inbound, limit) {
            return Some(slot);
        }
        let inbound: Vec<_> = self
            .registry
            .all()
            .into_iter()
            .filter(|c| c.direction() == Direction::Inbound && c.close_reason().is_none())
            .collect();
        let candidates = inbound
            .iter()
            .enumerate()
            .map(|(i, c)| Candidate {
                key: i,
                prefix: IpPrefix::of(c.remote_addr().ip()),
                seq: c.seq(),
                rtt: c.quinn().rtt(),
            })
            .collect();
        let victim = &inbound[select_victim(candidates, &self.salt)?];
        tracing::debug!(peer = %victim.remote_peer_id(), addr = %victim.remote_addr(), "evicting an inbound peer to make room");
        Counters::bump(&self.counters.evicted);
        Connection::close(victim, CloseReason::Evicted);
        // The victim's slot is released once its close is seen; until then we hold one over the limit.
        Some(Slot::force(&self.counters, |c| &c.inbound))
    }
}

/// An inbound handshake under way and what it holds: its half-open slot, its place under the
/// per-address caps (`None` for an unproven source, which takes one once the handshake proves its
/// address), and its place in the table of handshakes, with the signal of its eviction.
struct Handshake {
    incoming: quinn::Incoming,
    half_open: Slot,
    admitted: Option<AddrSlot>,
    place: Place,
    cancelled: tokio::sync::oneshot::Receiver<()>,
}

/// A place among the handshakes in progress, if there is one. Past `max_half_open`, an unproven
/// source gets none (the caller answers with a stateless Retry: the token carries everything, so a
/// flood of Initials, spoofed or never answered, costs one datagram each and holds nothing). A source
/// that answered a Retry has proven its address and still gets one, so honest peers get in during a
/// flood; the per-address caps bound it instead.
///
/// Those are bounded per IP, per /24 or /48, and per IPv6 /32
/// ([`Limits::max_inbound_per_ipv6_block`](crate::Limits::max_inbound_per_ipv6_block)), and in all by
/// [`Limits::max_handshakes`](crate::Limits::max_handshakes), past which a newcomer evicts the oldest
/// handshake of the most crowded network group (`handshakes.rs`). A plain ceiling was tried once: an attacker
/// holding it with stalled handshakes from enough prefixes then refused every honest newcomer.
fn half_open_slot(counters: &Arc<Counters>, limits: &crate::Limits, validated: bool) -> Option<Slot> {
    Slot::acquire(counters, |c| &c.half_open, limits.max_half_open)
        .or_else(|| validated.then(|| Slot::force(counters, |c| &c.half_open)))
}

/// The peer a finished handshake authenticated (its certificate was checked by our verifier).
fn remote_peer(conn: &quinn::Connection) -> Option<PeerId> {
    let identity = conn.peer_identity()?;
    let certs = identity
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    peer_id_of_cert(certs.first()?.as_ref()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validated_source_gets_past_the_half_open_budget_and_an_unproven_one_does_not() {
        let counters = Arc::new(Counters::default());
        let limits = crate::Limits {
            max_half_open: 2,
            ..crate::Limits::default()
        };
        let mut held: Vec<Slot> = (0..2)
            .map(|_| half_open_slot(&counters, &limits, false).expect("within the budget"))
            .collect();
        assert!(
            half_open_slot(&counters, &limits, false).is_none(),
            "unproven: a Retry"
        );
        held.extend((0..3).map(|_| half_open_slot(&counters, &limits, true).expect("proven")));
        assert_eq!(counters.half_open.load(Ordering::Acquire), 5);
        drop(held);
        assert_eq!(counters.half_open.load(Ordering::Acquire), 0);
    }
}
