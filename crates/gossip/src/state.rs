//! [`Gossip`]: HyParView membership and Plumtree broadcast combined into one [`Protocol`].

use std::collections::HashMap;
use std::net::SocketAddr;

use meshwork_identity::Keypair;
use meshwork_wire::{BoundedBytes, DropReason, Input, Instant, Output, PeerId, Protocol, ProtocolId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::ban::Ban;
use crate::config::Config;
use crate::error::PublishError;
use crate::hyparview::{HvOut, HyParView};
use crate::message::{GossipMessage, MAX_PAYLOAD, Message, MessageId, TopicId};
use crate::plumtree::{Plumtree, PtOut, TreeStats};
use crate::score::{Penalty, Scores};
use verify::Batch;

pub use crate::api::{Command, Event, Timer, TopicOptions, Verdict};

mod inbound;
mod verify;

/// Counters for experiments and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GossipStats {
    /// Broadcast counters.
    pub tree: TreeStats,
    /// Origin signatures checked: every message except exact copies of one already verified. One
    /// Ed25519 verification each, the largest CPU cost of relay.
    pub signatures_verified: u64,
    /// Batches those checks were made in ([`TopicOptions::batch_verify`]).
    pub signature_batches: u64,
    /// Signatures checked in those batches (the rest of `signatures_verified` were checked alone).
    pub signatures_batched: u64,
    /// Messages dropped for a bad signature.
    pub bad_signatures: u64,
    /// Messages of topics we did not subscribe to, dropped before their signature is checked (the
    /// nodes of one overlay share their topics, so these come from a peer that is misconfigured or
    /// replays them at us for our CPU).
    pub off_topic: u64,
    /// Wasted messages (duplicates on pruned links, messages from outside the active view) dropped
    /// beyond a peer's allowance. Valid relay is never counted here.
    pub rate_limited: u64,
    /// Of those, the ones not charged: copies a peer pushed before it heard of our `Prune`, the end of
    /// our link, or our graft (see [`Config::graft_promise_max`](crate::Config::graft_promise_max)).
    pub in_flight_excused: u64,
    /// Peers banned ([`Event::PeerBanned`]).
    pub bans: u64,
    /// Bans that expired (counted when the seen cache is swept, a quarter of its time to live).
    pub bans_expired: u64,
    /// Membership requests ignored over their per-peer or per-prefix limits, and `ShuffleReply`s to no
    /// shuffle of ours or without its walk's nonce.
    pub membership_refused: u64,
}

/// One gossip node: HyParView views, the Plumtree, the seen cache, scores. Pure: no IO, no clock.
#[derive(Debug)]
pub struct Gossip {
    keypair: Keypair,
    config: Config,
    rng: ChaCha8Rng,
    views: HyParView,
    tree: Plumtree,
    scores: Scores,
    topics: HashMap<TopicId, TopicOptions>,
    next_seq: u64,
    started: bool,
    stats: GossipStats,
    /// Messages waiting for a batch check of their signatures.
    batch: Batch,
    hv_out: Vec<HvOut>,
    pt_out: Vec<PtOut>,
}

impl Gossip {
    /// A node with this key, configuration and RNG seed.
    pub fn new(keypair: Keypair, config: Config, rng_seed: u64) -> Self {
        let me = keypair.peer_id();
        Self {
            views: HyParView::new(me, &config),
            tree: Plumtree::new(&config),
            scores: Scores::new(config.score.clone()),
            rng: ChaCha8Rng::seed_from_u64(rng_seed),
            keypair,
            config,
            topics: HashMap::new(),
            next_seq: 0,
            started: false,
            stats: GossipStats::default(),
            batch: Batch::default(),
            hv_out: Vec::new(),
            pt_out: Vec::new(),
        }
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.keypair.peer_id()
    }

    /// The active view (connected neighbours).
    pub fn active_view(&self) -> &[PeerId] {
        self.views.active()
    }

    /// The passive view (known peers in reserve).
    pub fn passive_view(&self) -> &[PeerId] {
        self.views.passive()
    }

    /// Active peers that messages of `origin` are pushed to in full (its tree links; each origin has its
    /// own tree).
    pub fn eager_peers(&self, origin: &PeerId) -> Vec<PeerId> {
        self.tree.eager_peers(*origin).copied().collect()
    }

