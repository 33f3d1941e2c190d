//! Transport-level traffic: per-connection statistics, totals that keep closed connections, and closes
//! counted by reason.

use meshwork_transport::{CloseReason, Connection, DUPLICATE_GRACE, Direction, Transport};

use crate::harness::{CHAT, Net, PING, WAIT, bounded, config, eventually, eventually_within, key, pair};

/// Messages sent by [`exchange`], and the size of each.
const MESSAGES: usize = 50;
const MESSAGE_BYTES: usize = 1000;
/// One message as a frame: 4-byte header, then postcard's `Vec<u8>`: a 2-byte varint length and the bytes.
const FRAME_BYTES: u64 = 4 + 2 + MESSAGE_BYTES as u64;
/// The reply to the exchange, as a frame: header, then a `u64` varint of one byte (the count, 50).
const REPLY_BYTES: u64 = 4 + 1;

/// `from` opens a CHAT stream to `to` and sends [`MESSAGES`] messages, `to` reads them all and answers
/// with how many it read.
async fn exchange<C: Connection>(from: &C, to: &C) {
    let mut out = bounded(from.open(CHAT)).await.expect("open");
    let body = vec![0x5au8; MESSAGE_BYTES];
    let receiver = {
        let to = to.clone();
        tokio::spawn(async move {
            let mut inc = to.accept_stream().await.expect("accept stream");
            let mut read = 0u64;
            while read < MESSAGES as u64 {
                let msg: Vec<u8> = inc.recv().await.expect("recv").expect("a message");
                assert_eq!(msg.len(), MESSAGE_BYTES);
                read += 1;
            }
            inc.send(&read).await.expect("reply");
            inc
        })
    };
    for _ in 0..MESSAGES {
        bounded(out.send(&body)).await.expect("send");
    }
    let _inc = bounded(receiver).await.expect("receiver");
    assert_eq!(
        bounded(out.recv::<u64>()).await.expect("reply"),
        Some(MESSAGES as u64)
    );
}

/// Polls (about [`WAIT`] at most, in steps of [`POLL`]) until `sent` and `received` are within
/// `tolerance` of each other, and returns the last reading: the caller asserts on it, with the figures.
async fn settle(mut read: impl FnMut() -> (u64, u64), tolerance: impl Fn(u64) -> u64) -> (u64, u64) {
    let mut reading = read();
    for _ in 0..WAIT.as_millis() / POLL.as_millis() {
        let (sent, received) = reading;
        if sent.abs_diff(received) <= tolerance(sent) {
            break;
        }
        tokio::time::sleep(POLL).await;
        reading = read();
    }
    reading
}

/// How often [`settle`] reads.
const POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// QUIC: what may be in flight or lost when the two sides are compared (5%, and two full datagrams).
fn quic_tolerance(sent: u64) -> u64 {
    sent / 20 + 2 * 1500
}

