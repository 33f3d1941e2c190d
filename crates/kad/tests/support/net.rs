//! A tiny deterministic network driver for the multi-node tests: every message goes through the codec
//! (a sample is fully round-tripped), is delivered after a fixed latency, in time order, for a bounded
//! number of steps.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_kad::message::{Request, Response};
use meshwork_kad::{Address, Command, Config, Event, Kademlia, Key, Message, PeerInfo, QueryId};
use meshwork_wire::{Input, Instant, Output, Protocol};

pub const LATENCY: Duration = Duration::from_millis(10);

pub struct Net {
    pub nodes: Vec<Kademlia>,
    pub addrs: Vec<Address>,
    pub index: HashMap<PeerId, usize>,
    pub alive: Vec<bool>,
    pub queue: BinaryHeap<Reverse<(Instant, u64)>>,
    pub pending: HashMap<u64, (usize, Input<Kademlia>)>,
    pub seq: u64,
    pub now: Instant,
    pub events: Vec<(usize, Event)>,
    pub messages: u64,
    /// Adversaries: they answer every lookup with the adversaries closest to its target (an eclipse
    /// attempt) and never return a record; pings they answer, so they stay in tables.
    pub liars: HashSet<usize>,
}

impl Net {
    pub fn new(n: usize, config: &Config) -> Self {
        let mut nodes = Vec::new();
        let mut addrs = Vec::new();
        let mut index = HashMap::new();
        for i in 0..n {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            let keypair = Keypair::from_seed(seed);
            index.insert(keypair.peer_id(), i);
            nodes.push(Kademlia::new(keypair, config.clone(), i as u64));
            // One /24 per node, so the prefix limits never bite in this honest network.
            addrs.push(Address::V4 {
                ip: [10, (i >> 8) as u8, (i & 0xff) as u8, 1],
                port: 4000,
            });
        }
        Self {
            nodes,
            addrs,
            index,
            alive: vec![true; n],
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            seq: 0,
            now: Instant::ZERO,
            events: Vec::new(),
            messages: 0,
            liars: HashSet::new(),
        }
    }

    pub fn peer(&self, i: usize) -> PeerId {
        self.nodes[i].local_peer()
    }

    pub fn info(&self, i: usize) -> PeerInfo {
        PeerInfo {
            id: self.peer(i),
            addr: self.addrs[i].clone(),
        }
    }

