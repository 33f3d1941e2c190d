//! Connections: which ones Kademlia keeps (requests in flight, anchors) and tells the driver's
//! connection manager about, the addresses the driver observed, dials and the messages queued for
//! them, and what a connection coming up or closing does to the requests that wait on it.

use meshwork_identity::PeerId;
use meshwork_wire::{DropReason, Instant, Output};

use super::queries::Purpose;
use super::state::{Kademlia, Out};
use super::stats::Outcome;
use crate::Address;
use crate::message::{Message, RequestId};
use crate::store::RecordStore;

/// Messages queued for a peer we are dialing, at most.
const MAX_QUEUED_PER_PEER: usize = 16;
/// Peers we dial at once, at most (further sends to unconnected peers are dropped, reported as
/// [`DropReason::QueueFull`], and their requests fail at once).
const MAX_DIALING: usize = 256;
/// Addresses the driver reported for peers we hold no connection to, at most.
const MAX_UNCONNECTED_ADDRS: usize = 4096;

/// What we know of a peer's connection.
#[derive(Clone, Debug, Default)]
pub(super) struct Link {
    /// The address the driver observed ([`crate::Command::PeerAddress`]); it wins over what peers claim.
    pub(super) observed: Option<Address>,
    /// Whether the connection is up (between `PeerUp` and `PeerDown`).
    pub(super) up: bool,
}

impl<S: RecordStore> Kademlia<S> {
    /// The driver observed `peer` at `addr` ([`crate::Command::PeerAddress`]): it wins over what peers
    /// claim, and is what the per-prefix limits count.
    pub(super) fn on_peer_address(&mut self, now: Instant, peer: PeerId, addr: Address, out: &mut Out<S>) {
        if addr.is_relayed() {
            // A relay circuit's address says where the relay is, not the peer, and dies with
            // the circuit: the peer has no address we observed now. A lookup of it runs to its
            // end and reports where peers say it is.
            if let Some(link) = self.links.get_mut(&peer) {
                link.observed = None;
            }
            return;
        }
        // Bounded for peers not connected: entries of connections that are up do not count,
        // so a new connection's address (told before its `PeerUp`) finds room however many
        // connections we hold.
        if let Some(link) = self.links.get_mut(&peer) {
            link.observed = Some(addr);
            // Told after the connection came up: a lookup of that peer ends now.
            if link.up {
                self.reached(now, peer, out);
            }
        } else if self.links.len().saturating_sub(self.connected) < MAX_UNCONNECTED_ADDRS {
            let link = Link {
                observed: Some(addr),
                up: false,
            };
            self.links.insert(peer, link);
        }
    }

    /// Whether Kademlia keeps `peer`'s connection: a request to it is in flight, or it is an anchor.
    /// Kademlia holds no connection per routing-table entry (entries are addresses, dialled when a
    /// request needs one); these are its only two reasons.
    pub(super) fn keeps(&self, peer: &PeerId) -> bool {
        self.in_flight.contains_key(peer) || self.anchors.contains(peer)
    }

    /// Applies `change` to the reasons we keep `peer`'s connection ([`Kademlia::keeps`]) and tells
    /// the driver's connection manager ([`Output::Protect`]) when the answer flips, and only then.
    pub(crate) fn protecting(&mut self, peer: PeerId, out: &mut Out<S>, change: impl FnOnce(&mut Self)) {
        let before = self.keeps(&peer);
        change(self);
        let after = self.keeps(&peer);
        if before != after {
            out.push(Output::Protect { peer, protect: after });
        }
    }

    /// A request to `peer` is outstanding: the first protects its connection.
    pub(super) fn track(&mut self, peer: PeerId, out: &mut Out<S>) {
        self.protecting(peer, out, |kad| *kad.in_flight.entry(peer).or_default() += 1);
    }

    /// A request to `peer` ended: after the last, its connection is no longer protected for it.
    pub(crate) fn untrack(&mut self, peer: PeerId, out: &mut Out<S>) {
        self.protecting(peer, out, |kad| {
            if let Some(count) = kad.in_flight.get_mut(&peer) {
                *count -= 1;
                if *count == 0 {
                    kad.in_flight.remove(&peer);
                }
            }
        });
    }

    /// Where we believe `peer` can be reached: what the driver observed, else our table's address,
    /// else the address a lookup under way was told (where two lookups were told different ones,
    /// the one with the smallest query id, the application's before internal ones: a choice that
    /// does not depend on a map's order). The driver reads this to carry out [`Output::Dial`].
    ///
    /// Peers named to a lookup keep their address in it ([`crate::query::Contact`]; within a lookup
    /// the first naming stays): only the few a lookup contacts are ever dialled, and remembering
    /// every named peer's address in a map of its own was a tenth of a simulated network's CPU. A
    /// named address is a claim: a hostile peer may name an honest one at a false address, and the
    /// dial then fails and the lookup moves on, as it does for a peer that left.
    pub fn address_of(&self, peer: &PeerId) -> Option<&Address> {
        self.observed(peer)
            .or_else(|| self.table.get(peer).map(|e| &e.addr).filter(|a| !a.is_unknown()))
            .or_else(|| {
                self.queries
                    .iter()
                    .filter_map(|(qid, query)| Some((qid, &query.lookup.contact(peer)?.addr)))
                    .min_by_key(|(qid, _)| **qid)
                    .map(|(_, addr)| addr)
            })
    }

