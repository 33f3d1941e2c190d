//! Gossip on the node runtime: thirty nodes join through one, and every message published by any of
//! them reaches every node. Runs over real QUIC on loopback and over the in-memory network.
#![allow(clippy::unwrap_used)]
// A test's deadlines are wall time.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use meshwork_gossip::{Command, Config, Event, Gossip, MessageId, TopicId, TopicOptions};
use meshwork_identity::Keypair;
use meshwork_node::{Events, Handle, Node, NodeBuilder, NodeConfig};
use support::{Net, loopback};
use tokio::time::{Instant, timeout};

const NODES: usize = 30;
const MESSAGES: usize = 10;

/// The QUIC and in-memory runs take turns on the two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct GossipNode {
    node: Node,
    gossip: Handle<Gossip>,
    events: Events<Gossip>,
}

async fn thirty_nodes_deliver_every_message(net: Net) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let topic = TopicId::from_name("chat");
    let mut nodes = Vec::new();
    for i in 0..NODES {
        let key = Keypair::from_seed([i as u8 + 100; 32]);
        let mut builder = NodeBuilder::new(NodeConfig::default());
        let (gossip, events) = builder
            .register(Gossip::new(key.clone(), Config::default(), i as u64))
            .unwrap();
        let node = net.start(builder, &key, loopback(i)).await;
        gossip
            .command(Command::Subscribe(topic, TopicOptions::default()))
            .await
            .unwrap();
        nodes.push(GossipNode { node, gossip, events });
    }
    // Addresses are given here (finding them is Kademlia's job, tested in kad.rs); membership is not:
    // everyone joins through node 0 and HyParView's random walks spread the views.
    let contact = nodes[0].node.peer_id();
    for n in &nodes {
        for other in &nodes {
            n.node
                .add_address(other.node.peer_id(), other.node.local_addr())
                .await
                .unwrap();
        }
    }
    for n in nodes.iter().skip(1) {
        n.gossip.command(Command::Join(vec![contact])).await.unwrap();
    }
    // Wait (bounded) until every node has a neighbour.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut isolated = 0;
        for n in &nodes {
            if n.gossip.with(|g| g.active_view().is_empty()).await.unwrap() {
                isolated += 1;
            }
        }
        if isolated == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{isolated} nodes still have no neighbour after a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Ten messages from ten different nodes.
    for m in 0..MESSAGES {
        let payload = format!("message {m}").into_bytes();
        nodes[(m * 3) % NODES]
            .gossip
            .command(Command::Publish(topic, payload))
            .await
            .unwrap();
    }
    for (i, n) in nodes.iter_mut().enumerate() {
        let mut seen: HashSet<MessageId> = HashSet::new();
        let waited = timeout(Duration::from_secs(60), async {
            while seen.len() < MESSAGES {
                match n.events.recv().await.expect("node stopped") {
                    Event::Delivered { id, message, .. } => {
                        assert!(message.payload.as_slice().starts_with(b"message "));
                        seen.insert(id);
                    }
                    _ => continue,
                }
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "node {i} got {} of {MESSAGES} messages",
            seen.len()
        );
    }
    let mut shutdowns = Vec::new();
    for n in &nodes {
        let node = n.node.clone();
        shutdowns.push(tokio::spawn(async move { node.shutdown().await }));
    }
    for s in shutdowns {
        s.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_nodes_over_quic() {
    thirty_nodes_deliver_every_message(Net::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_nodes_in_memory() {
    thirty_nodes_deliver_every_message(Net::memory()).await;
}
