//! QUIC admission under attack: per-address caps and a flood of handshakes that never finish.

use std::net::SocketAddr;
use std::sync::Arc;

use meshwork_transport::quic::{QUINN_SERVER_NAME, quinn_client_config};
use meshwork_transport::{Config, DialError, QuicTransport, Transport};
use tokio::net::UdpSocket;

use crate::harness::{bounded, config, eventually, key};

async fn bind_at(n: u32, ip: [u8; 4], config: Config) -> QuicTransport {
    QuicTransport::bind(&key(n), SocketAddr::from((ip, 0)), config)
        .await
        .expect("bind")
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
    // A black hole: Initials from many client connections leave through one socket at 127.2.0.1, and
    // nothing the listener answers ever comes back.
    let hole = Arc::new(UdpSocket::bind("127.2.0.1:0").await.expect("bind the black hole"));
    let hole_addr = hole.local_addr().expect("addr");
    let relay = {
        let hole = hole.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((len, from)) = hole.recv_from(&mut buf).await {
                if from != addr {
                    let _ = hole.send_to(&buf[..len], addr).await;
                }
            }
        })
    };
    let socket = meshwork_transport::quic::udp_socket("127.0.0.1:0".parse().expect("addr")).expect("udp");
    let flooder = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .expect("endpoint");
    let client = quinn_client_config(&key(99), &config(), id).expect("client config");
    let mut pending = Vec::new();
    for _ in 0..300 {
        let connecting = flooder
            .connect_with(client.clone(), hole_addr, QUINN_SERVER_NAME)
            .expect("connect");
        pending.push(tokio::spawn(connecting));
    }
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