    /// How many neighbours the driver dropped a data message to (a copy or an `IHave`) within `within`
    /// before `now`, because its send queue to them was full ([`Protocol::undelivered`] with
    /// [`DropReason::QueueFull`]): they read slower than this node sends. An application that originates
    /// messages can hold back while most of its neighbours are full (the coin node refuses local
    /// transactions then), so that what it relays for others is not dropped for its own; a few slow or
    /// hostile neighbours cannot make it refuse, since the others still take its messages.
    pub fn full_links(&self, now: Instant, within: std::time::Duration) -> usize {
        self.tree.full_links(now, within)
    }

    /// Active peers that messages of `origin` are only announced to (`IHave`).
    pub fn lazy_peers(&self, origin: &PeerId) -> Vec<PeerId> {
        self.tree.lazy_peers(*origin).copied().collect()
    }

    /// Origins whose tree has formed here: this node relayed one of their messages (with
    /// [`Trees::Shared`](crate::Trees::Shared), origins with a tree of their own), bounded by [`Config::max_origins`].
    pub fn tree_count(&self) -> usize {
        self.tree.tree_count()
    }

    /// The smoothed round trip the wait before grafting is learnt from: this node's grafts (a graft
    /// sent, its message received) and the round trips its driver measured
    /// ([`Command::PeerRoundTrip`]); `None` before the first.
    pub fn graft_rtt(&self) -> Option<std::time::Duration> {
        self.tree.graft_rtt()
    }

    /// Where `peer` can be dialled, as far as gossip knows: the address its connection came from
    /// ([`Command::PeerAddress`]) or, failing that, the one a peer named it with in a membership
    /// message. Known for the peers of both views and those being dialled; forgotten once a peer is in
    /// no view and not connected. A node runtime's `Hooks::address_of` calls this, so gossip can dial
    /// the peers it learns of.
    pub fn address_of(&self, peer: &PeerId) -> Option<SocketAddr> {
        self.views.address_of(peer)
    }

