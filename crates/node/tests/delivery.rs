//! Nothing lost silently: frames written around a simultaneous dial and before a release arrive, and a
//! message that cannot be sent (no connection, or a peer that refuses the protocol) is counted under
//! its reason. Runs over real QUIC on loopback and over
//! the in-memory network.
#![allow(clippy::unwrap_used)]
// A test's deadlines are wall time, and one node's task is made to stall on purpose.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_node::{Events, Handle, Node, NodeBuilder, NodeConfig};
use meshwork_wire::{Input, Instant, Output, Protocol, ProtocolId};
use support::{Net, loopback};
use tokio::time::timeout;

/// Messages each side sends as soon as the other is up.
const BURST: u32 = 300;

/// On `PeerUp` sends `BURST` numbered messages; reports every message; on command sends one last
/// message and releases the peer in the same step.
#[derive(Default)]
struct Burst {
    got: BTreeSet<(PeerId, u32)>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Seq(u32);

#[derive(Debug)]
enum Cmd {
    /// Send `Seq(n)` to the peer, then release it.
    Bye(PeerId, u32),
    /// Send `Seq(n)` to a peer (connected or not).
    Send(PeerId, u32),
}

#[derive(Debug, PartialEq)]
enum Ev {
    Up(PeerId),
    Down(PeerId),
    Got(PeerId, u32),
}

impl Protocol for Burst {
    type Message = Seq;
    type Command = Cmd;
    type Event = Ev;
    type Timer = ();
    const ID: ProtocolId = ProtocolId::new("/test/burst/1");
    const MAX_MESSAGE_SIZE: usize = 64;

