//! [`KadNode`]: a [`Kademlia`] node as the simulator drives it, with what the Kademlia experiments need
//! around it.
//!
//! - **Addresses.** The simulator connects nodes by peer id, but Kademlia's per-prefix limits count the
//!   address a connection was observed from. When a connection comes up, the wrapper first hands Kademlia
//!   [`Command::PeerAddress`] with a synthetic IPv4 address derived from the peer's id
//!   ([`synthetic_address`]): data only, never used for networking. Three bytes of the id give the
//!   address, so peers spread over 65,536 /24 prefixes, as random hosts on the internet would, and
//!   where a peer's key falls says nothing of its prefix (as on the internet). An experiment may
//!   give some peers other addresses ([`KadNode::set_addresses`]): `meshsim sybil-kad` puts its Sybils in
//!   a few prefixes.
//! - **Lookup tracing.** For every [`Command::FindNode`] and [`Command::FindPeer`] it was given, the
//!   wrapper follows the lookup's requests and answers and, when Kademlia reports
//!   [`Event::ClosestPeers`] or [`Event::FoundPeer`], emits [`NodeEvent::Lookup`] with the lookup's
//!   *hops* and message count. A peer the lookup asks without having been told of it (a
//!   seed from our own table) has depth 1; a peer first named in the answer of a peer of depth `d` has
//!   depth `d + 1`. The hops of a lookup are the depth of its target (the request chain that reached it),
//!   or, if the target was not found, the largest depth among the returned peers.
//! - **Lies.** A node made malicious ([`KadNode::set_malicious`]) answers pings but answers every lookup
//!   request with the malicious peers closest to the key (an eclipse attempt), and never a record.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use meshwork_kad::message::{Request, RequestId, Response};
use meshwork_kad::{Address, Command, Config, Event, Kademlia, Key, Message, PeerInfo, QueryId, Timer};
use meshwork_sim::NodeInit;
use meshwork_wire::{BoundedVec, Input, Instant, Output, PeerId, Protocol, ProtocolId};

/// The synthetic address of a peer: `10.a.b.c:4001` with `a.b.c` the first bytes of its id (an
/// ed25519 key, whose first bytes are uniform). Not of its Kademlia key: a host's address says
/// nothing of where its key falls. Addresses taken from the key's first bytes put the peers nearest
/// in key space in one /24, two at most of which a bucket takes (`Config::max_per_prefix_in_bucket`):
/// at 100,000 nodes a node's buckets 12 to 14, which hold the peers nearest it, spread over 8 to 2
/// prefixes, and `meshsim kad-lookup --nodes 100000` returned 91.3% of the true closest peers
/// (`closest_accuracy`) against 99.97% with these addresses, at 7 round trips a lookup (p50)
/// against 6.
pub(crate) fn synthetic_address(peer: &PeerId) -> Address {
    let b = peer.as_bytes();
    Address::V4 {
        ip: [10, b[0], b[1], b[2]],
        port: 4001,
    }
}

/// A peer and its synthetic address.
pub(crate) fn info(peer: PeerId) -> PeerInfo {
    PeerInfo {
        addr: synthetic_address(&peer),
        id: peer,
    }
}

/// A finished, traced [`Command::FindNode`].
#[derive(Debug, Clone)]
pub(crate) struct LookupDone {
    /// The query.
    pub(crate) query: QueryId,
    /// The peers Kademlia returned, closest first.
    pub(crate) peers: Vec<PeerInfo>,
    /// The hops (see the module docs).
    pub(crate) hops: u32,
    /// Requests the lookup sent.
    pub(crate) requests: u64,
    /// Answers it received.
    pub(crate) responses: u64,
}

/// What a [`KadNode`] tells the experiment.
#[derive(Debug)]
pub(crate) enum NodeEvent {
    /// A traced lookup finished.
    Lookup(LookupDone),
    /// Any other Kademlia event.
    Kad(Event),
}

/// The trace of one lookup in progress.
#[derive(Debug, Default)]
struct Track {
    depth: HashMap<PeerId, u32>,
    requests: u64,
    responses: u64,
}

/// A Kademlia node with synthetic addresses, lookup tracing and an optional malicious mode.
pub(crate) struct KadNode {
    kad: Kademlia,
    tracked: HashMap<Key, Track>,
    pending: HashMap<(PeerId, RequestId), Key>,
    malicious: Option<Rc<Vec<PeerInfo>>>,
    /// Addresses that replace the synthetic one of these peers.
    addresses: Rc<HashMap<PeerId, Address>>,
}

