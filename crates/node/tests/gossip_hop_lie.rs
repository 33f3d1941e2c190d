//! A neighbour that lies about hop counts, staged on real QUIC. Three nodes: an origin, a victim, and
//! a liar that relays honestly until told to lie, then announces every message at zero hops (those
//! it would push too) and pushes no copy. The victim moves its tree link to the liar once (Plumtree's
//! §3.8); the origin's next message comes late, by a graft, a strike against the claim; and the
//! messages after it come straight from the origin again, the liar's claims moving nothing.
#![allow(clippy::unwrap_used)]
// A test's deadlines are wall time.
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::Duration;

use meshwork_gossip::{
    Announcement, Command, Config, Event, Gossip, Message, Timer, TopicId, TopicOptions, TreeMessage, TreeTag,
};
use meshwork_identity::{Keypair, PeerId};
use meshwork_node::{Events, Handle, Node, NodeBuilder, NodeConfig};
use meshwork_wire::{Input, Instant, Output, Protocol, ProtocolId};
use support::{Net, loopback};
use tokio::time::timeout;

/// A gossip node that turns liar when told ([`LiarCommand::Lie`]).
struct Liar {
    gossip: Gossip,
    lying: bool,
}

#[derive(Debug)]
enum LiarCommand {
    Gossip(Command),
    /// Prune the link to this peer on this origin's tree, as a duplicate would have us do.
    Prune(PeerId, PeerId),
    Lie,
}

impl Protocol for Liar {
    type Message = Message;
    type Command = LiarCommand;
    type Event = Event;
    type Timer = Timer;
    const ID: ProtocolId = Gossip::ID;
    const MAX_MESSAGE_SIZE: usize = Gossip::MAX_MESSAGE_SIZE;

    fn handle(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        let input = match input {
            Input::Command(LiarCommand::Lie) => {
                self.lying = true;
                return;
            }
            Input::Command(LiarCommand::Prune(to, origin)) => {
                let msg = Message::Tree(TreeMessage::Prune { origin });
                out.push(Output::Send { to, msg });
                return;
            }
            Input::Command(LiarCommand::Gossip(command)) => Input::Command(command),
            Input::Message { from, msg } => {
                // Every copy it gets, it announces at once to its other neighbours, at zero hops:
                // its own gossip state might spare an announcement the victim made first.
                if let (true, Message::Tree(TreeMessage::Gossip { message, .. })) = (self.lying, &msg) {
                    let announcement = Announcement {
                        id: message.id(),
                        hops: 0,
                        tree: TreeTag::of(&message.origin),
                    };
                    for &to in self.gossip.active_view().iter().filter(|p| **p != from) {
                        let ids = vec![announcement].try_into().unwrap();
                        let msg = Message::Tree(TreeMessage::IHave { ids });
                        out.push(Output::Send { to, msg });
                    }
                }
                Input::Message { from, msg }
            }
            Input::Timer(timer) => Input::Timer(timer),
            Input::PeerUp(peer) => Input::PeerUp(peer),
            Input::PeerDown(peer) => Input::PeerDown(peer),
        };
        let mut inner = Vec::new();
        self.gossip.handle(now, input, &mut inner);
        for output in inner {
            out.push(match output {
                Output::Send {
                    to,
                    msg: Message::Tree(tree),
                } if self.lying => match tree {
                    TreeMessage::IHave { ids } => {
                        let mut ids = ids.into_inner();
                        for announcement in &mut ids {
                            announcement.hops = 0;
                        }
                        let ids = ids.try_into().unwrap();
                        Output::Send {
                            to,
                            msg: Message::Tree(TreeMessage::IHave { ids }),
                        }
                    }
                    // A copy it would push goes as an announcement too: it pushes nothing.
                    TreeMessage::Gossip { message, .. } => {
                        let announcement = Announcement {
                            id: message.id(),
                            hops: 0,
                            tree: TreeTag::of(&message.origin),
                        };
                        let ids = vec![announcement].try_into().unwrap();
                        Output::Send {
                            to,
                            msg: Message::Tree(TreeMessage::IHave { ids }),
                        }
                    }
                    TreeMessage::Borrowed { .. } => continue,
                    tree => Output::Send {
                        to,
                        msg: Message::Tree(tree),
                    },
                },
                Output::Send { to, msg } => Output::Send { to, msg },
                Output::Emit(event) => Output::Emit(event),
                Output::Schedule { after, timer } => Output::Schedule { after, timer },
                Output::Dial(peer) => Output::Dial(peer),
                Output::Disconnect(peer) => Output::Disconnect(peer),
                Output::Protect { peer, protect } => Output::Protect { peer, protect },
                Output::Dropped { peer, reason } => Output::Dropped { peer, reason },
            });
        }
    }
}

