//! Kademlia's anchors over real QUIC on loopback: a node keeps one connection in each of its farthest
//! buckets, and its keep-alive pings hold that connection open against the other side's connection
//! manager, which does not protect it and closes what stays idle. Without the pings (a keep-alive
//! period longer than the test) the other side closes some of them.
#![allow(clippy::unwrap_used)]
// A test's deadlines are wall time.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_kad::{Command, Config, Event, Kademlia, PeerInfo, QueryId};
use meshwork_node::{ConnectionLimits, Events, Handle, Node, NodeBuilder, NodeConfig};
use support::{Net, kad_hooks, loopback};
use tokio::time::{sleep, timeout};

const NODES: usize = 10;
/// Every node's connection manager closes a connection that carried nothing for this long.
const IDLE: Duration = Duration::from_secs(2);

struct KadNode {
    node: Node,
    kad: Handle<Kademlia>,
    events: Events<Kademlia>,
}

async fn start(i: usize, keepalive: Duration) -> KadNode {
    let key = Keypair::from_seed([i as u8 + 40; 32]);
    let connections = ConnectionLimits {
        idle_timeout: IDLE,
        grace_period: IDLE,
        ..ConnectionLimits::default()
    };
    let mut builder = NodeBuilder::new(NodeConfig {
        connections,
        ..NodeConfig::default()
    });
    let mut config = Config::default();
    config.anchor_keepalive = keepalive;
    let kad = Kademlia::new(key.clone(), config, i as u64);
    let (kad, events) = builder.register_with(kad, kad_hooks()).unwrap();
    let node = Net::Quic.start(builder, &key, loopback(i)).await;
    KadNode { node, kad, events }
}

/// The anchors of each of `nodes`.
async fn anchors_of(nodes: &[KadNode]) -> Vec<Vec<PeerId>> {
    let mut all = Vec::new();
    for n in nodes {
        all.push(n.kad.with(|kad| kad.anchors().collect()).await.unwrap());
    }
    all
}

/// `NODES` nodes join through the first, one after another; then nothing is asked of anyone for
/// three idle timeouts. Returns, over every node, the anchors it had after the joins, how many of
/// them it still has and holds a connection to after the quiet spell, and the keep-alive pings sent.
async fn anchors_after_a_quiet_spell(keepalive: Duration) -> (usize, usize, u64) {
    let mut nodes = Vec::new();
    for i in 0..NODES {
        nodes.push(start(i, keepalive).await);
    }
    let seed = PeerInfo {
        id: nodes[0].node.peer_id(),
        addr: nodes[0].node.local_addr().into(),
    };
    for n in nodes.iter_mut().skip(1) {
        let query = QueryId(1);
        let command = Command::Bootstrap {
            query,
            peers: vec![seed.clone()],
        };
        n.kad.command(command).await.unwrap();
        timeout(Duration::from_secs(60), async {
            loop {
                match n.events.recv().await.expect("node stopped") {
                    Event::Bootstrapped { .. } => break,
                    _ => continue,
                }
            }
        })
        .await
        .expect("joined within a minute");
    }
    let before = anchors_of(&nodes).await;
    sleep(IDLE * 3).await;
    let after = anchors_of(&nodes).await;
    let mut kept = 0;
    let mut pings = 0;
    for ((n, before), after) in nodes.iter().zip(&before).zip(&after) {
        let connected: BTreeSet<PeerId> = n
            .node
            .peers()
            .await
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        kept += before
            .iter()
            .filter(|a| after.contains(a) && connected.contains(a))
            .count();
        pings += n.kad.with(|kad| kad.totals().anchor_pings).await.unwrap();
    }
    for n in nodes {
        n.node.shutdown().await.unwrap();
    }
    (before.iter().map(Vec::len).sum(), kept, pings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchors_stay_connected_through_the_other_sides_idle_timeout_and_only_with_their_pings() {
    // Pinged when quiet for half the other side's idle timeout.
    let (anchors, held, pings) = anchors_after_a_quiet_spell(IDLE / 2).await;
    assert!(
        anchors >= NODES / 2,
        "most joiners anchor a far bucket: {anchors} anchors"
    );
    assert_eq!(held, anchors, "every anchor kept ({pings} keep-alive pings)");
    assert!(
        pings >= anchors as u64,
        "each anchor pinged at least once in the quiet spell: {pings}"
    );

    // The same without pings: the other side closes anchors it does not anchor itself.
    let (anchors, held, pings) = anchors_after_a_quiet_spell(Duration::from_secs(3600)).await;
    assert_eq!(pings, 0);
    assert!(held < anchors, "{held} of {anchors} anchors held without pings");
}
