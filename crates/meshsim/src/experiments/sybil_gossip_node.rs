//! [`SybilNode`]: an honest [`Gossip`] node that tells gossip where its peers connect from, or a Sybil
//! that attacks the HyParView views of honest nodes (`meshsim sybil-gossip`).
//!
//! - **Addresses.** HyParView's per-prefix limits count the address a connection comes from. When a
//!   connection comes up, an honest node first hands gossip [`Command::PeerAddress`]: a Sybil's address
//!   from the shared [`Addresses`] (a few /24 prefixes), or an honest peer's synthetic address of
//!   [`synthetic_address`] (a /24 of `10.0.0.0/8` drawn from its id: 65,536 of them, so a few honest
//!   nodes share one). Data only, never used for networking.
//! - **Sybils.** A Sybil is dormant (it ignores everything) until told [`NodeCommand::Attack`]. Then every
//!   round it connects to each of its honest targets and sends `Join`, a high-priority `Neighbor`, a
//!   `ForwardJoin` that ends at once (`ttl` 0) naming another Sybil (the target, if it holds us, asks that
//!   Sybil to be its neighbour with high priority), a `Shuffle` that ends at once carrying Sybils, and an
//!   unsolicited `ShuffleReply` of Sybils (with a guessed nonce: it is on none of the target's walks).
//!   It accepts every `Neighbor` request, answers every shuffle
//!   walk that reaches it with Sybils only, swallows `ForwardJoin` walks and relays no broadcast.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use meshwork_gossip::{
    Command, Event, Gossip, MAX_SHUFFLE, MembershipMessage as Msg, Message, PeerEntry, Timer,
};
use meshwork_kad::Address;
use meshwork_sim::NodeInit;
use meshwork_wire::{BoundedVec, Input, Instant, Output, PeerId, Protocol, ProtocolId};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::gossip_net::GossipNode;
use super::gossip_spam_node::with_scratch;
use super::kad_node::synthetic_address;

/// The addresses of the Sybils, filled in once their ids are known (honest peers are not in it).
pub(crate) type Addresses = Rc<RefCell<HashMap<PeerId, IpAddr>>>;

