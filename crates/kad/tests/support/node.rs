//! Helpers shared by the single-node tests: one Kademlia node driven by hand.
#![allow(dead_code, unreachable_pub)]

use meshwork_identity::{Keypair, PeerId};
use meshwork_kad::message::{RECORD_NAMESPACE, Request, Response};
use meshwork_kad::{Address, Command, Config, Event, Kademlia, Key, Message, Record, Timer};
use meshwork_wire::{Input, Instant, Output, Protocol};

pub type Outs = Vec<Output<Kademlia>>;

pub fn keypair(i: u64) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    seed[30] = 0x77;
    Keypair::from_seed(seed)
}

pub fn peer(i: u64) -> PeerId {
    keypair(i).peer_id()
}

/// The key of peer `i`'s own record `name`.
pub fn key_of(i: u64, name: &[u8]) -> Key {
    Key::for_record(&peer(i), name)
}

/// A record `keypair` signed over `key`, whether or not the key admits it: what a hostile peer can
/// make, with a signature that verifies.
pub fn signed_by_hand(keypair: &Keypair, key: Key, value: &[u8], expires: u64) -> Record {
    let mut bytes = key.as_bytes().to_vec();
    bytes.extend_from_slice(&expires.to_be_bytes());
    bytes.extend_from_slice(value);
    Record {
        key,
        value: meshwork_wire::BoundedBytes::try_from(value.to_vec()).unwrap(),
        publisher: keypair.peer_id(),
        expires,
        signature: keypair.sign(RECORD_NAMESPACE, &bytes),
    }
}

pub fn addr(i: u64) -> Address {
    Address::V4 {
        ip: [10, 1, i as u8, 1],
        port: 9,
    }
}

pub struct Node {
    pub kad: Kademlia,
    pub now: Instant,
}

impl Node {
    pub fn new(config: Config) -> Self {
        Self {
            kad: Kademlia::new(keypair(0), config, 1),
            now: Instant::ZERO,
        }
    }

    pub fn input(&mut self, input: Input<Kademlia>) -> Outs {
        let mut out = Vec::new();
        self.kad.handle(self.now, input, &mut out);
        out
    }

    /// Connects `p` (observed at `addr(p)`).
    pub fn connect(&mut self, p: u64) -> Outs {
        self.input(Input::Command(Command::PeerAddress {
            peer: peer(p),
            addr: addr(p),
        }));
        self.input(Input::PeerUp(peer(p)))
    }

    pub fn from(&mut self, p: u64, msg: Message) -> Outs {
        self.input(Input::Message { from: peer(p), msg })
    }
}

/// The requests in `out` sent to `to`, with their ids.
pub fn requests_to(out: &Outs, to: PeerId) -> Vec<(u64, Request)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                to: t,
                msg: Message::Request { id, request },
            } if *t == to => Some((*id, request.clone())),
            _ => None,
        })
        .collect()
}

pub fn responses(out: &Outs) -> Vec<Response> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                msg: Message::Response { response, .. },
                ..
            } => Some(response.clone()),
            _ => None,
        })
        .collect()
}

pub fn events(out: &Outs) -> Vec<Event> {
    out.iter()
        .filter_map(|o| match o {
            Output::Emit(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// Peer indices whose key falls in bucket `bucket` of node 0's table.
pub fn in_bucket(bucket: usize, count: usize) -> Vec<u64> {
    let local = Key::from_peer(&peer(0));
    (1..)
        .filter(|&i| local.distance(&Key::from_peer(&peer(i))).bucket_index() == Some(bucket))
        .take(count)
        .collect()
}
/// Peer `from`'s answer to request `id`, naming `named`.
pub fn answer(node: &mut Node, from: u64, id: u64, named: Vec<meshwork_kad::PeerInfo>) -> Outs {
    let closer = meshwork_wire::BoundedVec::try_from(named).expect("at most the bound");
    node.from(
        from,
        Message::Response {
            id,
            response: Response::Nodes { closer },
        },
    )
}

/// Admits `p` by a request it sends us, returning the outputs of that request (its answer among them).
pub fn admit(node: &mut Node, p: u64) -> Outs {
    node.connect(p);
    node.from(
        p,
        Message::Request {
            id: 1,
            request: Request::Ping,
        },
    )
}

/// The delays of the request-deadline timers `out` schedules.
pub fn deadline_timers(out: &Outs) -> Vec<std::time::Duration> {
    out.iter()
        .filter_map(|o| match o {
            Output::Schedule {
                after,
                timer: Timer::Deadlines,
            } => Some(*after),
            _ => None,
        })
        .collect()
}

/// The protections in `out`, in order.
pub fn protections(out: &Outs) -> Vec<(PeerId, bool)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Protect { peer, protect } => Some((*peer, *protect)),
            _ => None,
        })
        .collect()
}

/// How long after `out` the timer `timer` fires, if `out` sets it.
pub fn timer_in(out: &Outs, timer: &Timer) -> Option<std::time::Duration> {
    out.iter().find_map(|o| match o {
        Output::Schedule { after, timer: t } if t == timer => Some(*after),
        _ => None,
    })
}

/// A join (query 1) through `peers`.
pub fn bootstrap(node: &mut Node, peers: &[u64]) -> Outs {
    node.input(Input::Command(Command::Bootstrap {
        query: meshwork_kad::QueryId(1),
        peers: peers
            .iter()
            .map(|&p| meshwork_kad::PeerInfo {
                id: peer(p),
                addr: addr(p),
            })
            .collect(),
    }))
}