    fn handle(&mut self, _now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        match input {
            Input::PeerUp(peer) => {
                out.push(Output::Emit(Ev::Up(peer)));
                for n in 0..BURST {
                    out.push(Output::Send {
                        to: peer,
                        msg: Seq(n),
                    });
                }
            }
            Input::PeerDown(peer) => out.push(Output::Emit(Ev::Down(peer))),
            Input::Message { from, msg } => {
                self.got.insert((from, msg.0));
                out.push(Output::Emit(Ev::Got(from, msg.0)));
            }
            Input::Command(Cmd::Bye(to, n)) => {
                out.push(Output::Send { to, msg: Seq(n) });
                out.push(Output::Disconnect(to));
            }
            Input::Command(Cmd::Send(to, n)) => out.push(Output::Send { to, msg: Seq(n) }),
            Input::Timer(()) => {}
        }
    }
}

struct TestNode {
    node: Node,
    burst: Handle<Burst>,
    events: Events<Burst>,
}

async fn start(net: &Net, i: usize) -> TestNode {
    let key = Keypair::from_seed([i as u8 + 100; 32]);
    let mut builder = NodeBuilder::new(NodeConfig::default());
    let (burst, events) = builder.register(Burst::default()).unwrap();
    let node = net.start(builder, &key, loopback(i)).await;
    TestNode { node, burst, events }
}

/// The numbers `node` has received from `from`.
async fn received(node: &TestNode, from: PeerId) -> BTreeSet<u32> {
    node.burst
        .with(move |b| {
            b.got
                .iter()
                .filter(|(p, _)| *p == from)
                .map(|(_, n)| *n)
                .collect()
        })
        .await
        .unwrap()
}

/// The value of `meshwork_dropped_total` for `reason`, summed over protocols.
fn dropped(node: &Node, reason: &str) -> u64 {
    let needle = format!("reason=\"{reason}\"");
    node.metrics()
        .render()
        .lines()
        .filter(|line| line.starts_with("meshwork_dropped_total{") && line.contains(&needle))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Pairs dial each other at the same moment, so each pair ends up with two connections, one of which
/// both sides retire. Each side writes its burst to whichever connection it had first, and the
/// receiving side's node task is stalled for three seconds (longer than the two seconds the loser
/// used to live) so the burst is still unread when the loser is retired. Every message arrives.
async fn simultaneous_dials_lose_nothing(net: Net) {
    let quic = matches!(net, Net::Quic);
    const PAIRS: usize = 4;
    let mut nodes = Vec::new();
    for i in 0..2 * PAIRS {
        nodes.push(start(&net, i).await);
    }
    for pair in nodes.chunks(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (da, db) = (
            a.node.dial(b.node.peer_id(), b.node.local_addr()),
            b.node.dial(a.node.peer_id(), a.node.local_addr()),
        );
        let (ra, rb) = tokio::join!(da, db);
        ra.unwrap();
        rb.unwrap();
        // Then stall b's node task (its dial, queued before, has started): what arrives meanwhile
        // waits in the transport and the inbox.
        let handle = b.burst.clone();
        let stall =
            tokio::spawn(async move { handle.with(|_| std::thread::sleep(Duration::from_secs(3))).await });
        stall.await.unwrap().unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for pair in nodes.chunks(2) {
        let (a, b) = (&pair[0], &pair[1]);
        for (to, from) in [(a, b), (b, a)] {
            loop {
                let got = received(to, from.node.peer_id()).await;
                if got.len() == BURST as usize {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{} of {BURST} messages arrived after a simultaneous dial",
                    got.len()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let duplicates: u64 = nodes
        .iter()
        .map(|n| n.node.transport_counters().duplicates_closed)
        .sum();
    // Over QUIC two dials started together always cross (each handshake takes a round trip); in
    // memory they may not, and the test then checks only that nothing is lost.
    if quic {
        assert!(
            duplicates >= 1,
            "no simultaneous dial happened: the test staged nothing"
        );
    }
    for n in &nodes {
        for reason in ["connection_closed", "write_failed", "queue_full"] {
            assert_eq!(dropped(&n.node, reason), 0, "{reason} drops");
        }
    }
}

/// A protocol that sends a last message and releases the peer in the same step: the release closes
/// the connection only once the message has been read, so the peer gets it before `PeerDown`.
async fn the_last_message_before_a_release_arrives(net: Net) {
    let a = start(&net, 20).await;
    let mut b = start(&net, 21).await;
    for round in 0..5u32 {
        a.node.dial(b.node.peer_id(), b.node.local_addr()).await.unwrap();
        let last = 10_000 + round;
        // Wait until b is up, then say goodbye at once.
        timeout(Duration::from_secs(20), async {
            loop {
                if a.node
                    .peers()
                    .await
                    .unwrap()
                    .iter()
                    .any(|(p, _)| *p == b.node.peer_id())
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        a.burst.command(Cmd::Bye(b.node.peer_id(), last)).await.unwrap();
        let mut got_last = false;
        timeout(Duration::from_secs(30), async {
            loop {
                match b.events.recv().await.unwrap() {
                    Ev::Got(from, n) if from == a.node.peer_id() && n == last => got_last = true,
                    Ev::Down(peer) if peer == a.node.peer_id() => break,
                    _ => {}
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("round {round}: the connection never closed"));
        assert!(
            got_last,
            "round {round}: the message sent just before the release was lost"
        );
    }
    // The transport's counters are on the page, and keep what the closed connections carried. Each
    // side counts a close when its transport's watch sees it, which may come just after `b` heard
    // `PeerDown`: wait (bounded) until both have counted the fifth.
    let requested = "meshwork_transport_connections_closed_total{reason=\"requested\"} 5";
    for _ in 0..200 {
        let counted = |node: &Node| node.metrics().render().lines().any(|line| line == requested);
        if counted(&a.node) && counted(&b.node) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for side in [&a.node, &b.node] {
        let page = side.metrics().render();
        let value = |name: &str| -> u64 {
            page.lines()
                .find(|line| line.starts_with(name))
                .and_then(|line| line.rsplit(' ').next()?.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing:\n{page}"))
        };
        assert!(value("meshwork_transport_bytes_sent_total ") > 0);
        assert!(value("meshwork_transport_bytes_received_total ") > 0);
        assert_eq!(
            value("meshwork_transport_connections_closed_total{reason=\"requested\"} "),
            5,
            "five releases, each closing one connection"
        );
        assert_eq!(
            value("meshwork_transport_connections_closed_total{reason=\"lost\"} "),
            0
        );
    }
    drop(a.events);
}

/// A message for a peer with no connection is counted, under `connection_closed`.
async fn an_unsendable_message_is_counted(net: Net) {
    let a = start(&net, 30).await;
    let nobody = Keypair::from_seed([7; 32]).peer_id();
    assert_eq!(dropped(&a.node, "connection_closed"), 0);
    a.burst.command(Cmd::Send(nobody, 1)).await.unwrap();
    // The command is handled by the next call's time.
    a.burst.with(|_| ()).await.unwrap();
    assert_eq!(dropped(&a.node, "connection_closed"), 1);
}

/// Speaks nothing: a peer that does not run [`Burst`].
struct Mute;

impl Protocol for Mute {
    type Message = Seq;
    type Command = ();
    type Event = ();
    type Timer = ();
    const ID: ProtocolId = ProtocolId::new("/test/mute/1");
    const MAX_MESSAGE_SIZE: usize = 64;

    fn handle(&mut self, _now: Instant, _input: Input<Self>, _out: &mut Vec<Output<Self>>) {}
}

/// Every drop `node` counted, by reason.
fn drops(node: &Node) -> Vec<(String, u64)> {
    meshwork_wire::DropReason::ALL
        .iter()
        .map(|reason| (reason.label().to_string(), dropped(node, reason.label())))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Writers open their streams eagerly, so a burst goes out before the peer says whether it speaks
/// the protocol at all. One that does not: every message of the burst is counted as dropped, once,
/// under its reason (`write_failed` when handed back on the refusal, `connection_closed` when the
/// peer, wanting nothing of us, closed first), not lost silently.
async fn messages_to_a_peer_that_refuses_the_protocol_are_counted(net: Net) {
    let a = start(&net, 40).await;
    let mut builder = NodeBuilder::new(NodeConfig::default());
    let (_mute, _events) = builder.register(Mute).unwrap();
    let b = net
        .start(builder, &Keypair::from_seed([141; 32]), loopback(41))
        .await;
    a.node.dial(b.peer_id(), b.local_addr()).await.unwrap();
    let total = |node: &Node| drops(node).iter().map(|(_, n)| n).sum::<u64>();
    let counted = timeout(Duration::from_secs(20), async {
        while total(&a.node) < u64::from(BURST) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(counted.is_ok(), "of {BURST}: {:?}", drops(&a.node));
    assert_eq!(
        total(&a.node),
        u64::from(BURST),
        "each once: {:?}",
        drops(&a.node)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_to_a_peer_that_refuses_the_protocol_are_counted_over_quic() {
    messages_to_a_peer_that_refuses_the_protocol_are_counted(Net::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_to_a_peer_that_refuses_the_protocol_are_counted_in_memory() {
    messages_to_a_peer_that_refuses_the_protocol_are_counted(Net::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_dials_lose_nothing_over_quic() {
    simultaneous_dials_lose_nothing(Net::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_dials_lose_nothing_in_memory() {
    simultaneous_dials_lose_nothing(Net::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_message_before_a_release_arrives_over_quic() {
    the_last_message_before_a_release_arrives(Net::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_message_before_a_release_arrives_in_memory() {
    the_last_message_before_a_release_arrives(Net::memory()).await;
}

#[tokio::test]
async fn an_unsendable_message_is_counted_over_quic() {
    an_unsendable_message_is_counted(Net::Quic).await;
}

#[tokio::test]
async fn an_unsendable_message_is_counted_in_memory() {
    an_unsendable_message_is_counted(Net::memory()).await;
}
