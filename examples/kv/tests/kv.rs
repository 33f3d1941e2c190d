//! The store on real QUIC over loopback: nodes in one process, each with its own data directory.
#![allow(clippy::unwrap_used)]

use meshwork_kv::{KvError, KvNode, KvOptions, MAX_VALUE};

async fn start(dir: &std::path::Path, n: usize) -> KvNode {
    let mut options = KvOptions::new(dir.join(format!("n{n}")), "127.0.0.1:0".parse().unwrap());
    options.loopback_devnet = true;
    KvNode::start(options).await.unwrap()
}

/// Six nodes, each joined through the first.
async fn network(dir: &std::path::Path) -> Vec<KvNode> {
    let mut nodes = vec![start(dir, 0).await];
    for n in 1..6 {
        let node = start(dir, n).await;
        let table = node
            .join(nodes[0].peer_id(), nodes[0].local_addr())
            .await
            .unwrap();
        assert!(table >= 1, "node {n} joined with an empty table");
        nodes.push(node);
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_is_found_from_every_node_updated_by_its_publisher_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = network(dir.path()).await;
    let publisher = nodes[2].clone();
    assert!(publisher.put("greeting", b"hello".to_vec()).await.unwrap() >= 1);
    for (n, node) in nodes.iter().enumerate() {
        let entry = node.get("greeting").await.unwrap();
        let entry = entry.unwrap_or_else(|| panic!("node {n} found nothing"));
        assert_eq!(entry.value, b"hello", "node {n}");
        assert_eq!(entry.publisher, publisher.peer_id(), "node {n}");
    }
    assert_eq!(nodes[4].get("nobody put this").await.unwrap(), None);

    // The publisher updates its own name: the newer record replaces the old one at the storing peers.
    publisher.put("greeting", b"hello again".to_vec()).await.unwrap();
    for node in &nodes {
        assert_eq!(node.get("greeting").await.unwrap().unwrap().value, b"hello again");
    }

    // Another publisher cannot take the name while the record lives.
    match nodes[3].put("greeting", b"mine now".to_vec()).await {
        Err(KvError::Conflict { publisher: holder }) => assert_eq!(holder, publisher.peer_id()),
        other => panic!("a held name was taken: {other:?}"),
    }
    assert_eq!(
        nodes[5].get("greeting").await.unwrap().unwrap().value,
        b"hello again"
    );

    let too_large = vec![0; MAX_VALUE + 1];
    assert!(matches!(
        nodes[1].put("big", too_large).await,
        Err(KvError::TooLarge { .. })
    ));

    // Every node stops; one restarts alone from its data directory and answers from its store.
    for node in &nodes {
        node.shutdown().await.unwrap();
    }
    drop(nodes);
    let alone = start(dir.path(), 4).await;
    let entry = alone.get("greeting").await.unwrap().unwrap();
    assert_eq!(
        (entry.value, entry.publisher),
        (b"hello again".to_vec(), publisher.peer_id())
    );
    alone.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_node_reports_that_it_has_nobody_to_ask() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), 0).await;
    assert!(matches!(
        node.get("anything").await,
        Err(KvError::Query(meshwork_kad::QueryError::NoPeers))
    ));
    assert!(matches!(
        node.put("anything", b"v".to_vec()).await,
        Err(KvError::Query(meshwork_kad::QueryError::NoPeers))
    ));
    node.shutdown().await.unwrap();
}