thread_local! {
    /// Kademlia's outputs on their way to [`KadNode::translate`], one buffer for every node of the
    /// simulation (it is empty between two inputs). A buffer per node kept room for the largest burst
    /// that node ever emitted: 5.5 KB a node at 10,000 nodes by heaptrack, which no real node holds.
    static SCRATCH: RefCell<Vec<Output<Kademlia>>> = const { RefCell::new(Vec::new()) };
}

impl KadNode {
    /// A node for the simulator.
    pub(crate) fn new(init: &NodeInit<'_>, config: Config) -> Self {
        Self {
            kad: Kademlia::new(init.keypair.clone(), config, init.rng_seed),
            tracked: HashMap::new(),
            pending: HashMap::new(),
            malicious: None,
            addresses: Rc::default(),
        }
    }

    /// The Kademlia state.
    pub(crate) fn kad(&self) -> &Kademlia {
        &self.kad
    }

    /// From now on, answer lookups with the closest of `liars` (which should include this node's peers
    /// in crime, not necessarily itself).
    pub(crate) fn set_malicious(&mut self, liars: Rc<Vec<PeerInfo>>) {
        self.malicious = Some(liars);
    }

    /// From now on, these peers connect from these addresses (the others from their synthetic one).
    pub(crate) fn set_addresses(&mut self, addresses: Rc<HashMap<PeerId, Address>>) {
        self.addresses = addresses;
    }

    fn lie(
        &self,
        liars: &[PeerInfo],
        from: PeerId,
        id: RequestId,
        request: &Request,
    ) -> Option<Output<Self>> {
        let key = match request {
            Request::Ping => {
                return Some(Output::Send {
                    to: from,
                    msg: Message::Response {
                        id,
                        response: Response::Pong,
                    },
                });
            }
            Request::FindNode { target } => *target,
            Request::GetValue { key } | Request::GetProviders { key } => *key,
            Request::PutValue { .. } | Request::AddProvider { .. } => {
                return Some(Output::Send {
                    to: from,
                    msg: Message::Response {
                        id,
                        response: Response::Stored { ok: true },
                    },
                });
            }
        };
        let me = self.kad.local_peer();
        let mut closest: Vec<(meshwork_kad::Distance, &PeerInfo)> = liars
            .iter()
            .filter(|p| p.id != me && p.id != from)
            .map(|p| (Key::from_peer(&p.id).distance(&key), p))
            .collect();
        let k = self.kad.config().k.min(closest.len());
        if k < closest.len() && k > 0 {
            closest.select_nth_unstable_by_key(k - 1, |a| a.0);
        }
        closest.truncate(k);
        closest.sort_unstable_by_key(|a| a.0);
        let closer =
            BoundedVec::try_from(closest.into_iter().map(|(_, p)| p.clone()).collect::<Vec<_>>()).ok()?;
        let response = match request {
            Request::GetValue { .. } => Response::Value { record: None, closer },
            Request::GetProviders { .. } => Response::Providers {
                providers: BoundedVec::default(),
                closer,
            },
            _ => Response::Nodes { closer },
        };
        Some(Output::Send {
            to: from,
            msg: Message::Response { id, response },
        })
    }

    /// Records an answer to a traced lookup, before Kademlia sees it.
    fn on_response(&mut self, from: PeerId, id: RequestId, response: &Response) {
        let Some(target) = self.pending.remove(&(from, id)) else {
            return;
        };
        let Some(track) = self.tracked.get_mut(&target) else {
            return;
        };
        track.responses += 1;
        let depth = track.depth.get(&from).copied().unwrap_or(1);
        if let Response::Nodes { closer } = response {
            for peer in closer.iter() {
                track.depth.entry(peer.id).or_insert(depth + 1);
            }
        }
    }

    /// Translates Kademlia's outputs, tracing the requests and results of traced lookups.
    fn translate(&mut self, out: &mut Vec<Output<Self>>) {
        // Borrowed in place, not taken and put back: `LocalKey::set` checks the key's lazy state,
        // a percent of a simulated network's CPU.
        SCRATCH.with_borrow_mut(|scratch| self.translate_from(scratch, out));
    }

