//! The runtime's connections to each peer: taking a new one (and resolving simultaneous dials),
//! retiring and closing them (the connection manager's sweep included), choosing the one a message
//! goes to, and dialling.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::net::SocketAddr;

use meshwork_identity::PeerId;
use meshwork_transport::{CloseReason, Connection, Direction, Transport};
use meshwork_wire::DropReason;
use meshwork_wire::relayed::is_relayed;
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::{CLOSE_IDLE, CLOSE_REQUESTED, CLOSE_TRIMMED, Inbox, Runtime, SWEEP_EVERY, monotonic};
use crate::connection::{self, ConnEntry, Queued, Retire};
use crate::manager::Why;
use crate::send_budget::{SendBudget, SendLimits};

impl<T: Transport> Runtime<T> {
    pub(super) fn on_connection(&mut self, conn: T::Connection) {
        let peer = conn.remote_peer_id();
        let addr = conn.remote_addr();
        let link = (addr, conn.stats().rtt);
        self.dialing.remove(&peer);
        if conn.close_reason().is_some() {
            return;
        }
        // A relayed connection's address is its relay circuit's and dies with it: a later dial must
        // find the peer again (a protocol's hook, a new circuit), not a path that is gone.
        if !is_relayed(&addr) {
            self.remember(peer, addr);
        }
        // The transport hands a connection over twice when our dial finds it already open (or lost a
        // simultaneous-dial tie-break and returns the winner, which `accept` also delivered). Two open
        // connections to one peer in one direction are one connection: a dialer that replaced its
        // connection had the old one closed by the transport before the new one got here. (One we are
        // retiring is not compared: a peer may dial again while it closes.) A direct connection beside
        // a relayed one is another connection: the upgrade a hole punch brings.
        let relayed = is_relayed(&addr);
        let known = self.peers.get(&peer).is_some_and(|conns| {
            conns.iter().any(|c| {
                c.conn.direction() == conn.direction()
                    && is_relayed(&c.conn.remote_addr()) == relayed
                    && c.takes_messages()
            })
        });
        if known {
            return;
        }
        let upgrade = !relayed && self.relayed_without_loss(&peer);
        let id = self.next_conn;
        self.next_conn += 1;
        let budget = SendBudget::new(&self.send_bytes, &self.metrics.send_queue_bytes());
        let entry = connection::start(
            id,
            conn,
            &self.routes,
            self.config.send_queue_per_peer + self.config.control_queue_per_peer,
            budget,
            self.config.write_deadline,
            &self.inbox_tx,
        );
        let was_connected = self.connected(&peer);
        let conns = self.peers.entry(peer).or_default();
        conns.push(entry);
        let first = conns.len() == 1;
        self.retire_duplicates(peer);
        // Before any protocol hears `PeerUp` (and sends more): what was sent first is queued first.
        self.flush_waiting(peer);
        if !first && !was_connected && upgrade {
            // The relayed connection was already retiring when its replacement arrived (the peer
            // took the direct one first, and finished the relayed one): what was sent meanwhile
            // waited for this connection, so nothing was lost and the protocols need no bounce.
            self.redial.remove(&peer);
            self.manager.up(peer, monotonic());
        } else if !first && !was_connected {
            // A new connection while the old ones retire: the peer is back for every protocol, and
            // a redial waiting for the old ones to close is no longer needed. What waited for it went
            // out above. Protocols hear a bounce, `PeerDown` then `PeerUp`: a message sent while
            // the old connections were closing for a reason that allows no wait (a peer we released)
            // was dropped, and a `PeerDown` is what tells them to ask again (Kademlia resends a
            // request whose peer went down).
            debug!(%peer, %addr, "peer up again while its old connections close");
            self.redial.remove(&peer);
            self.released.remove(&peer);
            self.manager.up(peer, monotonic());
            self.peer_down(peer);
            let now = self.now();
            for slot in &mut self.slots {
                slot.peer_up(now, peer, link, &mut self.actions);
            }
        }
        if upgrade {
            // The direct connection is preferred from now on (on both sides); the relayed one
            // retires after `UPGRADE_GRACE`. The protocols keep the peer; their hooks learn its
            // direct address and round trip.
            info!(%peer, %addr, "relayed connection upgraded to a direct one");
            self.metrics.upgraded();
            let now = self.now();
            for slot in &mut self.slots {
                slot.link_changed(now, peer, link, &mut self.actions);
            }
        }
        if first {
            debug!(%peer, %addr, "peer up");
            self.metrics.peers().inc();
            self.manager.up(peer, monotonic());
            let now = self.now();
            for slot in &mut self.slots {
                slot.peer_up(now, peer, link, &mut self.actions);
            }
        }
    }

