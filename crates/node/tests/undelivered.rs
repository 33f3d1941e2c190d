//! A message the runtime cannot send comes back to its protocol (`Protocol::undelivered`), and a
//! send queue that data has filled still takes the protocol's control messages
//! (`Protocol::is_control`, `NodeConfig::control_queue_per_peer`). Real QUIC on loopback.
#![allow(clippy::unwrap_used)]
// A test's deadlines are wall time, and one node's task is made to stall on purpose.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_node::{Handle, Node, NodeBuilder, NodeConfig};
use meshwork_wire::{DropReason, Input, Instant, Output, Protocol, ProtocolId};
use support::{Net, loopback};

/// Bytes of one data message: a few fill the transport's window to a peer that does not read.
const DATA_BYTES: usize = 60 * 1024;
/// Data messages in the burst: 18 MB, far more than the windows and the queue hold.
const DATA: u32 = 300;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Msg {
    Data(u32, Vec<u8>),
    Control(u32),
}

/// Sends what it is told; remembers what it got and what came back undelivered.
#[derive(Default)]
struct Pusher {
    up: BTreeSet<PeerId>,
    data: BTreeSet<u32>,
    control: BTreeSet<u32>,
    undelivered: Vec<(PeerId, Msg, DropReason)>,
}

#[derive(Debug)]
enum Cmd {
    /// `DATA` data messages to the peer, then one control message.
    Burst(PeerId),
    /// One data message to a peer (connected or not).
    One(PeerId),
}

impl Protocol for Pusher {
    type Message = Msg;
    type Command = Cmd;
    type Event = ();
    type Timer = ();
    const ID: ProtocolId = ProtocolId::new("/test/pusher/1");
    const MAX_MESSAGE_SIZE: usize = DATA_BYTES + 64;

    fn handle(&mut self, _now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        match input {
            Input::PeerUp(peer) => {
                self.up.insert(peer);
            }
            Input::Message { msg, .. } => match msg {
                Msg::Data(n, _) => {
                    self.data.insert(n);
                }
                Msg::Control(n) => {
                    self.control.insert(n);
                }
            },
            Input::Command(Cmd::Burst(to)) => {
                for n in 0..DATA {
                    let msg = Msg::Data(n, vec![n as u8; DATA_BYTES]);
                    out.push(Output::Send { to, msg });
                }
                out.push(Output::Send {
                    to,
                    msg: Msg::Control(0),
                });
            }
            Input::Command(Cmd::One(to)) => out.push(Output::Send {
                to,
                msg: Msg::Data(0, Vec::new()),
            }),
            Input::PeerDown(_) | Input::Timer(()) => {}
        }
    }

    fn is_control(msg: &Msg) -> bool {
        matches!(msg, Msg::Control(_))
    }

    fn undelivered(
        &mut self,
        _now: Instant,
        to: PeerId,
        msg: Msg,
        reason: DropReason,
        _out: &mut Vec<Output<Self>>,
    ) {
        self.undelivered.push((to, msg, reason));
    }
}

async fn start(i: usize, config: NodeConfig) -> (Node, Handle<Pusher>) {
    let key = Keypair::from_seed([i as u8 + 150; 32]);
    let mut builder = NodeBuilder::new(config);
    let (pusher, _events) = builder.register(Pusher::default()).unwrap();
    let node = Net::Quic.start(builder, &key, loopback(i)).await;
    (node, pusher)
}

#[tokio::test]
async fn a_message_for_a_peer_without_a_connection_comes_back_to_its_protocol() {
    let (_node, pusher) = start(60, NodeConfig::default()).await;
    let nobody = Keypair::from_seed([9; 32]).peer_id();
    pusher.command(Cmd::One(nobody)).await.unwrap();
    let back = pusher.with(|p| p.undelivered.clone()).await.unwrap();
    assert_eq!(
        back,
        vec![(nobody, Msg::Data(0, Vec::new()), DropReason::ConnectionClosed)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_queue_still_takes_a_control_message_and_every_dropped_one_comes_back() {
    let config = NodeConfig {
        send_queue_per_peer: 2,
        control_queue_per_peer: 2,
        ..NodeConfig::default()
    };
    let (a, pusher) = start(61, config.clone()).await;
    let (b, receiver) = start(62, config).await;
    a.dial(b.peer_id(), b.local_addr()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let b_id = b.peer_id();
    while !pusher.with(move |p| p.up.contains(&b_id)).await.unwrap() {
        assert!(tokio::time::Instant::now() < deadline, "never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // B stops reading for a while: A's writer fills the transport's window and its queue of two.
    let stalled = receiver.clone();
    let stall =
        tokio::spawn(async move { stalled.with(|_| std::thread::sleep(Duration::from_secs(2))).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    pusher.command(Cmd::Burst(b_id)).await.unwrap();
    stall.await.unwrap().unwrap();

    // Every data message either arrives or comes back; the control message, sent last into a queue
    // full of data, arrives.
    loop {
        let back = pusher.with(|p| p.undelivered.clone()).await.unwrap();
        let (data, control) = receiver
            .with(|p| (p.data.clone(), p.control.clone()))
            .await
            .unwrap();
        if data.len() + back.len() == DATA as usize && control.contains(&0) {
            assert!(
                !back.is_empty(),
                "a queue of two dropped none of 18 MB to a stalled peer"
            );
            for (to, msg, reason) in &back {
                assert_eq!((*to, *reason), (b_id, DropReason::QueueFull));
                let Msg::Data(n, _) = msg else {
                    panic!("a control message was dropped");
                };
                assert!(!data.contains(n), "{n} both arrived and came back");
            }
            // Every drop for a full queue is counted under the protocol's id.
            assert_eq!(a.metrics().queue_drops(Pusher::ID.as_str()), back.len() as u64);
            assert_eq!(a.metrics().queue_drops("/not/run/1"), 0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} arrived, {} came back, control {:?}",
            data.len(),
            back.len(),
            control
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
