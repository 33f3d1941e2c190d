//! [`SpamNode`]: a [`Gossip`] node with the application around it that `meshsim gossip-spam` needs.
//!
//! - **Validation.** An honest node's application rejects every payload that starts with [`BAD`] and
//!   accepts the rest. It answers [`Event::Validate`] at once, inside the node, so the gossip state sees
//!   the verdict in the same step (an application that answers later works the same, only slower).
//! - **Spam.** Told [`NodeCommand::StartSpam`], a node turns spammer: every `1 / rate` seconds it sends a
//!   new invalid message to every peer of its active view, alternating (or not, see [`SpamKind`]) between a
//!   bad signature and a well-signed payload the application rejects. A spammer keeps its membership
//!   behaviour (it answers joins, shuffles and neighbour requests, and tries to refill its view when
//!   banned) but relays nothing: the Plumtree messages of its gossip state are dropped, so honest messages
//!   must route around it.

use std::cell::RefCell;
use std::time::Duration;

use clap::ValueEnum;
use meshwork_gossip::{Announcement, Command, Event, Gossip, Message, Timer, TreeMessage, TreeTag, Verdict};
use meshwork_sim::NodeInit;
use meshwork_wire::{Input, Instant, Output, Protocol, ProtocolId};

use super::gossip_net::{GossipNode, topic};

/// Payloads the application rejects start with these bytes.
pub(crate) const BAD: &[u8] = b"bad";

/// What the spammers send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SpamKind {
    /// Messages whose origin signature does not verify (dropped before validation, penalised at once).
    BadSignature,
    /// Well-signed messages the application rejects (penalised on the verdict).
    Rejected,
    /// Both, alternately.
    Mixed,
    /// *Valid* messages (the application accepts them), [`BURST`] new ones per tick, each sent twice to
    /// every active peer: the "make honest nodes ban each other" attack. Honest relays forward every
    /// first-seen message in bursts to their honest neighbours, and duplicates cross their prunes; only the
    /// spammer's own duplicates on pruned links should cost anyone.
    ValidBurst,
    /// No spam: the "spammer" announces every message it holds at one hop from its origin (those it
    /// would push too), and pushes no copy to anyone, not even in answer to a graft. A neighbour that
    /// believes it makes it its parent on the origin's tree (Plumtree's §3.8), and then waits in vain
    /// for the next message.
    HopLie,
}

/// New valid messages a [`SpamKind::ValidBurst`] spammer publishes per tick.
pub(crate) const BURST: u64 = 4;

/// A command to a [`SpamNode`].
#[derive(Debug, Clone)]
pub(crate) enum NodeCommand {
    /// A gossip command.
    Gossip(Command),
    /// Start spamming: `rate` messages per second to each active peer.
    StartSpam {
        /// Messages per second.
        rate: f64,
        /// What to send.
        kind: SpamKind,
    },
}

/// A timer of a [`SpamNode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeTimer {
    /// The gossip state's timer.
    Gossip(Timer),
    /// Time for the next spam message.
    Spam,
}

#[derive(Debug, Clone, Copy)]
struct Spam {
    every: Duration,
    kind: SpamKind,
}

/// A gossip node with an application validator, and a spammer mode.
pub(crate) struct SpamNode {
    gossip: Gossip,
    spam: Option<Spam>,
    /// Spam messages sent (one per message and peer).
    pub(crate) spam_sent: u64,
    seq: u64,
}

thread_local! {
    /// Gossip's outputs on their way out of a wrapper node ([`SpamNode`], and
    /// [`super::sybil_gossip_node::SybilNode`]): one buffer for every node of the simulation, empty
    /// between two inputs. A buffer per node kept room for the largest burst that node ever emitted.
    static SCRATCH: RefCell<Vec<Output<Gossip>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with the output buffer all simulated gossip wrapper nodes share (left empty after).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Vec<Output<Gossip>>) -> R) -> R {
    let mut scratch = SCRATCH.take();
    let result = f(&mut scratch);
    scratch.clear();
    SCRATCH.set(scratch);
    result
}

impl SpamNode {
    /// A node for the simulator.
    pub(crate) fn new(init: &NodeInit<'_>, config: meshwork_gossip::Config) -> Self {
        Self {
            gossip: Gossip::new(init.keypair.clone(), config, init.rng_seed),
            spam: None,
            spam_sent: 0,
            seq: 0,
        }
    }

    /// True once the node spams.
    pub(crate) fn is_spammer(&self) -> bool {
        self.spam.is_some()
    }

    /// Hands `input` to the gossip state and translates what it asks for, validating at once.
    fn drive(&mut self, now: Instant, input: Input<Gossip>, out: &mut Vec<Output<Self>>) {
        let mut pending = vec![input];
        with_scratch(|scratch| {
            while let Some(input) = pending.pop() {
                self.gossip.handle(now, input, scratch);
                for output in scratch.drain(..) {
                    match output {
                        Output::Emit(Event::Validate { id, message, .. }) => {
                            let verdict = if message.payload.starts_with(BAD) {
                                Verdict::Reject
                            } else {
                                Verdict::Accept
                            };
                            pending.push(Input::Command(Command::Validated(id, verdict)));
                        }
                        Output::Send {
                            to,
                            msg: Message::Tree(tree),
                        } if let Some(spam) = self.spam => {
                            // A spammer relays nothing of the broadcast layer; a liar announces.
                            if let Some(msg) = lie(spam.kind, tree) {
                                out.push(Output::Send { to, msg });
                            }
                        }
                        Output::Send { to, msg } => out.push(Output::Send { to, msg }),
                        Output::Emit(event) => out.push(Output::Emit(event)),
                        Output::Schedule { after, timer } => out.push(Output::Schedule {
                            after,
                            timer: NodeTimer::Gossip(timer),
                        }),
                        Output::Dial(peer) => out.push(Output::Dial(peer)),
                        Output::Disconnect(peer) => out.push(Output::Disconnect(peer)),
                        Output::Dropped { peer, reason } => out.push(Output::Dropped { peer, reason }),
                        Output::Protect { peer, protect } => out.push(Output::Protect { peer, protect }),
                    }
                }
            }
        });
    }

