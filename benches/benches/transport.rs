//! Our QUIC transport against raw quinn configured the same way (the same TLS 1.3 configuration with
//! mutual ed25519 authentication, the same transport parameters), on 127.0.0.1:
//!
//! - throughput of one 256 MiB stream (ours: 1 MiB frames; raw: 1 MiB writes),
//! - p50/p99 round trip of a 64-byte request/response on one open stream,
//! - handshakes per second (sequential dials, each fully authenticated both ways, then closed).
//!
//! `cargo bench -p meshwork-benches --bench transport` runs the criterion groups (`ours`/`raw` in each);
//! `cargo bench -p meshwork-benches --bench transport -- --json` prints one JSON object with the figures
//! and the ours/raw ratios of a single interleaved run.
// Measuring needs the real clock.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use meshwork_identity::{Keypair, PeerId};
use meshwork_transport::quic::{QUINN_SERVER_NAME, quinn_client_config, quinn_server_config};
use meshwork_transport::{
    Config, Connection, ProtocolSpec, QuicConnection, QuicStream, QuicTransport, Transport,
};
use meshwork_wire::ProtocolId;
use tokio::runtime::Runtime;

const DATA: ProtocolId = ProtocolId::new("/bench/data/1");
const RTT: ProtocolId = ProtocolId::new("/bench/rtt/1");
const CHUNK: usize = 1024 * 1024;
const REQUEST: usize = 64;

fn config() -> Config {
    let mut config = Config::new([ProtocolSpec::new(DATA, CHUNK), ProtocolSpec::new(RTT, REQUEST)]);
    config.limits.max_inbound = 100_000;
    config.limits.max_outbound = 100_000;
    config
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Our side: a listening transport that sinks data streams and echoes RTT streams, and a dialer.
struct Ours {
    server: QuicTransport,
    client: QuicTransport,
}

impl Ours {
    async fn new() -> Self {
        let server = QuicTransport::bind(&Keypair::from_seed([1; 32]), loopback(), config())
            .await
            .expect("bind");
        let client = QuicTransport::bind(&Keypair::from_seed([2; 32]), loopback(), config())
            .await
            .expect("bind");
        let listener = server.clone();
        tokio::spawn(async move {
            while let Ok(conn) = listener.accept().await {
                tokio::spawn(async move {
                    while let Ok(stream) = conn.accept_stream().await {
                        tokio::spawn(serve_ours(stream));
                    }
                });
            }
        });
        Self { server, client }
    }

    async fn connect(&self) -> QuicConnection {
        self.client
            .dial(self.server.peer_id(), self.server.local_addr())
            .await
            .expect("dial")
    }

    async fn throughput(&self, bytes: usize) -> Duration {
        let conn = self.connect().await;
        let chunk = vec![0x5au8; CHUNK];
        let start = Instant::now();
        let mut stream = conn.open(DATA).await.expect("open");
        for _ in 0..bytes / CHUNK {
            stream.send_frame(&chunk).await.expect("send");
        }
        stream.finish().await.expect("finish");
        let got = stream.recv_frame().await.expect("ack").expect("ack frame");
        let elapsed = start.elapsed();
        assert_eq!(got, ((bytes / CHUNK * CHUNK) as u64).to_be_bytes());
        elapsed
    }

    async fn rtt_stream(&self) -> QuicStream {
        self.connect().await.open(RTT).await.expect("open")
    }

    async fn handshake(&self) -> Duration {
        let start = Instant::now();
        let conn = self.connect().await;
        let elapsed = start.elapsed();
        conn.close(meshwork_transport::CloseReason::Normal);
        elapsed
    }
}

async fn serve_ours(mut stream: QuicStream) {
    let mut buf = Vec::new();
    if stream.protocol() == DATA {
        let mut total = 0u64;
        while let Ok(true) = stream.recv_frame_into(&mut buf).await {
            total += buf.len() as u64;
        }
        let _ = stream.send_frame(&total.to_be_bytes()).await;
        let _ = stream.finish().await;
    } else {
        while let Ok(true) = stream.recv_frame_into(&mut buf).await {
            if stream.send_frame(&buf).await.is_err() {
                break;
            }
        }
    }
}

async fn rtt_ours(stream: &mut QuicStream, request: &[u8], reply: &mut Vec<u8>) -> Duration {
    let start = Instant::now();
    stream.send_frame(request).await.expect("send");
    assert!(stream.recv_frame_into(reply).await.expect("recv"));
    start.elapsed()
}

/// Raw quinn: the same TLS and transport configuration, no framing, no registry, no limits.
struct Raw {
    /// One connection reused for throughput, as our transport reuses its connection to a peer.
    data_conn: tokio::sync::OnceCell<quinn::Connection>,
    client: quinn::Endpoint,
    client_config: quinn::ClientConfig,
    server_addr: SocketAddr,
}

impl Raw {
    fn new() -> Self {
        let (server_key, client_key) = (Keypair::from_seed([3; 32]), Keypair::from_seed([4; 32]));
        // Same socket (buffer sizes) and same TLS/QUIC settings as our transport: only our layer differs.
        let endpoint = |key: &Keypair| {
            let socket = meshwork_transport::quic::udp_socket(loopback()).expect("bind");
            let server_config = quinn_server_config(key, &config()).expect("cfg");
            let runtime = Arc::new(quinn::TokioRuntime);
            quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                Some(server_config),
                socket,
                runtime,
            )
            .expect("endpoint")
        };
        let server = endpoint(&server_key);
        let client = endpoint(&client_key);
        let expected: PeerId = server_key.peer_id();
        let client_config = quinn_client_config(&client_key, &config(), expected).expect("cfg");
        let server_addr = server.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Some(incoming) = server.accept().await {
                tokio::spawn(async move {
                    let Ok(conn) = incoming.await else { return };
                    while let Ok((send, recv)) = conn.accept_bi().await {
                        tokio::spawn(serve_raw(send, recv));
                    }
                });
            }
        });
        Self {
            data_conn: tokio::sync::OnceCell::new(),
            client,
            client_config,
            server_addr,
        }
    }

    async fn connect(&self) -> quinn::Connection {
        let connecting =
            self.client
                .connect_with(self.client_config.clone(), self.server_addr, QUINN_SERVER_NAME);
        connecting.expect("connect").await.expect("handshake")
    }

    async fn throughput(&self, bytes: usize) -> Duration {
        let conn = self.data_conn.get_or_init(|| self.connect()).await;
        let chunk = vec![0x5au8; CHUNK];
        let start = Instant::now();
        let (mut send, mut recv) = conn.open_bi().await.expect("open");
        send.write_all(&[0]).await.expect("tag");
        for _ in 0..bytes / CHUNK {
            send.write_all(&chunk).await.expect("send");
        }
        send.finish().expect("finish");
        let mut ack = [0u8; 8];
        recv.read_exact(&mut ack).await.expect("ack");
        let elapsed = start.elapsed();
        assert_eq!(ack, ((bytes / CHUNK * CHUNK) as u64).to_be_bytes());
        elapsed
    }

    async fn rtt_stream(&self) -> (quinn::SendStream, quinn::RecvStream) {
        let (mut send, recv) = self.connect().await.open_bi().await.expect("open");
        send.write_all(&[1]).await.expect("tag");
        (send, recv)
    }

    async fn handshake(&self) -> Duration {
        let start = Instant::now();
        let conn = self.connect().await;
        let elapsed = start.elapsed();
        conn.close(0u32.into(), b"");
        elapsed
    }
}

