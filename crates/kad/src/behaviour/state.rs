//! [`Kademlia`]: the state, the [`Protocol`] impl, connections and what we send.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId, puzzle};
use meshwork_wire::{DropReason, Input, Instant, Output, Protocol, ProtocolId};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::anchors::Anchors;
use super::queries::{Purpose, Qid, Query};
use super::stats::{KadTotals, Outcome, RecentTimeouts};
use super::types::{Command, Event, Timer};
use crate::message::{Message, Request, RequestId};
use crate::routing_table::{InsertOutcome, RefuseReason, RoutingTable, TableLimits};
use crate::store::{MemoryStore, RecordStore};
use crate::{Address, Config, Key, PeerInfo};

/// Messages queued for a peer we are dialing, at most.
const MAX_QUEUED_PER_PEER: usize = 16;
/// Peers we dial at once, at most (further sends to unconnected peers are dropped, reported as
/// [`DropReason::QueueFull`], and their requests fail at once).
const MAX_DIALING: usize = 256;
/// Addresses the driver reported for peers we hold no connection to, at most.
const MAX_UNCONNECTED_ADDRS: usize = 4096;
/// Bootstrap peers kept to join through again, at most.
pub(crate) const MAX_SEEDS: usize = 64;
/// The wait before the first new try to join when nobody answered a bootstrap; it doubles with every
/// try that finds nobody again, up to [`REJOIN_MAX`].
pub(crate) const REJOIN_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between tries to join.
pub(crate) const REJOIN_MAX: Duration = Duration::from_secs(60);

/// Output of [`Kademlia`], for short.
pub(crate) type Out<S> = Vec<Output<Kademlia<S>>>;

/// A request we sent and wait on.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub(crate) peer: PeerId,
    pub(crate) purpose: Purpose,
    /// False if the request could not even be queued (our own dial limits): it fails on a timer of
    /// zero, as a failure, and costs the peer nothing.
    pub(crate) sent: bool,
    /// The request, kept to send it once more if its connection closes while it waits (taken then).
    pub(crate) retry: Option<Request>,
    /// When it times out if still unanswered ([`Timer::Deadlines`]).
    pub(crate) deadline: Instant,
}

/// What we know of a peer's connection.
#[derive(Clone, Debug, Default)]
struct Link {
    /// The address the driver observed ([`Command::PeerAddress`]); it wins over what peers claim.
    observed: Option<Address>,
    /// Whether the connection is up (between `PeerUp` and `PeerDown`).
    up: bool,
}

/// The Kademlia state machine of one node. See the crate docs for the model.
pub struct Kademlia<S: RecordStore = MemoryStore> {
    pub(crate) keypair: Keypair,
    pub(crate) local: PeerId,
    pub(crate) config: Config,
    pub(crate) table: RoutingTable,
    pub(crate) store: S,
    pub(crate) rng: ChaCha8Rng,
    /// Peers we have a connection to, or had one and dial again, with the address the driver observed
    /// (one map for both: a simulated node keeps hundreds of connections).
    links: HashMap<PeerId, Link>,
    /// How many of `links` are up: the others are the addresses of peers not connected, which
    /// [`MAX_UNCONNECTED_ADDRS`] bounds.
    connected: usize,
    dialing: HashMap<PeerId, Vec<Message>>,
    next_request: RequestId,
    pub(crate) requests: HashMap<RequestId, Pending>,
    /// Requests outstanding per peer: while a peer has one (or is an anchor), its connection is
    /// protected from the driver's connection manager ([`Output::Protect`]).
    in_flight: HashMap<PeerId, u32>,
    pub(crate) queries: HashMap<Qid, Query>,
    pub(crate) next_internal: u64,
    /// The next id [`crate::PeerRouting`] and [`crate::ContentRouting`] hand out (above 2^63).
    pub(crate) next_auto_query: u64,
    /// Our records, republished on a timer: value per key.
    pub(crate) published: HashMap<Key, Vec<u8>>,
    /// Keys we provide, re-announced on a timer.
    pub(crate) provided: HashSet<Key>,
    pub(crate) refresh_scheduled: bool,
    /// The peers of the last [`Command::Bootstrap`], joined through again while no peer has answered.
    pub(crate) seeds: Vec<PeerInfo>,
    /// The wait before the next try through `seeds`.
    pub(crate) rejoin_delay: Duration,
    /// A [`Timer::Rejoin`] is pending.
    pub(crate) rejoin_scheduled: bool,
    /// Buckets the join still has to refresh, one at a time (see `Kind::JoinRefresh`).
    pub(crate) join_refreshes: Vec<usize>,
    /// Requests and drops since the start ([`Kademlia::totals`]).
    pub(crate) totals: KadTotals,
    /// Requests that timed out lately, to tell a late answer from an unsolicited one.
    pub(crate) recent_timeouts: RecentTimeouts,
    /// When the earliest [`Timer::Deadlines`] we scheduled fires, if one is pending.
    pub(crate) deadline_timer: Option<Instant>,
    /// The far buckets' warm connections ([`super::anchors`]).
    pub(crate) anchors: Anchors,
}