fn topic() -> TopicId {
    TopicId::from_name("hops")
}

async fn start(builder: NodeBuilder, seed: u8, i: usize) -> Node {
    Net::Quic
        .start(builder, &Keypair::from_seed([seed; 32]), loopback(i))
        .await
}

/// Waits (at most 20 s) until `events` delivers a message, and returns its hop count.
async fn delivered(events: &mut Events<Gossip>) -> u16 {
    timeout(Duration::from_secs(20), async {
        loop {
            if let Event::Delivered { hops, .. } = events.recv().await.expect("node stopped") {
                return hops;
            }
        }
    })
    .await
    .expect("not delivered in time")
}

/// The victim's counters of shortcuts taken and struck, and its eager peers on `origin`'s tree.
async fn victim_state(victim: &Handle<Gossip>, origin: PeerId) -> (u64, u64, Vec<PeerId>) {
    victim
        .with(move |g| {
            let tree = g.stats().tree;
            (tree.shortcuts_sent, tree.shortcuts_failed, g.eager_peers(&origin))
        })
        .await
        .unwrap()
}

/// The victim's grafts sent and waits for a parent, and whether the liar is lazy on `origin`'s tree.
async fn repairs(victim: &Handle<Gossip>, origin: PeerId, liar: PeerId) -> (u64, u64, bool) {
    victim
        .with(move |g| {
            let tree = g.stats().tree;
            (
                tree.grafts_sent,
                tree.grafts_deferred,
                g.lazy_peers(&origin).contains(&liar),
            )
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_neighbour_that_lies_about_hops_delays_one_message_and_then_none() {
    let subscribe = || Command::Subscribe(topic(), TopicOptions::default());
    let mut builder = NodeBuilder::new(NodeConfig::default());
    let (origin, _origin_events) = builder
        .register(Gossip::new(Keypair::from_seed([1; 32]), Config::default(), 1))
        .unwrap();
    let origin_node = start(builder, 1, 0).await;
    // The victim takes any shorter path: three nodes make no long ones.
    let config = Config {
        optimization_threshold: 0,
        ..Config::default()
    };
    let mut builder = NodeBuilder::new(NodeConfig::default());
    let (victim, mut victim_events) = builder
        .register(Gossip::new(Keypair::from_seed([2; 32]), config, 2))
        .unwrap();
    let victim_node = start(builder, 2, 1).await;
    let mut builder = NodeBuilder::new(NodeConfig::default());
    let liar = Liar {
        gossip: Gossip::new(Keypair::from_seed([3; 32]), Config::default(), 3),
        lying: false,
    };
    let (liar, _liar_events) = builder.register(liar).unwrap();
    let liar_node = start(builder, 3, 2).await;

    let nodes = [&origin_node, &victim_node, &liar_node];
    for n in nodes {
        for other in nodes {
            n.add_address(other.peer_id(), other.local_addr()).await.unwrap();
        }
    }
    origin.command(subscribe()).await.unwrap();
    victim.command(subscribe()).await.unwrap();
    liar.command(LiarCommand::Gossip(subscribe())).await.unwrap();
    let contact = vec![origin_node.peer_id()];
    victim.command(Command::Join(contact.clone())).await.unwrap();
    liar.command(LiarCommand::Gossip(Command::Join(contact)))
        .await
        .unwrap();
    // Bounded: every node has the two others as neighbours.
    let mut linked = false;
    for _ in 0..200 {
        let views = [
            origin.with(|g| g.active_view().len()).await.unwrap(),
            victim.with(|g| g.active_view().len()).await.unwrap(),
        ];
        if views == [2, 2] {
            linked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(linked, "the three nodes did not link up");

    let publish = |n: u32| Command::Publish(topic(), format!("message {n}").into_bytes());
    let origin_id = origin_node.peer_id();
    let liar_id = liar_node.peer_id();
    // Honest first: the first message floods, and the duplicates make the tree. Which copy came
    // first is luck on loopback, so the liar then prunes its link to the victim, as if its copy had
    // come second: the victim's tree link is the origin's once the next message is through (bounded).
    origin.command(publish(100)).await.unwrap();
    delivered(&mut victim_events).await;
    let victim_id = victim_node.peer_id();
    liar.command(LiarCommand::Prune(victim_id, origin_id))
        .await
        .unwrap();
    let mut eager = Vec::new();
    for n in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        origin.command(publish(101 + n)).await.unwrap();
        delivered(&mut victim_events).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        eager = victim_state(&victim, origin_id).await.2;
        if eager == vec![origin_id] {
            break;
        }
    }
    assert_eq!(
        eager,
        vec![origin_id],
        "the victim's tree link is not the origin's"
    );
    liar.command(LiarCommand::Lie).await.unwrap();

    // Message 1 comes from the origin; the liar announces it at zero hops, and the victim believes it.
    origin.command(publish(1)).await.unwrap();
    delivered(&mut victim_events).await;
    let mut believed = false;
    for _ in 0..100 {
        let (taken, _, eager) = victim_state(&victim, origin_id).await;
        if taken >= 1 && eager == vec![liar_id] {
            believed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(believed, "the victim never took the liar's shortcut");
    let (taken, _, _) = victim_state(&victim, origin_id).await;
    // Past the race window (a graft wait): message 2 is not one the liar could not have pushed.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Message 2: the liar withholds it; it comes by a graft from the origin, late, and shows the
    // claim false.
    origin.command(publish(2)).await.unwrap();
    delivered(&mut victim_events).await;
    let (_, failed, eager) = victim_state(&victim, origin_id).await;
    assert_eq!(failed, 1, "the claim was disproved");
    assert!(
        eager.contains(&origin_id),
        "the origin's link is on the tree again"
    );

    // The liar prunes its link, so that its claims could move the tree again (bounded)...
    liar.command(LiarCommand::Prune(victim_id, origin_id))
        .await
        .unwrap();
    let mut lazy = false;
    for _ in 0..100 {
        if repairs(&victim, origin_id, liar_id).await.2 {
            lazy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(lazy, "the liar's link did not turn lazy");
    // ... and announces messages 3 and 4 at zero hops: it is not believed, and they come straight
    // from the origin, with no graft and no wait.
    let (grafts, waits, _) = repairs(&victim, origin_id, liar_id).await;
    for n in 3..5 {
        origin.command(publish(n)).await.unwrap();
        delivered(&mut victim_events).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (after, failed, eager) = victim_state(&victim, origin_id).await;
    assert_eq!(after, taken, "no shortcut to the liar again");
    assert_eq!(failed, 1);
    assert!(eager.contains(&origin_id));
    let (grafts_after, waits_after, _) = repairs(&victim, origin_id, liar_id).await;
    assert_eq!(
        (grafts_after, waits_after),
        (grafts, waits),
        "messages 3 and 4 were on time"
    );

    for n in nodes {
        n.shutdown().await.unwrap();
    }
}
