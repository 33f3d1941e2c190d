//! QUIC over relay paths, on loopback: a test forwarder stands in for the relay circuit, moving each
//! side's path datagrams to the other. The session is the two peers' own (keys checked end to end),
//! the connection is marked relayed by its address, and closing the path closes it.

use std::net::SocketAddr;

use meshwork_transport::{Connection, QuicTransport, Transport};
use meshwork_wire::relayed::is_relayed;

use crate::harness::{PING, bounded, config, eventually, key, loopback};

/// Carries `from`'s path datagrams to `to`, arriving from `at` (the path `to` opened for `from`).
fn forward(from: &QuicTransport, to: &QuicTransport, at: SocketAddr) {
    let mut outbound = from.relay_paths().outbound().expect("the first driver");
    let paths = to.relay_paths().clone();
    tokio::spawn(async move {
        while let Some((_, datagram)) = outbound.recv().await {
            paths.deliver(at, datagram);
        }
    });
}

/// Two transports, each with a path to the other that the forwarder joins: `(a, b, a's path to b,
/// b's path to a)`. B's path is opened for `b_expects` if given, else for A.
async fn joined(
    b_expects: Option<meshwork_identity::PeerId>,
) -> (QuicTransport, QuicTransport, SocketAddr, SocketAddr) {
    let a = QuicTransport::bind(&key(1), loopback(), config())
        .await
        .expect("bind a");
    let b = QuicTransport::bind(&key(2), loopback(), config())
        .await
        .expect("bind b");
    let a_to_b = a.relay_paths().open(b.peer_id()).expect("a path");
    let b_to_a = b
        .relay_paths()
        .open(b_expects.unwrap_or(a.peer_id()))
        .expect("a path");
    forward(&a, &b, b_to_a);
    forward(&b, &a, a_to_b);
    (a, b, a_to_b, b_to_a)
}

pub(crate) async fn quic_over_a_relay_path() {
    let (a, b, a_to_b, b_to_a) = joined(None).await;

    // A dials B's key at the path's virtual address: the handshake crosses the forwarder.
    let to_b = bounded(a.dial(b.peer_id(), a_to_b))
        .await
        .expect("dial over the path");
    assert_eq!(to_b.remote_peer_id(), b.peer_id());
    assert!(is_relayed(&to_b.remote_addr()));
    let from_a = bounded(b.accept()).await.expect("accept over the path");
    assert_eq!(from_a.remote_peer_id(), a.peer_id());
    assert_eq!(from_a.remote_addr(), b_to_a);
    // The wrong key at the same path fails as it would on a direct path.
    let other = key(3).peer_id();
    assert!(bounded(a.dial(other, a_to_b)).await.is_err());

    // Streams work as on any connection, in both directions, past one datagram's worth.
    let mut ping = bounded(to_b.open(PING)).await.expect("open");
    let frame = vec![0xab_u8; 1000];
    for _ in 0..40 {
        ping.send_frame(&frame).await.expect("send");
    }
    let mut accepted = bounded(from_a.accept_stream()).await.expect("accept stream");
    for _ in 0..40 {
        let got = bounded(accepted.recv_frame())
            .await
            .expect("recv")
            .expect("a frame");
        assert_eq!(got, frame);
    }
    accepted.send_frame(b"back").await.expect("reply");
    let back = bounded(ping.recv_frame()).await.expect("recv").expect("a frame");
    assert_eq!(back, b"back");

    // The circuit goes away: the connection over it closes at once, and later datagrams are dropped.
    a.close_path(a_to_b, meshwork_transport::CloseReason::Normal);
    assert!(!a.relay_paths().is_open(a_to_b));
    eventually(|| to_b.close_reason().is_some()).await;
    let dropped = a.relay_paths().dropped();
    assert!(!a.relay_paths().deliver(a_to_b, vec![0; 10]));
    assert_eq!(a.relay_paths().dropped(), dropped + 1);
}

pub(crate) async fn direct_replaces_relayed() {
    let (a, b, a_to_b, _) = joined(None).await;
    let relayed = bounded(a.dial(b.peer_id(), a_to_b))
        .await
        .expect("dial over the path");
    let relayed_in = bounded(b.accept()).await.expect("accept over the path");
    assert!(a.path_in_use(a_to_b) && !a.path_done(a_to_b));

    // Dialling the relayed peer at the same path gives the open connection back; at a direct address,
    // a new connection, which both sides then prefer (whichever side dialled).
    let again = bounded(a.dial(b.peer_id(), a_to_b)).await.expect("dial again");
    assert_eq!(again.remote_addr(), relayed.remote_addr());
    let direct = bounded(a.dial(b.peer_id(), b.local_addr()))
        .await
        .expect("dial directly");
    assert!(!is_relayed(&direct.remote_addr()));
    let direct_in = bounded(b.accept()).await.expect("accept the direct one");
    assert!(!is_relayed(&direct_in.remote_addr()));
    assert!(
        a.path_in_use(a_to_b) && !a.path_done(a_to_b),
        "the replaced connection still runs over its path until it closes"
    );
    let held = |t: &QuicTransport, peer| t.connection(&peer).map(|c| c.remote_addr());
    assert_eq!(held(&a, b.peer_id()), Some(direct.remote_addr()));
    assert_eq!(held(&b, a.peer_id()), Some(direct_in.remote_addr()));
    // A later dial, direct or over the path, gets the direct connection.
    let later = bounded(a.dial(b.peer_id(), a_to_b)).await.expect("dial");
    assert_eq!(later.remote_addr(), direct.remote_addr());

    // The relayed connection still carries what was in flight; closed, its path is done.
    let mut ping = bounded(relayed.open(PING))
        .await
        .expect("open on the relayed one");
    ping.send_frame(b"late").await.expect("send");
    let mut accepted = bounded(relayed_in.accept_stream()).await.expect("accept");
    assert_eq!(
        bounded(accepted.recv_frame()).await.expect("recv").as_deref(),
        Some(&b"late"[..])
    );
    relayed.close(meshwork_transport::CloseReason::Duplicate);
    eventually(|| a.path_done(a_to_b)).await;
    assert!(
        a.relay_paths().is_open(a_to_b),
        "closing the path is the driver's call"
    );
}

pub(crate) async fn a_path_carries_only_its_peer() {
    // B's path is for peer 3; A's connection arrives over it (a relay lying about who the circuit
    // joins): B refuses it once A's key is proven, and A's dial fails.
    let (a, b, a_to_b, b_to_a) = joined(Some(key(3).peer_id())).await;
    let dialed = bounded(a.dial(b.peer_id(), a_to_b)).await;
    if let Ok(conn) = &dialed {
        // The client's handshake may end before the server's refusal arrives: the refusal closes it.
        eventually(|| conn.close_reason().is_some()).await;
    }
    assert!(b.connection(&a.peer_id()).is_none());
    assert!(!b.relay_paths().carried_a_connection(b_to_a));
    assert!(b.counters().handshake_failures >= 1);
}
