//! Limits, back-pressure, tie-breaks and many peers.

use std::time::Duration;

use meshwork_transport::{Connection, DUPLICATE_GRACE, DialError, Direction, Transport};

use crate::harness::{CHAT, Net, PING, WAIT, bounded, config, eventually, eventually_within, key, pair};

pub(crate) async fn simultaneous_dials<N: Net>() {
    // On a loaded machine one dial may first look for a connection only after the other's handshake
    // has reached its side: it then uses that connection and the dials never cross. That is the
    // transport working as it should (one connection, whoever dialled it); the crossing is staged again.
    // Ten times: an attempt that does not cross settles at once, and a CI rehearsal run beside two
    // simulations missed the crossing three times in a row.
    for _ in 0..10 {
        let net = N::new();
        let a = net.bind(&key(1), config()).await;
        let b = net.bind(&key(2), config()).await;
        let (small, large) = if a.peer_id() < b.peer_id() { (a, b) } else { (b, a) };
        // Both accept in the background and both dial at once.
        for side in [small.clone(), large.clone()] {
            tokio::spawn(async move { while side.accept().await.is_ok() {} });
        }
        let (x, y) = bounded(N::crossing_dials(&small, &large)).await;
        x.expect("small dials");
        y.expect("large dials");
        // Both settle on the connection the smaller id dialed; the other is closed as a duplicate once
        // its grace ends.
        eventually_within(DUPLICATE_GRACE + WAIT, || {
            let counts = |t: &N::T| {
                let c = t.counters();
                c.inbound_connections + c.outbound_connections
            };
            counts(&small) == 1 && counts(&large) == 1
        })
        .await;
        if small.counters().closed_by_reason.duplicate == 0 {
            continue;
        }
        return settled_on_the_small_sides_dial::<N>(&small, &large).await;
    }
    panic!("ten staged simultaneous dials never crossed");
}

/// After crossing dials: both sides keep the connection `small` dialled, and it carries a stream.
async fn settled_on_the_small_sides_dial<N: Net>(small: &N::T, large: &N::T) {
    let kept_small = small.connection(&large.peer_id()).expect("small keeps one");
    let kept_large = large.connection(&small.peer_id()).expect("large keeps one");
    assert_eq!(kept_small.direction(), Direction::Outbound);
    assert_eq!(kept_large.direction(), Direction::Inbound);
    // And it is the same connection: a stream opened on one side arrives on the other.
    let mut out = bounded(kept_small.open(PING)).await.expect("open");
    out.send(&9u64).await.expect("send");
    let mut inc = bounded(kept_large.accept_stream()).await.expect("accept");
    assert_eq!(bounded(inc.recv::<u64>()).await.expect("recv"), Some(9));
}

pub(crate) async fn inbound_limit<N: Net>() {
    let net = N::new();
    let mut listener_config = config();
    listener_config.limits.max_inbound = 100;
    let listener = net.bind(&key(0), listener_config).await;
    let accepted = {
        let listener = listener.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok(conn) = listener.accept().await {
                held.push(conn);
            }
            held
        })
    };
    let mut dialers = Vec::new();
    for n in 1..=100 {
        dialers.push(net.bind(&key(n), config()).await);
    }
    let (id, addr) = (listener.peer_id(), listener.local_addr());
    let results = bounded(async {
        let mut tasks = tokio::task::JoinSet::new();
        for dialer in dialers.clone() {
            tasks.spawn(async move { dialer.dial(id, addr).await.map(|_| ()) });
        }
        tasks.join_all().await
    })
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    eventually(|| listener.counters().inbound_connections == 100).await;

    let extra = net.bind(&key(101), config()).await;
    if N::EVICTS {
        // QUIC: a full listener makes room by evicting an unprotected inbound peer (the newest of the
        // most crowded prefix; here everyone shares 127.0.0.1), so newcomers are never locked out.
        bounded(extra.dial(id, addr)).await.expect("the 101st gets in");
        eventually(|| listener.counters().evicted == 1).await;
        eventually(|| listener.counters().inbound_connections == 100).await;
        let evicted: Vec<_> = dialers
            .iter()
            .filter(|d| {
                d.connection(&id).is_none()
                    || d.connection(&id)
                        .is_some_and(|c| c.close_reason() == Some(meshwork_transport::CloseReason::Evicted))
            })
            .collect();
        assert!(evicted.len() <= 1, "one peer evicted, not {}", evicted.len());
        assert_eq!(listener.counters().inbound_refused, 0);
        drop(accepted);
        return;
    }
    let refused = bounded(extra.dial(id, addr))
        .await
        .expect_err("the 101st is refused");
    assert!(matches!(refused, DialError::Refused), "{refused:?}");
    assert_eq!(listener.counters().inbound_refused, 1);
    assert_eq!(listener.counters().inbound_connections, 100);
    assert_eq!(extra.counters().outbound_connections, 0);

    // Once one connection closes, there is room again.
    dialers[0]
        .connection(&id)
        .expect("held")
        .close(meshwork_transport::CloseReason::Normal);
    eventually(|| listener.counters().inbound_connections == 99).await;
    bounded(extra.dial(id, addr)).await.expect("room again");
    drop(accepted);
}

