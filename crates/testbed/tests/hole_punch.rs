//! Hole punching on real QUIC through the testbed's NATs: a public rendezvous, and two nodes behind
//! NATs of their own that register with it, find each other, and ask it to coordinate a punch.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use meshwork_identity::Keypair;
use meshwork_nat::{NatCommand, NatConfig, NatEvent, PunchFailure};
use meshwork_node::ConnectionLimits;
use meshwork_testbed::{NatKind, NatNode, Testbed, TestbedSpec, skip_reason};

const WAIT: Duration = Duration::from_secs(20);

/// `a` asks the rendezvous `r_id` to punch to `b_id`: how the punch ended on `a`'s side, if it did
/// within [`WAIT`].
async fn punch(
    a: &mut NatNode,
    r_id: meshwork_identity::PeerId,
    b_id: meshwork_identity::PeerId,
) -> Option<Result<(), PunchFailure>> {
    let connect = NatCommand::Connect {
        rendezvous: r_id,
        target: b_id,
    };
    a.nat.command(connect).await.unwrap();
    a.next(WAIT, |e| match e {
        NatEvent::HolePunched { peer, .. } if peer == b_id => Some(Ok(())),
        NatEvent::PunchFailed { reason, .. } => Some(Err(reason)),
        _ => None,
    })
    .await
}

/// A rendezvous on the public segment and one client behind each NAT, both registered under "coin".
async fn registered(bed: &Testbed, config: NatConfig) -> (NatNode, NatNode, NatNode) {
    registered_limited(bed, config, ConnectionLimits::default()).await
}

/// [`registered`], with the clients' connection managers keeping to `limits`.
async fn registered_limited(
    bed: &Testbed,
    config: NatConfig,
    limits: ConnectionLimits,
) -> (NatNode, NatNode, NatNode) {
    let key = |seed| Keypair::from_seed([seed; 32]);
    let rendezvous = NatNode::start(bed.public(0), &key(1), NatConfig::rendezvous())
        .await
        .unwrap();
    let at = (rendezvous.node.peer_id(), rendezvous.node.local_addr());
    let mut a = NatNode::start_limited(bed.private(0, 0), &key(2), config.clone(), limits)
        .await
        .unwrap();
    let mut b = NatNode::start_limited(bed.private(1, 0), &key(3), config, limits)
        .await
        .unwrap();
    for (client, nat) in [(&mut a, 0), (&mut b, 1)] {
        let registered = client.register(at, "coin", WAIT).await.unwrap();
        assert_eq!(
            registered.ip(),
            bed.nat_address(nat),
            "registered at its NAT's address"
        );
    }
    (rendezvous, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_behind_two_endpoint_independent_nats_end_with_a_direct_connection() {
    if skip_reason().is_some() {
        return;
    }
    let nats = [NatKind::EndpointIndependent, NatKind::EndpointIndependent];
    let bed = Testbed::build(&TestbedSpec::new(1, &nats)).unwrap();
    let (rendezvous, mut a, mut b) = registered(&bed, NatConfig::default()).await;
    let r_id = rendezvous.node.peer_id();
    let b_id = b.node.peer_id();

    // A finds B at the rendezvous, at B's NAT's public address.
    a.nat
        .command(NatCommand::Discover {
            rendezvous: r_id,
            namespace: "coin".try_into().unwrap(),
            limit: 10,
            after: None,
        })
        .await
        .unwrap();
    let found = a
        .next(WAIT, |e| match e {
            NatEvent::Discovered { registrations, .. } => Some(registrations),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].peer, b_id);

    assert_eq!(punch(&mut a, r_id, b_id).await, Some(Ok(())));
    let b_punched = b
        .next(WAIT, |e| matches!(e, NatEvent::HolePunched { .. }).then_some(()))
        .await;
    assert_eq!(b_punched, Some(()));

    // The connection is direct: A reaches B at B's NAT, not through the rendezvous.
    let direct = a.connection_to(b_id).await.unwrap().expect("a connection to B");
    assert_eq!(
        direct, found[0].addr,
        "B's endpoint-independent mapping, as the rendezvous saw it"
    );
    // Data flows both ways on it: B told A where A's connection comes from, and with the
    // rendezvous's report that is two peers agreeing, so A's external address is confirmed.
    let confirmed = a
        .next(WAIT, |e| match e {
            NatEvent::AddressConfirmed(addr) => Some(addr),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(confirmed.ip(), bed.nat_address(0));
    for peer in [&a, &b, &rendezvous] {
        peer.node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symmetric_nat_defeats_the_punch_and_the_failure_says_why() {
    if skip_reason().is_some() {
        return;
    }
    let nats = [NatKind::Symmetric, NatKind::EndpointIndependent];
    let bed = Testbed::build(&TestbedSpec::new(1, &nats)).unwrap();
    let config = NatConfig {
        punch_timeout: Duration::from_secs(6),
        ..NatConfig::default()
    };
    let (rendezvous, mut a, b) = registered(&bed, config).await;
    let b_id = b.node.peer_id();
    let outcome = punch(&mut a, rendezvous.node.peer_id(), b_id).await;
    let Some(Err(reason)) = outcome else {
        panic!("a punch through a symmetric NAT ended {outcome:?}");
    };
    assert!(
        matches!(reason, PunchFailure::TimedOut | PunchFailure::DialsFailed { .. }),
        "{reason:?}"
    );
    assert_eq!(a.connection_to(b_id).await.unwrap(), None);
    for peer in [&a, &b, &rendezvous] {
        peer.node.shutdown().await.unwrap();
    }
}

/// Two clients behind endpoint-independent NATs whose connection managers hold one connection at most
/// (the rendezvous's, which their registrations protect), punched to each other with the NAT protocol
/// keeping `kept` punched connections. Whether the punched connection still stands on each side once
/// the managers have had time to trim it (a second quiet after the first exchange, a sweep a second).
async fn punched_above_the_watermark(kept: usize) -> (bool, bool) {
    let nats = [NatKind::EndpointIndependent, NatKind::EndpointIndependent];
    let bed = Testbed::build(&TestbedSpec::new(1, &nats)).unwrap();
    let config = NatConfig {
        max_punched_kept: kept,
        ..NatConfig::default()
    };
    let one = ConnectionLimits {
        low_watermark: 1,
        high_watermark: 1,
        ..ConnectionLimits::default()
    };
    let (rendezvous, mut a, b) = registered_limited(&bed, config, one).await;
    let r_id = rendezvous.node.peer_id();
    let (a_id, b_id) = (a.node.peer_id(), b.node.peer_id());
    assert_eq!(punch(&mut a, r_id, b_id).await, Some(Ok(())));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let a_holds = a.connection_to(b_id).await.unwrap().is_some();
    let b_holds = b.connection_to(a_id).await.unwrap().is_some();
    // The rendezvous connection is never trimmed: the registration protects it.
    assert!(a.connection_to(r_id).await.unwrap().is_some());
    for peer in [&a, &b, &rendezvous] {
        peer.node.shutdown().await.unwrap();
    }
    (a_holds, b_holds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_punched_connection_above_the_watermark_is_kept_by_both_ends() {
    if skip_reason().is_some() {
        return;
    }
    // Unkept, the managers trim it within seconds of the punch: another punch to get it back.
    assert_eq!(punched_above_the_watermark(0).await, (false, false));
    // Kept (the default), it stands on both sides.
    let kept = NatConfig::default().max_punched_kept;
    assert_eq!(punched_above_the_watermark(kept).await, (true, true));
}
