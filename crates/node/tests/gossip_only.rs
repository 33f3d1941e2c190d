//! Issue #21's acceptance test: a gossip-only network (no Kademlia, no address given but the contact's)
//! of fifty nodes, each joining through node 0. Gossip learns every other address from its membership
//! messages and the runtime dials through `Hooks::address_of`, so every active view fills and every
//! message reaches every node. Runs over real QUIC on loopback and over the in-memory network.
#![allow(clippy::unwrap_used)]
// A test's deadlines are wall time.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use meshwork_gossip::{Command, Config, Event, Gossip, MessageId, TopicId, TopicOptions};
use meshwork_identity::{Keypair, PeerId};
use meshwork_node::{Events, Handle, Hooks, Node, NodeBuilder, NodeConfig};
use support::{Net, loopback};
use tokio::time::{Instant, timeout};

const NODES: usize = 50;
const PUBLISHERS: usize = 5;

/// The QUIC and in-memory runs take turns on the two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct GossipNode {
    node: Node,
    gossip: Handle<Gossip>,
    events: Events<Gossip>,
}

/// Gossip is the only source of addresses the runtime has (besides the contact's): it is told the
/// address every connection comes from, and asked where to dial.
fn hooks() -> Hooks<Gossip> {
    Hooks {
        address_of: Some(|gossip: &Gossip, peer: &PeerId| gossip.address_of(peer)),
        on_connected: Some(|peer, addr| Some(Command::PeerAddress { peer, addr })),
        on_round_trip: Some(|peer, rtt| Some(Command::PeerRoundTrip { peer, rtt })),
    }
}

async fn start(net: &Net, i: usize, topic: TopicId) -> GossipNode {
    let key = Keypair::from_seed([i as u8 + 150; 32]);
    let mut builder = NodeBuilder::new(NodeConfig::default());
    let gossip = Gossip::new(key.clone(), Config::default(), i as u64);
    let (gossip, events) = builder.register_with(gossip, hooks()).unwrap();
    let node = net.start(builder, &key, loopback(i)).await;
    gossip
        .command(Command::Subscribe(topic, TopicOptions::default()))
        .await
        .unwrap();
    GossipNode { node, gossip, events }
}

/// The size of every node's active view.
async fn active_sizes(nodes: &[GossipNode]) -> Vec<usize> {
    let mut sizes = Vec::with_capacity(nodes.len());
    for n in nodes {
        sizes.push(n.gossip.with(|g| g.active_view().len()).await.unwrap());
    }
    sizes
}

/// The links (node, neighbour) where the neighbour's view does not hold the node: what keeps a view
/// short when every other one is full (for the failure message).
async fn one_way_links(nodes: &[GossipNode]) -> Vec<(usize, usize)> {
    let ids: Vec<PeerId> = nodes.iter().map(|n| n.node.peer_id()).collect();
    let mut views = Vec::with_capacity(nodes.len());
    for n in nodes {
        views.push(n.gossip.with(|g| g.active_view().to_vec()).await.unwrap());
    }
    let mut one_way = Vec::new();
    for (i, view) in views.iter().enumerate() {
        for peer in view {
            if let Some(j) = ids.iter().position(|id| id == peer)
                && !views[j].contains(&ids[i])
            {
                one_way.push((i, j));
            }
        }
    }
    one_way
}

async fn fifty_gossip_only_nodes_fill_their_views_and_deliver_everything(net: Net) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let started = Instant::now();
    let topic = TopicId::from_name("gossip-only");
    let mut nodes = Vec::new();
    for i in 0..NODES {
        nodes.push(start(&net, i, topic).await);
    }
    // The contact's id and address are all a node is given.
    let contact = nodes[0].node.peer_id();
    let contact_addr = nodes[0].node.local_addr();
    for n in nodes.iter().skip(1) {
        n.node.add_address(contact, contact_addr).await.unwrap();
        n.gossip.command(Command::Join(vec![contact])).await.unwrap();
    }

    // Every active view fills (bounded wait). The view size is HyParView's 5; free slots are asked for
    // again every repair round (10 s), and the views were full after two rounds when this was written.
    let full = Config::default().active_view_capacity;
    let wait = Duration::from_secs(45);
    let deadline = Instant::now() + wait;
    loop {
        let sizes = active_sizes(&nodes).await;
        if sizes.iter().all(|s| *s == full) {
            break;
        }
        let short: Vec<(usize, usize)> = sizes
            .iter()
            .enumerate()
            .filter(|(_, s)| **s != full)
            .map(|(i, s)| (i, *s))
            .collect();
        if Instant::now() >= deadline {
            let one_way = one_way_links(&nodes).await;
            panic!(
                "active views not full after {wait:?} (node, size): {short:?}; one-way links: {one_way:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let filled = started.elapsed();
    // Gossip knows where each of its neighbours is (the address each connection came from).
    for (i, n) in nodes.iter().enumerate() {
        let unknown = n
            .gossip
            .with(|g| {
                g.active_view()
                    .iter()
                    .filter(|p| g.address_of(p).is_none())
                    .count()
            })
            .await
            .unwrap();
        assert_eq!(unknown, 0, "node {i} has neighbours without an address");
    }

    // Messages from several publishers reach all fifty nodes.
    let mut published = Vec::new();
    for p in 0..PUBLISHERS {
        let payload = format!("from publisher {p}").into_bytes();
        let publisher = (p * 11 + 3) % NODES;
        nodes[publisher]
            .gossip
            .command(Command::Publish(topic, payload))
            .await
            .unwrap();
        published.push(publisher);
    }
    for (i, n) in nodes.iter_mut().enumerate() {
        let mut seen: HashSet<MessageId> = HashSet::new();
        let waited = timeout(Duration::from_secs(20), async {
            while seen.len() < PUBLISHERS {
                if let Event::Delivered { id, message, .. } = n.events.recv().await.expect("node stopped") {
                    assert!(message.payload.as_slice().starts_with(b"from publisher "));
                    seen.insert(id);
                }
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "node {i} delivered {} of {PUBLISHERS} messages (publishers {published:?})",
            seen.len()
        );
    }
    eprintln!(
        "{NODES} nodes: views full {:.1} s after start, all delivered at {:.1} s",
        filled.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
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
async fn fifty_gossip_only_nodes_over_quic() {
    fifty_gossip_only_nodes_fill_their_views_and_deliver_everything(Net::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_gossip_only_nodes_in_memory() {
    fifty_gossip_only_nodes_fill_their_views_and_deliver_everything(Net::memory()).await;
}