impl Kademlia<MemoryStore> {
    /// A node with identity `keypair`, an in-memory store, and an RNG seeded by `seed`.
    pub fn new(keypair: Keypair, config: Config, seed: u64) -> Self {
        Self::with_store(keypair, config, MemoryStore::default(), seed)
    }
}

impl<S: RecordStore> Kademlia<S> {
    /// A node with identity `keypair` over the record store `store`, with an RNG seeded by `seed`.
    pub fn with_store(keypair: Keypair, config: Config, store: S, seed: u64) -> Self {
        let config = config.sanitized();
        let local = keypair.peer_id();
        let limits = TableLimits {
            k: config.k,
            puzzle_difficulty: config.puzzle_difficulty,
            max_per_prefix_in_bucket: config.max_per_prefix_in_bucket,
            max_per_prefix_in_table: config.max_per_prefix_in_table,
            stale_after: config.stale_after,
        };
        Self {
            keypair,
            local,
            table: RoutingTable::new(Key::from_peer(&local), limits),
            config,
            store,
            rng: ChaCha8Rng::seed_from_u64(seed),
            links: HashMap::new(),
            connected: 0,
            dialing: HashMap::new(),
            next_request: 0,
            requests: HashMap::new(),
            in_flight: HashMap::new(),
            queries: HashMap::new(),
            next_internal: 0,
            next_auto_query: 0,
            published: HashMap::new(),
            provided: HashSet::new(),
            refresh_scheduled: false,
            seeds: Vec::new(),
            rejoin_delay: REJOIN_FIRST,
            rejoin_scheduled: false,
            join_refreshes: Vec::new(),
            totals: KadTotals::default(),
            recent_timeouts: RecentTimeouts::default(),
            deadline_timer: None,
            anchors: Anchors::default(),
        }
    }

    /// Our peer id.
    pub fn local_peer(&self) -> PeerId {
        self.local
    }

    /// The routing table.
    pub fn routing_table(&self) -> &RoutingTable {
        &self.table
    }

    /// The record store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What this node sent and heard since it was created: requests and how they ended, late and
    /// unsolicited answers, peers refused for their IP prefix, messages dropped on full dial queues.
    /// Cumulative and cheap to read (a copy). Under the node runtime, read it in the node task:
    /// `handle.with(|kad| kad.totals())`.
    pub fn totals(&self) -> KadTotals {
        self.totals
    }

    /// Queries running (the application's and internal ones).
    pub fn num_queries(&self) -> usize {
        self.queries.len()
    }

    /// Whether a request to `peer` is outstanding (or waits for a dial): closing the connection now
    /// would fail it.
    pub fn is_waiting_on(&self, peer: &PeerId) -> bool {
        self.dialing.contains_key(peer) || self.in_flight.contains_key(peer)
    }

    /// The anchors, farthest bucket first: the peers whose connections we keep between requests
    /// ([`crate::Config::anchors`]).
    pub fn anchors(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.anchors.peers()
    }

