//! QUIC admission under attack: per-address caps and a flood of handshakes that never finish.

use std::net::SocketAddr;
use std::sync::Arc;

use meshwork_identity::PeerId;
use meshwork_transport::quic::{QUINN_SERVER_NAME, quinn_client_config};
use meshwork_transport::{Config, DialError, QuicTransport, Transport};
use tokio::net::UdpSocket;

use crate::harness::{bounded, config, eventually, key};

async fn bind_at(n: u32, ip: [u8; 4], config: Config) -> QuicTransport {
    QuicTransport::bind(&key(n), SocketAddr::from((ip, 0)), config)
        .await
        .expect("bind")
}

/// A black hole at 127.2.0.1: what reaches it goes on to `to`, and nothing `to` answers comes back, so
/// the handshakes it carries look to `to` like ones from a forged source address. Returns its
/// address and the task relaying.
async fn black_hole(to: SocketAddr) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let hole = Arc::new(UdpSocket::bind("127.2.0.1:0").await.expect("bind the black hole"));
    let hole_addr = hole.local_addr().expect("addr");
    let relay = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((len, from)) = hole.recv_from(&mut buf).await {
            if from != to {
                let _ = hole.send_to(&buf[..len], to).await;
            }
        }
    });
    (hole_addr, relay)
}

/// A bare quinn client endpoint at 127.0.0.1, and a client config (as key `n`) for the transport `id`.
fn client_endpoint(n: u32, id: PeerId) -> (quinn::Endpoint, quinn::ClientConfig) {
    let socket = meshwork_transport::quic::udp_socket("127.0.0.1:0".parse().expect("addr")).expect("udp");
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .expect("endpoint");
    let client = quinn_client_config(&key(n), &config(), id).expect("client config");
    (endpoint, client)
}

/// Starts `n` handshakes with the transport `id` through `hole` that never finish.
fn never_finished(id: PeerId, hole: SocketAddr, n: usize) -> Vec<tokio::task::JoinHandle<()>> {
    let (endpoint, client) = client_endpoint(99, id);
    (0..n)
        .map(|_| {
            let connecting = endpoint
                .connect_with(client.clone(), hole, QUINN_SERVER_NAME)
                .expect("connect");
            tokio::spawn(async move {
                let _ = connecting.await;
            })
        })
        .collect()
}

/// One IP gets at most `max_inbound_per_ip` inbound connections; another /24 still gets in.
pub(crate) async fn per_ip_cap() {
    let mut limited = config();
    limited.limits = Config::default().limits; // the default caps, not the devnet's
    limited.limits.max_inbound_per_ip = 3;
    let listener = bind_at(0, [127, 0, 0, 1], limited).await;
    let (id, addr) = (listener.peer_id(), listener.local_addr());
    {
        let listener = listener.clone();
        tokio::spawn(async move { while listener.accept().await.is_ok() {} });
    }
    let mut held = Vec::new();
    for n in 1..=3 {
        let dialer = bind_at(n, [127, 0, 0, 1], config()).await;
        bounded(dialer.dial(id, addr)).await.expect("within the cap");
        held.push(dialer);
    }
    let fourth = bind_at(4, [127, 0, 0, 1], config()).await;
    let refused = bounded(fourth.dial(id, addr))
        .await
        .expect_err("over the per-IP cap");
    assert!(matches!(refused, DialError::Refused), "{refused:?}");
    assert_eq!(listener.counters().refused_by_address, 1);
    // Another prefix (127.1.0.0/24 is loopback too on Linux) is not affected.
    let other = bind_at(5, [127, 1, 0, 1], config()).await;
    bounded(other.dial(id, addr)).await.expect("another prefix");
}

/// 300 handshakes from one socket that never answer (the red team's lock-out) do not keep an honest peer
/// out: past the half-open budget the listener answers with stateless Retries, which the flooder never
/// completes and an honest peer does.
pub(crate) async fn initial_flood_does_not_lock_out() {
    let listener = bind_at(0, [127, 0, 0, 1], config()).await;
    let (id, addr) = (listener.peer_id(), listener.local_addr());
    {
        let listener = listener.clone();
        tokio::spawn(async move { while listener.accept().await.is_ok() {} });
    }
    // Initials from many client connections leave through one socket at 127.2.0.1, and nothing the
    // listener answers ever comes back.
    let (hole, relay) = black_hole(addr).await;
    let pending = never_finished(id, hole, 300);
    // The budget fills and the rest of the flood is answered with Retries into the hole.
    eventually(|| listener.counters().retries_sent >= 100).await;
    assert!(listener.counters().half_open <= 32, "{:?}", listener.counters());
    // An honest peer dialing now gets in (through a Retry of its own), well within its handshake time.
    let honest = bind_at(1, [127, 0, 0, 1], config()).await;
    bounded(honest.dial(id, addr))
        .await
        .expect("the honest peer is admitted during the flood");
    relay.abort();
    for task in pending {
        task.abort();
    }
}