    fn translate_from(&mut self, scratch: &mut Vec<Output<Kademlia>>, out: &mut Vec<Output<Self>>) {
        for output in scratch.drain(..) {
            out.push(match output {
                Output::Send { to, msg } => {
                    if let Message::Request {
                        id,
                        request: Request::FindNode { target },
                    } = &msg
                    {
                        if let Some(track) = self.tracked.get_mut(target) {
                            track.requests += 1;
                            track.depth.entry(to).or_insert(1);
                            self.pending.insert((to, *id), *target);
                        }
                    }
                    Output::Send { to, msg }
                }
                Output::Emit(Event::ClosestPeers {
                    query,
                    target,
                    peers,
                    stats,
                }) => match self.tracked.remove(&target) {
                    Some(track) => self.traced(track, query, target, peers),
                    None => Output::Emit(NodeEvent::Kad(Event::ClosestPeers {
                        query,
                        target,
                        peers,
                        stats,
                    })),
                },
                Output::Emit(Event::FoundPeer {
                    query,
                    peer,
                    found,
                    stats,
                }) => match self.tracked.remove(&Key::from_peer(&peer)) {
                    Some(mut track) => {
                        // It ends as its peer's connection comes up, with requests still out or
                        // queued on dials: each counts with the answer it will get (a failed one
                        // with none), so that ending early does not make it look cheaper.
                        let answered = stats.requests.saturating_sub(stats.failures + stats.timeouts);
                        (track.requests, track.responses) = (stats.requests.into(), answered.into());
                        let peers = found.into_iter().collect();
                        self.traced(track, query, Key::from_peer(&peer), peers)
                    }
                    None => Output::Emit(NodeEvent::Kad(Event::FoundPeer {
                        query,
                        peer,
                        found,
                        stats,
                    })),
                },
                Output::Emit(event) => Output::Emit(NodeEvent::Kad(event)),
                Output::Schedule { after, timer } => Output::Schedule { after, timer },
                Output::Dial(peer) => Output::Dial(peer),
                Output::Disconnect(peer) => Output::Disconnect(peer),
                Output::Dropped { peer, reason } => Output::Dropped { peer, reason },
                Output::Protect { peer, protect } => Output::Protect { peer, protect },
            });
        }
    }

    /// The end of a traced lookup of `target`, which returned `peers`.
    fn traced(&mut self, track: Track, query: QueryId, target: Key, peers: Vec<PeerInfo>) -> Output<Self> {
        let found = peers.iter().find(|p| Key::from_peer(&p.id) == target);
        let hops = match found {
            Some(p) => track.depth.get(&p.id).copied().unwrap_or(0),
            None => peers
                .iter()
                .filter_map(|p| track.depth.get(&p.id).copied())
                .max()
                .unwrap_or(0),
        };
        self.pending.retain(|_, t| *t != target);
        Output::Emit(NodeEvent::Lookup(LookupDone {
            query,
            peers,
            hops,
            requests: track.requests,
            responses: track.responses,
        }))
    }

    fn feed(&mut self, now: Instant, input: Input<Kademlia>) {
        SCRATCH.with_borrow_mut(|scratch| self.kad.handle(now, input, scratch));
    }
}

impl Protocol for KadNode {
    type Message = Message;
    type Command = Command;
    type Event = NodeEvent;
    type Timer = Timer;

    const ID: ProtocolId = <Kademlia as Protocol>::ID;
    const MAX_MESSAGE_SIZE: usize = <Kademlia as Protocol>::MAX_MESSAGE_SIZE;

    fn handle(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        match input {
            Input::PeerUp(peer) => {
                let addr = self
                    .addresses
                    .get(&peer)
                    .cloned()
                    .unwrap_or_else(|| synthetic_address(&peer));
                self.feed(now, Input::Command(Command::PeerAddress { peer, addr }));
                self.feed(now, Input::PeerUp(peer));
            }
            Input::Message {
                from,
                msg: Message::Request { id, request },
            } if self.malicious.is_some() => {
                let liars = self.malicious.clone().unwrap_or_default();
                out.extend(self.lie(&liars, from, id, &request));
                return;
            }
            Input::Message { from, msg } => {
                if let Message::Response { id, response } = &msg {
                    self.on_response(from, *id, response);
                }
                self.feed(now, Input::Message { from, msg });
            }
            Input::Command(command) => {
                match &command {
                    Command::FindNode { target, .. } => {
                        self.tracked.insert(*target, Track::default());
                    }
                    Command::FindPeer { peer, .. } => {
                        self.tracked.insert(Key::from_peer(peer), Track::default());
                    }
                    _ => {}
                }
                self.feed(now, Input::Command(command));
            }
            Input::Timer(timer) => self.feed(now, Input::Timer(timer)),
            Input::PeerDown(peer) => self.feed(now, Input::PeerDown(peer)),
        }
        self.translate(out);
    }
}
