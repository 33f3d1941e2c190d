//! Identity, protocols, framing and closing.

use std::time::Duration;

use meshwork_transport::{
    CloseReason, Config, Connection, DialError, OpenStreamError, ProtocolSpec, QuicTransport, RecvError,
    SendError, Transport,
};

use crate::harness::{CHAT, Net, PING, Quic, SECRET, bounded, config, eventually, key, loopback, pair};

pub(crate) async fn two_protocols_at_once<N: Net>() {
    let net = N::new();
    let (a, b, to_b, from_a) = pair(&net, config(), config()).await;
    assert_eq!(to_b.remote_peer_id(), b.peer_id());
    assert_eq!(from_a.remote_peer_id(), a.peer_id());

    // B answers every stream: a ping with its number + 1, a chat line with the line reversed.
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let mut stream = from_a.accept_stream().await.expect("accept stream");
            tokio::spawn(async move {
                if stream.protocol() == PING {
                    while let Some(n) = stream.recv::<u64>().await.expect("recv ping") {
                        stream.send(&(n + 1)).await.expect("pong");
                    }
                } else {
                    assert_eq!(stream.protocol(), CHAT);
                    while let Some(line) = stream.recv::<String>().await.expect("recv chat") {
                        stream
                            .send(&line.chars().rev().collect::<String>())
                            .await
                            .expect("reply");
                    }
                }
            });
        }
    });

    // Both streams are open at once and interleave on one connection.
    let mut ping = bounded(to_b.open(PING)).await.expect("open ping");
    let mut chat = bounded(to_b.open(CHAT)).await.expect("open chat");
    for round in 0..20u64 {
        let line = format!("line {round}");
        let (pong, reply) = bounded(async {
            ping.send(&round).await.expect("send ping");
            chat.send(&line).await.expect("send chat");
            (
                ping.recv::<u64>().await.expect("pong"),
                chat.recv::<String>().await.expect("reply"),
            )
        })
        .await;
        assert_eq!(pong, Some(round + 1));
        assert_eq!(reply, Some(line.chars().rev().collect::<String>()));
    }
    bounded(ping.finish()).await.expect("finish");
    assert_eq!(bounded(ping.recv::<u64>()).await.expect("end"), None);
    bounded(server).await.expect("server");
}

