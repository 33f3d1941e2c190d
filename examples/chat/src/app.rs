//! [`ChatApp`]: gossip and Kademlia composed into one pure protocol (no tokio, no clock, no sockets).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use meshwork_gossip::{Broadcast, Gossip, MessageId, TopicId, TopicOptions, Verdict};
use meshwork_identity::{Keypair, PeerId};
use meshwork_kad::{Kademlia, PeerInfo, QueryId};
use meshwork_wire::{Channel, DropReason, Input, Instant, Lifted, Links, Output, Protocol, ProtocolId};

use crate::line::{ChatLine, MAX_LINE_PAYLOAD};

const GOSSIP: usize = 0;
const KAD: usize = 1;
/// Peers from Kademlia's table that gossip joins through: more than one, so one dead contact does not
/// leave us alone; few, since HyParView's random walks spread us from there.
const JOIN_THROUGH: usize = 3;
const BOOTSTRAP: QueryId = QueryId(1);

/// The one topic every chat node subscribes to.
pub fn chat_topic() -> TopicId {
    TopicId::from_name("meshwork/chat/1")
}

meshwork_wire::wire_enum! {
    /// What crosses the wire: gossip's and Kademlia's own messages, each on its own channel.
    pub enum ChatMessage {
        /// Gossip (HyParView membership and Plumtree broadcast).
        Gossip(meshwork_gossip::Message),
        /// Kademlia.
        Kad(meshwork_kad::Message),
    }
}

/// The children's timers.
#[derive(Clone, Debug)]
pub enum ChatTimer {
    /// Gossip's.
    Gossip(meshwork_gossip::Timer),
    /// Kademlia's.
    Kad(meshwork_kad::Timer),
}

/// What the application asks of the chat.
#[derive(Clone, Debug)]
pub enum ChatCommand {
    /// Join the network through one known peer: Kademlia bootstraps from it, then gossip joins through
    /// the peers Kademlia found.
    Join(PeerInfo),
    /// Publish a line under `nick`.
    Say {
        /// The nickname.
        nick: String,
        /// The text.
        text: String,
    },
    /// From the driver: `peer`'s connection comes from `addr` (both children count peers per prefix by
    /// it, and gossip names the peer with it to others).
    PeerAddress {
        /// The peer.
        peer: PeerId,
        /// The address its connection comes from.
        addr: SocketAddr,
    },
    /// From the driver: a round trip of `rtt` to `peer` was measured (the QUIC handshake's). Gossip
    /// learns from it how long to wait for an announced message before grafting it.
    PeerRoundTrip {
        /// The peer.
        peer: PeerId,
        /// The measured round trip.
        rtt: Duration,
    },
}

/// What the chat tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatEvent {
    /// A peer's line, signed by `from` and checked.
    Line {
        /// The authenticated sender.
        from: PeerId,
        /// Its nickname.
        nick: String,
        /// The text.
        text: String,
    },
    /// Kademlia's bootstrap ended, and gossip joined through peers it found.
    Joined {
        /// Peers in Kademlia's routing table.
        table_size: usize,
    },
    /// Kademlia's bootstrap failed (the contact did not answer, say): we are alone.
    JoinFailed(String),
    /// A line of ours was not published.
    NotSent(String),
    /// A peer became a gossip neighbour.
    NeighborUp(PeerId),
    /// A peer stopped being a gossip neighbour.
    NeighborDown(PeerId),
}

/// Settings of a chat node.
#[derive(Clone, Debug, Default)]
pub struct ChatConfig {
    /// Every node on this machine shares 127.0.0.1: lift Kademlia's and gossip's per-prefix limits,
    /// which are meant for the internet. Never on a public network. Default false.
    pub loopback_devnet: bool,
}

/// Work for a child, run in order within one step.
enum Work {
    Gossip(Input<Gossip>),
    Verdict(MessageId, Verdict),
    Kad(Input<Kademlia>),
}

/// The chat protocol: Kademlia finds peers, gossip carries signed lines between them.
pub struct ChatApp {
    gossip: Gossip,
    kad: Kademlia,
    links: Links,
    contact: Option<PeerId>,
    work: VecDeque<Work>,
}

impl ChatApp {
    /// A chat node with identity `keypair`, subscribed to [`chat_topic`] (lines checked before they are
    /// relayed), its RNGs seeded from `seed`.
    pub fn new(keypair: Keypair, config: &ChatConfig, seed: u64) -> Self {
        let mut gossip_config = meshwork_gossip::Config::default();
        let mut kad_config = meshwork_kad::Config::default();
        if config.loopback_devnet {
            gossip_config.admission = gossip_config.admission.without_prefix_limits();
            kad_config.max_per_prefix_in_bucket = kad_config.k;
            kad_config.max_per_prefix_in_table = usize::MAX;
        }
        let mut gossip = Gossip::new(keypair.clone(), gossip_config, seed);
        let options = TopicOptions::default()
            .with_max_payload(MAX_LINE_PAYLOAD)
            .with_validation();
        gossip.subscribe(chat_topic(), options);
        Self {
            gossip,
            kad: Kademlia::new(keypair, kad_config, seed.wrapping_add(1)),
            links: Links::new(2),
            contact: None,
            work: VecDeque::new(),
        }
    }