pub(crate) async fn outbound_limit<N: Net>() {
    let net = N::new();
    let mut limited = config();
    limited.limits.max_outbound = 1;
    let dialer = net.bind(&key(1), limited).await;
    let b = net.bind(&key(2), config()).await;
    let c = net.bind(&key(3), config()).await;
    for side in [b.clone(), c.clone()] {
        tokio::spawn(async move { while side.accept().await.is_ok() {} });
    }
    bounded(dialer.dial(b.peer_id(), b.local_addr()))
        .await
        .expect("first");
    let err = bounded(dialer.dial(c.peer_id(), c.local_addr()))
        .await
        .expect_err("second");
    assert!(
        matches!(err, DialError::TooManyConnections { limit: 1 }),
        "{err:?}"
    );
    assert_eq!(dialer.counters().dials_refused, 1);
    assert_eq!(c.counters().inbound_connections, 0, "nothing was sent");
}

pub(crate) async fn stream_limit<N: Net>() {
    let net = N::new();
    let mut small = config();
    small.limits.max_streams_per_connection = 2;
    let (_a, _b, to_b, from_a) = pair(&net, small.clone(), small).await;
    let mut open = Vec::new();
    for tag in 0..2u64 {
        let mut stream = bounded(to_b.open(PING)).await.expect("open");
        stream.send(&tag).await.expect("send");
        open.push(stream);
    }
    // Inbound streams are answered concurrently, so they may be accepted in either order: pair them by the
    // tag each one carries.
    let mut accepted = Vec::new();
    for _ in 0..2 {
        let mut stream = bounded(from_a.accept_stream()).await.expect("accept");
        let tag: u64 = bounded(stream.recv()).await.expect("recv").expect("a tag");
        accepted.push((tag, stream));
    }
    accepted.sort_by_key(|(tag, _)| *tag);
    let mut accepted: Vec<_> = accepted.into_iter().map(|(_, stream)| stream).collect();
    // A third stream waits for credit: back-pressure, not an error.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), to_b.open(PING))
            .await
            .is_err()
    );
    // Closing one stream on both sides frees its slot.
    let mut first = open.remove(0);
    bounded(first.finish()).await.expect("finish");
    let mut peer_side = accepted.remove(0);
    assert_eq!(bounded(peer_side.recv::<u64>()).await.expect("end"), None);
    peer_side.finish().await.expect("finish");
    assert_eq!(bounded(first.recv::<u64>()).await.expect("end"), None);
    drop((first, peer_side));
    let third = tokio::spawn(async move { to_b.open(PING).await.map(|_| ()) });
    let _held = from_a;
    bounded(third)
        .await
        .expect("join")
        .expect("third opens once a slot is free");
}

pub(crate) async fn slow_reader_back_pressure<N: Net>() {
    let net = N::new();
    let mut small = config();
    small.limits.max_queued_bytes_per_stream = 64 * 1024;
    small.limits.max_queued_bytes_per_peer = 128 * 1024;
    let (_a, _b, to_b, from_a) = pair(&net, small.clone(), small).await;
    let mut out = bounded(to_b.open(CHAT)).await.expect("open");
    out.send(&0u8).await.expect("first");
    // The peer accepts the stream, then never reads.
    let _inc = bounded(from_a.accept_stream()).await.expect("accept");
    let body = vec![0xabu8; 16 * 1024];
    let mut sent = 0usize;
    let blocked = loop {
        match tokio::time::timeout(Duration::from_millis(300), out.send_frame(&body)).await {
            Ok(result) => {
                result.expect("send");
                sent += body.len();
                assert!(
                    sent <= 4 * 1024 * 1024,
                    "the sender was never held back: {sent} bytes queued"
                );
            }
            Err(_) => break sent,
        }
    };
    // The sender waits once the windows are full: what is queued stays within a small multiple of them.
    assert!(blocked >= 16 * 1024, "at least one frame fits: {blocked}");
    assert!(
        blocked <= 1024 * 1024,
        "queued {blocked} bytes for a 128 KiB window"
    );
}

