//! How requests end: answers (usable, unusable, late, unsolicited) and failures (the request timer, or
//! the connection going down), each counted in the query's [`super::stats::QueryStats`] and in
//! [`super::stats::KadTotals`].

use meshwork_identity::PeerId;
use meshwork_wire::{DropReason, Instant, Output};

use super::queries::{Kind, Purpose, Qid};
use super::state::{Kademlia, Out};
use super::stats::Outcome;
use crate::PeerInfo;
use crate::message::{RequestId, Response};
use crate::store::RecordStore;

impl<S: RecordStore> Kademlia<S> {
    pub(crate) fn on_response(
        &mut self,
        now: Instant,
        from: PeerId,
        id: RequestId,
        response: Response,
        out: &mut Out<S>,
    ) {
        // Only the peer we asked may answer, and only once.
        match self.requests.get(&id) {
            Some(pending) if pending.peer == from => {}
            _ => return self.stray_answer(from, id, out),
        }
        let Some(pending) = self.requests.remove(&id) else {
            return;
        };
        self.on_answer(from, now, out);
        self.table.answered(&from);
        // Before the request's protection ends, so that a new anchor keeps it without a gap. Only
        // a peer that answered us is anchored; one that asks us has proved less.
        if self.anchors.has_room(self.config.anchors) && self.is_connected(&from) {
            self.consider_anchor(from, now, out);
        }
        self.untrack(from, out);
        match pending.purpose {
            Purpose::Liveness => {
                self.count(pending.purpose, Outcome::Answered);
                self.table.on_ping_result(&from, true, now);
            }
            Purpose::Keepalive => self.count(pending.purpose, Outcome::Answered),
            // As a lookup counts its answers: one of the wrong kind is a failure.
            Purpose::Ended => {
                let usable = !matches!(response, Response::Pong | Response::Stored { .. });
                let outcome = if usable {
                    Outcome::Answered
                } else {
                    Outcome::Failed
                };
                self.count(pending.purpose, outcome);
            }
            Purpose::Store(qid) => {
                let usable = matches!(response, Response::Stored { .. });
                self.count(
                    pending.purpose,
                    if usable {
                        Outcome::Answered
                    } else {
                        Outcome::Failed
                    },
                );
                let ok = matches!(response, Response::Stored { ok: true });
                self.store_answer(now, qid, ok, out);
            }
            Purpose::Lookup(qid) => self.lookup_answer(now, qid, from, response, out),
        }
    }

    /// An answer nothing waits for: late (its request timed out) or unsolicited (never asked of this
    /// peer, or answered twice). Either way it is dropped; an unsolicited one is reported.
    fn stray_answer(&mut self, from: PeerId, id: RequestId, out: &mut Out<S>) {
        if self.recent_timeouts.take(id, &from) {
            // Already counted as a timeout; a slow peer is not a hostile one, so no `Dropped`.
            self.totals.late_answers += 1;
            return;
        }
        self.totals.unsolicited += 1;
        out.push(Output::Dropped {
            peer: from,
            reason: DropReason::Unsolicited,
        });
    }

    /// Counts how a request for `purpose` ended, in the totals and in its query's statistics.
    pub(crate) fn count(&mut self, purpose: Purpose, outcome: Outcome) {
        let total = match outcome {
            Outcome::Answered => &mut self.totals.successes,
            Outcome::Failed => &mut self.totals.failures,
            Outcome::TimedOut => &mut self.totals.timeouts,
        };
        *total += 1;
        if let Purpose::Lookup(qid) | Purpose::Store(qid) = purpose {
            if let Some(query) = self.queries.get_mut(&qid) {
                query.stats.count(outcome);
            }
        }
    }

    fn store_answer(&mut self, now: Instant, qid: Qid, accepted: bool, out: &mut Out<S>) {
        let Some(query) = self.queries.get_mut(&qid) else {
            return;
        };
        let Some((outstanding, ok)) = query.storing.as_mut() else {
            return;
        };
        *outstanding = outstanding.saturating_sub(1);
        *ok += usize::from(accepted);
        if *outstanding == 0 {
            if let Some(query) = self.queries.remove(&qid) {
                self.finish_store(now, qid, query, out);
            }
        }
    }

    /// The peers `teller`'s answer names that `keep` accepts, each at the address it was named with
    /// as [`crate::Address::named`] takes it (a relay circuit's virtual address is the naming peer's
    /// own business, and means nothing here). A peer named at an address we would not dial on the
    /// teller's word is left out ([`meshwork_wire::dialable`]): one that cannot be a peer's (port 0,
    /// broadcast, ...), or one reaching less far than the teller's own connection. Lookups dial the
    /// peers they are told of, so a public peer naming twenty made-up peers at loopback, private or
    /// a victim's broadcast addresses would otherwise have every lookup through it send handshakes
    /// there.
    fn named_peers(
        &self,
        teller: &PeerId,
        peers: Vec<PeerInfo>,
        keep: impl Fn(&PeerId) -> bool,
    ) -> Vec<PeerInfo> {
        let teller = self.observed(teller).and_then(crate::Address::socket_addr);
        peers
            .into_iter()
            .filter(|info| keep(&info.id))
            .filter(|info| {
                info.addr
                    .socket_addr()
                    .is_none_or(|addr| meshwork_wire::dialable(addr, teller))
            })
            .map(|info| PeerInfo {
                id: info.id,
                addr: info.addr.named(),
            })
            .collect()
    }