/// Where `peer` connects from: its Sybil address, else its synthetic one.
fn address_of(addresses: &Addresses, peer: &PeerId) -> IpAddr {
    if let Some(ip) = addresses.borrow().get(peer) {
        return *ip;
    }
    match synthetic_address(peer) {
        Address::V4 { ip, .. } => IpAddr::V4(Ipv4Addr::from(ip)),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

/// A command to a [`SybilNode`].
#[derive(Debug, Clone)]
pub(crate) enum NodeCommand {
    /// A gossip command (ignored by Sybils).
    Gossip(Command),
    /// Start attacking (Sybils only).
    Attack {
        /// The honest nodes this Sybil attacks.
        targets: Vec<PeerId>,
        /// Every Sybil, for the lists it hands out.
        sybils: Rc<Vec<PeerId>>,
        /// Time between two rounds.
        every: Duration,
    },
}

/// A timer of a [`SybilNode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeTimer {
    /// The gossip state's timer.
    Gossip(Timer),
    /// The next attack round.
    Attack,
}

/// The state of an attacking Sybil.
struct Attacker {
    targets: Vec<PeerId>,
    sybils: Rc<Vec<PeerId>>,
    every: Duration,
    rng: StdRng,
    connected: HashSet<PeerId>,
    /// Messages waiting for a connection we dialled.
    queued: HashMap<PeerId, Vec<Msg>>,
}

/// An honest gossip node, or a Sybil.
pub(crate) struct SybilNode {
    gossip: Gossip,
    addresses: Addresses,
    sybil: bool,
    rng_seed: u64,
    attacker: Option<Attacker>,
    /// Attack messages a Sybil sent.
    pub(crate) attack_sent: u64,
    /// `Neighbor` requests of honest nodes a Sybil accepted.
    pub(crate) neighbor_requests: u64,
}

impl SybilNode {
    /// A node for the simulator; `sybil` makes it a (dormant) Sybil.
    pub(crate) fn new(
        init: &NodeInit<'_>,
        config: meshwork_gossip::Config,
        addresses: Addresses,
        sybil: bool,
    ) -> Self {
        Self {
            gossip: Gossip::new(init.keypair.clone(), config, init.rng_seed),
            addresses,
            sybil,
            rng_seed: init.rng_seed,
            attacker: None,
            attack_sent: 0,
            neighbor_requests: 0,
        }
    }

    /// True for a Sybil.
    pub(crate) fn is_sybil(&self) -> bool {
        self.sybil
    }

    /// Hands `input` to the gossip state of an honest node and translates what it asks for.
    fn drive(&mut self, now: Instant, input: Input<Gossip>, out: &mut Vec<Output<Self>>) {
        with_scratch(|scratch| {
            if let Input::PeerUp(peer) = input {
                let addr = SocketAddr::new(address_of(&self.addresses, &peer), 4001);
                let address = Input::Command(Command::PeerAddress { peer, addr });
                self.gossip.handle(now, address, scratch);
            }
            self.gossip.handle(now, input, scratch);
            for output in scratch.drain(..) {
                out.push(match output {
                    Output::Send { to, msg } => Output::Send { to, msg },
                    Output::Emit(event) => Output::Emit(event),
                    Output::Schedule { after, timer } => Output::Schedule {
                        after,
                        timer: NodeTimer::Gossip(timer),
                    },
                    Output::Dial(peer) => Output::Dial(peer),
                    Output::Disconnect(peer) => Output::Disconnect(peer),
                    Output::Dropped { peer, reason } => Output::Dropped { peer, reason },
                    Output::Protect { peer, protect } => Output::Protect { peer, protect },
                });
            }
        });
    }

    /// What a Sybil does with an input (nothing before the attack).
    fn attack(&mut self, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        if let Input::Command(NodeCommand::Attack {
            targets,
            sybils,
            every,
        }) = input
        {
            self.attacker = Some(Attacker {
                targets,
                sybils,
                every,
                rng: StdRng::seed_from_u64(self.rng_seed),
                connected: HashSet::new(),
                queued: HashMap::new(),
            });
            out.push(Output::Schedule {
                after: Duration::ZERO,
                timer: NodeTimer::Attack,
            });
            return;
        }
        let me = self.gossip.peer_id();
        let Some(attacker) = self.attacker.as_mut() else {
            return;
        };
        let mut sent = 0;
        let mut send = |attacker: &mut Attacker, to: PeerId, msg: Msg, out: &mut Vec<Output<Self>>| {
            sent += 1;
            if attacker.connected.contains(&to) {
                out.push(Output::Send {
                    to,
                    msg: Message::Membership(msg),
                });
            } else {
                let queued = attacker.queued.entry(to).or_default();
                if queued.is_empty() {
                    out.push(Output::Dial(to));
                }
                if queued.len() < 8 {
                    queued.push(msg);
                }
            }
        };
        match input {
            Input::Timer(NodeTimer::Attack) => {
                for to in attacker.targets.clone() {
                    let joiner = *attacker.sybils.choose(&mut attacker.rng).unwrap_or(&me);
                    let peers = sample(attacker, me);
                    send(attacker, to, Msg::Join, out);
                    send(attacker, to, Msg::Neighbor { high_priority: true }, out);
                    let joiner = PeerEntry::id_only(joiner);
                    send(attacker, to, Msg::ForwardJoin { joiner, ttl: 0 }, out);
                    let nonce = attacker.rng.r#gen();
                    let shuffle = Msg::Shuffle {
                        origin: PeerEntry::id_only(me),
                        ttl: 0,
                        peers: peers.clone(),
                        nonce,
                    };
                    send(attacker, to, shuffle, out);
                    // A guess at the nonce of the target's walk: it holds one only while a walk is out.
                    let nonce = attacker.rng.r#gen();
                    send(attacker, to, Msg::ShuffleReply { peers, nonce }, out);
                }
                out.push(Output::Schedule {
                    after: attacker.every,
                    timer: NodeTimer::Attack,
                });
            }
            Input::PeerUp(peer) => {
                attacker.connected.insert(peer);
                for msg in attacker.queued.remove(&peer).unwrap_or_default() {
                    out.push(Output::Send {
                        to: peer,
                        msg: Message::Membership(msg),
                    });
                }
            }
            Input::PeerDown(peer) => {
                attacker.connected.remove(&peer);
                attacker.queued.remove(&peer);
            }
            Input::Message {
                from,
                msg: Message::Membership(msg),
            } => match msg {
                Msg::Neighbor { .. } => {
                    self.neighbor_requests += 1;
                    send(
                        attacker,
                        from,
                        Msg::NeighborReply {
                            accepted: true,
                            alternative: None,
                        },
                        out,
                    );
                }
                Msg::Shuffle { origin, nonce, .. } => {
                    let peers = sample(attacker, me);
                    send(attacker, origin.id, Msg::ShuffleReply { peers, nonce }, out);
                }
                _ => {} // Walks end here; evictions and replies change nothing for a Sybil.
            },
            _ => {} // Broadcasts are not relayed; gossip commands and timers do not concern a Sybil.
        }
        self.attack_sent += sent;
    }
}

/// Up to [`MAX_SHUFFLE`] random Sybils other than `me`, named without addresses: the prefix limits
/// count only addresses observed on connections, so what a Sybil claims changes nothing there.
fn sample(attacker: &mut Attacker, me: PeerId) -> BoundedVec<PeerEntry, MAX_SHUFFLE> {
    let count = MAX_SHUFFLE.min(attacker.sybils.len());
    let mut peers: Vec<PeerId> = (0..count)
        .map(|_| attacker.sybils[attacker.rng.gen_range(0..attacker.sybils.len())])
        .filter(|p| *p != me)
        .collect();
    peers.sort_unstable();
    peers.dedup();
    let peers: Vec<PeerEntry> = peers.into_iter().map(PeerEntry::id_only).collect();
    BoundedVec::try_from(peers).unwrap_or_default()
}

impl Protocol for SybilNode {
    type Message = Message;
    type Command = NodeCommand;
    type Event = Event;
    type Timer = NodeTimer;

    const ID: ProtocolId = Gossip::ID;
    const MAX_MESSAGE_SIZE: usize = Gossip::MAX_MESSAGE_SIZE;

    fn handle(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        if self.sybil {
            self.attack(input, out);
            return;
        }
        let input = match input {
            Input::Command(NodeCommand::Gossip(command)) => Input::Command(command),
            Input::Timer(NodeTimer::Gossip(timer)) => Input::Timer(timer),
            Input::Message { from, msg } => Input::Message { from, msg },
            Input::PeerUp(peer) => Input::PeerUp(peer),
            Input::PeerDown(peer) => Input::PeerDown(peer),
            Input::Command(NodeCommand::Attack { .. }) | Input::Timer(NodeTimer::Attack) => return,
        };
        self.drive(now, input, out);
    }
}

impl GossipNode for SybilNode {
    fn gossip(&self) -> &Gossip {
        &self.gossip
    }

    fn wrap(command: Command) -> NodeCommand {
        NodeCommand::Gossip(command)
    }
}