pub(crate) async fn bytes_sent_match_bytes_received<N: Net>() {
    let net = N::new();
    let (a, _b, to_b, from_a) = pair(&net, config(), config()).await;
    let before = to_b.stats();
    exchange(&to_b, &from_a).await;
    let after = to_b.stats();
    let payload = MESSAGES as u64 * FRAME_BYTES;
    assert!(
        after.bytes_sent >= before.bytes_sent + payload,
        "A sent {payload} bytes of frames: {before:?} -> {after:?}"
    );
    assert!(
        after.datagrams_sent > before.datagrams_sent,
        "{before:?} -> {after:?}"
    );
    assert!(
        after.bytes_received > before.bytes_received,
        "{before:?} -> {after:?}"
    );
    let header = meshwork_transport::stream_header::encode(CHAT).len() as u64;
    if N::PACKETS {
        // A's datagrams reach B, and B's acknowledgements reach A: each side's sent figure is the
        // other's received one, within what is in flight or lost.
        let (sent, received) = settle(
            || (to_b.stats().bytes_sent, from_a.stats().bytes_received),
            quic_tolerance,
        )
        .await;
        assert!(
            sent.abs_diff(received) <= quic_tolerance(sent),
            "A sent {sent}, B received {received}"
        );
        let (sent, received) = settle(
            || (from_a.stats().bytes_sent, to_b.stats().bytes_received),
            quic_tolerance,
        )
        .await;
        assert!(
            sent.abs_diff(received) <= quic_tolerance(sent),
            "B sent {sent}, A received {received}"
        );
        // Packet headers, the handshake and acknowledgements cost something, but not as much again.
        let sent = to_b.stats().bytes_sent;
        assert!(
            sent <= 2 * (payload + header) + 16 * 1024,
            "A sent {sent} for {payload} bytes of frames"
        );
        assert!(to_b.stats().rtt > std::time::Duration::ZERO);
    } else {
        // In memory nothing else travels: the stream header and the frames, counted on both sides.
        let (a_side, b_side) = (to_b.stats(), from_a.stats());
        assert_eq!(a_side.bytes_sent, header + payload);
        assert_eq!(b_side.bytes_received, header + payload);
        assert_eq!(
            b_side.bytes_sent,
            1 + REPLY_BYTES,
            "the status byte and the reply"
        );
        assert_eq!(a_side.bytes_received, b_side.bytes_sent);
        assert_eq!(a_side.datagrams_sent, b_side.datagrams_received);
        assert_eq!((a_side.packets_lost, a_side.rtt), (0, std::time::Duration::ZERO));
    }
    // The transport's totals include the live connection, read when the snapshot is taken.
    let early = to_b.stats();
    let totals = a.counters();
    let late = to_b.stats();
    assert!(
        (early.bytes_sent..=late.bytes_sent).contains(&totals.bytes_sent),
        "{early:?} <= {totals:?} <= {late:?}"
    );
    assert!((early.datagrams_received..=late.datagrams_received).contains(&totals.datagrams_received));
    assert_eq!(totals.closed_by_reason.total(), 0, "nothing closed yet");
}

/// `transport`'s byte totals, bracketed by two reads of `live` (its only live connection): the totals
/// minus the live connection's share, which is what its closed connections contribute.
fn closed_share<T: Transport>(transport: &T, live: &T::Connection) -> (u64, u64) {
    let early = live.stats();
    let totals = transport.counters();
    let late = live.stats();
    (
        totals.bytes_sent.saturating_sub(late.bytes_sent),
        totals.bytes_sent.saturating_sub(early.bytes_sent),
    )
}

pub(crate) async fn totals_keep_closed_connections<N: Net>() {
    let net = N::new();
    let (a, b, to_b, from_a) = pair(&net, config(), config()).await;
    exchange(&to_b, &from_a).await;
    let open = a.counters();
    assert!(open.bytes_sent >= MESSAGES as u64 * FRAME_BYTES, "{open:?}");

    to_b.close(CloseReason::Application(5));
    assert_eq!(bounded(from_a.closed()).await, CloseReason::Application(5));
    eventually(|| a.counters().closed_by_reason.total() == 1 && b.counters().closed_by_reason.total() == 1)
        .await;
    let closed = a.counters();
    // The closed connection's bytes stay in the totals: nothing went down, and everything A sent on it is
    // still there (quinn may still count its close datagram after we read it).
    for (field, before, after) in [
        ("bytes_sent", open.bytes_sent, closed.bytes_sent),
        ("bytes_received", open.bytes_received, closed.bytes_received),
        ("datagrams_sent", open.datagrams_sent, closed.datagrams_sent),
        (
            "datagrams_received",
            open.datagrams_received,
            closed.datagrams_received,
        ),
    ] {
        assert!(after >= before, "{field} went down on close: {before} -> {after}");
    }
    assert!(
        closed.bytes_sent <= to_b.stats().bytes_sent,
        "counted once: {closed:?}"
    );
    assert_eq!(closed.outbound_connections, 0);
    // Counted once, under its reason, on both sides (B heard the code from A).
    for totals in [closed.closed_by_reason, b.counters().closed_by_reason] {
        assert_eq!(totals.application[5], 1, "{totals:?}");
        assert_eq!(totals.of(&CloseReason::Application(5)), 1);
        assert_eq!(totals.total(), 1, "{totals:?}");
    }

    // A new connection: the totals are the closed one's plus the live one's, exactly.
    let (again, accepted) =
        bounded(async { tokio::join!(a.dial(b.peer_id(), b.local_addr()), b.accept()) }).await;
    let (again, accepted) = (again.expect("redial"), accepted.expect("accept"));
    exchange(&again, &accepted).await;
    let (low, high) = closed_share(&a, &again);
    assert!(
        (low..=high).contains(&closed.bytes_sent),
        "the closed connection's {} bytes, once: {low}..={high}",
        closed.bytes_sent
    );

    // A large code shares the last application bucket; the first close is still counted once.
    again.close(CloseReason::Application(300));
    eventually(|| a.counters().closed_by_reason.total() == 2).await;
    let reasons = a.counters().closed_by_reason;
    assert_eq!(reasons.application_other, 1, "{reasons:?}");
    assert_eq!(reasons.of(&CloseReason::Application(1000)), 1);
    assert_eq!(reasons.application[5], 1);
    assert_eq!(
        reasons.normal + reasons.duplicate + reasons.timed_out + reasons.lost,
        0,
        "{reasons:?}"
    );
    assert!(a.counters().bytes_sent >= high, "never down");
}

