//! One trait over both transports, so each behaviour is written once.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::Keypair;
use meshwork_transport::{
    Config, Connection, DialError, MemoryNetwork, MemoryTransport, ProtocolSpec, QuicTransport, Stream,
    Transport,
};
use meshwork_wire::ProtocolId;

pub(crate) const PING: ProtocolId = ProtocolId::new("/test/ping/1");
pub(crate) const CHAT: ProtocolId = ProtocolId::new("/test/chat/1");
pub(crate) const SECRET: ProtocolId = ProtocolId::new("/test/secret/1");

/// The bound on every wait in these tests.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// A stream of transport `T`.
#[allow(dead_code)]
pub(crate) type StreamOf<T> = Stream<
    <<T as Transport>::Connection as Connection>::Writer,
    <<T as Transport>::Connection as Connection>::Reader,
>;

/// A network the tests can bind transports on.
pub(crate) trait Net: Send + Sync + Sized + 'static {
    /// The transport under test.
    type T: Transport + Clone;
    /// Whether a full listener evicts an inbound peer for a newcomer (QUIC) or refuses it (memory).
    const EVICTS: bool;
    /// Whether traffic travels in packets, with handshakes, acknowledgements and a round-trip time (QUIC),
    /// or only as the bytes written into stream pipes (memory).
    const PACKETS: bool;
    /// A fresh network.
    fn new() -> Self;
    /// A transport for `keypair` at 127.0.0.1 on a free port.
    fn bind(&self, keypair: &Keypair, config: Config) -> impl Future<Output = Self::T> + Send;
    /// `a` and `b` dial each other at once, so that both dials make a connection: `(a's, b's)`.
    fn crossing_dials(
        a: &Self::T,
        b: &Self::T,
    ) -> impl Future<Output = (Dialed<Self::T>, Dialed<Self::T>)> + Send;
}

/// What a dial on transport `T` returns.
pub(crate) type Dialed<T> = Result<<T as Transport>::Connection, DialError>;

/// Real QUIC on 127.0.0.1.
pub(crate) struct Quic;

impl Net for Quic {
    type T = QuicTransport;
    const EVICTS: bool = true;
    const PACKETS: bool = true;
    fn new() -> Self {
        Self
    }
    async fn bind(&self, keypair: &Keypair, config: Config) -> QuicTransport {
        QuicTransport::bind(keypair, loopback(), config)
            .await
            .expect("bind 127.0.0.1:0")
    }
    async fn crossing_dials(
        a: &QuicTransport,
        b: &QuicTransport,
    ) -> (Dialed<QuicTransport>, Dialed<QuicTransport>) {
        // Both look for a connection before either handshake's first round trip, so both dial.
        tokio::join!(
            a.dial(b.peer_id(), b.local_addr()),
            b.dial(a.peer_id(), a.local_addr())
        )
    }
}

/// The in-memory network.
pub(crate) struct Memory(MemoryNetwork);

impl Net for Memory {
    type T = MemoryTransport;
    const EVICTS: bool = false;
    const PACKETS: bool = false;
    fn new() -> Self {
        Self(MemoryNetwork::new())
    }
    async fn bind(&self, keypair: &Keypair, config: Config) -> MemoryTransport {
        MemoryTransport::bind(&self.0, keypair, loopback(), config).expect("bind")
    }
    async fn crossing_dials(
        a: &MemoryTransport,
        b: &MemoryTransport,
    ) -> (Dialed<MemoryTransport>, Dialed<MemoryTransport>) {
        // An in-memory dial completes without waiting: two overlap only when two threads meet within
        // microseconds. The second dial is made as if it had crossed the first.
        let first = a.dial(b.peer_id(), b.local_addr()).await;
        (first, b.dial_crossing(a.peer_id(), a.local_addr()).await)
    }
}

pub(crate) fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The keypair numbered `n`.
pub(crate) fn key(n: u32) -> Keypair {
    let mut seed = [0x5a; 32];
    seed[..4].copy_from_slice(&n.to_be_bytes());
    Keypair::from_seed(seed)
}

/// A config speaking PING and CHAT with small limits that keep the tests fast.
pub(crate) fn config() -> Config {
    let mut config = Config::new([ProtocolSpec::new(PING, 1024), ProtocolSpec::new(CHAT, 64 * 1024)]);
    config.timeouts.handshake = Duration::from_secs(10);
    // Every test peer shares 127.0.0.1; the per-address caps have tests of their own.
    config.limits = config.limits.loopback_devnet();
    config
}

/// Waits for `fut`, failing the test after [`WAIT`].
pub(crate) async fn bounded<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(WAIT, fut).await.expect("timed out")
}

/// Two transports, `a` connected to `b`: `(a, b, a's connection, b's connection)`.
pub(crate) async fn pair<N: Net>(
    net: &N,
    config_a: Config,
    config_b: Config,
) -> (
    N::T,
    N::T,
    <N::T as Transport>::Connection,
    <N::T as Transport>::Connection,
) {
    let a = net.bind(&key(1), config_a).await;
    let b = net.bind(&key(2), config_b).await;
    let (dialed, accepted) =
        bounded(async { tokio::join!(a.dial(b.peer_id(), b.local_addr()), b.accept()) }).await;
    (a, b, dialed.expect("dial"), accepted.expect("accept"))
}

/// Waits (bounded by [`WAIT`]) until `condition` holds.
pub(crate) async fn eventually(condition: impl FnMut() -> bool) {
    eventually_within(WAIT, condition).await;
}

/// Waits until `condition` holds, failing the test after `limit`.
pub(crate) async fn eventually_within(limit: Duration, mut condition: impl FnMut() -> bool) {
    let wait = async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(limit, wait).await.expect("timed out");
}
