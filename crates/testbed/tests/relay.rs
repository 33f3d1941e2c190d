//! Relayed connections on real QUIC through the testbed's NATs: peers a hole punch cannot join (one
//! behind a symmetric NAT) reach each other through a public relay, with the QUIC session end to end
//! between them, and the relay's byte limit holds under a flood.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_nat::bridge::BridgeEvent;
use meshwork_nat::relay::CircuitEnd;
use meshwork_nat::{
    NatCommand, NatConfig, NatEvent, Relay, RelayCommand, RelayConfig, RelayEvent, RelayLimits,
};
use meshwork_node::{Events, Handle};
use meshwork_testbed::{NatKind, NatNode, Testbed, TestbedSpec, skip_reason};
use meshwork_wire::relayed::is_relayed;
use meshwork_wire::{Input, Instant, Output, Protocol, ProtocolId};
use serde::{Deserialize, Serialize};

const WAIT: Duration = Duration::from_secs(20);

/// Sends blobs to peers and reports what arrives: the application traffic of these tests.
struct Blob;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Bytes(Vec<u8>);

/// What [`Blob`] reports.
#[derive(Debug)]
enum Seen {
    /// A blob from a peer.
    Blob(PeerId, Vec<u8>),
    /// A peer went down.
    Down(PeerId),
}

impl Protocol for Blob {
    type Message = Bytes;
    type Command = (PeerId, Vec<u8>);
    type Event = Seen;
    type Timer = ();
    const ID: ProtocolId = ProtocolId::new("/test/blob/1");
    const MAX_MESSAGE_SIZE: usize = 64 * 1024;

    fn handle(&mut self, _now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        match input {
            Input::Command((to, bytes)) => out.push(Output::Send {
                to,
                msg: Bytes(bytes),
            }),
            Input::Message { from, msg } => out.push(Output::Emit(Seen::Blob(from, msg.0))),
            Input::PeerDown(peer) => out.push(Output::Emit(Seen::Down(peer))),
            _ => {}
        }
    }
}

type BlobNode = (NatNode, (Handle<Blob>, Events<Blob>));

async fn start(
    bed: &Testbed,
    host: (Option<usize>, usize),
    seed: u8,
    (nat, relay): (NatConfig, RelayConfig),
) -> BlobNode {
    let host = match host {
        (None, i) => bed.public(i),
        (Some(nat), i) => bed.private(nat, i),
    };
    NatNode::start_with(host, &Keypair::from_seed([seed; 32]), nat, relay, |b| {
        b.register(Blob)
    })
    .await
    .unwrap()
}

/// The relay (and rendezvous) on the public segment; A and B behind NATs of the kinds `nats`; B
/// reserved at the relay, and A's circuit to B open with A dialled over it. Returns the virtual address
/// A reaches B at.
async fn relayed(
    limits: RelayLimits,
    nats: [NatKind; 2],
) -> (Testbed, BlobNode, BlobNode, BlobNode, SocketAddr) {
    let bed = Testbed::build(&TestbedSpec::new(1, &nats)).unwrap();
    let relay_config = RelayConfig {
        serve: Some(limits),
        ..RelayConfig::default()
    };
    let relay = start(&bed, (None, 0), 1, (NatConfig::rendezvous(), relay_config)).await;
    let end = (NatConfig::default(), RelayConfig::default());
    let mut a = start(&bed, (Some(0), 0), 2, end.clone()).await;
    let mut b = start(&bed, (Some(1), 0), 3, end).await;
    let r_id = relay.0.node.peer_id();
    let r_addr = relay.0.node.local_addr();
    let b_id = b.0.node.peer_id();
    for end in [&a, &b] {
        end.0.node.add_address(r_id, r_addr).await.unwrap();
    }

    b.0.relay
        .command(RelayCommand::Reserve { relay: r_id })
        .await
        .unwrap();
    let reserved =
        b.0.next_relay(WAIT, |e| match e {
            BridgeEvent::Relay(RelayEvent::Reserved { relay, .. }) => Some(relay),
            _ => None,
        })
        .await;
    assert_eq!(reserved, Some(r_id));

    a.0.relay
        .command(RelayCommand::Connect {
            relay: r_id,
            target: b_id,
        })
        .await
        .unwrap();
    let opened =
        a.0.next_relay(WAIT, |e| match e {
            BridgeEvent::Opened {
                peer, addr, outbound, ..
            } if peer == b_id => Some((addr, outbound)),
            BridgeEvent::Relay(RelayEvent::ConnectRefused { reason, .. }) => panic!("refused: {reason}"),
            _ => None,
        })
        .await;
    let (at, outbound) = opened.unwrap();
    assert!(outbound);
    assert!(is_relayed(&at), "{at} is a virtual address");
    a.0.node.dial(b_id, at).await.unwrap();
    (bed, relay, a, b, at)
}

/// Waits (at most `WAIT`) for the node's connection to `peer` to satisfy `want`.
async fn connection_to(
    node: &NatNode,
    peer: PeerId,
    want: impl Fn(Option<SocketAddr>) -> bool,
) -> Option<SocketAddr> {
    let mut last = None;
    for _ in 0..(WAIT.as_millis() / 50) {
        last = node.connection_to(peer).await.unwrap();
        if want(last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

/// Waits for blob events from `from` until `bytes` arrived; what arrived, and whether `from` went down
/// meanwhile.
async fn receive_watching(
    events: &mut Events<Blob>,
    from: PeerId,
    bytes: usize,
    within: Duration,
) -> (usize, bool) {
    let (mut got, mut down) = (0, false);
    let wait = async {
        while got < bytes {
            match events.recv().await {
                Some(Seen::Blob(peer, blob)) if peer == from => got += blob.len(),
                Some(Seen::Down(peer)) if peer == from => down = true,
                Some(_) => {}
                None => break,
            }
        }
    };
    let _ = tokio::time::timeout(within, wait).await;
    (got, down)
}

/// Waits for blob events from `from` until `bytes` arrived; what arrived.
async fn receive(events: &mut Events<Blob>, from: PeerId, bytes: usize, within: Duration) -> usize {
    receive_watching(events, from, bytes, within).await.0
}

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

    let stats = relay
        .0
        .relay
        .call(|r: &mut Relay, _, _| r.stats())
        .await
        .unwrap()
        .unwrap();
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

    let stats = relay
        .0
        .relay
        .call(|r: &mut Relay, _, _| r.stats())
        .await
        .unwrap()
        .unwrap();
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
