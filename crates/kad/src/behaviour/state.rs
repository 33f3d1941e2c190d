//! [`Kademlia`]: the state, the [`Protocol`] impl, requests and what peers that answer them become.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId, puzzle};
use meshwork_wire::{DropReason, Input, Instant, Output, Protocol, ProtocolId};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::anchors::Anchors;
use super::connections::Link;
use super::queries::{Purpose, Qid, Query};
use super::stats::{KadTotals, RecentTimeouts};
use super::types::{Command, Event, Timer};
use crate::message::{Message, Request, RequestId};
use crate::routing_table::{InsertOutcome, RefuseReason, RoutingTable, TableLimits};
use crate::store::{MemoryStore, RecordStore};
use crate::{Address, Config, Key, PeerInfo};

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
    pub(super) links: HashMap<PeerId, Link>,
    /// How many of `links` are up: the others are the addresses of peers not connected, which
    /// `connections.rs`'s `MAX_UNCONNECTED_ADDRS` bounds.
    pub(super) connected: usize,
    pub(super) dialing: HashMap<PeerId, Vec<Message>>,
    next_request: RequestId,
    pub(crate) requests: HashMap<RequestId, Pending>,
    /// Requests outstanding per peer: while a peer has one (or is an anchor), its connection is
    /// protected from the driver's connection manager ([`Output::Protect`]).
    pub(super) in_flight: HashMap<PeerId, u32>,
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
            max_failures: config.max_failures,
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

    /// `peer` is kept out of the table because its IP prefix fills its share: reported, never silent
    /// (on one host or behind one NAT every table would otherwise stop at the prefix limit unnoticed).
    pub(crate) fn refused_for_prefix(&mut self, peer: PeerId, out: &mut Out<S>) {
        self.totals.prefix_refused += 1;
        out.push(Output::Dropped {
            peer,
            reason: DropReason::PrefixLimit,
        });
    }

    /// `peer` answered one of our requests: it may enter the table (S/Kademlia: only after a response).
    /// At the address the driver observed, else as an unknown one: never at an address another peer
    /// claimed for it (a lookup's contact), which a colluder could aim at an honest network to use up
    /// its per-prefix places in our table, or at a false address for an honest peer reached through a
    /// relay. An entry keeps the address it entered with.
    pub(crate) fn on_answer(&mut self, peer: PeerId, now: Instant, out: &mut Out<S>) -> InsertOutcome {
        let addr = self.observed(&peer).cloned().unwrap_or_else(Address::unknown);
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
            Command::PeerAddress { peer, addr } => self.on_peer_address(now, peer, addr, out),
            other => self.start_command(now, other, out),
        }
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