    /// True if a ban of the peer is in force (at the time of the last input handled).
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.views.is_banned(peer)
    }

    /// The ban of the peer in force (at the time of the last input handled): why, and until when.
    pub fn ban_of(&self, peer: &PeerId) -> Option<Ban> {
        self.views.ban_of(peer)
    }

    /// The peer's current score (zero if unknown, negative after misbehaviour).
    pub fn score(&self, peer: &PeerId, now: Instant) -> f64 {
        self.scores.score(peer, now)
    }

    /// Messages waiting for the application's verdict.
    pub fn pending_validations(&self) -> usize {
        self.tree.pending_validations()
    }

    /// Messages in the seen cache.
    pub fn seen_len(&self) -> usize {
        self.tree.cache_len()
    }

    /// True if the message is in the seen cache.
    pub fn has_seen(&self, id: &MessageId) -> bool {
        self.tree.cached(id).is_some()
    }

    /// Counters.
    pub fn stats(&self) -> GossipStats {
        GossipStats {
            tree: self.tree.stats,
            membership_refused: self.views.requests_refused,
            ..self.stats
        }
    }

    /// Subscribes to `topic` with `options`, or unsubscribes (`None`).
    pub(crate) fn set_topic(&mut self, topic: TopicId, options: Option<TopicOptions>) {
        match options {
            Some(options) => self.topics.insert(topic, options),
            None => self.topics.remove(&topic),
        };
    }

    fn start(&mut self, out: &mut Vec<Output<Self>>) {
        if !self.started {
            self.started = true;
            out.push(Output::Schedule {
                after: self.config.repair_interval,
                timer: Timer::Shuffle,
            });
            out.push(Output::Schedule {
                after: self.config.seen_ttl / 4,
                timer: Timer::Sweep,
            });
        }
    }

    fn publish(&mut self, now: Instant, topic: TopicId, payload: Vec<u8>, out: &mut Vec<Output<Self>>) {
        let Some(options) = self.topics.get(&topic) else {
            out.push(Output::Emit(Event::PublishFailed(PublishError::NotSubscribed(
                topic,
            ))));
            return;
        };
        let max = options.max_payload.min(MAX_PAYLOAD);
        let size = payload.len();
        let payload: BoundedBytes<MAX_PAYLOAD> = match payload.try_into() {
            Ok(payload) if size <= max => payload,
            _ => {
                let error = PublishError::PayloadTooLarge { topic, size, max };
                out.push(Output::Emit(Event::PublishFailed(error)));
                return;
            }
        };
        // Sequence numbers follow driver time, so a restarted node never reuses one.
        let seq = self.next_seq.max(now.as_nanos());
        self.next_seq = seq + 1;
        let message = GossipMessage::sign(&self.keypair, topic, seq, payload);
        let id = message.id();
        out.push(Output::Emit(Event::Published { id, topic }));
        self.tree.publish(now, id, message, &mut self.pt_out);
    }

    /// Turns the layers' actions into outputs, feeding view changes from HyParView to Plumtree and
    /// penalties to the scores, until nothing is left.
    fn drain(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        while !self.hv_out.is_empty() || !self.pt_out.is_empty() {
            for action in std::mem::take(&mut self.hv_out) {
                match action {
                    HvOut::Send(to, msg) => out.push(Output::Send {
                        to,
                        msg: Message::Membership(msg),
                    }),
                    HvOut::Dial(peer) => out.push(Output::Dial(peer)),
                    HvOut::Disconnect(peer) => out.push(Output::Disconnect(peer)),
                    // The active view is the set of links broadcast runs on: its connections are
                    // protected from the driver's connection manager while the peer is in it.
                    HvOut::Up(peer) => {
                        self.tree.neighbor_up(now, peer, &mut self.pt_out);
                        out.push(Output::Protect { peer, protect: true });
                        out.push(Output::Emit(Event::NeighborUp(peer)));
                    }
                    HvOut::Down(peer) => {
                        self.tree.neighbor_down(now, peer, &mut self.pt_out);
                        out.push(Output::Protect { peer, protect: false });
                        out.push(Output::Emit(Event::NeighborDown(peer)));
                    }
                    HvOut::Dropped(peer, reason) => out.push(Output::Dropped { peer, reason }),
                }
            }
            for action in std::mem::take(&mut self.pt_out) {
                self.on_tree_action(now, action, out);
            }
        }
    }

    fn on_tree_action(&mut self, now: Instant, action: PtOut, out: &mut Vec<Output<Self>>) {
        match action {
            PtOut::Send(to, msg) => out.push(Output::Send {
                to,
                msg: Message::Tree(msg),
            }),
            PtOut::Schedule(after, timer) => out.push(Output::Schedule { after, timer }),
            PtOut::Deliver { id, message, hops } => {
                out.push(Output::Emit(Event::Delivered { id, message, hops }))
            }
            PtOut::Validate { id, message, from } => {
                let validate = self.topics.get(&message.topic).is_some_and(|o| o.validate);
                match from {
                    Some(from) if validate => out.push(Output::Emit(Event::Validate { id, message, from })),
                    _ => {
                        self.tree.validated(id, Verdict::Accept, &mut self.pt_out);
                    }
                }
            }
            PtOut::Penalty(peer, penalty) => self.penalise(now, peer, penalty, out),
            PtOut::Dropped(peer, reason) => out.push(Output::Dropped { peer, reason }),
        }
    }

    /// Charges a penalty; at the threshold the peer is banned. The ban is gossip's alone: the peer is
    /// released with `Disconnect`, which in a composite releases gossip's hold only, and is refused by
    /// gossip until the ban expires.
    fn penalise(&mut self, now: Instant, peer: PeerId, penalty: Penalty, out: &mut Vec<Output<Self>>) {
        if self.scores.penalise(peer, penalty, now) && !self.views.is_banned(&peer) {
            self.stats.bans += 1;
            self.scores.forget_score(&peer);
            self.views.ban(peer, penalty, &mut self.rng, &mut self.hv_out);
            out.push(Output::Emit(Event::PeerBanned(peer)));
        }
    }
}

impl Protocol for Gossip {
    type Message = Message;
    type Command = Command;
    type Event = Event;
    type Timer = Timer;