    /// One invalid message to every active peer (or, for [`SpamKind::ValidBurst`], [`BURST`] valid ones,
    /// each twice). It is published through our own gossip state (which signs it and pushes it on every
    /// link, since nobody ever prunes a spammer's tree); a bad signature is made by changing the sequence
    /// number after signing.
    fn spam(&mut self, now: Instant, spam: Spam, out: &mut Vec<Output<Self>>) {
        if spam.kind == SpamKind::HopLie {
            return;
        }
        let valid = spam.kind == SpamKind::ValidBurst;
        for _ in 0..if valid { BURST } else { 1 } {
            self.seq += 1;
            let bad_signature = match spam.kind {
                SpamKind::BadSignature => true,
                SpamKind::Rejected | SpamKind::ValidBurst | SpamKind::HopLie => false,
                SpamKind::Mixed => self.seq % 2 == 0,
            };
            let mut payload = if valid { b"ok".to_vec() } else { BAD.to_vec() };
            payload.extend_from_slice(&self.seq.to_le_bytes());
            let publish = Input::Command(Command::Publish(topic(), payload));
            let signed = with_scratch(|scratch| {
                self.gossip.handle(now, publish, scratch);
                let mut signed = None;
                for output in scratch.drain(..) {
                    match output {
                        Output::Send {
                            msg: Message::Tree(TreeMessage::Gossip { mut message, hops }),
                            ..
                        } => {
                            if bad_signature {
                                message.seq = message.seq.wrapping_add(1);
                            }
                            signed = Some((message, hops));
                        }
                        Output::Schedule { after, timer } => out.push(Output::Schedule {
                            after,
                            timer: NodeTimer::Gossip(timer),
                        }),
                        _ => {} // Our own "delivery" of the spam, and the like.
                    }
                }
                signed
            });
            let Some((message, hops)) = signed else {
                continue;
            };
            // Spam goes to every active peer, whatever our own tree says (a spammer ignores the prunes
            // its messages earn); a valid burst sends each message twice: the second copy is a duplicate.
            let targets = self.gossip.active_view().to_vec();
            let copies = if valid { 2 } else { 1 };
            for to in targets {
                for _ in 0..copies {
                    self.spam_sent += 1;
                    let message = message.clone();
                    let msg = Message::Tree(TreeMessage::Gossip { message, hops });
                    out.push(Output::Send { to, msg });
                }
            }
        }
        out.push(Output::Schedule {
            after: spam.every,
            timer: NodeTimer::Spam,
        });
    }
}

/// What a [`SpamKind::HopLie`] liar sends of `tree`: announcements at one hop, of the copies it would
/// push too, and no copy; the rest as is. Other spammers send nothing of the broadcast layer.
fn lie(kind: SpamKind, tree: TreeMessage) -> Option<Message> {
    if kind != SpamKind::HopLie {
        return None;
    }
    let ids = match tree {
        TreeMessage::IHave { ids } => ids.into_inner(),
        TreeMessage::Gossip { message, .. } => vec![Announcement {
            id: message.id(),
            hops: 1,
            tree: TreeTag::of(&message.origin),
        }],
        TreeMessage::Borrowed { .. } => return None,
        tree => return Some(Message::Tree(tree)),
    };
    let ids = ids
        .into_iter()
        .map(|a| Announcement { hops: 1, ..a })
        .collect::<Vec<_>>()
        .try_into()
        .ok()?; // as many as before
    Some(Message::Tree(TreeMessage::IHave { ids }))
}

impl Protocol for SpamNode {
    type Message = Message;
    type Command = NodeCommand;
    type Event = Event;
    type Timer = NodeTimer;

    const ID: ProtocolId = Gossip::ID;
    const MAX_MESSAGE_SIZE: usize = Gossip::MAX_MESSAGE_SIZE;

    fn handle(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        let input = match input {
            Input::Command(NodeCommand::StartSpam { rate, kind }) => {
                let spam = Spam {
                    every: Duration::from_secs_f64(1.0 / rate.max(0.001)),
                    kind,
                };
                if self.spam.replace(spam).is_none() {
                    self.spam(now, spam, out);
                }
                return;
            }
            Input::Timer(NodeTimer::Spam) => {
                if let Some(spam) = self.spam {
                    self.spam(now, spam, out);
                }
                return;
            }
            Input::Command(NodeCommand::Gossip(command)) => Input::Command(command),
            Input::Timer(NodeTimer::Gossip(timer)) => Input::Timer(timer),
            Input::Message { from, msg } => Input::Message { from, msg },
            Input::PeerUp(peer) => Input::PeerUp(peer),
            Input::PeerDown(peer) => Input::PeerDown(peer),
        };
        self.drive(now, input, out);
    }
}

impl GossipNode for SpamNode {
    fn gossip(&self) -> &Gossip {
        &self.gossip
    }

    fn wrap(command: Command) -> NodeCommand {
        NodeCommand::Gossip(command)
    }
}