    pub(super) fn on_closed(&mut self, peer: PeerId, conn: u64) {
        let local = self.transport.peer_id();
        let Entry::Occupied(mut entry) = self.peers.entry(peer) else {
            return;
        };
        let was_direct = preferred(local, peer, entry.get(), &[])
            .is_some_and(|c| c.id == conn && !is_relayed(&c.conn.remote_addr()));
        entry.get_mut().retain(|c| c.id != conn);
        if !entry.get().is_empty() {
            self.after_close(peer, was_direct);
        } else {
            entry.remove();
            self.released.remove(&peer);
            self.manager.down(&peer);
            debug!(%peer, "peer down");
            self.metrics.peers().dec();
            self.peer_down(peer);
            if self.redial.remove(&peer) || self.waiting.contains_key(&peer) {
                self.dial(peer);
            }
        }
    }

    /// After a simultaneous dial both sides hold two connections to each other. Both keep the same
    /// one ([`preferred`]) and retire the other gracefully: what either side wrote to it before it
    /// learned of the winner still arrives, and nothing new is written to it. A relayed connection
    /// that a direct one replaced retires later, after [`super::UPGRADE_GRACE`] (see [`super::upgrade`]).
    pub(super) fn retire_duplicates(&mut self, peer: PeerId) {
        let local = self.transport.peer_id();
        let deadline = self.config.drain_deadline;
        let undrained = self.metrics.undrained();
        let Some(conns) = self.peers.get_mut(&peer) else {
            return;
        };
        let keep = preferred(local, peer, conns, &[]);
        let direct_kept = keep.is_some_and(|c| !is_relayed(&c.conn.remote_addr()));
        let keep = keep.map(|c| c.id);
        for entry in conns.iter_mut() {
            if Some(entry.id) != keep && entry.takes_messages() {
                if direct_kept && is_relayed(&entry.conn.remote_addr()) {
                    // Replaced by a direct connection: retired by the sweep after `UPGRADE_GRACE`,
                    // once the peer has surely taken the direct one too.
                    self.upgraded.entry(peer).or_insert_with(monotonic);
                    continue;
                }
                debug!(%peer, conn = entry.id, "retiring the loser of a simultaneous dial");
                connection::retire(
                    entry,
                    CloseReason::Duplicate,
                    Retire::BothWays,
                    deadline,
                    undrained.clone(),
                );
            }
        }
    }

    /// The peer ended a stream of connection `conn`: it is closing the connection (its connection
    /// manager trimmed it, or it retired it otherwise). We retire our side too, so what we already
    /// wrote is read before the close, and nothing new goes to it.
    pub(super) fn on_peer_finished(&mut self, peer: PeerId, conn: u64) {
        let deadline = self.config.drain_deadline;
        let undrained = self.metrics.undrained();
        let Some(conns) = self.peers.get_mut(&peer) else {
            return;
        };
        if let Some(entry) = conns.iter_mut().find(|c| c.id == conn && c.takes_messages()) {
            debug!(%peer, conn, "the peer is closing the connection: retiring our side");
            let reason = CloseReason::Application(CLOSE_REQUESTED);
            connection::retire(entry, reason, Retire::Mirrored, deadline, undrained);
        }
        if !conns.iter().any(|c| c.takes_messages()) {
            self.manager.down(&peer);
        }
    }