/// Two transports that dialed each other at once, and so hold two connections each: `(small, large, the
/// connection small dialed, the loser as small's `accept` hands it over)`.
async fn simultaneous_dial<N: Net>() -> (
    N::T,
    N::T,
    <N::T as Transport>::Connection,
    <N::T as Transport>::Connection,
) {
    // On a loaded machine the second dial may first look for a connection only after the first one's
    // handshake has reached its side: it then uses that connection, no dials cross, and no loser is
    // handed to `accept`. That is the transport working as it should; the crossing is staged again.
    for _ in 0..3 {
        let net = N::new();
        let a = net.bind(&key(1), config()).await;
        let b = net.bind(&key(2), config()).await;
        let (small, large) = if a.peer_id() < b.peer_id() { (a, b) } else { (b, a) };
        // The large side takes whatever it is handed and keeps it until the test ends.
        let large_accepts = large.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok(conn) = large_accepts.accept().await {
                held.push(conn);
            }
        });
        let (winner, other) = bounded(N::crossing_dials(&small, &large)).await;
        let winner = winner.expect("small dials");
        other.expect("large dials");
        // The small side's own dial wins, so what its `accept` yields is the loser.
        let Ok(loser) = tokio::time::timeout(WAIT / 2, small.accept()).await else {
            continue;
        };
        let loser = loser.expect("the loser is handed to accept");
        return (small, large, winner, loser);
    }
    panic!("three staged simultaneous dials never crossed");
}

pub(crate) async fn simultaneous_dial_loser_counted_once<N: Net>() {
    let (small, large, winner, loser) = simultaneous_dial::<N>().await;
    assert_eq!(
        (winner.direction(), loser.direction()),
        (Direction::Outbound, Direction::Inbound)
    );
    // Traffic on the loser before its grace ends (the peer's transport answers the stream header itself),
    // so it has bytes of its own in memory too.
    let mut stream = bounded(loser.open(PING))
        .await
        .expect("the loser is open until its grace ends");
    stream.send(&7u64).await.expect("send on the loser");
    let sent_on_loser = loser.stats().bytes_sent;
    assert!(sent_on_loser > 0, "{:?}", loser.stats());
    // The loser closes once its grace ends: the wait is the grace and then the usual bound (a loaded
    // machine took more than the 5 s a bare `WAIT` leaves after it).
    eventually_within(DUPLICATE_GRACE + WAIT, || {
        small.counters().closed_by_reason.duplicate == 1 && large.counters().closed_by_reason.duplicate == 1
    })
    .await;
    assert_eq!(loser.close_reason(), Some(CloseReason::Duplicate));
    for side in [&small, &large] {
        let reasons = side.counters().closed_by_reason;
        assert_eq!((reasons.duplicate, reasons.total()), (1, 1), "{reasons:?}");
        assert_eq!(reasons.of(&CloseReason::Duplicate), 1);
    }
    // The small side's totals are the winner's (live) plus the loser's (closed), the loser's once.
    let kept = small.connection(&large.peer_id()).expect("the winner");
    let (low, high) = closed_share(&small, &kept);
    let last = loser.stats().bytes_sent;
    assert!(
        high >= sent_on_loser,
        "the loser's {sent_on_loser} bytes are kept: {low}..={high}"
    );
    assert!(
        low <= last,
        "the loser's {last} bytes are counted once: {low}..={high}"
    );
}