async fn serve_raw(mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
    let mut tag = [0u8; 1];
    if recv.read_exact(&mut tag).await.is_err() {
        return;
    }
    if tag[0] == 0 {
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        while let Ok(Some(n)) = recv.read(&mut buf).await {
            total += n as u64;
        }
        let _ = send.write_all(&total.to_be_bytes()).await;
        let _ = send.finish();
    } else {
        let mut buf = [0u8; REQUEST];
        while recv.read_exact(&mut buf).await.is_ok() {
            if send.write_all(&buf).await.is_err() {
                break;
            }
        }
    }
}

async fn rtt_raw(stream: &mut (quinn::SendStream, quinn::RecvStream), request: &[u8]) -> Duration {
    let mut reply = [0u8; REQUEST];
    let start = Instant::now();
    stream.0.write_all(request).await.expect("send");
    stream.1.read_exact(&mut reply).await.expect("recv");
    start.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

/// One interleaved run of every measurement, printed as one JSON object.
fn json_report(rt: &Runtime) {
    const BYTES: usize = 256 * 1024 * 1024;
    const ROUNDS: usize = 6;
    const RTTS: usize = 2000;
    const HANDSHAKES: usize = 200;
    let (ours, raw) = rt.block_on(async { (Ours::new().await, Raw::new()) });
    let request = [0x42u8; REQUEST];
    let report = rt.block_on(async {
        // Throughput: best of ROUNDS, raw and ours alternating.
        let (mut tp_ours, mut tp_raw) = (Duration::MAX, Duration::MAX);
        for round in 0..ROUNDS {
            // Alternate which side goes first, so neither always runs on a warmer machine.
            if round % 2 == 0 {
                tp_raw = tp_raw.min(raw.throughput(BYTES).await);
                tp_ours = tp_ours.min(ours.throughput(BYTES).await);
            } else {
                tp_ours = tp_ours.min(ours.throughput(BYTES).await);
                tp_raw = tp_raw.min(raw.throughput(BYTES).await);
            }
        }
        // Round trips: warm up, then alternate blocks of 100.
        let (mut ours_stream, mut raw_stream) = (ours.rtt_stream().await, raw.rtt_stream().await);
        let mut reply = Vec::new();
        let (mut lat_ours, mut lat_raw) = (Vec::new(), Vec::new());
        for _ in 0..100 {
            rtt_ours(&mut ours_stream, &request, &mut reply).await;
            rtt_raw(&mut raw_stream, &request).await;
        }
        for _ in 0..RTTS / 100 {
            for _ in 0..100 {
                lat_raw.push(rtt_raw(&mut raw_stream, &request).await);
            }
            for _ in 0..100 {
                lat_ours.push(rtt_ours(&mut ours_stream, &request, &mut reply).await);
            }
        }
        lat_ours.sort();
        lat_raw.sort();
        // Handshakes: alternate blocks, total time of each side.
        let (mut hs_ours, mut hs_raw) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..HANDSHAKES / 20 {
            for _ in 0..20 {
                hs_raw += raw.handshake().await;
            }
            for _ in 0..20 {
                hs_ours += ours.handshake().await;
            }
        }
        let mib = BYTES as f64 / (1024.0 * 1024.0);
        let (tp_ours, tp_raw) = (mib / tp_ours.as_secs_f64(), mib / tp_raw.as_secs_f64());
        let (p50_ours, p50_raw) = (percentile(&lat_ours, 0.5), percentile(&lat_raw, 0.5));
        let (p99_ours, p99_raw) = (percentile(&lat_ours, 0.99), percentile(&lat_raw, 0.99));
        let hs = HANDSHAKES as f64;
        let (hs_ours, hs_raw) = (hs / hs_ours.as_secs_f64(), hs / hs_raw.as_secs_f64());
        format!(
            "{{\"bench\":\"transport\",\"addr\":\"127.0.0.1\",\"stream_bytes\":{BYTES},\"rtt_samples\":{RTTS},\
             \"handshakes\":{HANDSHAKES},\
             \"throughput_mib_per_s_ours\":{tp_ours:.1},\"throughput_mib_per_s_raw\":{tp_raw:.1},\
             \"throughput_ratio\":{:.3},\
             \"rtt_us_p50_ours\":{p50_ours:.1},\"rtt_us_p50_raw\":{p50_raw:.1},\"rtt_p50_ratio\":{:.3},\
             \"rtt_us_p99_ours\":{p99_ours:.1},\"rtt_us_p99_raw\":{p99_raw:.1},\"rtt_p99_ratio\":{:.3},\
             \"handshakes_per_s_ours\":{hs_ours:.1},\"handshakes_per_s_raw\":{hs_raw:.1},\"handshake_ratio\":{:.3}}}",
            tp_ours / tp_raw,
            p50_ours / p50_raw,
            p99_ours / p99_raw,
            hs_ours / hs_raw,
        )
    });
    println!("{report}");
}

fn criterion_benches(c: &mut Criterion, rt: &Runtime) {
    let (ours, raw) = rt.block_on(async { (Ours::new().await, Raw::new()) });
    let request = [0x42u8; REQUEST];

    let mut group = c.benchmark_group("transport_rtt_64b");
    let mut ours_stream = rt.block_on(ours.rtt_stream());
    let mut reply = Vec::new();
    group.bench_function("ours", |b| {
        b.iter(|| rt.block_on(rtt_ours(&mut ours_stream, &request, &mut reply)))
    });
    let mut raw_stream = rt.block_on(raw.rtt_stream());
    group.bench_function("raw", |b| {
        b.iter(|| rt.block_on(rtt_raw(&mut raw_stream, &request)))
    });
    group.finish();

    let mut group = c.benchmark_group("transport_handshake");
    group.sample_size(20);
    group.bench_function("ours", |b| b.iter(|| rt.block_on(ours.handshake())));
    group.bench_function("raw", |b| b.iter(|| rt.block_on(raw.handshake())));
    group.finish();

    const BYTES: usize = 32 * CHUNK;
    let mut group = c.benchmark_group("transport_throughput_32mib");
    group.sample_size(10).throughput(Throughput::Bytes(BYTES as u64));
    group.bench_function("ours", |b| b.iter(|| rt.block_on(ours.throughput(BYTES))));
    group.bench_function("raw", |b| b.iter(|| rt.block_on(raw.throughput(BYTES))));
    group.finish();
}

fn main() {
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("rt"),
    );
    if std::env::args().any(|arg| arg == "--json") {
        json_report(&rt);
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    criterion_benches(&mut criterion, &rt);
    criterion.final_summary();
}