    /// The address the driver observed `peer` at, if it told us.
    pub(crate) fn observed(&self, peer: &PeerId) -> Option<&Address> {
        self.links.get(peer).and_then(|link| link.observed.as_ref())
    }

    /// Whether our connection to `peer` is up.
    pub(crate) fn is_connected(&self, peer: &PeerId) -> bool {
        self.links.get(peer).is_some_and(|link| link.up)
    }

    /// Whether a message to `to` would be sent or queued (not dropped by the dial limits).
    pub(super) fn can_send(&self, to: &PeerId) -> bool {
        self.is_connected(to)
            || self
                .dialing
                .get(to)
                .map_or(self.dialing.len() < MAX_DIALING, |queue| {
                    queue.len() < MAX_QUEUED_PER_PEER
                })
    }

    pub(crate) fn send(&mut self, now: Instant, to: PeerId, msg: Message, out: &mut Out<S>) {
        if self.is_connected(&to) {
            self.anchors.touch(&to, now);
            out.push(Output::Send { to, msg });
        } else if !self.can_send(&to) {
            self.totals.queue_full += 1;
            out.push(Output::Dropped {
                peer: to,
                reason: DropReason::QueueFull,
            });
        } else if let Some(queue) = self.dialing.get_mut(&to) {
            queue.push(msg);
        } else {
            self.dialing.insert(to, vec![msg]);
            self.totals.dials += 1;
            out.push(Output::Dial(to));
        }
    }

    /// Gives up on a dial nobody reported back on, once no request waits for the peer, so dials the
    /// driver never answered cannot fill the dialing set.
    pub(crate) fn forget_dial(&mut self, peer: &PeerId) {
        if self.dialing.contains_key(peer) && !self.in_flight.contains_key(peer) {
            self.dialing.remove(peer);
        }
    }

    /// The connection to `peer` closed, or a dial to it failed. Requests waiting on a connection
    /// that was up are sent once more on a new one: the peer's connection manager may have closed it
    /// (it cannot know that we wait on an answer), which says nothing of the peer. Requests whose
    /// dial failed, or that were retried already, fail at once, not at their timer: the answer cannot
    /// come on a closed connection.
    pub(super) fn on_peer_down(&mut self, peer: PeerId, now: Instant, out: &mut Out<S>) {
        let was_connected = self
            .links
            .get_mut(&peer)
            .is_some_and(|link| std::mem::take(&mut link.up));
        self.connected = self.connected.saturating_sub(usize::from(was_connected));
        self.dialing.remove(&peer);
        // An anchor whose connection closed is one no longer, and is not dialled for it now: the
        // other side's connection manager may have closed it for holding too many. The next peer of
        // its bucket that answers takes its place, or the one the bucket recruits a period later.
        self.release_anchor(now, &peer, out);
        let mut waiting: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, p)| p.peer == peer)
            .map(|(id, _)| *id)
            .collect();
        // In request order, not the map's: the same inputs must give the same outputs (the simulator
        // replays a seed exactly).
        waiting.sort_unstable();
        let mut again = Vec::new();
        let room = self.dialing.len() < MAX_DIALING;
        for id in waiting {
            let Some(pending) = self.requests.get_mut(&id) else {
                continue;
            };
            // The first close of a live connection under a request says nothing of the peer. The
            // request goes once more on a new connection, unless no query waits for it any more
            // (not worth a dial) or our own dial set is full: then it ends without blame, and the
            // peer keeps its place in the table.
            let first_close = was_connected && pending.retry.is_some();
            if first_close && room && pending.purpose != Purpose::Ended {
                if let Some(request) = pending.retry.take() {
                    again.push(Message::Request { id, request });
                }
                continue;
            }
            if first_close {
                pending.sent = false;
            }
            self.request_failed(id, now, Outcome::Failed, out);
        }
        if again.is_empty() {
            self.links.remove(&peer);
        } else {
            self.totals.retried += again.len() as u64;
            self.dialing.insert(peer, again);
            self.totals.dials += 1;
            out.push(Output::Dial(peer));
        }
    }

    pub(super) fn on_peer_up(&mut self, now: Instant, peer: PeerId, out: &mut Out<S>) {
        let link = self.links.entry(peer).or_default();
        self.connected += usize::from(!std::mem::replace(&mut link.up, true));
        for msg in self.dialing.remove(&peer).unwrap_or_default() {
            if let Message::Request { id, .. } = &msg {
                // Sent now: the answer is due a request timeout from now (or by the backstop).
                let sent_deadline = now + self.config.request_timeout;
                if let Some(pending) = self.requests.get_mut(id) {
                    pending.deadline = pending.deadline.min(sent_deadline);
                    let deadline = pending.deadline;
                    self.arm_deadlines(now, deadline, out);
                }
            }
            out.push(Output::Send { to: peer, msg });
        }
        self.reached(now, peer, out);
    }
}
