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
use meshwork_transport::{Config, MemoryNetwork, MemoryTransport};
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
    let prefix = format!("meshwork_connections_closed_total{{reason=\"{reason}\"}} ");
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
    // The last two are the most recently active: they talk after the grace period ends.
    sleep(grace.saturating_sub(started.elapsed())).await;
    for client in &clients[3..] {
        client.probe.command(Cmd::Send(hub.node.peer_id())).await.unwrap();
    }
    let expect: BTreeSet<PeerId> = clients[3..].iter().map(|c| c.node.peer_id()).collect();
    assert_eq!(until_held(&hub.node, 2).await, expect);
    assert_eq!(closed(&hub.node, "trimmed"), 3);
    for client in &mut clients[..3] {
        let down = timeout(Duration::from_secs(20), client.events.recv())
            .await
            .unwrap();
        assert_eq!(down, Some(Ev::Down(hub.node.peer_id())));
    }
    // At the target nothing more is trimmed.
    sleep(Duration::from_millis(1500)).await;
    assert_eq!(connected(&hub.node).await, expect);
}
