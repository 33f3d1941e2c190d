//! Kademlia on the node runtime: fifty nodes bootstrap from one, every node finds every other, and a
//! record one node puts is read by all. Runs over real QUIC on loopback and over the in-memory network.
#![allow(clippy::unwrap_used)]
// A test's deadlines are wall time.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_kad::{Command, Config, Event, Kademlia, Key, PeerInfo, QueryId};
use meshwork_node::{Events, Handle, Node, NodeBuilder, NodeConfig};
use support::{Net, kad_hooks, loopback};
use tokio::time::timeout;

const NODES: usize = 50;
/// Lookups a node runs at once.
const BATCH: usize = 7;

/// The QUIC and in-memory runs take turns: fifty nodes each on two cores is load enough.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs the futures concurrently on this task and waits for all.
async fn futures_join_all<F: Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

struct KadNode {
    node: Node,
    kad: Handle<Kademlia>,
    events: Events<Kademlia>,
}

async fn start(net: &Net, i: usize) -> KadNode {
    let key = Keypair::from_seed([i as u8 + 1; 32]);
    let mut builder = NodeBuilder::new(NodeConfig::default());
    let kad = Kademlia::new(key.clone(), Config::default(), i as u64);
    let (kad, events) = builder.register_with(kad, kad_hooks()).unwrap();
    let node = net.start(builder, &key, loopback(i)).await;
    KadNode { node, kad, events }
}

/// Collects the answers to `queries` on one node (other events are skipped), within two minutes.
async fn answers(events: &mut Events<Kademlia>, queries: &[QueryId]) -> HashMap<QueryId, Event> {
    let mut got = HashMap::new();
    timeout(Duration::from_secs(120), async {
        while got.len() < queries.len() {
            let event = events.recv().await.expect("node stopped");
            let query = event.query();
            if queries.contains(&query) {
                got.insert(query, event);
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "only {} of {} queries answered within two minutes",
            got.len(),
            queries.len()
        )
    });
    got
}

async fn answer(events: &mut Events<Kademlia>, query: QueryId) -> Event {
    answers(events, &[query]).await.remove(&query).unwrap()
}

async fn fifty_nodes_find_each_other_and_share_a_record(net: Net) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let started = tokio::time::Instant::now();
    let mut nodes = Vec::new();
    for i in 0..NODES {
        nodes.push(start(&net, i).await);
    }
    let seed = PeerInfo {
        id: nodes[0].node.peer_id(),
        addr: nodes[0].node.local_addr().into(),
    };

    // Everyone but the seed bootstraps through it, one after another as real nodes would join.
    for (i, n) in nodes.iter_mut().enumerate().skip(1) {
        let query = QueryId(1);
        n.kad
            .command(Command::Bootstrap {
                query,
                peers: vec![seed.clone()],
            })
            .await
            .unwrap();
        match answer(&mut n.events, query).await {
            Event::Bootstrapped { table_size, .. } => assert!(table_size >= 1, "node {i} learned nobody"),
            other => panic!("node {i}: bootstrap ended with {other:?}"),
        }
    }

    // Every node looks up every other node: each node runs its lookups in batches of BATCH at once,
    // all nodes at the same time.
    let ids: Vec<PeerId> = nodes.iter().map(|n| n.node.peer_id()).collect();
    let addrs: HashMap<PeerId, _> = nodes
        .iter()
        .map(|n| (n.node.peer_id(), n.node.local_addr()))
        .collect();
    let lookups = nodes.iter_mut().enumerate().map(|(i, n)| {
        let (ids, addrs) = (&ids, &addrs);
        async move {
            let others: Vec<usize> = (0..NODES).filter(|j| *j != i).collect();
            for batch in others.chunks(BATCH) {
                for &j in batch {
                    let query = QueryId(1000 + j as u64);
                    n.kad
                        .command(Command::FindPeer { query, peer: ids[j] })
                        .await
                        .unwrap();
                }
                let queries: Vec<QueryId> = batch.iter().map(|j| QueryId(1000 + *j as u64)).collect();
                let mut got = answers(&mut n.events, &queries).await;
                for &j in batch {
                    match got.remove(&QueryId(1000 + j as u64)).unwrap() {
                        Event::FoundPeer {
                            found: Some(info), ..
                        } => {
                            assert_eq!(info.id, ids[j]);
                            assert_eq!(
                                info.addr.socket_addr(),
                                Some(addrs[&ids[j]]),
                                "node {i}: wrong address for {j}"
                            );
                        }
                        other => panic!(
                            "node {i} did not find node {j}: {other:?}\n{}",
                            n.node.metrics().render()
                        ),
                    }
                }
            }
        }
    });
    eprintln!("bootstrap done at {:?}", started.elapsed());
    futures_join_all(lookups).await;
    eprintln!("lookups done at {:?}", started.elapsed());

    // Node 7 puts a record; every node reads it back.
    let key = Key::for_record(&nodes[7].node.peer_id(), b"meshwork node test record");
    let value = b"the value".to_vec();
    nodes[7]
        .kad
        .command(Command::PutValue {
            query: QueryId(2),
            key,
            value: value.clone(),
        })
        .await
        .unwrap();
    match answer(&mut nodes[7].events, QueryId(2)).await {
        Event::PutValue { stored_at, .. } => assert!(stored_at >= 1, "the record was stored nowhere"),
        other => panic!("put failed: {other:?}"),
    }
    for n in &nodes {
        n.kad
            .command(Command::GetValue {
                query: QueryId(3),
                key,
            })
            .await
            .unwrap();
    }
    for (i, n) in nodes.iter_mut().enumerate() {
        match answer(&mut n.events, QueryId(3)).await {
            Event::GetValue {
                record: Some(record), ..
            } => {
                assert_eq!(
                    record.value.as_slice(),
                    value.as_slice(),
                    "node {i} read another value"
                )
            }
            other => panic!("node {i} could not read the record: {other:?}"),
        }
    }

    let metrics = nodes[0].node.metrics().render();
    assert!(
        metrics.contains("meshwork_messages_received_total{protocol=\"/meshwork/kad/2\"}"),
        "{metrics}"
    );
    futures_join_all(nodes.iter().map(|n| async { n.node.shutdown().await.unwrap() })).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_nodes_over_quic() {
    fifty_nodes_find_each_other_and_share_a_record(Net::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_nodes_in_memory() {
    fifty_nodes_find_each_other_and_share_a_record(Net::memory()).await;
}