    fn lookup_answer(&mut self, now: Instant, qid: Qid, from: PeerId, response: Response, out: &mut Out<S>) {
        let purpose = Purpose::Lookup(qid);
        let (closer, record, providers) = match response {
            Response::Nodes { closer } => (closer, None, None),
            Response::Value { record, closer } => (closer, record, None),
            Response::Providers { providers, closer } => (closer, None, Some(providers)),
            Response::Pong | Response::Stored { .. } => {
                // A confused or hostile peer: count it as a failure.
                self.count(purpose, Outcome::Failed);
                if let Some(query) = self.queries.get_mut(&qid) {
                    query.lookup.on_failure(&from);
                }
                return self.advance(now, qid, out);
            }
        };
        self.count(purpose, Outcome::Answered);
        // Peers to contact: not us, and solving the puzzle. A provider must solve it too, but may
        // be us (another peer stores our announcement).
        let named = self.named_peers(&from, closer.into_inner(), |peer| self.acceptable(peer));
        let providers = providers.map(|list| {
            let keep = |peer: &PeerId| *peer == self.local || self.acceptable(peer);
            self.named_peers(&from, list.into_inner(), keep)
        });
        let Some(query) = self.queries.get_mut(&qid) else {
            return;
        };
        let target = *query.lookup.target();
        // A record is one answer among those the lookup counts until the quorum (`values.rs`).
        let mut quorum = false;
        if let (Kind::GetValue(found), Some(record)) = (&mut query.kind, record) {
            if record.key == target && record.verify(now, self.config.max_record_ttl).is_ok() {
                let path = query.lookup.path_of(&from);
                found.add(record, self.config.k, path);
                quorum = found.quorum(self.config.value_quorum, query.lookup.paths());
            }
        }
        if let (Kind::GetProviders(found), Some(providers)) = (&mut query.kind, providers) {
            // One answer fills at most half the result: the first to answer cannot shut out every
            // other provider with names of its own making, and the lookup asks `α` peers at least.
            let share = (self.config.k / 2).max(1);
            let mut taken = 0;
            for info in providers {
                if taken < share && found.len() < self.config.k && !found.iter().any(|f| f.id == info.id) {
                    found.push(info);
                    taken += 1;
                }
            }
        }
        query.lookup.on_success(&from, named);
        if quorum {
            return self.finish_lookup(now, qid, out);
        }
        self.advance(now, qid, out);
    }

    /// A request failed: it timed out ([`Outcome::TimedOut`]), or its connection went down
    /// ([`Outcome::Failed`]), or it was never sent (our dial limits; a failure too). Either way its
    /// lookup moves on at once.
    pub(crate) fn request_failed(&mut self, id: RequestId, now: Instant, outcome: Outcome, out: &mut Out<S>) {
        let Some(pending) = self.requests.remove(&id) else {
            return;
        };
        let peer = pending.peer;
        self.untrack(peer, out);
        let outcome = if pending.sent { outcome } else { Outcome::Failed };
        if outcome == Outcome::TimedOut {
            self.recent_timeouts.remember(id, peer);
        }
        self.count(pending.purpose, outcome);
        self.forget_dial(&peer);
        match pending.purpose {
            // A liveness check we could not send says nothing of the oldest entry: the bucket keeps
            // what it has (Kademlia's preference), as it was, and the candidate is dropped.
            Purpose::Liveness if pending.sent => {
                self.table.on_ping_result(&peer, false, now);
            }
            Purpose::Liveness => self.table.abandon_probe(&peer),
            // An anchor that does not answer is no longer one, and its entry counts a failure as a
            // peer's that fails a lookup's request does; one we could not ping (our dial limits) stays.
            Purpose::Keepalive if pending.sent => {
                self.table.on_request_failed(&peer, now);
                self.release_anchor(now, &peer, out);
            }
            Purpose::Keepalive => {}
            Purpose::Store(qid) => self.store_answer(now, qid, false, out),
            Purpose::Lookup(_) | Purpose::Ended => {
                // An unresponsive peer leaves the table after a few failures in a row, or at once if
                // it has not answered for long (its bucket's pending candidate may take its place);
                // one we could not ask stays.
                if pending.sent {
                    self.table.on_request_failed(&peer, now);
                    self.release_anchor(now, &peer, out);
                }
                if let Purpose::Lookup(qid) = pending.purpose {
                    if let Some(query) = self.queries.get_mut(&qid) {
                        query.lookup.on_failure(&peer);
                    }
                    self.advance(now, qid, out);
                }
            }
        }
    }
}