    pub fn push(&mut self, at: Instant, node: usize, input: Input<Kademlia>) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.pending.insert(self.seq, (node, input));
    }

    pub fn command(&mut self, node: usize, command: Command) {
        let now = self.now;
        self.push(now, node, Input::Command(command));
    }

    pub fn apply(&mut self, node: usize, outputs: Vec<Output<Kademlia>>) {
        let at = self.now + LATENCY;
        let me = self.peer(node);
        for output in outputs {
            match output {
                Output::Send { to, msg } => {
                    let len = meshwork_wire::encoded_len(&msg).unwrap();
                    assert!(len <= <Kademlia as Protocol>::MAX_MESSAGE_SIZE);
                    // Decoding checks every PeerId on the curve, which dominates the run time: round-trip
                    // a deterministic sample of the messages through the codec.
                    if self.messages % 16 == 0 {
                        let bytes = meshwork_wire::encode(&msg).unwrap();
                        let back: Message = meshwork_wire::decode(&bytes).unwrap();
                        assert_eq!(back, msg);
                    }
                    self.messages += 1;
                    let to = self.index[&to];
                    if self.alive[to] {
                        self.push(at, to, Input::Message { from: me, msg });
                    }
                }
                Output::Dial(peer) => {
                    let Some(&other) = self.index.get(&peer) else {
                        continue;
                    };
                    if self.alive[other] {
                        let (a, b) = (self.addrs[other].clone(), self.addrs[node].clone());
                        self.push(at, node, Input::Command(Command::PeerAddress { peer, addr: a }));
                        self.push(at, node, Input::PeerUp(peer));
                        self.push(
                            at,
                            other,
                            Input::Command(Command::PeerAddress { peer: me, addr: b }),
                        );
                        self.push(at, other, Input::PeerUp(me));
                    } else {
                        self.push(at, node, Input::PeerDown(peer));
                    }
                }
                Output::Schedule { after, timer } => {
                    let at = self.now + after;
                    self.push(at, node, Input::Timer(timer));
                }
                Output::Emit(event) => self.events.push((node, event)),
                Output::Disconnect(_) | Output::Dropped { .. } | Output::Protect { .. } => {}
            }
        }
    }

    /// Takes node `i` down now: it handles nothing more, messages to it are lost, and every other node
    /// is told `PeerDown` for it after `notice` (its connections closing), as a driver does.
    pub fn kill(&mut self, i: usize, notice: Duration) {
        self.alive[i] = false;
        let gone = self.peer(i);
        let at = self.now + notice;
        for other in 0..self.nodes.len() {
            if other != i && self.alive[other] {
                self.push(at, other, Input::PeerDown(gone));
            }
        }
    }

    /// An adversary's answer: pings are answered, lookups get the adversaries closest to the target.
    pub fn lie(&mut self, node: usize, input: Input<Kademlia>) {
        let Input::Message {
            from,
            msg: Message::Request { id, request },
        } = input
        else {
            return;
        };
        let target = match request {
            Request::FindNode { target } => target,
            Request::GetValue { key } | Request::GetProviders { key } => key,
            Request::Ping => {
                let at = self.now + LATENCY;
                let msg = Message::Response {
                    id,
                    response: Response::Pong,
                };
                self.push(
                    at,
                    self.index[&from],
                    Input::Message {
                        from: self.peer(node),
                        msg,
                    },
                );
                return;
            }
            _ => return,
        };
        let mut liars: Vec<usize> = self.liars.iter().copied().filter(|&l| l != node).collect();
        liars.sort_by_key(|&l| Key::from_peer(&self.peer(l)).distance(&target));
        let closer: Vec<PeerInfo> = liars.iter().take(20).map(|&l| self.info(l)).collect();
        let closer = meshwork_wire::BoundedVec::try_from(closer).unwrap();
        let response = match request {
            Request::GetValue { .. } => Response::Value { record: None, closer },
            Request::GetProviders { .. } => Response::Providers {
                providers: meshwork_wire::BoundedVec::default(),
                closer,
            },
            _ => Response::Nodes { closer },
        };
        let at = self.now + LATENCY;
        let msg = Message::Response { id, response };
        self.push(
            at,
            self.index[&from],
            Input::Message {
                from: self.peer(node),
                msg,
            },
        );
    }

    /// Runs until `deadline`, or until `done` holds for the events so far; at most `max_steps` inputs.
    pub fn run(&mut self, deadline: Instant, max_steps: usize, done: impl Fn(&[(usize, Event)]) -> bool) {
        for _ in 0..max_steps {
            if done(&self.events) {
                return;
            }
            let Some(Reverse((at, seq))) = self.queue.peek().copied() else {
                return;
            };
            if at > deadline {
                return;
            }
            self.queue.pop();
            let (node, input) = self.pending.remove(&seq).unwrap();
            self.now = at;
            if !self.alive[node] {
                continue;
            }
            if self.liars.contains(&node) {
                self.lie(node, input);
                continue;
            }
            let mut out = Vec::new();
            self.nodes[node].handle(at, input, &mut out);
            self.apply(node, out);
        }
        panic!("step bound reached at {:?}", self.now);
    }
}

pub fn count<F: Fn(&Event) -> bool>(events: &[(usize, Event)], f: F) -> usize {
    events.iter().filter(|(_, e)| f(e)).count()
}

pub fn bootstrapped(n: usize, config: &Config) -> Net {
    let mut net = Net::new(n, config);
    for i in 1..n {
        let peers = vec![net.info(0)];
        net.now = Instant::from_duration(Duration::from_millis(20 * i as u64));
        net.command(
            i,
            Command::Bootstrap {
                query: QueryId(0),
                peers,
            },
        );
    }
    net.now = Instant::ZERO;
    let deadline = Instant::from_duration(Duration::from_secs(60));
    net.run(deadline, 5_000_000, |ev| {
        count(ev, |e| matches!(e, Event::Bootstrapped { .. })) == n - 1
    });
    assert_eq!(
        count(&net.events, |e| matches!(e, Event::Bootstrapped { .. })),
        n - 1
    );
    net
}
