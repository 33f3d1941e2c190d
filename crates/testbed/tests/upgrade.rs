//! Upgrading a relayed connection on real QUIC through the testbed's NATs: two peers joined by a relay
//! circuit punch a hole, and the direct connection replaces the relayed one without the protocols
//! noticing; should the direct connection fail at once, the relayed one carries on.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use meshwork_nat::bridge::BridgeEvent;
use meshwork_nat::{
    NatCommand, NatConfig, NatEvent, Relay, RelayCommand, RelayConfig, RelayEvent, RelayLimits,
};
use meshwork_testbed::{NatKind, NatNode, Testbed, TestbedSpec, skip_reason};
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
    let upgrades = |node: &NatNode| {
        let page = node.node.metrics().render();
        page.lines()
            .find(|l| l.starts_with("meshwork_relayed_upgrades_total "))
            .map(|l| l.to_string())
    };
    assert_eq!(
        upgrades(&a.0).as_deref(),
        Some("meshwork_relayed_upgrades_total 1")
    );
    assert_eq!(
        upgrades(&b.0).as_deref(),
        Some("meshwork_relayed_upgrades_total 1")
    );

    // The relayed connection retired, and its circuit closed once unused: the relay holds none.
    let mut circuits = u64::MAX;
    for _ in 0..80 {
        let stats = relay
            .0
            .relay
            .call(|r: &mut Relay, _, _| r.stats())
            .await
            .unwrap()
            .unwrap();
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
    let relay_config = RelayConfig {
        serve: Some(RelayLimits::default()),
        ..RelayConfig::default()
    };
    let relay = start(&bed, (None, 0), 1, (NatConfig::rendezvous(), relay_config)).await;
    let end = (NatConfig::default(), RelayConfig::default());
    let mut a = start(&bed, (Some(0), 0), 2, end.clone()).await;
    let mut b = start(&bed, (None, 1), 3, end).await;
    let (a_id, b_id) = (a.0.node.peer_id(), b.0.node.peer_id());
    let r_id = relay.0.node.peer_id();
    for node in [&a, &b] {
        node.0
            .node
            .add_address(r_id, relay.0.node.local_addr())
            .await
            .unwrap();
    }
    b.0.relay
        .command(RelayCommand::Reserve { relay: r_id })
        .await
        .unwrap();
    let reserved =
        b.0.next_relay(WAIT, |e| {
            matches!(e, BridgeEvent::Relay(RelayEvent::Reserved { .. })).then_some(())
        })
        .await;
    assert_eq!(reserved, Some(()));
    a.0.relay
        .command(RelayCommand::Connect {
            relay: r_id,
            target: b_id,
        })
        .await
        .unwrap();
    let at =
        a.0.next_relay(WAIT, |e| match e {
            BridgeEvent::Opened { addr, .. } => Some(addr),
            _ => None,
        })
        .await
        .unwrap();
    a.0.node.dial(b_id, at).await.unwrap();
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
    let stats = relay
        .0
        .relay
        .call(|r: &mut Relay, _, _| r.stats())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stats.circuits, 1, "the circuit still carries the pair");
    for node in [&a.0, &b.0, &relay.0] {
        node.node.shutdown().await.unwrap();
    }
}