pub(crate) async fn impersonation_fails<N: Net>() {
    let net = N::new();
    let mallory = net.bind(&key(66), config()).await;
    let alice = net.bind(&key(1), config()).await;
    let bob = key(2).peer_id();
    // Alice believes Bob is at Mallory's address; Mallory proves her own key, not Bob's.
    let err = bounded(alice.dial(bob, mallory.local_addr()))
        .await
        .expect_err("impersonation must fail");
    match &err {
        DialError::PeerIdMismatch { expected, actual } => {
            assert_eq!(*expected, bob);
            assert_eq!(*actual, mallory.peer_id());
        }
        other => panic!("expected PeerIdMismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("peer id mismatch"), "{err}");
    assert!(alice.connection(&bob).is_none());
    assert!(alice.connection(&mallory.peer_id()).is_none());
    assert_eq!(alice.counters().handshake_failures, 1);
    assert_eq!(alice.counters().outbound_connections, 0, "the slot is released");
    // Dialing Mallory as Mallory works.
    bounded(alice.dial(mallory.peer_id(), mallory.local_addr()))
        .await
        .expect("honest dial");
}

pub(crate) async fn unknown_protocol_is_refused<N: Net>() {
    let net = N::new();
    let mut opener_config = config();
    opener_config.protocols.push(ProtocolSpec::new(SECRET, 1024));
    let (a, b, to_b, from_a) = pair(&net, opener_config, config()).await;

    // B does not speak SECRET: the opener is told so, and B's accept_stream skips it.
    let refused = bounded(to_b.open(SECRET)).await.expect_err("refused");
    assert!(
        matches!(refused, OpenStreamError::ProtocolRefused(id) if id == SECRET),
        "{refused:?}"
    );
    // A protocol A does not know at all is refused locally, before anything is sent.
    let unknown = meshwork_wire::ProtocolId::new("/test/nobody/1");
    assert!(matches!(
        to_b.open(unknown).await,
        Err(OpenStreamError::UnknownProtocol(_))
    ));

    let mut ping = bounded(to_b.open(PING)).await.expect("open ping");
    ping.send(&1u64).await.expect("send");
    let mut accepted = bounded(from_a.accept_stream()).await.expect("accept");
    assert_eq!(
        accepted.protocol(),
        PING,
        "the refused stream never reaches accept_stream"
    );
    assert_eq!(bounded(accepted.recv::<u64>()).await.expect("recv"), Some(1));
    assert_eq!(b.counters().streams_refused, 1);
    assert_eq!(a.counters().streams_refused, 0);
}

pub(crate) async fn an_eager_open_sends_before_the_answer_and_still_learns_of_a_refusal<N: Net>() {
    let net = N::new();
    let mut opener_config = config();
    opener_config.protocols.push(ProtocolSpec::new(SECRET, 1024));
    let (_a, b, to_b, from_a) = pair(&net, opener_config, config()).await;

    // A frame written right after the header, before any answer, reaches the peer's application.
    let mut ping = bounded(to_b.open_eager(PING)).await.expect("open ping");
    ping.send(&7u64).await.expect("send before the answer");
    let mut accepted = bounded(from_a.accept_stream()).await.expect("accept");
    assert_eq!(bounded(accepted.recv::<u64>()).await.expect("recv"), Some(7));
    bounded(ping.answered()).await.expect("accepted");
    // Answered once: asking again returns at once, and the stream carries on both ways.
    bounded(ping.answered()).await.expect("still accepted");
    accepted.send(&8u64).await.expect("reply");
    assert_eq!(bounded(ping.recv::<u64>()).await.expect("recv reply"), Some(8));

    // B does not speak SECRET: the eager open succeeds, and the answer says refused.
    let mut secret = bounded(to_b.open_eager(SECRET)).await.expect("sent at once");
    let _ = secret.send(&1u64).await;
    let refused = bounded(secret.answered()).await.expect_err("refused");
    assert!(
        matches!(refused, OpenStreamError::ProtocolRefused(id) if id == SECRET),
        "{refused:?}"
    );
    assert_eq!(b.counters().streams_refused, 1);
    // A receive on a refused stream reports it rather than waiting.
    let mut again = bounded(to_b.open_eager(SECRET)).await.expect("sent at once");
    assert!(bounded(again.recv::<u64>()).await.is_err());
}

pub(crate) async fn oversized_frame_is_refused<N: Net>() {
    let net = N::new();
    let (_a, b, to_b, from_a) = pair(&net, config(), config()).await;
    let mut out = bounded(to_b.open(PING)).await.expect("open");
    // The sender refuses a message over the maximum (1024 bytes for PING) and sends nothing.
    let err = out.send(&vec![7u8; 2000]).await.expect_err("too large");
    assert!(matches!(err, SendError::TooLarge { max: 1024, .. }), "{err:?}");
    out.send(&5u64).await.expect("the stream is still usable");

    let mut inc = bounded(from_a.accept_stream()).await.expect("accept");
    assert_eq!(bounded(inc.recv::<u64>()).await.expect("recv"), Some(5));
    // A hostile peer announces a 4 GiB frame and sends nothing more. The receiver refuses it from the
    // header alone: had it allocated or waited for the body, this would hang or abort, not return.
    out.send_raw(&u32::MAX.to_be_bytes()).await.expect("raw");
    let err = bounded(inc.recv::<u64>()).await.expect_err("refused");
    assert!(
        matches!(
            err,
            RecvError::TooLarge {
                announced: 4_294_967_295,
                max: 1024
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("over the protocol maximum of 1024") && text.contains("before allocating"),
        "{text}"
    );
    assert_eq!(b.counters().frames_refused, 1);
}

pub(crate) async fn close_reason_reaches_the_peer<N: Net>() {
    let net = N::new();
    let (_a, _b, to_b, from_a) = pair(&net, config(), config()).await;
    let mut out = bounded(to_b.open(PING)).await.expect("open");
    out.send(&1u64).await.expect("send");
    let mut inc = bounded(from_a.accept_stream()).await.expect("accept");
    to_b.close(CloseReason::Application(7));
    assert_eq!(bounded(from_a.closed()).await, CloseReason::Application(7));
    assert_eq!(from_a.close_reason(), Some(CloseReason::Application(7)));
    assert_eq!(to_b.close_reason(), Some(CloseReason::Application(7)));
    // Every later operation names the reason.
    let _ = inc.recv::<u64>().await; // may still deliver the frame sent before the close
    assert!(matches!(
        bounded(from_a.open(PING)).await,
        Err(OpenStreamError::ConnectionClosed(CloseReason::Application(7)))
    ));
    assert!(matches!(
        bounded(out.send(&2u64)).await,
        Err(SendError::ConnectionClosed(CloseReason::Application(7)))
    ));
}

pub(crate) async fn dial_reuses_connection<N: Net>() {
    let net = N::new();
    let (a, b, to_b, _from_a) = pair(&net, config(), config()).await;
    let again = bounded(a.dial(b.peer_id(), b.local_addr()))
        .await
        .expect("dial again");
    assert_eq!(again.direction(), to_b.direction());
    assert_eq!(a.counters().outbound_connections, 1);
    assert!(matches!(
        a.dial(a.peer_id(), a.local_addr()).await,
        Err(DialError::SelfDial)
    ));
}

pub(crate) async fn quic_keep_alive_and_idle() {
    let quiet = |keep_alive| {
        let mut config: Config = config();
        config.timeouts.idle = Duration::from_millis(400);
        config.timeouts.keep_alive = keep_alive;
        config
    };
    // With keep-alives, a silent connection outlives several idle timeouts.
    let net = Quic;
    let (_a, _b, to_b, _from_a) = pair(&net, quiet(Some(Duration::from_millis(100))), quiet(None)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(to_b.close_reason(), None);
    // Without, it idles out, and both sides say so.
    let a = QuicTransport::bind(&key(11), loopback(), quiet(None))
        .await
        .expect("bind");
    let b = QuicTransport::bind(&key(12), loopback(), quiet(None))
        .await
        .expect("bind");
    let (conn, _) = bounded(async { tokio::join!(a.dial(b.peer_id(), b.local_addr()), b.accept()) }).await;
    let conn = conn.expect("dial");
    assert_eq!(bounded(conn.closed()).await, CloseReason::TimedOut);
    eventually(|| a.counters().outbound_connections == 0).await;
}

pub(crate) async fn redial_replaces_stale_connection<N: Net>() {
    let net = N::new();
    let (a, _b, _to_b, stale) = pair(&net, config(), config()).await;
    // B restarts (same key, new transport) without closing; A still holds the old connection.
    let b_again = net.bind(&key(2), config()).await;
    let (dialed, accepted) =
        bounded(async { tokio::join!(b_again.dial(a.peer_id(), a.local_addr()), a.accept()) }).await;
    let (dialed, fresh) = (dialed.expect("redial"), accepted.expect("accept"));
    assert_eq!(fresh.remote_peer_id(), b_again.peer_id());
    assert_eq!(bounded(stale.closed()).await, CloseReason::Duplicate);
    let mut out = bounded(dialed.open(PING)).await.expect("open");
    out.send(&3u64).await.expect("send");
    let mut inc = bounded(fresh.accept_stream()).await.expect("accept stream");
    assert_eq!(bounded(inc.recv::<u64>()).await.expect("recv"), Some(3));
}

/// The endpoint's count includes a connection while it is open, and lets it go once the close has
/// drained on both sides: the count that shows what closed connections still cost.
pub(crate) async fn quic_endpoint_counts_a_connection_until_it_drains() {
    let net = Quic;
    let (a, b, to_b, from_a) = pair(&net, config(), config()).await;
    assert_eq!(a.counters().endpoint_connections, 1);
    assert_eq!(b.counters().endpoint_connections, 1);
    to_b.close(CloseReason::Application(3));
    assert_eq!(bounded(from_a.closed()).await, CloseReason::Application(3));
    // Released by A's own connection task, which may run a moment after B has seen the close.
    eventually(|| a.counters().outbound_connections == 0).await;
    // Dropping the handles leaves only quinn's own draining state, which ends after 3 probe timeouts.
    drop((to_b, from_a));
    eventually(|| a.counters().endpoint_connections == 0 && b.counters().endpoint_connections == 0).await;
}

/// Path MTU discovery reaches the full 1,452-byte datagram of an Ethernet-sized path (loopback carries
/// more) in two probes, where quinn's default search sends four.
pub(crate) async fn quic_path_mtu_in_two_probes() {
    let net = Quic;
    let (_a, _b, to_b, from_a) = pair(&net, config(), config()).await;
    // The search starts once the handshake is confirmed; traffic lets it finish.
    let mut out = bounded(to_b.open(PING)).await.expect("open");
    let mut inc = bounded(from_a.accept_stream()).await.expect("accept stream");
    let mtu_reached = || to_b.quinn().stats().path.current_mtu == 1452;
    // Up to about 10 s: a loaded machine may delay the probes' acknowledgements.
    for n in 0..500u64 {
        if mtu_reached() {
            break;
        }
        out.send(&n).await.expect("send");
        assert_eq!(bounded(inc.recv::<u64>()).await.expect("recv"), Some(n));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let path = to_b.quinn().stats().path;
    assert_eq!(path.current_mtu, 1452, "{path:?}");
    // Two sizes probed; a probe lost (a full socket buffer under load) is sent again and counted lost.
    assert_eq!(path.sent_plpmtud_probes - path.lost_plpmtud_probes, 2, "{path:?}");
}
