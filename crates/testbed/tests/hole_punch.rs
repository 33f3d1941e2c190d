//! Hole punching on real QUIC through the testbed's NATs: a public rendezvous, and two nodes behind
//! NATs of their own that register with it, find each other, and ask it to coordinate a punch.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_nat::{Nat, NatCommand, NatConfig, NatEvent, PunchFailure};
use meshwork_node::{Events, Handle, Hooks, Node, NodeBuilder, NodeConfig};
use meshwork_testbed::{Host, NatKind, Testbed, TestbedSpec, skip_reason};
use meshwork_transport::Config;
use meshwork_transport::quic::{QuicTransport, udp_socket};
use tokio::time::timeout;

struct Peer {
    node: Node,
    nat: Handle<Nat>,
    events: Events<Nat>,
}

async fn start(host: &Host, seed: u8, config: NatConfig) -> Peer {
    let key = Keypair::from_seed([seed; 32]);
    let addr = SocketAddr::new(host.addr().into(), 0);
    let socket = host.enter(|| udp_socket(addr)).unwrap().unwrap();
    let mut builder = NodeBuilder::new(NodeConfig::default());
    let hooks = Hooks {
        address_of: Some(Nat::address_of),
        on_connected: Some(Nat::on_connected),
        ..Hooks::default()
    };
    let (nat, events) = builder.register_with(Nat::new(config), hooks).unwrap();
    let transport = QuicTransport::with_socket(&key, socket, Config::new(builder.protocols()))
        .await
        .unwrap();
    let node = builder.start(transport).await.unwrap();
    Peer { node, nat, events }
}

/// Waits (at most 20 s) for the first event `pick` accepts.
async fn next<T>(peer: &mut Peer, mut pick: impl FnMut(NatEvent) -> Option<T>) -> T {
    timeout(Duration::from_secs(20), async {
        loop {
            let event = peer.events.recv().await.expect("the node is running");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
    .expect("no such event within 20 s")
}

/// A rendezvous on the public segment and one client behind each NAT, both registered under "coin".
async fn registered(bed: &Testbed, config: NatConfig) -> (Peer, Peer, Peer) {
    let rendezvous = start(bed.public(0), 1, NatConfig::rendezvous()).await;
    let (r_id, r_addr) = (rendezvous.node.peer_id(), rendezvous.node.local_addr());
    let mut a = start(bed.private(0, 0), 2, config.clone()).await;
    let mut b = start(bed.private(1, 0), 3, config).await;
    for client in [&mut a, &mut b] {
        client.node.add_address(r_id, r_addr).await.unwrap();
        client
            .nat
            .command(NatCommand::Register {
                rendezvous: r_id,
                namespace: "coin".try_into().unwrap(),
                ttl: Duration::from_secs(60),
            })
            .await
            .unwrap();
        next(client, |e| matches!(e, NatEvent::Registered { .. }).then_some(())).await;
    }
    (rendezvous, a, b)
}

/// The address `peer` holds a connection to `other` at, if any.
async fn connection_to(peer: &Peer, other: PeerId) -> Option<SocketAddr> {
    let peers = peer.node.peers().await.unwrap();
    peers.into_iter().find(|(p, _)| *p == other).map(|(_, addr)| addr)
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
    let found = next(&mut a, |e| match e {
        NatEvent::Discovered { registrations, .. } => Some(registrations),
        _ => None,
    })
    .await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].peer, b_id);
    assert_eq!(found[0].addr.ip(), bed.nat_address(1));

    a.nat
        .command(NatCommand::Connect {
            rendezvous: r_id,
            target: b_id,
        })
        .await
        .unwrap();
    let elapsed = next(&mut a, |e| match e {
        NatEvent::HolePunched { peer, elapsed, .. } if peer == b_id => Some(elapsed),
        NatEvent::PunchFailed { reason, .. } => panic!("the punch failed: {reason}"),
        _ => None,
    })
    .await;
    next(&mut b, |e| {
        matches!(e, NatEvent::HolePunched { .. }).then_some(())
    })
    .await;
    eprintln!("direct connection after {elapsed:?}");

    // The connection is direct: A reaches B at B's NAT, not through the rendezvous.
    let direct = connection_to(&a, b_id).await.expect("a connection to B");
    assert_eq!(
        direct, found[0].addr,
        "B's endpoint-independent mapping, as the rendezvous saw it"
    );
    // Data flows both ways on it: B told A where A's connection comes from, and with the
    // rendezvous's report that is two peers agreeing, so A's external address is confirmed.
    let confirmed = next(&mut a, |e| match e {
        NatEvent::AddressConfirmed(addr) => Some(addr),
        _ => None,
    })
    .await;
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
    a.nat
        .command(NatCommand::Connect {
            rendezvous: rendezvous.node.peer_id(),
            target: b_id,
        })
        .await
        .unwrap();
    let reason = next(&mut a, |e| match e {
        NatEvent::PunchFailed { reason, .. } => Some(reason),
        NatEvent::HolePunched { .. } => panic!("a punch through a symmetric NAT succeeded"),
        _ => None,
    })
    .await;
    assert!(
        matches!(reason, PunchFailure::TimedOut | PunchFailure::DialsFailed { .. }),
        "{reason:?}"
    );
    assert_eq!(connection_to(&a, b_id).await, None);
    for peer in [&a, &b, &rendezvous] {
        peer.node.shutdown().await.unwrap();
    }
}