    /// The gossip child.
    pub fn gossip(&self) -> &Gossip {
        &self.gossip
    }

    /// The Kademlia child.
    pub fn kad(&self) -> &Kademlia {
        &self.kad
    }

    /// Where `peer` can be dialled, as gossip or Kademlia last heard (the node runtime's `address_of`).
    pub fn address_of(&self, peer: &PeerId) -> Option<SocketAddr> {
        let kad = || self.kad.address_of(peer).and_then(|addr| addr.socket_addr());
        self.gossip.address_of(peer).or_else(kad)
    }

    /// Runs queued work until none is left: every child input, and every answer the parent gives a
    /// child in return, within this one step.
    fn run(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        while let Some(work) = self.work.pop_front() {
            match work {
                Work::Gossip(input) => self.gossip_do(out, |g, buf| g.handle(now, input, buf)),
                Work::Verdict(id, verdict) => {
                    self.gossip_do(out, |g, buf| g.validated(now, id, verdict, buf));
                }
                Work::Kad(input) => self.kad_do(now, input, out),
            }
        }
    }

    /// Runs `call` on gossip and handles what it leaves for the parent.
    fn gossip_do(
        &mut self,
        out: &mut Vec<Output<Self>>,
        call: impl FnOnce(&mut Gossip, &mut Vec<Output<Gossip>>),
    ) {
        let message = ChatMessage::Gossip;
        let (_, left) = self
            .links
            .drive(GOSSIP, &mut self.gossip, call, message, ChatTimer::Gossip, out);
        for event in self.follow(left, |peer| Work::Gossip(Input::PeerUp(peer))) {
            self.on_gossip(event, out);
        }
    }

    /// Hands Kademlia `input` and handles what it leaves for the parent.
    fn kad_do(&mut self, now: Instant, input: Input<Kademlia>, out: &mut Vec<Output<Self>>) {
        let call = |k: &mut Kademlia, buf: &mut Vec<Output<Kademlia>>| k.handle(now, input, buf);
        let (_, left) = self
            .links
            .drive(KAD, &mut self.kad, call, ChatMessage::Kad, ChatTimer::Kad, out);
        for event in self.follow(left, |peer| Work::Kad(Input::PeerUp(peer))) {
            self.on_kad(event, out);
        }
    }

    /// Queues the `PeerUp`s and `PeerDown`s a child's outputs call for; returns its events.
    fn follow<E>(&mut self, left: Vec<Lifted<E>>, peer_up: fn(PeerId) -> Work) -> Vec<E> {
        let mut events = Vec::new();
        for lifted in left {
            match lifted {
                Lifted::Event(event) => events.push(event),
                Lifted::PeerUp(peer) => self.work.push_back(peer_up(peer)),
                Lifted::Closed(peer) => self.both(Input::PeerDown(peer), Input::PeerDown(peer)),
                Lifted::Done => {}
            }
        }
        events
    }

    /// Queues an input for each child.
    fn both(&mut self, gossip: Input<Gossip>, kad: Input<Kademlia>) {
        self.work.push_back(Work::Gossip(gossip));
        self.work.push_back(Work::Kad(kad));
    }

    /// Gossip's question is answered in this step; delivered lines go to the application.
    fn on_gossip(&mut self, event: meshwork_gossip::Event, out: &mut Vec<Output<Self>>) {
        use meshwork_gossip::Event;
        match event {
            Event::Validate { id, message, .. } => {
                // A bad line costs the peer that relayed it (gossip scores the rejection).
                let verdict = match ChatLine::decode(message.payload.as_ref()) {
                    Ok(_) => Verdict::Accept,
                    Err(_) => Verdict::Reject,
                };
                self.work.push_back(Work::Verdict(id, verdict));
            }
            // Our own lines come back with hops 0: the user typed them, nothing to show.
            Event::Delivered { message, .. } if message.origin != self.gossip.peer_id() => {
                if let Ok(line) = ChatLine::decode(message.payload.as_ref()) {
                    let (nick, text, from) = (line.nick, line.text, message.origin);
                    out.push(Output::Emit(ChatEvent::Line { from, nick, text }));
                }
            }
            Event::PublishFailed(error) => out.push(Output::Emit(ChatEvent::NotSent(error.to_string()))),
            Event::NeighborUp(peer) => out.push(Output::Emit(ChatEvent::NeighborUp(peer))),
            Event::NeighborDown(peer) => out.push(Output::Emit(ChatEvent::NeighborDown(peer))),
            _ => {}
        }
    }

