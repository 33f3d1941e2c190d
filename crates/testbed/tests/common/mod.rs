//! What the relay and upgrade tests share: a protocol that carries blobs, and nodes in the testbed
//! joined through a relay.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_nat::{NatConfig, RelayConfig, RelayLimits};
use meshwork_node::{Events, Handle};
use meshwork_testbed::{NatKind, NatNode, Testbed, TestbedSpec};
use meshwork_wire::relayed::is_relayed;
use meshwork_wire::{Input, Instant, Output, Protocol, ProtocolId};
use serde::{Deserialize, Serialize};

pub const WAIT: Duration = Duration::from_secs(20);

/// Sends blobs to peers and reports what arrives: the application traffic of these tests.
pub struct Blob;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bytes(pub Vec<u8>);

/// What [`Blob`] reports.
#[derive(Debug)]
pub enum Seen {
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

pub type BlobNode = (NatNode, (Handle<Blob>, Events<Blob>));

pub async fn start(
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
/// reserved at the relay, and A connected to B over a circuit through it. Returns the virtual address
/// A reaches B at.
pub async fn relayed(
    limits: RelayLimits,
    nats: [NatKind; 2],
) -> (Testbed, BlobNode, BlobNode, BlobNode, SocketAddr) {
    let bed = Testbed::build(&TestbedSpec::new(1, &nats)).unwrap();
    let (relay, a, b, at) = relayed_on(&bed, limits, [(Some(0), 0), (Some(1), 0)]).await;
    (bed, relay, a, b, at)
}

/// [`relayed`] on a testbed of the caller's, with the relay on public host 0 and A and B on the hosts
/// `ends` names (`(None, i)`: public host `i`; `(Some(n), i)`: host `i` behind NAT `n`).
pub async fn relayed_on(
    bed: &Testbed,
    limits: RelayLimits,
    ends: [(Option<usize>, usize); 2],
) -> (BlobNode, BlobNode, BlobNode, SocketAddr) {
    let relay_config = RelayConfig {
        serve: Some(limits),
        ..RelayConfig::default()
    };
    let relay = start(bed, (None, 0), 1, (NatConfig::rendezvous(), relay_config)).await;
    let end = (NatConfig::default(), RelayConfig::default());
    let mut a = start(bed, ends[0], 2, end.clone()).await;
    let mut b = start(bed, ends[1], 3, end).await;
    let r_id = relay.0.node.peer_id();
    let r_addr = relay.0.node.local_addr();
    for end in [&a, &b] {
        end.0.node.add_address(r_id, r_addr).await.unwrap();
    }
    b.0.reserve(r_id, WAIT).await.unwrap();
    let at = a.0.connect_through(r_id, b.0.node.peer_id(), WAIT).await.unwrap();
    assert!(is_relayed(&at), "{at} is a virtual address");
    (relay, a, b, at)
}

/// Waits (at most `WAIT`) for the node's connection to `peer` to satisfy `want`.
pub async fn connection_to(
    node: &NatNode,
    peer: PeerId,
    want: impl Fn(Option<SocketAddr>) -> bool,
) -> Option<SocketAddr> {
    node.connection_where(peer, WAIT, want).await.unwrap()
}

/// The relay role's counters of `node`, which serves as a relay.
pub async fn relay_stats(node: &NatNode) -> meshwork_nat::RelayStats {
    node.relay_stats().await.unwrap().unwrap()
}

/// Waits for blob events from `from` until `bytes` arrived; what arrived, and whether `from` went down
/// meanwhile.
pub async fn receive_watching(
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
pub async fn receive(events: &mut Events<Blob>, from: PeerId, bytes: usize, within: Duration) -> usize {
    receive_watching(events, from, bytes, within).await.0
}
