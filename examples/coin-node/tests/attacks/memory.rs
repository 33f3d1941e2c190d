//! Memory a peer can make the node hold: replies it never reads, frames it announces and never sends.

use std::time::Duration;

use meshwork_consensus::{ChainSync, Message, genesis_block};
use meshwork_ledger::RedbStore;
use meshwork_transport::{Connection, Transport};
use meshwork_wire::{BoundedVec, Protocol};

use crate::support::{ONE_AT_A_TIME, params, same_tip, start, wait_for};
use crate::{RSS_BOUND, hostile, rss_bytes};

/// The red team's memory amplification: 16 connections that never read the node's streams keep asking
/// for headers. Before the byte budgets, 123 KB of `GetHeaders` grew a node by 248 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_requests_from_peers_that_never_read_cost_bounded_memory() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let params = params();
    let miner = start(&dir, 0, params, &[], true, None).await;
    wait_for(90, "a chain of 30 blocks", || async {
        miner.api().tip().await.unwrap().0 >= 30
    })
    .await;
    let honest = start(&dir, 1, params, &[&miner], false, None).await;
    let both = [&miner, &honest];
    wait_for(60, "the honest peer in step", || same_tip(&both)).await;
    // The attackers live in this process too: their endpoints (quinn allocates each one's receive
    // buffers up front) are part of the baseline, not of what the node holds.
    let mut transports = Vec::new();
    for n in 0..16u8 {
        transports.push(hostile(100 + n).await);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_bytes();

    let genesis = genesis_block(&params.chain_config()).id();
    let ask = Message::GetHeaders {
        locator: BoundedVec::try_from(vec![genesis]).unwrap(),
        stop: None,
    };
    let frame = meshwork_wire::encode(&ask).unwrap();
    let (id, addr) = (miner.api().node().peer_id(), miner.api().node().local_addr());
    let mut attackers = tokio::task::JoinSet::new();
    for transport in transports {
        let frame = frame.clone();
        attackers.spawn(async move {
            let Ok(conn) = transport.dial(id, addr).await else {
                return (0u64, transport);
            };
            let Ok(mut stream) = conn.open(<ChainSync<RedbStore> as Protocol>::ID).await else {
                return (0, transport);
            };
            let mut sent = 0u64;
            // Bounded: the node answers or pushes back; either way this ends.
            for _ in 0..20_000 {
                match tokio::time::timeout(Duration::from_secs(2), stream.send_frame(&frame)).await {
                    Ok(Ok(())) => sent += frame.len() as u64,
                    _ => break,
                }
            }
            (sent, transport)
        });
    }
    // Sample the resident size while the attack runs.
    let mut peak = idle;
    let sampling = async {
        loop {
            peak = peak.max(rss_bytes());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let results = tokio::select! {
        results = attackers.join_all() => results,
        () = sampling => unreachable!(),
    };
    let sent: u64 = results.iter().map(|(sent, _)| sent).sum();
    // The requests now wait in the node's receive windows and inbox; keep measuring while it works
    // through them (the hostile connections stay open and still read nothing).
    for _ in 0..100 {
        peak = peak.max(rss_bytes());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = miner.api().node().metrics().render();
    let drops: f64 = metrics
        .lines()
        .filter(|line| line.starts_with("meshwork_queue_drops_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    eprintln!(
        "attack: {sent} bytes of GetHeaders sent; RSS idle {} MiB, peak {} MiB (+{} MiB); {drops} sends dropped",
        idle >> 20,
        peak >> 20,
        peak.saturating_sub(idle) >> 20
    );
    assert!(sent > 0, "the attack never reached the node");
    assert!(
        peak.saturating_sub(idle) < RSS_BOUND,
        "the node grew by {} MiB",
        peak.saturating_sub(idle) >> 20
    );
    assert!(
        drops > 0.0,
        "the node never refused to queue for a peer that does not read"
    );

    // The node is still up and useful: its chain grows and the honest peer follows.
    let height = miner.api().tip().await.unwrap().0;
    // A test of a live node reads the real clock to report how long recovery took.
    #[allow(clippy::disallowed_methods)]
    let after = std::time::Instant::now();
    wait_for(90, "the chain to grow and the honest peer to follow", || async {
        let tip = miner.api().tip().await.unwrap();
        tip.0 > height + 2 && honest.api().tip().await.unwrap() == tip
    })
    .await;
    eprintln!(
        "attack: the chain grew and the honest peer followed {:?} after it",
        after.elapsed()
    );
    drop(results);
    honest.shutdown().await;
    miner.shutdown().await;
}

/// The red team's buffering attack: streams that each announce a 4 MiB frame and never finish it.
/// Before the frame budgets, 8 such streams held 32 MiB of one connection with no deadline (64 streams:
/// 256 MiB). Now a peer's frames in flight hold at most its budget (8 MiB), all peers' at most the
/// transport's (32 MiB), and the body must arrive within the frame deadline. A peer writes each
/// protocol on one stream (a second one at a time costs it the connection, `meshwork-node`), so the
/// attack takes eight connections, one stream each: 32 MiB announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_frames_that_never_arrive_hold_at_most_the_budget() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let params = params();
    let node = start(&dir, 0, params, &[], true, None).await;
    wait_for(60, "a few blocks", || async {
        node.api().tip().await.unwrap().0 >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_bytes();
    let (id, addr) = (node.api().node().peer_id(), node.api().node().local_addr());
    let mut held = Vec::new();
    // A frame header announcing 4 MiB (less a little), and then nothing.
    let header = u32::try_from(4 * 1024 * 1024 - 64).unwrap().to_be_bytes();
    let mut conns = Vec::new();
    for n in 0..8u8 {
        let transport = hostile(200 + n).await;
        let conn = transport.dial(id, addr).await.unwrap();
        conns.push(conn.clone());
        let mut stream = conn.open(<ChainSync<RedbStore> as Protocol>::ID).await.unwrap();
        stream.send_raw(&header).await.unwrap();
        held.push(tokio::spawn(async move {
            let _keep = stream;
            std::future::pending::<()>().await;
        }));
        held.push(tokio::spawn(async move {
            let _keep = (transport, conn);
            std::future::pending::<()>().await;
        }));
    }
    let mut peak = idle;
    for _ in 0..50 {
        peak = peak.max(rss_bytes());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "attack: 8 streams announcing 4 MiB; RSS idle {} MiB, peak {} MiB (+{} MiB)",
        idle >> 20,
        peak >> 20,
        peak.saturating_sub(idle) >> 20
    );
    assert!(
        peak.saturating_sub(idle) < RSS_BOUND,
        "grew by {} MiB",
        peak.saturating_sub(idle) >> 20
    );
    // The frames never complete: past the frame deadline (30 s) the node drops each trickling peer.
    wait_for(60, "the node to drop the trickling peers", || async {
        conns.iter().all(|c| c.close_reason().is_some())
    })
    .await;
    for conn in &conns {
        assert_eq!(
            conn.close_reason(),
            Some(meshwork_transport::CloseReason::Application(
                meshwork_node::CLOSE_STALLED
            )),
        );
    }
    let height = node.api().tip().await.unwrap().0;
    wait_for(60, "the chain to grow", || async {
        node.api().tip().await.unwrap().0 > height
    })
    .await;
    for task in held {
        task.abort();
    }
    node.shutdown().await;
}
