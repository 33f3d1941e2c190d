//! QUIC over relay paths, on loopback: a test forwarder stands in for the relay circuit, moving each
//! side's path datagrams to the other. The session is the two peers' own (keys checked end to end),
//! the connection is marked relayed by its address, and closing the path closes it.

use meshwork_transport::{Connection, QuicTransport, Transport};
use meshwork_wire::relayed::is_relayed;

use crate::harness::{PING, bounded, config, eventually, key, loopback};

/// Carries `from`'s path datagrams to `to`, arriving from `at` (the path `to` opened for `from`).
fn forward(from: &QuicTransport, to: &QuicTransport, at: std::net::SocketAddr) {
    let mut outbound = from.relay_paths().outbound().expect("the first driver");
    let paths = to.relay_paths().clone();
    tokio::spawn(async move {
        while let Some((_, datagram)) = outbound.recv().await {
            paths.deliver(at, datagram);
        }
    });
}

pub(crate) async fn quic_over_a_relay_path() {
    let a = QuicTransport::bind(&key(1), loopback(), config())
        .await
        .expect("bind a");
    let b = QuicTransport::bind(&key(2), loopback(), config())
        .await
        .expect("bind b");
    let a_to_b = a.relay_paths().open().expect("a path");
    let b_to_a = b.relay_paths().open().expect("a path");
    forward(&a, &b, b_to_a);
    forward(&b, &a, a_to_b);

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
