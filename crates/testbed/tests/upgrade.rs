//! Upgrading a relayed connection on real QUIC through the testbed's NATs: two peers joined by a relay
//! circuit punch a hole, and the direct connection replaces the relayed one without the protocols
//! noticing; should the direct connection fail at once, the relayed one carries on.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use meshwork_nat::{NatCommand, NatEvent, RelayLimits};
use meshwork_testbed::{NatKind, Testbed, TestbedSpec, skip_reason};
use meshwork_transport::{Connection, Transport};
use meshwork_wire::relayed::is_relayed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hole_punch_upgrades_a_relayed_connection_without_losing_a_message() {
    if skip_reason().is_some() {
        return;
    }
    let nats = [NatKind::EndpointIndependent; 2];
    let (bed, relay, mut a, mut b, at) = relayed(RelayLimits::default(), nats).await;
    let (a_id, b_id) = (a.0.node.peer_id(), b.0.node.peer_id());
    let rendezvous = (relay.0.node.peer_id(), relay.0.node.local_addr());
    assert_eq!(connection_to(&a.0, b_id, |c| c.is_some()).await, Some(at));
    assert!(
        connection_to(&b.0, a_id, |c| c.is_some_and(|c| is_relayed(&c)))
            .await
            .is_some()
    );
    for end in [&mut a, &mut b] {
        end.0.register(rendezvous, "coin", WAIT).await.unwrap();
    }

    // A keeps sending through the upgrade: 40 blobs of 16 KiB, one every 25 ms, with the punch
    // asked for after the fifth.
    let blob = vec![0xab; 16 * 1024];
    let sender = a.1.0.clone();
    let sending = {
        let blob = blob.clone();
        tokio::spawn(async move {
            for _ in 0..40 {
                sender.command((b_id, blob.clone())).await.unwrap();
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(125)).await;
    a.0.nat
        .command(NatCommand::Connect {
            rendezvous: rendezvous.0,
            target: b_id,
        })
        .await
        .unwrap();
    let punched =
        a.0.next(WAIT, |e| match e {
            NatEvent::HolePunched { peer, .. } => Some(peer),
            NatEvent::PunchFailed { reason, .. } => panic!("punch failed: {reason}"),
            _ => None,
        })
        .await;
    assert_eq!(punched, Some(b_id));

    // Both ends now use a direct connection, at the other's NAT's address.
    let direct = |c: Option<SocketAddr>| c.is_some_and(|c| !is_relayed(&c));
    let a_sees = connection_to(&a.0, b_id, direct).await.unwrap();
    assert_eq!(a_sees.ip(), bed.nat_address(1), "A reaches B at B's NAT");
    let b_sees = connection_to(&b.0, a_id, direct).await.unwrap();
    assert_eq!(b_sees.ip(), bed.nat_address(0), "B reaches A at A's NAT");

    // Every blob arrived, and B's protocols never saw A go down.
    let (got, down) = receive_watching(&mut b.1.1, a_id, 40 * blob.len(), WAIT).await;
    sending.await.unwrap();
    assert_eq!(got, 40 * blob.len());
    assert!(!down, "the upgrade bounced the peer");
    assert_eq!(a.0.relayed_upgrades(), 1, "meshwork_relayed_upgrades_total of A");
    assert_eq!(b.0.relayed_upgrades(), 1, "meshwork_relayed_upgrades_total of B");

    // The relayed connection retired, and its circuit closed once unused: the relay holds none.
    let mut circuits = u64::MAX;
    for _ in 0..80 {
        let stats = relay_stats(&relay.0).await;
        circuits = stats.circuits as u64;
        if circuits == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(circuits, 0, "the relay still holds the upgraded pair's circuit");
    assert!(!a.0.transport.path_in_use(at));
    // And the direct connection carries on.
    a.1.0.command((b_id, vec![7; 100])).await.unwrap();
    assert_eq!(receive(&mut b.1.1, a_id, 100, WAIT).await, 100);
    for node in [&a.0, &b.0, &relay.0] {
        node.node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_connection_that_fails_at_once_leaves_the_relayed_one_in_charge() {
    if skip_reason().is_some() {
        return;
    }
    // A behind a NAT, B public: A reaches B through the relay first, then dials it directly (one
    // dial, so one direct connection), which then dies before the relayed one retires.
    let bed = Testbed::build(&TestbedSpec::new(2, &[NatKind::EndpointIndependent])).unwrap();
    let ends = [(Some(0), 0), (None, 1)];
    let (relay, a, mut b, at) = relayed_on(&bed, RelayLimits::default(), ends).await;
    let (a_id, b_id) = (a.0.node.peer_id(), b.0.node.peer_id());
    assert_eq!(connection_to(&a.0, b_id, |c| c.is_some()).await, Some(at));

    // Given B's public address, A dials it directly beside the relayed connection: an upgrade.
    a.0.node.dial(b_id, b.0.node.local_addr()).await.unwrap();
    let direct = |c: Option<SocketAddr>| c.is_some_and(|c| !is_relayed(&c));
    assert_eq!(
        connection_to(&a.0, b_id, direct).await,
        Some(b.0.node.local_addr())
    );
    // It dies at once (before `UPGRADE_GRACE`): its NAT mapping lost, say.
    let conn = a.0.transport.connection(&b_id).unwrap();
    assert!(!is_relayed(&conn.remote_addr()));
    conn.close(meshwork_transport::CloseReason::Lost("mapping gone".into()));

    // Both ends carry on over the relay, past the upgrade's grace and the transport's backstop for
    // relayed losers, and B's protocols never saw A go down.
    let relayed_again = |c: Option<SocketAddr>| c.is_some_and(|c| is_relayed(&c));
    assert_eq!(connection_to(&a.0, b_id, relayed_again).await, Some(at));
    assert!(connection_to(&b.0, a_id, relayed_again).await.is_some());
    tokio::time::sleep(meshwork_transport::DUPLICATE_GRACE + Duration::from_secs(1)).await;
    assert_eq!(a.0.connection_to(b_id).await.unwrap(), Some(at));
    a.1.0.command((b_id, vec![9; 4096])).await.unwrap();
    let (got, down) = receive_watching(&mut b.1.1, a_id, 4096, WAIT).await;
    assert_eq!(got, 4096);
    assert!(!down, "the failed upgrade bounced the peer");
    let stats = relay_stats(&relay.0).await;
    assert_eq!(stats.circuits, 1, "the circuit still carries the pair");
    for node in [&a.0, &b.0, &relay.0] {
        node.node.shutdown().await.unwrap();
    }
}
