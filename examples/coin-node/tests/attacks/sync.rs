//! Lies to headers-first sync: claims of work never delivered, and announcements that never connect.

use std::time::Duration;

use meshwork_consensus::sync::CompactBlock;
use meshwork_consensus::{ChainSync, Message};
use meshwork_identity::{Hash, PeerId};
use meshwork_ledger::RedbStore;
use meshwork_transport::{Connection, QuicConnection, QuicTransport, Transport};
use meshwork_wire::{BoundedVec, Protocol};

use crate::hostile;
use crate::support::{ONE_AT_A_TIME, params, start, wait_for};

/// Whether the node's sync still talks to `peer`.
async fn syncs_with(node: &coin_node::CoinNode, peer: PeerId) -> bool {
    node.api()
        .app()
        .with(move |app| app.sync().peers().any(|p| *p == peer))
        .await
        .unwrap()
}

/// A hostile sync peer connected to `node`, with the stream it sends on.
async fn connect(node: &coin_node::CoinNode, n: u8) -> (QuicTransport, QuicConnection, crate::SyncStream) {
    let transport = hostile(n).await;
    let (id, addr) = (node.api().node().peer_id(), node.api().node().local_addr());
    let conn = transport.dial(id, addr).await.unwrap();
    let stream = conn.open(<ChainSync<RedbStore> as Protocol>::ID).await.unwrap();
    (transport, conn, stream)
}

/// The red team: "the header download goes to whoever claims the most work, and an empty reply is not a
/// fault". A peer claiming enormous work and answering the header request with nothing is now faulted
/// (`WorkNotDelivered`): the node stops syncing with it, and keeps its chain growing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_of_work_answered_with_no_headers_costs_the_liar_its_sync() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, 0, params(), &[], true, None).await;
    wait_for(60, "a few blocks", || async {
        node.api().tip().await.unwrap().0 >= 3
    })
    .await;
    let (transport, conn, mut stream) = connect(&node, 60).await;
    let liar = transport.peer_id();
    let claim = Message::Status {
        tip: Hash::digest(b"a tip nobody has"),
        height: 1_000_000,
        work: u128::MAX / 4,
    };
    stream.send(&claim).await.unwrap();
    // Answer every header request with nothing, for as long as the node asks.
    let mut theirs = tokio::time::timeout(Duration::from_secs(20), conn.accept_stream())
        .await
        .unwrap()
        .unwrap();
    let mut asked = 0;
    let answering = async {
        while let Ok(Some(msg)) = theirs.recv::<Message>().await {
            if matches!(msg, Message::GetHeaders { .. }) {
                asked += 1;
                let empty = Message::Headers(BoundedVec::try_from(Vec::new()).unwrap());
                if stream.send(&empty).await.is_err() {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), answering).await;
    assert!(asked >= 1, "the node never asked the claimant for headers");
    wait_for(30, "the node to stop syncing with the liar", || async {
        !syncs_with(&node, liar).await
    })
    .await;
    let height = node.api().tip().await.unwrap().0;
    wait_for(60, "the chain to grow", || async {
        node.api().tip().await.unwrap().0 > height
    })
    .await;
    drop((transport, conn));
    node.shutdown().await;
}

/// The red team: "the unconnecting-headers limit is reset by resending a known header (990
/// unconnecting messages, never dropped)". Now the count runs per window and a known header does not
/// reset it: the peer loses its sync long before 990.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconnecting_announcements_interleaved_with_known_headers_cost_the_peer_its_sync() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, 0, params(), &[], true, None).await;
    wait_for(60, "a few blocks", || async {
        node.api().tip().await.unwrap().0 >= 3
    })
    .await;
    let known = node
        .api()
        .app()
        .with(|app| {
            let chain = app.sync().chain();
            chain.header(&chain.tip().id)
        })
        .await
        .unwrap()
        .unwrap();
    let (transport, conn, mut stream) = connect(&node, 61).await;
    let spammer = transport.peer_id();
    wait_for(20, "the node to sync with the spammer", || {
        syncs_with(&node, spammer)
    })
    .await;
    // Control: known headers alone are no fault.
    for _ in 0..50 {
        stream.send(&Message::NewTip(known)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        syncs_with(&node, spammer).await,
        "known headers alone cost the peer its sync"
    );
    // One header with a valid proof of work on a parent nobody has: it can only be "unconnecting".
    let mut stray = known;
    stray.parent = Hash::digest(b"a parent nobody has");
    stray.height += 1_000;
    let stray = meshwork_consensus::pow::mine(stray, 1, 1 << 32).unwrap();
    let mut sent = 0;
    for _ in 0..990u64 {
        let ok = stream.send(&Message::NewTip(stray)).await.is_ok()
            && stream.send(&Message::NewTip(known)).await.is_ok();
        if !ok {
            break;
        }
        sent += 1;
    }
    wait_for(30, "the node to stop syncing with the spammer", || async {
        !syncs_with(&node, spammer).await
    })
    .await;
    eprintln!(
        "sync: {sent} unconnecting announcements sent, each followed by a known header; the node stopped syncing with the spammer"
    );
    drop((transport, conn));
    node.shutdown().await;
}

/// The red team: "the 2-hour future-timestamp limit against a 30 s ASERT half-life lets a few
/// future-dated blocks drop the whole network to minimum difficulty". A header dated an hour ahead
/// (with a valid proof of work at the target its parent requires) is now refused: the bound is four
/// half-lives of the network. One dated half the bound ahead is taken, as a control.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_dated_an_hour_ahead_is_not_taken() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, 0, params(), &[], false, None).await;
    let (parent, target, bound) = node
        .api()
        .app()
        .with(|app| {
            let chain = app.sync().chain();
            let tip = chain.header(&chain.tip().id).unwrap();
            let bound = chain.engine().max_future_secs();
            (tip, chain.required_target(&tip.id()).unwrap(), bound)
        })
        .await
        .unwrap();
    // Four half-lives of the test network, well under the ledger's two hours.
    assert!(bound < 3600, "the future bound is {bound} s");
    let child = |ahead: u64, salt: &[u8]| {
        let mut header = parent;
        header.parent = parent.id();
        header.height = parent.height + 1;
        header.target = target;
        header.merkle_root = Hash::digest(salt);
        header.timestamp = coin_node::config::unix_now() + ahead;
        meshwork_consensus::pow::mine(header, 1, 1 << 32).unwrap()
    };
    let (transport, conn, mut stream) = connect(&node, 62).await;
    let (early, control) = (
        child(3600, b"an hour ahead"),
        child(bound / 2, b"within the bound"),
    );
    let knows = |id| {
        let node = &node;
        async move {
            node.api()
                .app()
                .with(move |app| app.sync().chain().header(&id).is_some())
                .await
                .unwrap()
        }
    };
    // A new-tip announcement on a known parent is checked and stored at once.
    stream.send(&Message::NewTip(early)).await.unwrap();
    stream.send(&Message::NewTip(control)).await.unwrap();
    wait_for(20, "the header within the bound to be taken", || {
        knows(control.id())
    })
    .await;
    assert!(!knows(early.id()).await, "a header dated an hour ahead was taken");
    drop((transport, conn));
    node.shutdown().await;
}

