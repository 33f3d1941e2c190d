//! Composition on the runtime, over real QUIC on 127.0.0.1: a composite's channels are routed to its one
//! slot and interoperate with the same protocols registered alone; a protocol that disconnects a peer
//! releases it for itself only, and the connection closes when no protocol wants the peer.
#![allow(clippy::unwrap_used)]

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_node::{Events, Handle, Node, NodeBuilder, NodeConfig};
use meshwork_transport::{Config, QuicTransport};
use meshwork_wire::{Channel, Input, Instant, Lifted, Links, Output, Protocol, ProtocolId};
use tokio::time::timeout;

/// Names a leaf protocol.
trait Tag: Send + 'static {
    const ID: ProtocolId;
}
struct L;
impl Tag for L {
    const ID: ProtocolId = ProtocolId::new("/test/left/1");
}
struct R;
impl Tag for R {
    const ID: ProtocolId = ProtocolId::new("/test/right/1");
}

/// A leaf that reports what happens to it and does what its commands say.
struct Leaf<T>(PhantomData<T>);

#[derive(Debug)]
enum Cmd {
    Send(PeerId, u32),
    Drop(PeerId),
}

#[derive(Debug, PartialEq)]
enum Ev {
    Up(PeerId),
    Down(PeerId),
    Got(PeerId, u32),
}

impl<T: Tag> Protocol for Leaf<T> {
    type Message = u32;
    type Command = Cmd;
    type Event = Ev;
    type Timer = ();
    const ID: ProtocolId = T::ID;
    const MAX_MESSAGE_SIZE: usize = 16;

    fn handle(&mut self, _: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        match input {
            Input::PeerUp(peer) => out.push(Output::Emit(Ev::Up(peer))),
            Input::PeerDown(peer) => out.push(Output::Emit(Ev::Down(peer))),
            Input::Message { from, msg } => out.push(Output::Emit(Ev::Got(from, msg))),
            Input::Command(Cmd::Send(to, n)) => out.push(Output::Send { to, msg: n }),
            Input::Command(Cmd::Drop(peer)) => out.push(Output::Disconnect(peer)),
            Input::Timer(()) => {}
        }
    }
}

meshwork_wire::wire_enum! {
    /// The composite's messages: each leaf's, on the leaf's own channel.
    enum PairMessage { Left(u32), Right(u32) }
}

/// Both leaves in one protocol; each event is reported with the side it came from.
struct Pair {
    left: Leaf<L>,
    right: Leaf<R>,
    links: Links,
}

impl Protocol for Pair {
    type Message = PairMessage;
    type Command = (usize, Cmd);
    type Event = (usize, Ev);
    type Timer = ();
    const ID: ProtocolId = ProtocolId::new("/test/pair/1");
    const MAX_MESSAGE_SIZE: usize = 16;

    fn channels() -> Vec<Channel> {
        vec![Channel::of::<Leaf<L>>(), Channel::of::<Leaf<R>>()]
    }

    fn handle(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        let mut inputs: Vec<(usize, Input<Leaf<L>>)> = Vec::new();
        match input {
            Input::PeerUp(peer) => {
                if self.links.up(peer) {
                    inputs.extend([(0, Input::PeerUp(peer)), (1, Input::PeerUp(peer))]);
                }
            }
            Input::PeerDown(peer) => {
                self.links.down(&peer);
                inputs.extend([(0, Input::PeerDown(peer)), (1, Input::PeerDown(peer))]);
            }
            Input::Message { from, msg } => {
                let (side, n) = match msg {
                    PairMessage::Left(n) => (0, n),
                    PairMessage::Right(n) => (1, n),
                };
                if self.links.engage(&from, side) {
                    inputs.push((side, Input::PeerUp(from)));
                }
                inputs.push((side, Input::Message { from, msg: n }));
            }
            Input::Command((side, cmd)) => inputs.push((side, Input::Command(cmd))),
            Input::Timer(()) => {}
        }
        for (side, input) in inputs {
            // Leaf<L> and Leaf<R> share their types but for the tag: rebuild the input for the right one.
            let left = if side == 0 {
                self.links
                    .drive(
                        0,
                        &mut self.left,
                        |p, o| p.handle(now, input, o),
                        PairMessage::Left,
                        |()| (),
                        out,
                    )
                    .1
            } else {
                let input = retag(input);
                self.links
                    .drive(
                        1,
                        &mut self.right,
                        |p, o| p.handle(now, input, o),
                        PairMessage::Right,
                        |()| (),
                        out,
                    )
                    .1
            };
            for lifted in left {
                match lifted {
                    Lifted::Event(event) => out.push(Output::Emit((side, event))),
                    Lifted::PeerUp(peer) => out.push(Output::Emit((side, Ev::Up(peer)))),
                    Lifted::Closed(peer) => out.push(Output::Emit((2, Ev::Down(peer)))),
                    Lifted::Done => {}
                }
            }
        }
    }
}

fn retag(input: Input<Leaf<L>>) -> Input<Leaf<R>> {
    match input {
        Input::PeerUp(p) => Input::PeerUp(p),
        Input::PeerDown(p) => Input::PeerDown(p),
        Input::Message { from, msg } => Input::Message { from, msg },
        Input::Command(cmd) => Input::Command(cmd),
        Input::Timer(()) => Input::Timer(()),
    }
}