    /// Whether Kademlia keeps `peer`'s connection: a request to it is in flight, or it is an anchor.
    /// Kademlia holds no connection per routing-table entry (entries are addresses, dialled when a
    /// request needs one); these are its only two reasons.
    fn keeps(&self, peer: &PeerId) -> bool {
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
    fn track(&mut self, peer: PeerId, out: &mut Out<S>) {
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
            .or_else(|| self.table.get(peer).map(|e| &e.addr))
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

    /// Between queries a node holds only its table, its store and its connections: the maps of
    /// requests and dials are given back to the allocator once nothing uses them (a `HashMap` keeps
    /// its capacity when emptied). The map of links keeps what it
    /// holds, but not the room of the hundreds of connections a join opened and the connection
    /// manager has since closed.
    fn release_when_idle(&mut self) {
        if !self.queries.is_empty() || !self.dialing.is_empty() {
            return;
        }
        if self.links.capacity() > 4 * self.links.len().max(8) {
            self.links.shrink_to_fit();
        }
        if self.requests.is_empty() && self.requests.capacity() > 0 {
            self.requests = HashMap::new();
        }
        if self.in_flight.is_empty() && self.in_flight.capacity() > 0 {
            self.in_flight = HashMap::new();
        }
        if self.dialing.capacity() > 0 {
            self.dialing = HashMap::new();
        }
    }

    /// Whether a peer named by another may be contacted at all: not us, and it solves the puzzle.
    pub(crate) fn acceptable(&self, peer: &PeerId) -> bool {
        *peer != self.local && puzzle::solves(peer, self.config.puzzle_difficulty)
    }

    /// Sends a request to `peer`, tracked under a fresh id with a timeout. A request our dial limits
    /// cannot take fails at once, through a timer of zero: failing it here would re-enter the lookup
    /// that is choosing whom to ask.
    pub(crate) fn request(
        &mut self,
        now: Instant,
        peer: PeerId,
        request: Request,
        purpose: Purpose,
        out: &mut Out<S>,
    ) {
        let id = self.next_request;
        self.next_request += 1;
        let sent = self.can_send(&peer);
        let retry = Some(request.clone());
        // The deadline measures the peer's answer: a request that waits for a dial gets its
        // deadline when it is sent (`on_peer_up`); until then the dial's own deadline bounds it (the
        // driver reports `PeerDown` when a dial fails or times out), and this longer one backs it up.
        let deadline = match (sent, self.is_connected(&peer)) {
            (false, _) => now,
            (true, true) => now + self.config.request_timeout,
            (true, false) => now + self.config.request_timeout.saturating_mul(3),
        };
        self.requests.insert(
            id,
            Pending {
                peer,
                purpose,
                sent,
                retry,
                deadline,
            },
        );
        self.track(peer, out);
        self.totals.requests += 1;
        match purpose {
            Purpose::Liveness => self.totals.liveness_pings += 1,
            Purpose::Keepalive => self.totals.anchor_pings += 1,
            Purpose::Lookup(_) | Purpose::Store(_) | Purpose::Ended => {}
        }
        if let Purpose::Lookup(qid) | Purpose::Store(qid) = purpose {
            if let Some(query) = self.queries.get_mut(&qid) {
                query.stats.requests = query.stats.requests.saturating_add(1);
            }
        }
        if sent {
            self.arm_deadlines(now, deadline, out);
        } else {
            // Failed at once, but not from inside the query that is choosing whom to ask.
            self.schedule(Duration::ZERO, Timer::Request(id), out);
        }
        self.send(now, peer, Message::Request { id, request }, out);
    }

    /// Whether a message to `to` would be sent or queued (not dropped by the dial limits).
    fn can_send(&self, to: &PeerId) -> bool {
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

    /// `peer` is kept out of the table because its IP prefix fills its share: reported, never silent
    /// (on one host or behind one NAT every table would otherwise stop at the prefix limit unnoticed).
    pub(crate) fn refused_for_prefix(&mut self, peer: PeerId, out: &mut Out<S>) {
        self.totals.prefix_refused += 1;
        out.push(Output::Dropped {
            peer,
            reason: DropReason::PrefixLimit,
        });
    }

    /// Gives up on a dial nobody reported back on, once no request waits for the peer, so dials the
    /// driver never answered cannot fill the dialing set.
    pub(crate) fn forget_dial(&mut self, peer: &PeerId) {
        if self.dialing.contains_key(peer) && !self.in_flight.contains_key(peer) {
            self.dialing.remove(peer);
        }
    }

    /// `peer` answered one of our requests: it may enter the table (S/Kademlia: only after a response).
    pub(crate) fn on_answer(&mut self, peer: PeerId, now: Instant, out: &mut Out<S>) -> InsertOutcome {
        let addr = self.address_of(&peer).cloned().unwrap_or_else(Address::unknown);
        // A full bucket (`Pending`, `BucketFull`) is not reported: in a network larger than a few
        // buckets' worth it is the fate of most peers that answer a lookup, and says nothing about them
        // (the bucket keeps its long-lived peers by design).
        let outcome = self.table.insert(peer, addr, now);
        match &outcome {
            InsertOutcome::PingOldest { oldest } => {
                self.request(now, *oldest, Request::Ping, Purpose::Liveness, out)
            }
            InsertOutcome::Refused(RefuseReason::BucketPrefixLimit | RefuseReason::TablePrefixLimit) => {
                self.refused_for_prefix(peer, out);
            }
            _ => {}
        }
        outcome
    }

    fn on_command(&mut self, now: Instant, command: Command, out: &mut Out<S>) {
        match command {
            Command::PeerAddress { peer, addr } => {
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
            other => self.start_command(now, other, out),
        }
    }

    /// The connection to `peer` closed, or a dial to it failed. Requests waiting on a connection
    /// that was up are sent once more on a new one: the peer's connection manager may have closed it
    /// (it cannot know that we wait on an answer), which says nothing of the peer. Requests whose
    /// dial failed, or that were retried already, fail at once, not at their timer: the answer cannot
    /// come on a closed connection.
    fn on_peer_down(&mut self, peer: PeerId, now: Instant, out: &mut Out<S>) {
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

    fn on_peer_up(&mut self, now: Instant, peer: PeerId, out: &mut Out<S>) {
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

    pub(crate) fn schedule(&self, after: Duration, timer: Timer, out: &mut Out<S>) {
        out.push(Output::Schedule { after, timer });
    }

    pub(crate) fn emit(&self, event: Event, out: &mut Out<S>) {
        out.push(Output::Emit(event));
    }
}

impl<S: RecordStore> Protocol for Kademlia<S> {
    type Message = Message;
    type Command = Command;
    type Event = Event;
    type Timer = Timer;

    /// Version 2: a record key says who may publish under it ([`Key::for_record`](crate::Key::for_record)).
    /// The wire encoding is version 1's, but a version-1 node stores and serves records under keys that
    /// are not theirs, so the two must not meet on one channel.
    const ID: ProtocolId = ProtocolId::new("/meshwork/kad/2");
    /// A value response: a maximal record plus 20 peers with maximal addresses, with room to spare.
    const MAX_MESSAGE_SIZE: usize = 16 * 1024;

    fn handle(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        if let Input::Message { from, .. } = &input {
            self.anchors.touch(from, now);
        }
        match input {
            Input::Message {
                from,
                msg: Message::Request { id, request },
            } => {
                self.on_request(now, from, id, request, out);
            }
            Input::Message {
                from,
                msg: Message::Response { id, response },
            } => {
                self.on_response(now, from, id, response, out);
            }
            Input::Command(command) => self.on_command(now, command, out),
            Input::Timer(timer) => self.on_timer(now, timer, out),
            Input::PeerUp(peer) => self.on_peer_up(now, peer, out),
            Input::PeerDown(peer) => self.on_peer_down(peer, now, out),
        }
        self.release_when_idle();
    }
}
