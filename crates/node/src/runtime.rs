//! The node task: it owns every protocol's state and the table of connections, and is the only place
//! protocol code runs. Everything reaches it through one bounded inbox (frames, handle calls, connection
//! news) or as a connection from the accept loop and dials; it answers with actions. What it does with
//! connections (taking, retiring, choosing one for a message, dialling) is in [`peers`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_transport::{CloseReason, Connection, Frame, Transport};
use meshwork_wire::{DropReason, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant as TokioInstant;
use tracing::{debug, info, warn};

use crate::NodeConfig;
use crate::connection::{ConnEntry, Queued, Retire, Route};
use crate::manager::Manager;
use crate::metrics::Metrics;
use crate::slot::{Action, AnyCall, Slot};

mod peers;
mod upgrade;
mod waiting;

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

/// How long a relayed connection stays open after a direct one replaced it. Each side learns of the
/// direct connection at its own moment (the dialer when its handshake ends, the other side when the
/// accept loop hands it over); were the first to retire the relayed connection at once, the other
/// could see it close before its direct one arrives, and its protocols would hear the peer go down.
/// Nothing new is written to it meanwhile: the direct connection is preferred. What was written to it
/// just before the switch still arrives, possibly after later messages on the direct connection:
/// order between the two connections is not kept (as after a simultaneous dial).
pub(crate) const UPGRADE_GRACE: Duration = Duration::from_secs(2);

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
    /// they go to another connection to the peer, or are counted as dropped for `reason`. They stay
    /// charged to the send budgets on their way here.
    Unsent {
        peer: PeerId,
        conn: u64,
        route: usize,
        frames: Vec<Queued>,
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
    /// A direct dial to a peer held over a relay circuit ended (`failure` says why, if it failed).
    UpgradeDialed {
        peer: PeerId,
        addr: SocketAddr,
        failure: Option<String>,
    },
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
    /// Messages to peers whose every connection is retiring, sent once a new one is up.
    pub(crate) waiting: HashMap<PeerId, waiting::Waiting>,
    /// Peers whose relayed connections a direct one replaced, and when: the sweep retires the relayed
    /// ones after [`UPGRADE_GRACE`].
    pub(crate) upgraded: HashMap<PeerId, TokioInstant>,
    /// Direct dials under way to peers held over relay circuits (at most one per peer and address;
    /// only connected peers, so bounded by the connections).
    pub(crate) upgrading: HashSet<(PeerId, SocketAddr)>,
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
        // The protocols' state goes before the caller hears the node stopped: a store it holds open
        // (a redb file, which allows one owner) can then be opened again at once, by a restarted node.
        drop(self);
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
                self.manager.heard(&peer, monotonic());
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
                for Queued { bytes, held, control } in frames {
                    // Given back before the bytes are charged again, to whichever queue takes them.
                    drop(held);
                    self.send_avoiding(peer, route, (bytes, control), Some(conn), reason);
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
                    self.drop_waiting(peer);
                    self.peer_down(peer);
                }
            }
            Inbox::UpgradeDialed { peer, addr, failure } => self.on_upgrade_dialed(peer, addr, failure),
            Inbox::Control(control) => match control {
                Control::AddAddress(peer, addr) => self.remember(peer, addr),
                // A relay circuit's address is dialled as given and never kept: it dies with its
                // circuit, and a later dial must find the peer again.
                Control::Dial(peer, addr) if meshwork_wire::relayed::is_relayed(&addr) => {
                    self.dial_at(peer, Some(addr));
                }
                Control::Dial(peer, addr) => {
                    self.remember(peer, addr);
                    self.actions.push(Action::Dial { peer, slot: None });
                }
                Control::Disconnect(peer) => self.actions.push(Action::Disconnect(peer)),
                Control::Peers(reply) => {
                    // Connections that take messages; one being retired is already on its way out.
                    let local = self.transport.peer_id();
                    let peers = self
                        .peers
                        .iter()
                        .filter_map(|(peer, conns)| {
                            peers::preferred(local, *peer, conns, &[]).map(|c| (*peer, c.conn.remote_addr()))
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
        self.redial.remove(&peer);
        self.drop_waiting(peer);
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
                    Action::Send {
                        to,
                        route,
                        bytes,
                        control,
                    } => self.send(to, route, bytes, control),
                    Action::Schedule { after, slot, key } => {
                        let at = monotonic() + after.min(Duration::from_secs(365 * 24 * 3600));
                        self.timer_seq += 1;
                        self.timers.push(Reverse((at, self.timer_seq, slot, key)));
                    }
                    Action::Dial { peer, slot } => match slot {
                        // Connected already (another protocol holds the connection, this one
                        // released it, or it simply did not know): the protocol is told `PeerUp` at
                        // once, as after a dial, so one waiting to send never waits for nothing. If
                        // the connection is relayed, the peer is dialled directly too, if the asking
                        // protocol knows where (a hole punch's address; never one from the address
                        // book, which other peers may have fed).
                        Some(slot) if self.connected(&peer) => {
                            self.hand_back(peer, slot);
                            let addr = self.slots[slot].address_of(&peer);
                            self.upgrade(peer, addr);
                        }
                        None if self.connected(&peer) => {
                            let addr = self.addresses.get(&peer).copied();
                            self.upgrade(peer, addr);
                        }
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
        let local = self.transport.peer_id();
        let link = self.peers.get(&peer).and_then(|conns| {
            peers::preferred(local, peer, conns, &[]).map(|c| (c.conn.remote_addr(), c.conn.stats().rtt))
        });
        match link {
            Some(link) => {
                let now = self.now();
                self.slots[slot].peer_up(now, peer, link, &mut self.actions);
            }
            // Only connections on their way out: the slot hears `PeerDown` when they close, and
            // `PeerUp` from a new dial after that.
            None => self.dial(peer),
        }
    }
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