pub(crate) async fn hundred_peers<N: Net>() {
    let net = N::new();
    let listener = net.bind(&key(0), config()).await;
    let server = {
        let listener = listener.clone();
        tokio::spawn(async move {
            let mut echoes = tokio::task::JoinSet::new();
            for _ in 0..100 {
                let conn = listener.accept().await.expect("accept");
                echoes.spawn(async move {
                    let mut stream = conn.accept_stream().await.expect("stream");
                    let who: String = stream.recv().await.expect("recv").expect("one message");
                    assert_eq!(who, conn.remote_peer_id().to_string());
                    stream.send(&format!("hello {who}")).await.expect("reply");
                    stream.finish().await.expect("finish");
                    // Hold the connection until the peer has read the reply.
                    let _ = conn.closed().await;
                });
            }
            echoes
        })
    };
    let (id, addr) = (listener.peer_id(), listener.local_addr());
    let replies = bounded(async {
        let mut peers = tokio::task::JoinSet::new();
        for n in 1..=100 {
            let peer = net.bind(&key(n), config()).await;
            peers.spawn(async move {
                let conn = peer.dial(id, addr).await.expect("dial");
                let mut stream = conn.open(CHAT).await.expect("open");
                let me = peer.peer_id().to_string();
                stream.send(&me).await.expect("send");
                let reply: Option<String> = stream.recv().await.expect("reply");
                conn.close(meshwork_transport::CloseReason::Normal);
                reply == Some(format!("hello {me}"))
            });
        }
        peers.join_all().await
    })
    .await;
    assert_eq!(replies.len(), 100);
    assert!(replies.iter().all(|ok| *ok));
    let mut echoes = bounded(server).await.expect("server");
    bounded(async {
        while let Some(done) = echoes.join_next().await {
            done.expect("echo")
        }
    })
    .await;
}

/// Two peers announce frames of the largest size and never send their bodies, holding the whole
/// global frame budget until the frame deadline: a third peer's small frame still arrives at once,
/// on its connection's own floor (`FRAME_FLOOR_BYTES`), not after the deadline.
pub(crate) async fn announced_frames_cannot_hold_up_other_peers_small_frames<N: Net>() {
    let net = N::new();
    let mut tight = config();
    tight.limits.max_frame_bytes = 128 * 1024;
    tight.limits.max_frame_bytes_per_peer = 64 * 1024;
    tight.timeouts.frame = Duration::from_secs(60);
    let b = net.bind(&key(10), tight).await;
    let mut held = Vec::new();
    for n in 0..2 {
        let a = net.bind(&key(11 + n), config()).await;
        let (to_b, from_a) =
            bounded(async { tokio::join!(a.dial(b.peer_id(), b.local_addr()), b.accept()) }).await;
        let (to_b, from_a) = (to_b.expect("dial"), from_a.expect("accept"));
        let mut out = bounded(to_b.open(CHAT)).await.expect("open");
        // The largest CHAT frame (64 KiB), announced, its body never sent.
        out.send_raw(&(64u32 * 1024).to_be_bytes()).await.expect("raw");
        let mut inc = bounded(from_a.accept_stream()).await.expect("accept");
        // B reads the header and reserves the frame's bytes; the body never comes.
        let reading = tokio::spawn(async move { inc.recv::<Vec<u8>>().await.map(|_| ()) });
        held.push((a, to_b, out, from_a, reading));
    }
    // Let both headers be read and their bytes reserved.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let honest = net.bind(&key(20), config()).await;
    let (to_b, from_honest) =
        bounded(async { tokio::join!(honest.dial(b.peer_id(), b.local_addr()), b.accept()) }).await;
    let (to_b, from_honest) = (to_b.expect("dial"), from_honest.expect("accept"));
    let mut out = bounded(to_b.open(PING)).await.expect("open");
    out.send(&7u64).await.expect("send");
    let mut inc = bounded(from_honest.accept_stream()).await.expect("accept");
    let got = tokio::time::timeout(Duration::from_secs(5), inc.recv::<u64>())
        .await
        .expect("the small frame waited on the budget the others hold");
    assert_eq!(got.expect("recv"), Some(7));
    // The announced frames are still held: nothing else freed the budget.
    assert!(held.iter().all(|(.., reading)| !reading.is_finished()));
}