/// A peer that announces a block and answers the node's compact-block request with one whose prefilled
/// position lies past the block's end loses its sync (`Fault::BadCompactBlock`); an honest peer's
/// compact block of the same block is then rebuilt and connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_compact_block_costs_the_peer_its_sync_and_an_honest_one_is_rebuilt() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, 0, params(), &[], false, None).await;
    // The next block on the node's tip, which the node itself does not have.
    let miner = meshwork_identity::Keypair::from_seed([65; 32]).peer_id();
    let mut block = node
        .api()
        .app()
        .with(move |app| {
            let now = coin_node::config::unix_now();
            app.sync().chain().block_template(miner, now)
        })
        .await
        .unwrap()
        .unwrap();
    block.header = meshwork_consensus::pow::mine(block.header, 1, 1 << 32).unwrap();
    let id = block.id();

    // Announces the block, waits for the node's request for it, and answers with `compact`.
    let serve = |n: u8, compact: CompactBlock| {
        let node = &node;
        async move {
            let (transport, conn, mut stream) = connect(node, n).await;
            stream.send(&Message::NewTip(compact.header)).await.unwrap();
            let mut theirs = tokio::time::timeout(Duration::from_secs(20), conn.accept_stream())
                .await
                .unwrap()
                .unwrap();
            let asked = async {
                while let Ok(Some(msg)) = theirs.recv::<Message>().await {
                    if msg == Message::GetCompactBlock(id) {
                        return true;
                    }
                }
                false
            };
            let asked = tokio::time::timeout(Duration::from_secs(20), asked).await;
            assert_eq!(asked, Ok(true), "the node asked for the block as a compact block");
            stream.send(&Message::CompactBlock(compact)).await.unwrap();
            (transport, conn, theirs)
        }
    };
    let mut bad = CompactBlock::of(&block);
    let mut prefilled = bad.prefilled.clone().into_inner();
    prefilled[0].index = u32::MAX;
    bad.prefilled = prefilled.try_into().unwrap();
    let (liar, liar_conn, _) = serve(63, bad).await;
    let liar_id = liar.peer_id();
    wait_for(30, "the node to stop syncing with the liar", || async {
        !syncs_with(&node, liar_id).await
    })
    .await;
    assert_ne!(node.api().tip().await.unwrap().1, id);

    let (honest, honest_conn, _) = serve(64, CompactBlock::of(&block)).await;
    wait_for(30, "the block to be rebuilt and connected", || async {
        node.api().tip().await.unwrap().1 == id
    })
    .await;
    let stats = node
        .api()
        .app()
        .with(|app| app.sync().relay_stats())
        .await
        .unwrap();
    assert_eq!((stats.rebuilt, stats.fallbacks), (1, 0), "{stats:?}");
    drop((liar, liar_conn, honest, honest_conn));
    node.shutdown().await;
}