const WAIT: Duration = Duration::from_secs(20);

async fn next<E: std::fmt::Debug>(events: &mut Events<impl Protocol<Event = E>>) -> E {
    timeout(WAIT, events.recv())
        .await
        .expect("no event in time")
        .expect("node stopped")
}

async fn quic(builder: NodeBuilder, seed: u8) -> Node {
    let key = Keypair::from_seed([seed; 32]);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let transport = QuicTransport::bind(&key, any, Config::new(builder.protocols()))
        .await
        .unwrap();
    builder.start(transport).await.unwrap()
}

type Leaves = (Handle<Leaf<L>>, Events<Leaf<L>>, Handle<Leaf<R>>, Events<Leaf<R>>);

/// A node running both leaves as two separate protocols.
async fn two_leaves(seed: u8) -> (Node, Leaves) {
    let mut builder = NodeBuilder::new(NodeConfig::default());
    let (lh, le) = builder.register(Leaf::<L>(PhantomData)).unwrap();
    let (rh, re) = builder.register(Leaf::<R>(PhantomData)).unwrap();
    (quic(builder, seed).await, (lh, le, rh, re))
}

#[tokio::test]
async fn a_composites_channels_reach_its_one_slot_and_talk_to_the_same_protocols_registered_alone() {
    let mut builder = NodeBuilder::new(NodeConfig::default());
    let pair = Pair {
        left: Leaf(PhantomData),
        right: Leaf(PhantomData),
        links: Links::new(2),
    };
    let (pair, mut pair_events) = builder.register(pair).unwrap();
    assert_eq!(builder.protocols().len(), 2, "one slot, two channels");
    let a = quic(builder, 1).await;
    let (b, (left, mut left_events, right, mut right_events)) = two_leaves(2).await;
    a.dial(b.peer_id(), b.local_addr()).await.unwrap();
    assert_eq!(next(&mut left_events).await, Ev::Up(a.peer_id()));
    assert_eq!(next(&mut right_events).await, Ev::Up(a.peer_id()));

    // The composite's sends go out on its children's channels, to the standalone protocols.
    pair.command((0, Cmd::Send(b.peer_id(), 5))).await.unwrap();
    pair.command((1, Cmd::Send(b.peer_id(), 6))).await.unwrap();
    assert_eq!(next(&mut left_events).await, Ev::Got(a.peer_id(), 5));
    assert_eq!(next(&mut right_events).await, Ev::Got(a.peer_id(), 6));

    // And their frames come back to the child that owns the channel.
    left.command(Cmd::Send(a.peer_id(), 7)).await.unwrap();
    right.command(Cmd::Send(a.peer_id(), 8)).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        if let (side, Ev::Got(from, n)) = next(&mut pair_events).await {
            got.push((side, from, n));
        }
    }
    got.sort();
    assert_eq!(got, vec![(0, b.peer_id(), 7), (1, b.peer_id(), 8)]);
}

#[tokio::test]
async fn a_protocol_that_disconnects_a_peer_releases_it_for_itself_only() {
    let (a, (a_left, mut a_left_events, a_right, mut a_right_events)) = two_leaves(3).await;
    let (b, (b_left, mut b_left_events, _b_right, mut b_right_events)) = two_leaves(4).await;
    a.dial(b.peer_id(), b.local_addr()).await.unwrap();
    assert_eq!(next(&mut b_left_events).await, Ev::Up(a.peer_id()));
    assert_eq!(next(&mut b_right_events).await, Ev::Up(a.peer_id()));
    assert_eq!(next(&mut a_left_events).await, Ev::Up(b.peer_id()));
    assert_eq!(next(&mut a_right_events).await, Ev::Up(b.peer_id()));

    // The left protocol drops b: the connection stays, the right protocol still talks to b.
    a_left.command(Cmd::Drop(b.peer_id())).await.unwrap();
    a_right.command(Cmd::Send(b.peer_id(), 1)).await.unwrap();
    assert_eq!(next(&mut b_right_events).await, Ev::Got(a.peer_id(), 1));
    assert_eq!(
        a.peers().await.unwrap().len(),
        1,
        "the connection outlives one protocol's disconnect"
    );

    // b opens the left stream again: the left protocol takes the peer back (PeerUp, then the message).
    b_left.command(Cmd::Send(a.peer_id(), 2)).await.unwrap();
    assert_eq!(next(&mut a_left_events).await, Ev::Up(b.peer_id()));
    assert_eq!(next(&mut a_left_events).await, Ev::Got(b.peer_id(), 2));

    // Once every protocol has let b go, the connection closes and both sides are told.
    a_left.command(Cmd::Drop(b.peer_id())).await.unwrap();
    a_right.command(Cmd::Drop(b.peer_id())).await.unwrap();
    assert_eq!(next(&mut b_left_events).await, Ev::Down(a.peer_id()));
    assert_eq!(next(&mut b_right_events).await, Ev::Down(a.peer_id()));
    assert_eq!(next(&mut a_left_events).await, Ev::Down(b.peer_id()));
    assert!(a.peers().await.unwrap().is_empty());
}
