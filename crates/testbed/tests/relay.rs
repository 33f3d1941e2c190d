//! Relayed connections on real QUIC through the testbed's NATs: peers a hole punch cannot join (one
//! behind a symmetric NAT) reach each other through a public relay, with the QUIC session end to end
//! between them, and the relay's byte limit holds under a flood. (The upgrade to a direct connection
//! is in `upgrade.rs`.)
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use meshwork_nat::bridge::BridgeEvent;
use meshwork_nat::relay::CircuitEnd;
use meshwork_nat::{RelayCommand, RelayEvent, RelayLimits};
use meshwork_testbed::{NatKind, skip_reason};
use meshwork_wire::relayed::is_relayed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_a_punch_cannot_join_stay_connected_through_the_relay() {
    if skip_reason().is_some() {
        return;
    }
    let (_bed, relay, mut a, mut b, at) = relayed(RelayLimits::default(), [NatKind::Symmetric; 2]).await;
    let (a_id, b_id) = (a.0.node.peer_id(), b.0.node.peer_id());

    // The QUIC session runs between A and B themselves: each authenticated the other's key (the
    // transport refuses a connection whose peer proves another key), over the circuit's path.
    assert_eq!(connection_to(&a.0, b_id, |c| c.is_some()).await, Some(at));
    let b_sees = connection_to(&b.0, a_id, |c| c.is_some()).await.unwrap();
    assert!(
        is_relayed(&b_sees),
        "B's connection to A is relayed too: {b_sees}"
    );
    // The relay holds connections to A and B only: it carries their datagrams, not a session of its own.
    let relay_peers: Vec<_> = relay
        .0
        .node
        .peers()
        .await
        .unwrap()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert!(relay_peers.contains(&a_id) && relay_peers.contains(&b_id));

    // Application data flows both ways, well beyond one datagram.
    let blob = vec![0x5a; 48 * 1024];
    for _ in 0..4 {
        a.1.0.command((b_id, blob.clone())).await.unwrap();
    }
    assert_eq!(
        receive(&mut b.1.1, a_id, 4 * blob.len(), WAIT).await,
        4 * blob.len()
    );
    b.1.0.command((a_id, blob.clone())).await.unwrap();
    assert_eq!(receive(&mut a.1.1, b_id, blob.len(), WAIT).await, blob.len());

    // It stays up while quiet (QUIC keep-alives cross the relay too), and still carries data after.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(a.0.connection_to(b_id).await.unwrap(), Some(at));
    a.1.0.command((b_id, vec![1; 100])).await.unwrap();
    assert_eq!(receive(&mut b.1.1, a_id, 100, WAIT).await, 100);

    let stats = relay_stats(&relay.0).await;
    assert_eq!((stats.reservations, stats.circuits), (1, 1));
    assert!(stats.bytes_relayed > 5 * blob.len() as u64, "{stats:?}");
    for node in [&a.0, &b.0, &relay.0] {
        node.node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_through_a_circuit_stops_at_the_relays_byte_limit() {
    if skip_reason().is_some() {
        return;
    }
    const LIMIT: u64 = 256 * 1024;
    let limits = RelayLimits {
        max_circuit_bytes: LIMIT,
        ..RelayLimits::default()
    };
    let (_bed, relay, mut a, mut b, at) =
        relayed(limits, [NatKind::Symmetric, NatKind::EndpointIndependent]).await;
    let (a_id, b_id) = (a.0.node.peer_id(), b.0.node.peer_id());
    assert_eq!(connection_to(&a.0, b_id, |c| c.is_some()).await, Some(at));

    // A floods B with 4 MiB, sixteen times what a circuit may carry.
    let blob = vec![0xf1; 32 * 1024];
    for _ in 0..128 {
        a.1.0.command((b_id, blob.clone())).await.unwrap();
    }
    let closed =
        a.0.next_relay(WAIT, |e| match e {
            BridgeEvent::Relay(RelayEvent::CircuitClosed { reason, .. }) => Some(reason),
            _ => None,
        })
        .await;
    assert_eq!(closed, Some(CircuitEnd::ByteLimit));
    let got = receive(&mut b.1.1, a_id, 128 * blob.len(), Duration::from_secs(2)).await;
    assert!(
        (got as u64) < LIMIT,
        "B got {got} bytes through a circuit of {LIMIT}"
    );

    let stats = relay_stats(&relay.0).await;
    // The figures, for the record (`cargo test -p meshwork-testbed --test relay -- --nocapture`).
    eprintln!(
        "flood of {} bytes through a circuit of {LIMIT}: B received {got}; relay {stats:?}",
        128 * blob.len()
    );
    assert!(stats.bytes_relayed <= LIMIT, "{stats:?}");
    assert_eq!(stats.closed_at_byte_limit, 1, "{stats:?}");
    assert_eq!(stats.circuits, 0, "{stats:?}");
    // The connection over the circuit closes with it, on both ends.
    assert_eq!(connection_to(&a.0, b_id, |c| c.is_none()).await, None);
    assert_eq!(connection_to(&b.0, a_id, |c| c.is_none()).await, None);

    // The relay still serves: B's reservation holds, and a new circuit opens.
    a.0.relay
        .command(RelayCommand::Connect {
            relay: relay.0.node.peer_id(),
            target: b_id,
        })
        .await
        .unwrap();
    let reopened =
        a.0.next_relay(WAIT, |e| matches!(e, BridgeEvent::Opened { .. }).then_some(()))
            .await;
    assert_eq!(reopened, Some(()));
    for node in [&a.0, &b.0, &relay.0] {
        node.node.shutdown().await.unwrap();
    }
}