    /// When Kademlia's bootstrap ends, gossip joins through the peers closest to us in its table (the
    /// contact itself if the table is empty).
    fn on_kad(&mut self, event: meshwork_kad::Event, out: &mut Vec<Output<Self>>) {
        use meshwork_kad::Event;
        if let Event::Failed {
            query: BOOTSTRAP,
            error,
            ..
        } = event
        {
            out.push(Output::Emit(ChatEvent::JoinFailed(error.to_string())));
        } else if let Event::Bootstrapped {
            query: BOOTSTRAP,
            table_size,
            ..
        } = event
        {
            let table = self.kad.routing_table();
            let mut through: Vec<PeerId> = table
                .closest(table.local_key(), JOIN_THROUGH)
                .iter()
                .map(|e| e.peer)
                .collect();
            if through.is_empty() {
                through.extend(self.contact);
            }
            let join = meshwork_gossip::Command::Join(through);
            self.work.push_back(Work::Gossip(Input::Command(join)));
            out.push(Output::Emit(ChatEvent::Joined { table_size }));
        }
    }
}

impl Protocol for ChatApp {
    type Message = ChatMessage;
    type Command = ChatCommand;
    type Event = ChatEvent;
    type Timer = ChatTimer;

    const ID: ProtocolId = ProtocolId::new("/meshwork/chat/1");
    const MAX_MESSAGE_SIZE: usize = max(Gossip::MAX_MESSAGE_SIZE, <Kademlia>::MAX_MESSAGE_SIZE);

    fn channels() -> Vec<Channel> {
        // In the order of `ChatMessage`'s variants.
        vec![Channel::of::<Gossip>(), Channel::of::<Kademlia>()]
    }

    fn handle(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        match input {
            Input::Message { from, msg } => match msg {
                ChatMessage::Gossip(msg) => {
                    // The peer opened the stream of a child that had released it: the child takes it back.
                    if self.links.engage(&from, GOSSIP) {
                        self.work.push_back(Work::Gossip(Input::PeerUp(from)));
                    }
                    self.work.push_back(Work::Gossip(Input::Message { from, msg }));
                }
                ChatMessage::Kad(msg) => {
                    if self.links.engage(&from, KAD) {
                        self.work.push_back(Work::Kad(Input::PeerUp(from)));
                    }
                    self.work.push_back(Work::Kad(Input::Message { from, msg }));
                }
            },
            Input::Command(ChatCommand::Join(contact)) => {
                self.contact = Some(contact.id);
                let bootstrap = meshwork_kad::Command::Bootstrap {
                    query: BOOTSTRAP,
                    peers: vec![contact],
                };
                self.work.push_back(Work::Kad(Input::Command(bootstrap)));
            }
            Input::Command(ChatCommand::Say { nick, text }) => match ChatLine::new(&nick, &text) {
                Ok(line) => {
                    let publish = meshwork_gossip::Command::Publish(chat_topic(), line.encode());
                    self.work.push_back(Work::Gossip(Input::Command(publish)));
                }
                Err(error) => out.push(Output::Emit(ChatEvent::NotSent(error.to_string()))),
            },
            Input::Command(ChatCommand::PeerAddress { peer, addr }) => self.both(
                Input::Command(meshwork_gossip::Command::PeerAddress { peer, addr }),
                Input::Command(meshwork_kad::Command::PeerAddress {
                    peer,
                    addr: addr.into(),
                }),
            ),
            Input::Command(ChatCommand::PeerRoundTrip { peer, rtt }) => {
                let measured = meshwork_gossip::Command::PeerRoundTrip { peer, rtt };
                self.work.push_back(Work::Gossip(Input::Command(measured)));
            }
            Input::Timer(ChatTimer::Gossip(timer)) => self.work.push_back(Work::Gossip(Input::Timer(timer))),
            Input::Timer(ChatTimer::Kad(timer)) => self.work.push_back(Work::Kad(Input::Timer(timer))),
            Input::PeerUp(peer) => {
                if self.links.up(peer) {
                    self.both(Input::PeerUp(peer), Input::PeerUp(peer));
                }
            }
            Input::PeerDown(peer) => {
                // Told to both even if the peer was never up (a failed dial of one of theirs).
                self.links.down(&peer);
                self.both(Input::PeerDown(peer), Input::PeerDown(peer));
            }
        }
        self.run(now, out);
    }

    fn is_control(msg: &ChatMessage) -> bool {
        match msg {
            ChatMessage::Gossip(msg) => Gossip::is_control(msg),
            ChatMessage::Kad(msg) => <Kademlia>::is_control(msg),
        }
    }

    /// Gossip's undelivered messages go back to it (it declines a graft whose answer was dropped).
    fn undelivered(
        &mut self,
        now: Instant,
        to: PeerId,
        msg: ChatMessage,
        reason: DropReason,
        out: &mut Vec<Output<Self>>,
    ) {
        if let ChatMessage::Gossip(msg) = msg {
            self.gossip_do(out, |g, buf| g.undelivered(now, to, msg, reason, buf));
            self.run(now, out);
        }
    }
}

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}