    /// Whether a connection to `peer` takes new messages (one that is retiring does not).
    pub(super) fn connected(&self, peer: &PeerId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|conns| conns.iter().any(|c| c.takes_messages()))
    }

    /// Closes every connection to `peer` gracefully with close code `code`, retired `how`: what was
    /// queued to it is still written and read by the peer first (a protocol's last message, say
    /// gossip's `Disconnect`, is not lost).
    pub(super) fn close(&mut self, peer: &PeerId, code: u32, how: Retire) {
        let deadline = self.config.drain_deadline;
        self.manager.down(peer);
        for entry in self.peers.get_mut(peer).into_iter().flatten() {
            let reason = CloseReason::Application(code);
            connection::retire(entry, reason, how, deadline, self.metrics.undrained());
        }
        self.redial.remove(peer);
    }

    /// The connection manager's round ([`crate::manager`]): closes idle connections, trims the node
    /// back to its target when above the high watermark, and publishes the counts by state.
    pub(super) fn sweep(&mut self) {
        let now = monotonic();
        self.next_sweep = now + SWEEP_EVERY;
        self.retire_upgraded(now);
        for (peer, why) in self.manager.to_close(now) {
            debug!(%peer, reason = why.label(), "connection manager: closing");
            self.metrics.managed_close(why);
            let code = match why {
                Why::Idle => CLOSE_IDLE,
                Why::Trimmed => CLOSE_TRIMMED,
            };
            self.close(&peer, code, Retire::Managed);
        }
        self.metrics.connection_states(self.manager.states(now));
    }

    /// Queues `bytes` (a control message if `control`) for `to` on `route`.
    pub(super) fn send(&mut self, to: PeerId, route: usize, bytes: Vec<u8>, control: bool) {
        self.send_avoiding(to, route, (bytes, control), None, DropReason::ConnectionClosed);
    }

    /// Queues `bytes` on the best connection to `to` that takes messages (not `avoid`, whose writer
    /// gave them back), trying the next if a writer has ended; counts a drop for `otherwise` if none
    /// can take them, or for a full queue or budget. A data message finds the queue full once only the
    /// control reserve is left ([`crate::NodeConfig::control_queue_per_peer`]); a control message
    /// (`control`) may use the reserve.
    pub(super) fn send_avoiding(
        &mut self,
        to: PeerId,
        route: usize,
        (mut bytes, control): (Vec<u8>, bool),
        avoid: Option<u64>,
        otherwise: DropReason,
    ) {
        let reserve = self.config.control_queue_per_peer;
        let limits = SendLimits {
            per_peer: self.config.send_bytes_per_peer,
            reserved: self.config.send_bytes_reserved_per_peer,
            total: self.config.send_bytes_total,
        };
        let local = self.transport.peer_id();
        let conns = self.peers.get(&to).map(Vec::as_slice).unwrap_or_default();
        // Connections tried already (empty, so not allocated, unless a writer gave frames back).
        let mut skip: Vec<u64> = avoid.into_iter().collect();
        while let Some(entry) = preferred(local, to, conns, &skip) {
            let writer = &entry.writers[route];
            if !control && writer.capacity() <= reserve && !writer.is_closed() {
                return self.undelivered(to, route, &bytes, DropReason::QueueFull);
            }
            let held = match entry.budget.reserve(bytes.capacity(), limits) {
                Ok(held) => held,
                // Past the peer's byte budget (it reads slower than we send), or the node's (spent by
                // others): the reason says which.
                Err(reason) => return self.undelivered(to, route, &bytes, reason),
            };
            match writer.try_send(Box::new(Queued { bytes, held, control })) {
                Ok(()) => {
                    self.manager.touch(&to, monotonic());
                    return;
                }
                Err(mpsc::error::TrySendError::Full(queued)) => {
                    return self.undelivered(to, route, &queued.bytes, DropReason::QueueFull);
                }
                // That writer ended (its connection is closing): try the next connection.
                Err(mpsc::error::TrySendError::Closed(queued)) => {
                    bytes = queued.bytes;
                    skip.push(entry.id);
                }
            }
        }
        // Every connection is retiring (a trim, ours or the peer's): the protocols still see the peer
        // up, and what they send waits for its next connection.
        let reopens = conns.iter().any(ConnEntry::reopens);
        if otherwise == DropReason::ConnectionClosed && reopens {
            return self.wait_for_connection(to, route, (bytes, control), limits);
        }
        self.undelivered(to, route, &bytes, otherwise);
    }

    /// Counts a message for `to` on `route` that was dropped for `reason` before it was written, and
    /// hands it back to its protocol ([`meshwork_wire::Protocol::undelivered`]).
    pub(super) fn undelivered(&mut self, to: PeerId, route: usize, bytes: &[u8], reason: DropReason) {
        self.dropped(to, route, reason);
        let (slot, channel) = (self.routes[route].slot, self.routes[route].channel);
        let now = self.now();
        self.slots[slot].undelivered(now, to, channel, bytes, reason, &mut self.actions);
    }

    /// Counts a message to or from `peer` on `route` that was dropped for `reason`, and names the peer
    /// in the debug log.
    pub(super) fn dropped(&self, peer: PeerId, route: usize, reason: DropReason) {
        let route = &self.routes[route];
        debug!(%peer, protocol = %route.id, %reason, "message dropped");
        route.metrics.dropped(reason);
    }

    pub(super) fn dial(&mut self, peer: PeerId) {
        self.dial_at(peer, None);
    }

    /// Dials `peer` at `given`, or where [`Runtime::address_of`] says. A dial to a given address (a
    /// relay circuit's) goes ahead even while another dial to the peer is under way: that one may be
    /// waiting out its timeout at an address a NAT drops, and the circuit is why we were asked. Should
    /// both succeed, the transport keeps one connection, as after simultaneous dials.
    pub(super) fn dial_at(&mut self, peer: PeerId, given: Option<SocketAddr>) {
        let busy = given.is_none() && self.dialing.contains(&peer);
        if peer == self.transport.peer_id() || self.connected(&peer) || busy {
            return;
        }
        if self.peers.contains_key(&peer) {
            // Only retiring connections: dial again once they have closed (and `PeerDown` was told).
            self.redial.insert(peer);
            return;
        }
        let Some(addr) = given.or_else(|| self.address_of(&peer)) else {
            debug!(%peer, "no address to dial");
            self.metrics.dial_failed();
            self.drop_waiting(peer);
            self.peer_down(peer);
            return;
        };
        self.spawn_dial(peer, addr);
    }

    /// Dials `peer` at `addr` in a task of its own: the connection, or [`Inbox::DialFailed`], comes
    /// back through the runtime's queues.
    fn spawn_dial(&mut self, peer: PeerId, addr: SocketAddr) {
        self.dialing.insert(peer);
        self.dial_task(peer, addr, |peer, _, failure| {
            failure.map(|reason| Inbox::DialFailed { peer, reason })
        });
    }

    /// Starts a dial of `peer` at `addr`, bounded by the dial timeout, in a task of its own. The
    /// connection goes where accepted ones go; `ended` turns the outcome (`None` once connected, else
    /// why not) into what the inbox hears, if anything.
    pub(super) fn dial_task(
        &self,
        peer: PeerId,
        addr: SocketAddr,
        ended: fn(PeerId, SocketAddr, Option<String>) -> Option<Inbox>,
    ) {
        self.metrics.dial_started();
        let (transport, conns, inbox) = (
            self.transport.clone(),
            self.conns_tx.clone(),
            self.inbox_tx.clone(),
        );
        let timeout = self.config.dial_timeout;
        tokio::spawn(async move {
            let failure = match tokio::time::timeout(timeout, transport.dial(peer, addr)).await {
                Ok(Ok(conn)) => {
                    let _ = conns.send(conn).await;
                    None
                }
                Ok(Err(err)) => Some(err.to_string()),
                Err(_) => Some(format!("no answer within {timeout:?}")),
            };
            if let Some(news) = ended(peer, addr, failure) {
                let _ = inbox.send(news).await;
            }
        });
    }
}

/// `peer`'s best connection that takes messages, leaving out the ids in `skip`: a direct one before
/// one through a relay circuit, then the one both sides keep after a simultaneous dial (dialed by the
/// smaller `PeerId`; the newer of two in one direction), else the newest, as the transport's registry
/// decides. No allocation: it runs for every send.
pub(super) fn preferred<'a, C: Connection>(
    local: PeerId,
    peer: PeerId,
    conns: &'a [ConnEntry<C>],
    skip: &[u64],
) -> Option<&'a ConnEntry<C>> {
    let dialer = |c: &ConnEntry<C>| match c.conn.direction() {
        Direction::Outbound => local,
        Direction::Inbound => peer,
    };
    conns
        .iter()
        .filter(|c| c.takes_messages() && !skip.contains(&c.id))
        .min_by_key(|c| {
            let relayed = is_relayed(&c.conn.remote_addr());
            (relayed, dialer(c) != local.min(peer), Reverse(c.id))
        })
}