    const ID: ProtocolId = ProtocolId::new("/meshwork/gossip/4");
    const MAX_MESSAGE_SIZE: usize = MAX_PAYLOAD + 1024;

    fn handle(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        self.start(out);
        self.views.set_now(now);
        match input {
            Input::Message { from, msg } => {
                if self.views.is_banned(&from) {
                    out.push(Output::Dropped {
                        peer: from,
                        reason: DropReason::Banned,
                    });
                    out.push(Output::Disconnect(from));
                    return;
                }
                match msg {
                    Message::Membership(msg) => {
                        self.views.on_message(from, msg, &mut self.rng, &mut self.hv_out)
                    }
                    Message::Tree(msg) => {
                        self.views.on_tree_traffic(from, &mut self.hv_out);
                        self.on_tree_message(now, from, msg);
                    }
                }
            }
            Input::Command(command) => match command {
                Command::Join(contacts) => {
                    for contact in contacts {
                        self.views.join(contact, &mut self.rng, &mut self.hv_out);
                    }
                }
                Command::Subscribe(topic, options) => self.set_topic(topic, Some(options)),
                Command::Unsubscribe(topic) => self.set_topic(topic, None),
                Command::Publish(topic, payload) => self.publish(now, topic, payload, out),
                Command::Validated(id, verdict) => {
                    self.tree.validated(id, verdict, &mut self.pt_out);
                }
                Command::PeerAddress { peer, addr } => self.views.set_address(peer, addr),
                Command::PeerRoundTrip { peer, rtt } => self.tree.round_trip(peer, rtt),
                Command::Blame(peer) => self.penalise(now, peer, Penalty::Rejected, out),
            },
            Input::Timer(timer) => match timer {
                Timer::Shuffle => {
                    self.views.on_shuffle_timer(&mut self.rng, &mut self.hv_out);
                    out.push(Output::Schedule {
                        after: self.config.repair_interval,
                        timer: Timer::Shuffle,
                    });
                }
                Timer::FlushIHave => self.tree.flush_ihave(now, &mut self.pt_out),
                Timer::Graft(id) => self.tree.on_graft_timer(now, id, &mut self.pt_out),
                Timer::Promise { peer, id } => self.tree.on_promise_timer(now, peer, id, &mut self.pt_out),
                Timer::Verify => {
                    self.batch.timer_fired();
                    self.check_batch(now);
                }
                Timer::Sweep => {
                    self.tree.sweep(now);
                    self.stats.bans_expired += self.views.expire_bans() as u64;
                    out.push(Output::Schedule {
                        after: self.config.seen_ttl / 4,
                        timer: Timer::Sweep,
                    });
                }
            },
            Input::PeerUp(peer) => self.views.on_peer_up(peer, &mut self.rng, &mut self.hv_out),
            Input::PeerDown(peer) => {
                self.scores.forget_bucket(&peer);
                self.views.on_peer_down(peer, &mut self.rng, &mut self.hv_out);
            }
        }
        self.drain(now, out);
    }

    /// Membership messages and the tree's grafts, prunes, shortcuts and declines: each is small, and
    /// its loss costs more than its bytes (a lost `Prune` keeps a link eager and wasting, a lost
    /// `Decline` leaves a grafter waiting). Messages and `IHave`s are data: a dropped `IHave` is only a
    /// promise not made.
    fn is_control(msg: &Message) -> bool {
        !matches!(msg, Message::Tree(tree) if tree.is_data())
    }

    /// A message the driver could not send. A full message that answered a graft is declined (see
    /// [`TreeMessage::Decline`](crate::TreeMessage::Decline)), so a congested link never makes an
    /// honest announcer a promise breaker; a decline dropped by a full queue is owed and sent again with the next announcements;
    /// data dropped because the neighbour reads slower than we send marks its link full for a while
    /// ([`Gossip::full_links`]).
    fn undelivered(
        &mut self,
        now: Instant,
        to: PeerId,
        msg: Message,
        reason: DropReason,
        out: &mut Vec<Output<Self>>,
    ) {
        if let Message::Tree(msg) = msg {
            self.tree.undelivered(now, to, &msg, reason, &mut self.pt_out);
            self.drain(now, out);
        }
    }
}
