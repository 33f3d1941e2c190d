//! The connection manager on the in-memory transport: idle connections close, a node above its high
//! watermark trims the least recently active back to its target, and neither touches a connection a
//! protocol protects or one still in its grace period.
#![allow(clippy::unwrap_used)]
// A test's deadlines are wall time.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_node::{ConnectionLimits, Events, Handle, Node, NodeBuilder, NodeConfig};
use meshwork_transport::{Config, Connection, MemoryNetwork, MemoryTransport, Transport};
use meshwork_wire::{Input, Instant, Output, Protocol, ProtocolId};
use tokio::time::{sleep, timeout};

/// Reports peers up and down; sends and protects on command.
struct Probe;

#[derive(Debug)]
enum Cmd {
    Send(PeerId),
    Protect(PeerId, bool),
}

#[derive(Debug, PartialEq)]
enum Ev {
    Up(PeerId),
    Down(PeerId),
}

impl Protocol for Probe {
    type Message = u8;
    type Command = Cmd;
    type Event = Ev;
    type Timer = ();
    const ID: ProtocolId = ProtocolId::new("/test/managed/1");
    const MAX_MESSAGE_SIZE: usize = 8;

    fn handle(&mut self, _: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        match input {
            Input::PeerUp(peer) => out.push(Output::Emit(Ev::Up(peer))),
            Input::PeerDown(peer) => out.push(Output::Emit(Ev::Down(peer))),
            Input::Command(Cmd::Send(to)) => out.push(Output::Send { to, msg: 1 }),
            Input::Command(Cmd::Protect(peer, protect)) => out.push(Output::Protect { peer, protect }),
            Input::Message { .. } | Input::Timer(()) => {}
        }
    }
}

struct Peer {
    node: Node,
    probe: Handle<Probe>,
    events: Events<Probe>,
}

async fn start(network: &MemoryNetwork, seed: u8, connections: ConnectionLimits) -> Peer {
    let config = NodeConfig {
        connections,
        ..NodeConfig::default()
    };
    start_with(network, seed, config).await
}

async fn start_with(network: &MemoryNetwork, seed: u8, config: NodeConfig) -> Peer {
    let mut builder = NodeBuilder::new(config);
    let (probe, events) = builder.register(Probe).unwrap();
    let key = Keypair::from_seed([seed; 32]);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let transport = MemoryTransport::bind(network, &key, any, Config::new(builder.protocols())).unwrap();
    let node = builder.start(transport).await.unwrap();
    Peer { node, probe, events }
}

/// Clients that never close anything themselves, so what closes is the hub's doing.
fn patient() -> ConnectionLimits {
    ConnectionLimits {
        low_watermark: 100,
        high_watermark: 100,
        grace_period: Duration::from_secs(600),
        idle_timeout: Duration::from_secs(600),
    }
}

async fn connect(hub: &Peer, clients: &mut [Peer]) {
    for client in clients.iter_mut() {
        client
            .node
            .dial(hub.node.peer_id(), hub.node.local_addr())
            .await
            .unwrap();
        let up = timeout(Duration::from_secs(20), client.events.recv())
            .await
            .unwrap();
        assert_eq!(up, Some(Ev::Up(hub.node.peer_id())));
    }
}

async fn connected(node: &Node) -> BTreeSet<PeerId> {
    node.peers()
        .await
        .unwrap()
        .into_iter()
        .map(|(peer, _)| peer)
        .collect()
}

/// Waits (bounded) until `node` holds exactly `want` connections.
async fn until_held(node: &Node, want: usize) -> BTreeSet<PeerId> {
    for _ in 0..200 {
        let held = connected(node).await;
        if held.len() == want {
            return held;
        }
        sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the node never held {want} connections: {:?}",
        connected(node).await.len()
    );
}

/// The value of `meshwork_connections_closed_total{reason}` on `node`.
fn closed(node: &Node, reason: &str) -> u64 {
    metric(
        node,
        &format!("meshwork_connections_closed_total{{reason=\"{reason}\"}}"),
    )
}