/// Initials from a forged source address, never answered (here they leave through a socket at
/// 127.2.0.1 that drops every answer), do not hold that address at its cap: a peer really there
/// still connects. Counted from their first packet, four of them, below the half-open budget, kept
/// it out for a handshake timeout.
pub(crate) async fn spoofed_initials_do_not_lock_an_address_out() {
    let mut limited = config();
    limited.limits = Config::default().limits; // four per IP
    let listener = bind_at(0, [127, 0, 0, 1], limited).await;
    let (id, addr) = (listener.peer_id(), listener.local_addr());
    {
        let listener = listener.clone();
        tokio::spawn(async move { while listener.accept().await.is_ok() {} });
    }
    let (hole, relay) = black_hole(addr).await;
    let max_per_ip = Config::default().limits.max_inbound_per_ip;
    let pending = never_finished(id, hole, max_per_ip);
    // Each is a handshake under way, from 127.2.0.1 as far as the listener can tell.
    eventually(|| listener.counters().half_open >= max_per_ip as u64).await;
    let victim = bind_at(1, [127, 2, 0, 1], config()).await;
    bounded(victim.dial(id, addr))
        .await
        .expect("the address's real peer is admitted");
    assert_eq!(listener.counters().refused_by_address, 0);
    relay.abort();
    for task in pending {
        task.abort();
    }
}

/// A relay at `at` that carries one client's handshake to `to` and lets only the listener's first
/// answer back (its Retry): the client proves its address, then hears nothing more, so the listener
/// holds a validated handshake that never finishes. Returns the relay's address and its task.
async fn grey_hole(at: [u8; 4], to: SocketAddr) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = UdpSocket::bind(SocketAddr::from((at, 0)))
        .await
        .expect("bind the grey hole");
    let addr = socket.local_addr().expect("addr");
    let relay = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        let (mut client, mut answered) = (None, false);
        while let Ok((len, from)) = socket.recv_from(&mut buf).await {
            if from != to {
                client = Some(from);
                let _ = socket.send_to(&buf[..len], to).await;
            } else if let (Some(client), false) = (client, answered) {
                answered = true;
                let _ = socket.send_to(&buf[..len], client).await;
            }
        }
    });
    (addr, relay)
}

/// Handshakes that answer the Retry and then stall, one from each of 16 networks (each within every
/// per-address cap), do not pile up past `max_handshakes`: each newcomer evicts the oldest handshake
/// of the most crowded network group, and an honest peer still gets in. Without the ceiling the
/// listener held all 20.
pub(crate) async fn stalled_validated_handshakes_are_evicted_past_the_ceiling() {
    let mut limited = config();
    limited.limits.max_half_open = 4;
    limited.limits.max_handshakes = 8;
    let listener = bind_at(0, [127, 0, 0, 1], limited).await;
    let (id, addr) = (listener.peer_id(), listener.local_addr());
    {
        let listener = listener.clone();
        tokio::spawn(async move { while listener.accept().await.is_ok() {} });
    }
    // The half-open budget is full of unvalidated handshakes, so every newcomer gets a Retry.
    let (hole, relay) = black_hole(addr).await;
    let mut tasks = never_finished(id, hole, 4);
    tasks.push(relay);
    eventually(|| listener.counters().half_open >= 4).await;

    let (endpoint, client) = client_endpoint(98, id);
    let mut most = 0;
    for net in 1..=16u8 {
        let (grey, relay) = grey_hole([127, 10 + net, 0, 1], addr).await;
        tasks.push(relay);
        let connecting = endpoint
            .connect_with(client.clone(), grey, QUINN_SERVER_NAME)
            .expect("connect");
        tasks.push(tokio::spawn(async move {
            let _ = connecting.await;
        }));
        // Its Retry answered, it holds a validated place (or took another's).
        let retries = u64::from(net);
        eventually(|| listener.counters().retries_sent >= retries).await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        most = most.max(listener.counters().half_open);
    }
    let counters = listener.counters();
    assert!(most <= 9, "{most} handshakes held at once: {counters:?}");
    assert!(counters.handshakes_evicted >= 12, "{counters:?}");

    let evicted = counters.handshakes_evicted;
    let honest = bind_at(1, [127, 5, 0, 1], config()).await;
    bounded(honest.dial(id, addr))
        .await
        .expect("an honest peer gets in past the stalled handshakes");
    assert!(listener.counters().handshakes_evicted > evicted);
    for task in tasks {
        task.abort();
    }
}
