//! The node task: it owns every protocol's state and the table of connections, and is the only place
//! protocol code runs. Everything reaches it through one bounded inbox (frames, handle calls, connection
//! news) or as a connection from the accept loop and dials; it answers with actions.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_transport::{CloseReason, Connection, Direction, Frame, Transport};
use meshwork_wire::{DropReason, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant as TokioInstant;
use tracing::{debug, info, warn};

use crate::NodeConfig;
use crate::connection::{self, ConnEntry, Queued, Retire, Route};
use crate::manager::{Manager, Why};
use crate::metrics::Metrics;
use crate::send_budget::{SendBudget, SendLimits};
use crate::slot::{Action, AnyCall, Slot};

/// The close code sent to a peer that broke a protocol's framing or encoding.
pub const CLOSE_PROTOCOL_VIOLATION: u32 = 1;
/// The close code sent when a protocol asked to disconnect a peer.
pub const CLOSE_REQUESTED: u32 = 2;
/// The close code sent to a peer that stopped reading what we write, or trickled a frame past its
/// deadline.
pub const CLOSE_STALLED: u32 = 3;
/// The close code sent when the connection manager closes a connection that carried nothing for its
/// idle timeout ([`ConnectionLimits::idle_timeout`](crate::ConnectionLimits)).
pub const CLOSE_IDLE: u32 = 4;
/// The close code sent when the connection manager trims the node's connections back to its target
/// ([`ConnectionLimits::low_watermark`](crate::ConnectionLimits)).
pub const CLOSE_TRIMMED: u32 = 5;

/// How often the connection manager looks for connections to close.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The most addresses the node remembers; beyond it an arbitrary old entry is forgotten.
const MAX_ADDRESSES: usize = 65_536;

/// What reaches the node task.
pub(crate) enum Inbox {
    /// A frame from `peer` on route (a protocol's channel) `route`.
    Frame {
        peer: PeerId,
        conn: u64,
        route: usize,
        bytes: Frame,
    },
    /// A writer could not write these frames to connection `conn` (it closed, or the stream broke):
    /// they go to another connection to the peer, or are counted as dropped for `reason`.
    Unsent {
        peer: PeerId,
        conn: u64,
        route: usize,
        frames: Vec<Vec<u8>>,
        reason: DropReason,
    },
    /// The peer broke the framing (a frame over the protocol's maximum).
    Invalid { peer: PeerId, reason: String },
    /// A write to connection `conn`, or a frame from it, made no progress within its deadline.
    Stalled { peer: PeerId, conn: u64 },
    /// A handle's request for protocol `slot`.
    Call { slot: usize, call: AnyCall },
    /// Connection `conn` to `peer` closed, and every frame that had arrived on it was handed over.
    Closed { peer: PeerId, conn: u64 },
    /// `peer` ended one of its streams on connection `conn`, which it does only to close it.
    PeerFinished { peer: PeerId, conn: u64 },
    /// A dial failed or timed out.
    DialFailed { peer: PeerId, reason: String },
    /// A request from [`Node`](crate::Node).
    Control(Control),
}

/// Node-level requests.
pub(crate) enum Control {
    AddAddress(PeerId, SocketAddr),
    Dial(PeerId, SocketAddr),
    Disconnect(PeerId),
    Peers(oneshot::Sender<Vec<(PeerId, SocketAddr)>>),
    Shutdown(oneshot::Sender<()>),
}

pub(crate) struct Runtime<T: Transport> {
    pub(crate) transport: Arc<T>,
    pub(crate) config: NodeConfig,
    pub(crate) metrics: Metrics,
    pub(crate) slots: Vec<Box<dyn Slot>>,
    pub(crate) routes: Arc<Vec<Route>>,
    pub(crate) inbox_tx: mpsc::Sender<Inbox>,
    pub(crate) conns_tx: mpsc::Sender<T::Connection>,
    /// Wall-clock time at start, as protocol time (nanoseconds since the Unix epoch), and the monotonic
    /// instant it corresponds to: protocol time advances with the monotonic clock from there.
    pub(crate) epoch: (Instant, TokioInstant),
    pub(crate) peers: HashMap<PeerId, Vec<ConnEntry<T::Connection>>>,
    /// Connected peers that some protocols released (`Output::Disconnect`): a bit per slot. The
    /// connection closes when every slot has released the peer (ARCHITECTURE.md).
    pub(crate) released: HashMap<PeerId, u64>,
    pub(crate) addresses: HashMap<PeerId, SocketAddr>,
    pub(crate) dialing: HashSet<PeerId>,
    /// Peers a protocol wants while their only connections are retiring: dialled again once closed.
    pub(crate) redial: HashSet<PeerId>,
    pub(crate) timers: BinaryHeap<Reverse<(TokioInstant, u64, usize, u64)>>,
    pub(crate) timer_seq: u64,
    pub(crate) next_conn: u64,
    pub(crate) actions: Vec<Action>,
    /// Bytes queued to all peers (each connection also counts its own).
    pub(crate) send_bytes: Arc<AtomicU64>,
    /// Which connections the node keeps ([`crate::manager`]).
    pub(crate) manager: Manager,
    /// When the connection manager looks next.
    pub(crate) next_sweep: TokioInstant,
}

/// The monotonic clock: the runtime is where the real clock enters (ARCHITECTURE.md); protocols get `now`.
#[allow(clippy::disallowed_methods)]
pub(crate) fn monotonic() -> TokioInstant {
    TokioInstant::now()
}

async fn sleep_until(deadline: Option<TokioInstant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl<T: Transport> Runtime<T> {
    pub(crate) async fn run(
        mut self,
        mut inbox: mpsc::Receiver<Inbox>,
        mut conns: mpsc::Receiver<T::Connection>,
    ) {
        let accept = tokio::spawn(accept_loop(self.transport.clone(), self.conns_tx.clone()));
        let done = loop {
            let deadline = self.timers.peek().map(|Reverse((at, ..))| *at);
            tokio::select! {
                // Timers first: under load they must not starve behind a busy inbox.
                biased;
                () = sleep_until(deadline) => self.fire_timers(),
                () = tokio::time::sleep_until(self.next_sweep) => self.sweep(),
                Some(conn) = conns.recv() => self.on_connection(conn),
                Some(msg) = inbox.recv() => {
                    if let Some(done) = self.on_inbox(msg) {
                        break Some(done);
                    }
                }
                else => break None,
            }
            self.carry_out();
        };
        accept.abort();
        self.peers.clear();
        self.transport.close(CloseReason::Shutdown).await;
        if let Some(done) = done {
            let _ = done.send(());
        }
        info!("node stopped");
    }

    fn now(&self) -> Instant {
        let (wall, mono) = self.epoch;
        let elapsed = monotonic().saturating_duration_since(mono);
        wall.checked_add(elapsed).unwrap_or(wall)
    }

    fn fire_timers(&mut self) {
        let mono = monotonic();
        let now = self.now();
        while let Some(Reverse((at, _, slot, key))) = self.timers.peek().copied() {
            if at > mono {
                break;
            }
            self.timers.pop();
            self.slots[slot].timer(now, key, &mut self.actions);
        }
    }

    fn on_connection(&mut self, conn: T::Connection) {
        let peer = conn.remote_peer_id();
        let addr = conn.remote_addr();
        self.dialing.remove(&peer);
        if conn.close_reason().is_some() {
            return;
        }
        self.remember(peer, addr);
        // The transport hands a connection over twice when our dial finds it already open (or lost a
        // simultaneous-dial tie-break and returns the winner, which `accept` also delivered). Two open
        // connections to one peer in one direction are one connection: a dialer that replaced its
        // connection had the old one closed by the transport before the new one got here. (One we are
        // retiring is not compared: a peer may dial again while it closes.)
        let known = self.peers.get(&peer).is_some_and(|conns| {
            conns
                .iter()
                .any(|c| c.conn.direction() == conn.direction() && c.takes_messages())
        });
        if known {
            return;
        }
        let id = self.next_conn;
        self.next_conn += 1;
        let budget = SendBudget::new(&self.send_bytes, &self.metrics.send_queue_bytes());
        let entry = connection::start(
            id,
            conn,
            &self.routes,
            self.config.send_queue_per_peer,
            budget,
            self.config.write_deadline,
            &self.inbox_tx,
        );
        let was_connected = self.connected(&peer);
        let conns = self.peers.entry(peer).or_default();
        conns.push(entry);
        let first = conns.len() == 1;
        self.retire_duplicates(peer);
        if !first && !was_connected {
            // A new connection while the old ones retire: the peer is back for every protocol, and
            // a redial waiting for the old ones to close is no longer needed. Protocols hear it as a
            // bounce, `PeerDown` then `PeerUp`: a message they sent while every connection was
            // retiring had nowhere to go and was dropped, and a `PeerDown` is what tells them to ask
            // again (Kademlia resends a request whose peer went down).
            debug!(%peer, %addr, "peer up again while its old connections close");
            self.redial.remove(&peer);
            self.released.remove(&peer);
            self.manager.up(peer, monotonic());
            self.peer_down(peer);
            let now = self.now();
            for slot in &mut self.slots {
                slot.peer_up(now, peer, addr, &mut self.actions);
            }
        }
        if first {
            debug!(%peer, %addr, "peer up");
            self.metrics.peers().inc();
            self.manager.up(peer, monotonic());
            let now = self.now();
            for slot in &mut self.slots {
                slot.peer_up(now, peer, addr, &mut self.actions);
            }
        }
    }

    fn on_closed(&mut self, peer: PeerId, conn: u64) {
        let Entry::Occupied(mut entry) = self.peers.entry(peer) else {
            return;
        };
        entry.get_mut().retain(|c| c.id != conn);
        if entry.get().is_empty() {
            entry.remove();
            self.released.remove(&peer);
            self.manager.down(&peer);
            debug!(%peer, "peer down");
            self.metrics.peers().dec();
            self.peer_down(peer);
            if self.redial.remove(&peer) {
                self.dial(peer);
            }
        }
    }

    /// After a simultaneous dial both sides hold two connections to each other. Both keep the same
    /// one ([`preferred`]) and retire the other gracefully: what either side wrote to it before it
    /// learned of the winner still arrives, and nothing new is written to it.
    fn retire_duplicates(&mut self, peer: PeerId) {
        let local = self.transport.peer_id();
        let deadline = self.config.drain_deadline;
        let undrained = self.metrics.undrained();
        let Some(conns) = self.peers.get_mut(&peer) else {
            return;
        };
        let keep = preferred(local, peer, conns, &[]).map(|c| c.id);
        for entry in conns.iter_mut() {
            if Some(entry.id) != keep && entry.takes_messages() {
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
    fn on_peer_finished(&mut self, peer: PeerId, conn: u64) {
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
    fn connected(&self, peer: &PeerId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|conns| conns.iter().any(|c| c.takes_messages()))
    }

    fn peer_down(&mut self, peer: PeerId) {
        let now = self.now();
        for slot in &mut self.slots {
            slot.peer_down(now, peer, &mut self.actions);
        }
    }

    /// Handles one inbox message; `Some` when the node must stop (with whom to tell).
    fn on_inbox(&mut self, msg: Inbox) -> Option<oneshot::Sender<()>> {
        match msg {
            Inbox::Frame {
                peer,
                conn,
                route,
                bytes,
            } => {
                // A connection is reported closed only after its readers handed over every frame, so
                // this does not happen; if it ever did, the frame is counted, not lost silently.
                let entry = self
                    .peers
                    .get(&peer)
                    .and_then(|c| c.iter().find(|c| c.id == conn));
                // A connection closing because no protocol wants the peer: what the peer still sends
                // on it is not wanted (and must not hand the peer back to a protocol), but counted.
                if entry.is_none_or(|c| c.released()) {
                    self.dropped(peer, route, DropReason::ConnectionClosed);
                    return None;
                }
                self.manager.touch(&peer, monotonic());
                let (slot, channel) = (self.routes[route].slot, self.routes[route].channel);
                // The peer opened the stream of a protocol that had released it: that protocol wants
                // it again (its own bans, if it keeps any, decide what the message gets).
                self.engage(peer, slot);
                let now = self.now();
                if let Err(err) = self.slots[slot].message(now, peer, channel, &bytes, &mut self.actions) {
                    self.routes[route].metrics.invalid_frames.inc();
                    self.dropped(peer, route, DropReason::DecodeFailed);
                    self.penalise(peer, &err.to_string());
                }
            }
            Inbox::Unsent {
                peer,
                conn,
                route,
                frames,
                reason,
            } => {
                for bytes in frames {
                    self.send_avoiding(peer, route, bytes, Some(conn), reason);
                }
            }
            Inbox::Invalid { peer, reason } => self.penalise(peer, &reason),
            Inbox::Stalled { peer, conn } => {
                // Slow is not hostile: the peer is dropped (it may come back) but not logged as a
                // rule breaker.
                debug!(%peer, "peer stalled past its deadline: disconnecting");
                self.metrics.stalled();
                for entry in self
                    .peers
                    .get(&peer)
                    .into_iter()
                    .flatten()
                    .filter(|c| c.id == conn)
                {
                    entry.conn.close(CloseReason::Application(CLOSE_STALLED));
                }
            }
            Inbox::Call { slot, call } => {
                let now = self.now();
                self.slots[slot].call(now, call, &mut self.actions);
            }
            Inbox::Closed { peer, conn } => self.on_closed(peer, conn),
            Inbox::PeerFinished { peer, conn } => self.on_peer_finished(peer, conn),
            Inbox::DialFailed { peer, reason } => {
                debug!(%peer, %reason, "dial failed");
                self.metrics.dial_failed();
                self.dialing.remove(&peer);
                if !self.peers.contains_key(&peer) {
                    self.peer_down(peer);
                }
            }
            Inbox::Control(control) => match control {
                Control::AddAddress(peer, addr) => self.remember(peer, addr),
                Control::Dial(peer, addr) => {
                    self.remember(peer, addr);
                    self.actions.push(Action::Dial { peer, slot: None });
                }
                Control::Disconnect(peer) => self.actions.push(Action::Disconnect(peer)),
                Control::Peers(reply) => {
                    // Connections that take messages; one being retired is already on its way out.
                    let peers = self
                        .peers
                        .iter()
                        .filter_map(|(peer, conns)| {
                            conns
                                .iter()
                                .find(|c| c.takes_messages())
                                .map(|c| (*peer, c.conn.remote_addr()))
                        })
                        .collect();
                    let _ = reply.send(peers);
                }
                Control::Shutdown(done) => return Some(done),
            },
        }
        None
    }

    /// A peer sent bytes no protocol accepts: drop it (hostile input never reaches further).
    fn penalise(&mut self, peer: PeerId, reason: &str) {
        warn!(%peer, reason, "peer broke the wire rules: disconnecting");
        self.metrics.penalised();
        for entry in self.peers.get(&peer).into_iter().flatten() {
            entry
                .conn
                .close(CloseReason::Application(CLOSE_PROTOCOL_VIOLATION));
        }
    }

    fn remember(&mut self, peer: PeerId, addr: SocketAddr) {
        if self.addresses.len() >= MAX_ADDRESSES && !self.addresses.contains_key(&peer) {
            let forget = self.addresses.keys().next().copied();
            if let Some(forget) = forget {
                self.addresses.remove(&forget);
            }
        }
        self.addresses.insert(peer, addr);
    }

    fn address_of(&self, peer: &PeerId) -> Option<SocketAddr> {
        self.addresses
            .get(peer)
            .copied()
            .or_else(|| self.slots.iter().find_map(|slot| slot.address_of(peer)))
    }

    /// Carries out the actions protocols asked for, including any that carrying them out produces.
    fn carry_out(&mut self) {
        // Each round may add actions (a failed dial tells protocols, which may answer); bounded because
        // every round only reacts to the previous one's dials.
        for _ in 0..8 {
            if self.actions.is_empty() {
                return;
            }
            let actions = std::mem::take(&mut self.actions);
            for action in actions {
                match action {
                    Action::Send { to, route, bytes } => self.send(to, route, bytes),
                    Action::Schedule { after, slot, key } => {
                        let at = monotonic() + after.min(Duration::from_secs(365 * 24 * 3600));
                        self.timer_seq += 1;
                        self.timers.push(Reverse((at, self.timer_seq, slot, key)));
                    }
                    Action::Dial { peer, slot } => match slot {
                        // Connected already (another protocol holds the connection, this one
                        // released it, or it simply did not know): the protocol is told `PeerUp` at
                        // once, as after a dial, so one waiting to send never waits for nothing.
                        Some(slot) if self.connected(&peer) => self.hand_back(peer, slot),
                        _ => self.dial(peer),
                    },
                    Action::Release { peer, slot } => self.release(peer, slot),
                    Action::Disconnect(peer) => self.close(&peer, CLOSE_REQUESTED, Retire::OurWrites),
                    Action::Protect { peer, slot, protect } => self.manager.protect(peer, slot, protect),
                }
            }
        }
    }

    /// Protocol `slot` released `peer`; close the connection if no protocol wants it any more.
    fn release(&mut self, peer: PeerId, slot: usize) {
        if !self.peers.contains_key(&peer) {
            return;
        }
        let all = if self.slots.len() >= 64 {
            u64::MAX
        } else {
            (1u64 << self.slots.len()) - 1
        };
        let released = self.released.entry(peer).or_default();
        *released |= 1u64 << slot;
        if *released & all == all {
            debug!(%peer, "no protocol wants the peer: disconnecting");
            self.close(&peer, CLOSE_REQUESTED, Retire::OurWrites);
        }
    }

    /// If protocol `slot` had released the connected `peer`, it holds it again and is told `PeerUp`.
    fn engage(&mut self, peer: PeerId, slot: usize) {
        let released = self.released.get(&peer).is_some_and(|r| r & (1u64 << slot) != 0);
        if released {
            self.hand_back(peer, slot);
        }
    }

    /// Protocol `slot` holds the connected `peer` (again) and is told `PeerUp`.
    fn hand_back(&mut self, peer: PeerId, slot: usize) {
        if let Some(released) = self.released.get_mut(&peer) {
            *released &= !(1u64 << slot);
            if *released == 0 {
                self.released.remove(&peer);
            }
        }
        let addr = self.peers.get(&peer).and_then(|conns| {
            conns
                .iter()
                .find(|c| c.takes_messages())
                .map(|c| c.conn.remote_addr())
        });
        match addr {
            Some(addr) => {
                let now = self.now();
                self.slots[slot].peer_up(now, peer, addr, &mut self.actions);
            }
            // Only connections on their way out: the slot hears `PeerDown` when they close, and
            // `PeerUp` from a new dial after that.
            None => self.dial(peer),
        }
    }

    /// Closes every connection to `peer` gracefully with close code `code`, retired `how`: what was
    /// queued to it is still written and read by the peer first (a protocol's last message, say
    /// gossip's `Disconnect`, is not lost).
    fn close(&mut self, peer: &PeerId, code: u32, how: Retire) {
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
    fn sweep(&mut self) {
        let now = monotonic();
        self.next_sweep = now + SWEEP_EVERY;
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

    fn send(&mut self, to: PeerId, route: usize, bytes: Vec<u8>) {
        self.send_avoiding(to, route, bytes, None, DropReason::ConnectionClosed);
    }

    /// Queues `bytes` on the best connection to `to` that takes messages (not `avoid`, whose writer
    /// gave them back), trying the next if a writer has ended; counts a drop for `otherwise` if none
    /// can take them, or for a full queue or budget.
    fn send_avoiding(
        &mut self,
        to: PeerId,
        route: usize,
        mut bytes: Vec<u8>,
        avoid: Option<u64>,
        otherwise: DropReason,
    ) {
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
            let Some(held) = entry.budget.reserve(bytes.len(), limits) else {
                // Past the peer's or the node's byte budget: the peer reads slower than we send.
                return self.dropped(to, route, DropReason::QueueFull);
            };
            match entry.writers[route].try_send(Queued { bytes, held }) {
                Ok(()) => {
                    self.manager.touch(&to, monotonic());
                    return;
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return self.dropped(to, route, DropReason::QueueFull);
                }
                // That writer ended (its connection is closing): try the next connection.
                Err(mpsc::error::TrySendError::Closed(queued)) => {
                    bytes = queued.bytes;
                    skip.push(entry.id);
                }
            }
        }
        self.dropped(to, route, otherwise);
    }

    /// Counts a message to or from `peer` on `route` that was dropped for `reason`, and names the peer
    /// in the debug log.
    fn dropped(&self, peer: PeerId, route: usize, reason: DropReason) {
        let route = &self.routes[route];
        debug!(%peer, protocol = %route.id, %reason, "message dropped");
        route.metrics.dropped(reason);
    }

    fn dial(&mut self, peer: PeerId) {
        if peer == self.transport.peer_id() || self.connected(&peer) || self.dialing.contains(&peer) {
            return;
        }
        if self.peers.contains_key(&peer) {
            // Only retiring connections: dial again once they have closed (and `PeerDown` was told).
            self.redial.insert(peer);
            return;
        }
        let Some(addr) = self.address_of(&peer) else {
            debug!(%peer, "no address to dial");
            self.metrics.dial_failed();
            self.peer_down(peer);
            return;
        };
        self.dialing.insert(peer);
        self.metrics.dial_started();
        let (transport, conns, inbox) = (
            self.transport.clone(),
            self.conns_tx.clone(),
            self.inbox_tx.clone(),
        );
        let timeout = self.config.dial_timeout;
        tokio::spawn(async move {
            let failed = match tokio::time::timeout(timeout, transport.dial(peer, addr)).await {
                Ok(Ok(conn)) => {
                    let _ = conns.send(conn).await;
                    return;
                }
                Ok(Err(err)) => err.to_string(),
                Err(_) => format!("no answer within {timeout:?}"),
            };
            let _ = inbox.send(Inbox::DialFailed { peer, reason: failed }).await;
        });
    }
}

/// `peer`'s best connection that takes messages, leaving out the ids in `skip`: the one both sides
/// keep after a simultaneous dial (dialed by the smaller `PeerId`; the newer of two in one direction,
/// as the transport's registry decides), else the newest. No allocation: it runs for every send.
fn preferred<'a, C: Connection>(
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
        .min_by_key(|c| (dialer(c) != local.min(peer), Reverse(c.id)))
}

async fn accept_loop<T: Transport>(transport: Arc<T>, conns: mpsc::Sender<T::Connection>) {
    loop {
        match transport.accept().await {
            Ok(conn) => {
                if conns.send(conn).await.is_err() {
                    return;
                }
            }
            Err(err) => {
                // The transport closed (shutdown); anything else was already counted by the transport.
                debug!(%err, "accept loop ends");
                return;
            }
        }
    }
}
