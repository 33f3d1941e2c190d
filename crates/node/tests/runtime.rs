//! The runtime's own behaviour, on the in-memory transport (and on QUIC where a test says so): timers,
//! calls, dials, hostile frames, metrics and shutdown.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_node::{CLOSE_PROTOCOL_VIOLATION, Events, Handle, Node, NodeBuilder, NodeConfig, NodeError};
use meshwork_transport::{
    CloseReason, Config, Connection, MemoryNetwork, MemoryTransport, ProtocolSpec, QuicTransport, Transport,
};
use meshwork_wire::{Input, Instant, Output, Protocol, ProtocolId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// A protocol that reports what happens to it, and does what its commands say.
#[derive(Default)]
struct Probe {
    timers_fired: u32,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Msg(u32);

#[derive(Debug)]
enum Cmd {
    TimerIn(Duration, u32),
    Send(PeerId, u32),
    Dial(PeerId),
}

#[derive(Debug, PartialEq)]
enum Ev {
    Up(PeerId),
    Down(PeerId),
    Got(PeerId, u32),
    Fired(u32, Instant),
}

impl Protocol for Probe {
    type Message = Msg;
    type Command = Cmd;
    type Event = Ev;
    type Timer = u32;
    const ID: ProtocolId = ProtocolId::new("/test/probe/1");
    const MAX_MESSAGE_SIZE: usize = 64;

    fn handle(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        match input {
            Input::PeerUp(peer) => out.push(Output::Emit(Ev::Up(peer))),
            Input::PeerDown(peer) => out.push(Output::Emit(Ev::Down(peer))),
            Input::Message { from, msg } => out.push(Output::Emit(Ev::Got(from, msg.0))),
            Input::Timer(n) => {
                self.timers_fired += 1;
                out.push(Output::Emit(Ev::Fired(n, now)));
            }
            Input::Command(Cmd::TimerIn(after, n)) => out.push(Output::Schedule { after, timer: n }),
            Input::Command(Cmd::Send(to, n)) => out.push(Output::Send { to, msg: Msg(n) }),
            Input::Command(Cmd::Dial(peer)) => out.push(Output::Dial(peer)),
        }
    }
}

const WAIT: Duration = Duration::from_secs(20);

async fn start(
    network: &MemoryNetwork,
    seed: u8,
    config: NodeConfig,
) -> (Node, Handle<Probe>, Events<Probe>) {
    let mut builder = NodeBuilder::new(config);
    let (handle, events) = builder.register(Probe::default()).unwrap();
    let key = Keypair::from_seed([seed; 32]);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let transport = MemoryTransport::bind(network, &key, any, Config::new(builder.protocols())).unwrap();
    (builder.start(transport).await.unwrap(), handle, events)
}

async fn next(events: &mut Events<Probe>) -> Ev {
    timeout(WAIT, events.recv())
        .await
        .expect("no event in time")
        .expect("node stopped")
}

#[tokio::test]
async fn messages_timers_and_calls_reach_the_protocol() {
    let network = MemoryNetwork::new();
    let (a, a_probe, mut a_events) = start(&network, 1, NodeConfig::default()).await;
    let (b, _b_probe, mut b_events) = start(&network, 2, NodeConfig::default()).await;
    a.dial(b.peer_id(), b.local_addr()).await.unwrap();
    assert_eq!(next(&mut a_events).await, Ev::Up(b.peer_id()));
    assert_eq!(next(&mut b_events).await, Ev::Up(a.peer_id()));
    assert_eq!(a.peers().await.unwrap(), vec![(b.peer_id(), b.local_addr())]);

    a_probe.command(Cmd::Send(b.peer_id(), 42)).await.unwrap();
    assert_eq!(next(&mut b_events).await, Ev::Got(a.peer_id(), 42));

    // Timers come back as data, in deadline order, with protocol time moving forward.
    a_probe
        .command(Cmd::TimerIn(Duration::from_millis(60), 2))
        .await
        .unwrap();
    a_probe
        .command(Cmd::TimerIn(Duration::from_millis(10), 1))
        .await
        .unwrap();
    let (Ev::Fired(1, t1), Ev::Fired(2, t2)) = (next(&mut a_events).await, next(&mut a_events).await) else {
        panic!("timers fired out of order");
    };
    assert!(
        t2.saturating_duration_since(t1) >= Duration::from_millis(40),
        "{t1:?} then {t2:?}"
    );
    // Protocol time is Unix time.
    assert!(t1.as_duration() > Duration::from_secs(1_700_000_000));
    assert_eq!(a_probe.with(|p| p.timers_fired).await.unwrap(), 2);

    // A closure may push outputs, which are carried out like the protocol's own.
    let to = b.peer_id();
    a_probe
        .call(move |_, _, out| out.push(Output::Send { to, msg: Msg(7) }))
        .await
        .unwrap();
    assert_eq!(next(&mut b_events).await, Ev::Got(a.peer_id(), 7));

    // Closing the connection tells both sides.
    a.disconnect(b.peer_id()).await.unwrap();
    assert_eq!(next(&mut a_events).await, Ev::Down(b.peer_id()));
    assert_eq!(next(&mut b_events).await, Ev::Down(a.peer_id()));

    // After shutdown, handles say so.
    a.shutdown().await.unwrap();
    assert!(matches!(
        a_probe.command(Cmd::Send(to, 1)).await,
        Err(NodeError::Stopped)
    ));
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_dial_without_an_address_or_to_nobody_reports_the_peer_down() {
    let network = MemoryNetwork::new();
    let (a, probe, mut events) = start(&network, 1, NodeConfig::default()).await;
    let stranger = Keypair::from_seed([9; 32]).peer_id();
    probe.command(Cmd::Dial(stranger)).await.unwrap();
    assert_eq!(next(&mut events).await, Ev::Down(stranger));
    // An address where nobody listens: the dial fails, and the protocol hears of it.
    a.add_address(stranger, "127.0.0.1:9".parse().unwrap())
        .await
        .unwrap();
    probe.command(Cmd::Dial(stranger)).await.unwrap();
    assert_eq!(next(&mut events).await, Ev::Down(stranger));
    assert!(
        a.metrics().render().contains("meshwork_dial_failures_total 2"),
        "{}",
        a.metrics().render()
    );
    a.shutdown().await.unwrap();
}

/// A raw transport playing a hostile peer: connects to `node` and writes `bytes` on a probe stream.
async fn hostile_peer_sends(bytes: &[u8]) -> (CloseReason, String) {
    let network = MemoryNetwork::new();
    let (node, _probe, _events) = start(&network, 1, NodeConfig::default()).await;
    let spec = ProtocolSpec::of::<Probe>();
    let key = Keypair::from_seed([66; 32]);
    let evil = MemoryTransport::bind(
        &network,
        &key,
        "127.0.0.1:0".parse().unwrap(),
        Config::new([spec]),
    )
    .unwrap();
    let conn = evil.dial(node.peer_id(), node.local_addr()).await.unwrap();
    let mut stream = conn.open(Probe::ID).await.unwrap();
    stream.send_raw(bytes).await.unwrap();
    let reason = timeout(WAIT, conn.closed())
        .await
        .expect("the node kept a hostile peer");
    let metrics = node.metrics().render();
    node.shutdown().await.unwrap();
    (reason, metrics)
}

#[tokio::test]
async fn a_second_stream_for_a_protocol_is_refused_while_the_first_is_read() {
    // Two streams for one protocol at once, each with a valid frame: only the first is read.
    let network = MemoryNetwork::new();
    let (node, _probe, mut events) = start(&network, 1, NodeConfig::default()).await;
    let key = Keypair::from_seed([66; 32]);
    let config = Config::new([ProtocolSpec::of::<Probe>()]);
    let evil = MemoryTransport::bind(&network, &key, "127.0.0.1:0".parse().unwrap(), config).unwrap();
    let conn = evil.dial(node.peer_id(), node.local_addr()).await.unwrap();
    let mut streams = Vec::new();
    for n in [7u8, 8] {
        let mut stream = conn.open_eager(Probe::ID).await.unwrap();
        stream.send_raw(&[0, 0, 0, 1, n]).await.unwrap();
        streams.push(stream);
    }
    let evil_id = key.peer_id();
    let mut got = Vec::new();
    // Bounded: the events that come within the wait.
    while let Ok(Some(event)) = timeout(Duration::from_millis(500), events.recv()).await {
        if let Ev::Got(from, n) = event {
            assert_eq!(from, evil_id);
            got.push(n);
        }
    }
    assert_eq!(got, vec![7], "the second stream's frame is not read");
    assert!(conn.close_reason().is_none(), "refused, not penalised");
    let metrics = node.metrics().render();
    assert!(
        metrics.contains("meshwork_invalid_frames_total{protocol=\"/test/probe/1\"} 1"),
        "{metrics}"
    );
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_frame_that_does_not_decode_gets_the_peer_disconnected() {
    // A 3-byte body that is not a `Msg` (a u32 varint cannot continue past 5 bytes; 0xff 0xff 0xff
    // stops mid-varint).
    let (reason, metrics) = hostile_peer_sends(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await;
    assert_eq!(reason, CloseReason::Application(CLOSE_PROTOCOL_VIOLATION));
    assert!(
        metrics.contains("meshwork_invalid_frames_total{protocol=\"/test/probe/1\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_frame_over_the_protocol_maximum_gets_the_peer_disconnected() {
    // Announces 4 GiB; refused from the header, before anything is allocated.
    let (reason, metrics) = hostile_peer_sends(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).await;
    assert_eq!(reason, CloseReason::Application(CLOSE_PROTOCOL_VIOLATION));
    assert!(
        metrics.contains("meshwork_invalid_frames_total{protocol=\"/test/probe/1\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_full_event_queue_drops_and_counts_instead_of_stalling() {
    let network = MemoryNetwork::new();
    let config = NodeConfig {
        event_queue: 2,
        ..NodeConfig::default()
    };
    let (a, probe, mut events) = start(&network, 1, config).await;
    for n in 0..5 {
        probe.command(Cmd::TimerIn(Duration::ZERO, n)).await.unwrap();
    }
    // The node stays responsive while nobody reads events.
    timeout(WAIT, async {
        while probe.with(|p| p.timers_fired).await.unwrap() < 5 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert!(matches!(next(&mut events).await, Ev::Fired(0, _)));
    assert!(matches!(next(&mut events).await, Ev::Fired(1, _)));
    assert!(events.try_recv().is_none(), "only the queue's capacity was kept");
    assert!(
        a.metrics()
            .render()
            .contains("meshwork_event_drops_total{protocol=\"/test/probe/1\"} 3")
    );
    a.shutdown().await.unwrap();
}

/// The node task charges each protocol the CPU time of its calls into it, by the thread's CPU clock.
#[tokio::test]
async fn a_protocol_is_charged_the_cpu_time_of_its_calls() {
    let network = MemoryNetwork::new();
    let (a, a_probe, _events) = start(&network, 1, NodeConfig::default()).await;
    let before = a.metrics().protocol_cpu(Probe::ID.as_str());
    // Busy work inside the protocol's state, which also measures itself with the same clock.
    let spun = a_probe
        .call(|_, _, _| {
            let start = meshwork_node::thread_cpu_time().unwrap();
            let mut x = 0x9e37_79b9_7f4a_7c15_u64;
            for i in 0..30_000_000_u64 {
                x = (x ^ i).wrapping_mul(0x5851_f42d_4c95_7f2d).rotate_left(17);
            }
            std::hint::black_box(x);
            meshwork_node::thread_cpu_time().unwrap() - start
        })
        .await
        .unwrap();
    // The charge is recorded after the call returns: one more call orders it before the read.
    a_probe.with(|_| ()).await.unwrap();
    let charged = a.metrics().protocol_cpu(Probe::ID.as_str()) - before;
    assert!(spun > Duration::ZERO);
    assert!(
        charged >= spun,
        "charged {charged:?} for a call that used {spun:?}"
    );
    assert_eq!(a.metrics().protocol_cpu("/test/absent/1"), Duration::ZERO);
    assert!(
        a.metrics()
            .render()
            .contains("meshwork_protocol_cpu_seconds_total{protocol=\"/test/probe/1\"}")
    );
    a.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_are_served_over_http() {
    let network = MemoryNetwork::new();
    let config = NodeConfig {
        metrics_addr: Some("127.0.0.1:0".parse().unwrap()),
        ..NodeConfig::default()
    };
    let (a, _probe, _events) = start(&network, 1, config).await;
    a.metrics()
        .gauge("chain_height", "Height of the best chain")
        .set(17);
    let addr = a.metrics_addr().unwrap();
    let get = |path: &'static str| async move {
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        socket.read_to_string(&mut response).await.unwrap();
        response
    };
    let page = timeout(WAIT, get("/metrics")).await.unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("meshwork_chain_height 17"), "{page}");
    assert!(page.contains("meshwork_peers 0"), "{page}");
    let missing = timeout(WAIT, get("/nothing")).await.unwrap();
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    a.shutdown().await.unwrap();
}

/// A node that shut down lets go of everything: once its handles are dropped, its QUIC endpoint is
/// gone, so its UDP port can be bound again (an application may stop and start nodes for as long as
/// it runs).
#[tokio::test]
async fn a_node_that_shut_down_frees_its_socket() {
    let start_quic = |seed: u8| async move {
        let mut builder = NodeBuilder::new(NodeConfig::default());
        let (handle, events) = builder.register(Probe::default()).unwrap();
        let key = Keypair::from_seed([seed; 32]);
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let transport = QuicTransport::bind(&key, any, Config::new(builder.protocols()))
            .await
            .unwrap();
        (builder.start(transport).await.unwrap(), handle, events)
    };
    let (a, a_probe, mut a_events) = start_quic(11).await;
    let (b, _b_probe, mut b_events) = start_quic(12).await;
    a.dial(b.peer_id(), b.local_addr()).await.unwrap();
    assert_eq!(next(&mut a_events).await, Ev::Up(b.peer_id()));
    a_probe.command(Cmd::Send(b.peer_id(), 5)).await.unwrap();
    assert!(matches!(next(&mut b_events).await, Ev::Up(_) | Ev::Got(..)));
    let (a_addr, b_addr) = (a.local_addr(), b.local_addr());
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    drop((a, a_probe, a_events, b, _b_probe, b_events));
    for addr in [a_addr, b_addr] {
        let mut freed = false;
        for _ in 0..100 {
            if std::net::UdpSocket::bind(addr).is_ok() {
                freed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(freed, "{addr} is still bound 5 s after its node shut down");
    }
}
