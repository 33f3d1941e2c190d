//! Eclipse by fresh identities: Sybils that ask a node's gossip layer to take them as neighbours.

use std::time::Duration;

use meshwork_gossip::{Gossip, MembershipMessage, Message};
use meshwork_identity::Keypair;
use meshwork_transport::{Config, Connection, ProtocolSpec, QuicTransport, Transport};
use meshwork_wire::Protocol;

use crate::support::{ONE_AT_A_TIME, params, start, wait_for};

/// The red team's eclipse: an honest active neighbour was evicted after 12 Sybil `Join`s. Now 40
/// Sybils, each joining and then asking with high priority, leave the node's established honest
/// neighbours in place (the longest-lived are protected, evictions are budgeted). Neighbours younger
/// than `AdmissionConfig::established_after` (60 s) may still be evicted, as HyParView's churn while
/// joining needs, so the honest ones settle for that long first (this test's minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_sybil_joins_do_not_evict_established_neighbours() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let params = params();
    let target = start(&dir, 0, params, &[], true, None).await;
    let mut honest = Vec::new();
    for i in 1..=3 {
        honest.push(start(&dir, i, params, &[&target], false, None).await);
    }
    let honest_ids: Vec<_> = honest.iter().map(|n| n.api().node().peer_id()).collect();
    let active = || async {
        target
            .api()
            .app()
            .with(|app| app.gossip().active_view().to_vec())
            .await
            .unwrap()
    };
    wait_for(60, "the honest nodes in the target's active view", || async {
        let view = active().await;
        honest_ids.iter().all(|id| view.contains(id))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(61)).await;
    let view = active().await;
    assert!(
        honest_ids.iter().all(|id| view.contains(id)),
        "the honest neighbours settled: {view:?}"
    );

    let (id, addr) = (target.api().node().peer_id(), target.api().node().local_addr());
    let join = meshwork_wire::encode(&Message::Membership(MembershipMessage::Join)).unwrap();
    let neighbor = meshwork_wire::encode(&Message::Membership(MembershipMessage::Neighbor {
        high_priority: true,
    }))
    .unwrap();
    let mut sybils = Vec::new();
    for n in 0..40u8 {
        let key = Keypair::from_seed([150 + n; 32]);
        let config = Config::new([ProtocolSpec::of::<Gossip>()]);
        let transport = QuicTransport::bind(&key, "127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        let Ok(conn) = transport.dial(id, addr).await else {
            continue;
        };
        let Ok(mut stream) = conn.open(<Gossip as Protocol>::ID).await else {
            continue;
        };
        let _ = stream.send_frame(&join).await;
        let _ = stream.send_frame(&neighbor).await;
        sybils.push((transport, conn, stream));
    }
    assert!(sybils.len() >= 30, "only {} Sybils got through", sybils.len());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let view = active().await;
    let sybil_ids: Vec<_> = sybils.iter().map(|(t, ..)| t.peer_id()).collect();
    let kept = honest_ids.iter().filter(|id| view.contains(id)).count();
    let taken = view.iter().filter(|id| sybil_ids.contains(id)).count();
    eprintln!(
        "eclipse: {} Sybils; active view {} = {kept} honest + {taken} Sybils",
        sybils.len(),
        view.len()
    );
    assert_eq!(
        kept,
        honest_ids.len(),
        "an established honest neighbour was evicted"
    );
    assert!(kept > taken, "the Sybils hold the majority of the active view");
    drop(sybils);
    for node in honest {
        node.shutdown().await;
    }
    target.shutdown().await;
}