/// The value of the metric `series` (name and labels) on `node`; 0 if it is not there yet.
fn metric(node: &Node, series: &str) -> u64 {
    let prefix = format!("{series} ");
    node.metrics()
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn an_idle_connection_closes_and_a_protected_one_stays() {
    let network = MemoryNetwork::new();
    let hub = start(
        &network,
        1,
        ConnectionLimits {
            grace_period: Duration::from_millis(200),
            idle_timeout: Duration::from_millis(500),
            ..ConnectionLimits::default()
        },
    )
    .await;
    let mut clients = vec![
        start(&network, 2, patient()).await,
        start(&network, 3, patient()).await,
    ];
    connect(&hub, &mut clients).await;
    let kept = clients[0].node.peer_id();
    hub.probe.command(Cmd::Protect(kept, true)).await.unwrap();

    assert_eq!(until_held(&hub.node, 1).await, BTreeSet::from([kept]));
    let down = timeout(Duration::from_secs(20), clients[1].events.recv())
        .await
        .unwrap();
    assert_eq!(
        down,
        Some(Ev::Down(hub.node.peer_id())),
        "the idle client is told"
    );
    assert_eq!(closed(&hub.node, "idle"), 1);

    // Unprotected, the kept one goes idle too.
    hub.probe.command(Cmd::Protect(kept, false)).await.unwrap();
    until_held(&hub.node, 0).await;
    assert_eq!(closed(&hub.node, "idle"), 2);
    assert_eq!(closed(&hub.node, "trimmed"), 0);
}

#[tokio::test]
async fn above_the_high_watermark_the_least_recently_active_are_trimmed_to_the_target() {
    let network = MemoryNetwork::new();
    let grace = Duration::from_millis(300);
    let hub = start(
        &network,
        10,
        ConnectionLimits {
            low_watermark: 2,
            high_watermark: 3,
            grace_period: grace,
            idle_timeout: Duration::from_secs(600),
        },
    )
    .await;
    let mut clients = Vec::new();
    for seed in 11..16 {
        clients.push(start(&network, seed, patient()).await);
    }
    let started = tokio::time::Instant::now();
    connect(&hub, &mut clients).await;
    // Five held, above the high watermark, but all in their grace period.
    assert_eq!(connected(&hub.node).await.len(), 5);
    // The last is the most recently active: it talks after the grace period ends. The first is the
    // longest-lived, which trimming keeps (up to half the low watermark: one).
    sleep(grace.saturating_sub(started.elapsed())).await;
    clients[4]
        .probe
        .command(Cmd::Send(hub.node.peer_id()))
        .await
        .unwrap();
    let expect: BTreeSet<PeerId> = [&clients[0], &clients[4]]
        .iter()
        .map(|c| c.node.peer_id())
        .collect();
    assert_eq!(until_held(&hub.node, 2).await, expect);
    assert_eq!(closed(&hub.node, "trimmed"), 3);
    for client in &mut clients[1..4] {
        let down = timeout(Duration::from_secs(20), client.events.recv())
            .await
            .unwrap();
        assert_eq!(down, Some(Ev::Down(hub.node.peer_id())));
    }
    // At the target nothing more is trimmed.
    sleep(Duration::from_millis(1500)).await;
    assert_eq!(connected(&hub.node).await, expect);
}

#[tokio::test]
async fn a_connection_the_peer_has_used_is_no_longer_new() {
    let network = MemoryNetwork::new();
    // A grace period far longer than the test: only the peer's use can end it. A connection not yet
    // used does not count towards the watermarks, so they are at zero for the used one to be trimmed.
    let hub = start(
        &network,
        20,
        ConnectionLimits {
            low_watermark: 0,
            high_watermark: 0,
            grace_period: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(600),
        },
    )
    .await;
    let mut clients = Vec::new();
    for seed in 21..23 {
        clients.push(start(&network, seed, patient()).await);
    }
    connect(&hub, &mut clients).await;
    assert_eq!(connected(&hub.node).await.len(), 2);
    // The first client sends what it dialled for; the second never sends anything.
    clients[0]
        .probe
        .command(Cmd::Send(hub.node.peer_id()))
        .await
        .unwrap();
    // Above the high watermark, the used one goes once it has been quiet for a second; the unused
    // one keeps its grace period.
    let expect: BTreeSet<PeerId> = [clients[1].node.peer_id()].into();
    assert_eq!(until_held(&hub.node, 1).await, expect);
    assert_eq!(closed(&hub.node, "trimmed"), 1);
    let down = timeout(Duration::from_secs(20), clients[0].events.recv())
        .await
        .unwrap();
    assert_eq!(down, Some(Ev::Down(hub.node.peer_id())));
    sleep(Duration::from_millis(1500)).await;
    assert_eq!(connected(&hub.node).await, expect);
}

#[tokio::test]
async fn a_message_sent_while_every_connection_to_the_peer_is_closing_goes_out_on_the_next_one() {
    let network = MemoryNetwork::new();
    // The hub trims any connection that has been quiet for a second, and gives a peer 2 s to finish
    // its streams when it closes one.
    let config = NodeConfig {
        connections: ConnectionLimits {
            low_watermark: 0,
            high_watermark: 0,
            grace_period: Duration::ZERO,
            idle_timeout: Duration::from_secs(600),
        },
        drain_deadline: Duration::from_secs(2),
        ..NodeConfig::default()
    };
    let mut hub = start_with(&network, 20, config).await;
    // A bare transport speaking the probe's protocol: it writes one message and never finishes its
    // stream, so the hub's graceful close of the connection waits for the whole drain deadline.
    let protocols = {
        let mut builder = NodeBuilder::new(NodeConfig::default());
        let _ = builder.register(Probe).unwrap();
        builder.protocols()
    };
    let key = Keypair::from_seed([21; 32]);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bare = MemoryTransport::bind(&network, &key, any, Config::new(protocols)).unwrap();
    let first = bare
        .dial(hub.node.peer_id(), hub.node.local_addr())
        .await
        .unwrap();
    let mut stream = first.open(Probe::ID).await.unwrap();
    stream.send(&7u8).await.unwrap();
    let up = timeout(Duration::from_secs(20), hub.events.recv()).await.unwrap();
    assert_eq!(up, Some(Ev::Up(key.peer_id())));

    // Trimmed: the connection no longer takes messages, and waits for the bare peer's stream.
    until_held(&hub.node, 0).await;
    assert_eq!(closed(&hub.node, "trimmed"), 1);
    assert!(first.close_reason().is_none(), "still draining");
    // The hub's protocol still sees the peer up, and sends to it.
    hub.probe.command(Cmd::Send(key.peer_id())).await.unwrap();

    // Once the old connection has closed, the hub dials the peer again and the message goes out on
    // the new connection.
    let second = timeout(Duration::from_secs(20), bare.accept())
        .await
        .unwrap()
        .unwrap();
    let mut incoming = timeout(Duration::from_secs(20), second.accept_stream())
        .await
        .unwrap()
        .unwrap();
    let got: Option<u8> = timeout(Duration::from_secs(20), incoming.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, Some(1), "the message that waited for a connection");
    let dropped = r#"meshwork_dropped_total{protocol="/test/managed/1",reason="connection_closed"}"#;
    assert_eq!(metric(&hub.node, dropped), 0, "nothing was dropped");
    drop(stream);
}
