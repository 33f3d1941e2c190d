//! Three chat nodes over real QUIC on loopback (distinct IPs 127.0.x.1): nodes 2 and 3 are given only
//! node 1's address; Kademlia finds the rest, gossip joins through what it found, and a line said on
//! node 3 reaches nodes 1 and 2 with its sender, nick and text.
#![allow(clippy::unwrap_used)]
// A test's deadlines are wall time.
#![allow(clippy::disallowed_methods)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use meshwork_chat::{ChatApp, ChatCommand, ChatConfig, ChatEvent};
use meshwork_identity::Keypair;
use meshwork_kad::PeerInfo;
use meshwork_node::{Events, Handle, Node, NodeBuilder, NodeConfig};
use meshwork_transport::QuicTransport;
use tokio::time::{Instant, timeout};

const WAIT: Duration = Duration::from_secs(30);

struct ChatNode {
    node: Node,
    chat: Handle<ChatApp>,
    events: Events<ChatApp>,
}

async fn start(i: u8) -> ChatNode {
    let key = Keypair::from_seed([i; 32]);
    let config = ChatConfig {
        loopback_devnet: true,
    };
    let mut builder = NodeBuilder::new(NodeConfig::default());
    let app = ChatApp::new(key.clone(), &config, u64::from(i));
    let (chat, events) = builder.register_with(app, meshwork_chat::hooks()).unwrap();
    let mut transport = meshwork_transport::Config::new(builder.protocols());
    transport.limits = transport.limits.loopback_devnet();
    let addr = SocketAddr::from((Ipv4Addr::new(127, 0, i, 1), 0));
    let quic = QuicTransport::bind(&key, addr, transport).await.unwrap();
    let node = builder.start(quic).await.unwrap();
    ChatNode { node, chat, events }
}

/// The next event `pick` returns something for, within [`WAIT`].
async fn wait_for<T>(n: &mut ChatNode, mut pick: impl FnMut(ChatEvent) -> Option<T>) -> T {
    timeout(WAIT, async {
        loop {
            if let Some(found) = pick(n.events.recv().await.expect("node stopped")) {
                return found;
            }
        }
    })
    .await
    .expect("no such event in time")
}

/// Joins `n` through node `contact` only, and returns Kademlia's table size when its bootstrap ends.
async fn join(n: &mut ChatNode, contact: &Node) -> usize {
    let info = PeerInfo {
        id: contact.peer_id(),
        addr: contact.local_addr().into(),
    };
    n.chat.command(ChatCommand::Join(info)).await.unwrap();
    wait_for(n, |event| match event {
        ChatEvent::Joined { table_size } => Some(table_size),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_said_on_node_3_reaches_nodes_1_and_2() {
    let mut nodes = vec![start(1).await, start(2).await, start(3).await];
    let first = nodes[0].node.clone();
    assert_eq!(join(&mut nodes[1], &first).await, 1, "node 2 knows node 1");
    // Node 1 enters node 2 in its table once node 2 answers its ping.
    let second = nodes[1].node.peer_id();
    let deadline = Instant::now() + WAIT;
    while !nodes[0]
        .chat
        .with(move |c| c.kad().routing_table().contains(&second))
        .await
        .unwrap()
    {
        assert!(
            Instant::now() < deadline,
            "node 1 never entered node 2 in its table"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Node 3 is given node 1 alone, and Kademlia finds node 2 through it.
    assert_eq!(join(&mut nodes[2], &first).await, 2, "node 3 found both");

    // Gossip's views connect all three (with three nodes, everyone having a neighbour is enough).
    let deadline = Instant::now() + WAIT;
    loop {
        let mut sizes = Vec::new();
        for n in &nodes {
            sizes.push(n.chat.with(|c| c.gossip().active_view().len()).await.unwrap());
        }
        if sizes.iter().all(|s| *s >= 1) {
            break;
        }
        assert!(Instant::now() < deadline, "gossip views still {sizes:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let say = ChatCommand::Say {
        nick: "carol".into(),
        text: "hello from three".into(),
    };
    nodes[2].chat.command(say).await.unwrap();
    let carol = nodes[2].node.peer_id();
    for (i, n) in nodes.iter_mut().take(2).enumerate() {
        let (from, nick, text) = wait_for(n, |event| match event {
            ChatEvent::Line { from, nick, text } => Some((from, nick, text)),
            _ => None,
        })
        .await;
        assert_eq!(
            (from, nick.as_str(), text.as_str()),
            (carol, "carol", "hello from three"),
            "node {}",
            i + 1
        );
    }
    for n in &nodes {
        n.node.shutdown().await.unwrap();
    }
}
