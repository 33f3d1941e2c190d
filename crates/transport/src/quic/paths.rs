//! Relay paths: QUIC connections whose datagrams travel through a relay circuit instead of the UDP
//! socket.
//!
//! A peer behind a symmetric NAT cannot be reached directly, so its packets go through a public relay
//! (`meshwork-nat`'s relay protocol). The relay must not see inside the connection: the QUIC session
//! (TLS 1.3, both peers' ed25519 keys) runs end to end between the two peers, and the relay carries its
//! datagrams as opaque bytes. To give quinn such a path, the transport's socket ([`PathSocket`]) wraps
//! the real one: a datagram for a circuit's virtual address ([`meshwork_wire::relayed`]) goes to the
//! driver that owns the circuit ([`RelayPaths::outbound`]) instead of the network, and a datagram the
//! driver receives from the circuit ([`RelayPaths::deliver`]) comes out of the socket as if it had
//! arrived from that address. Everything else about the connection (handshake, admission, streams,
//! limits) is the same as a direct one's. This is how iroh's "magic socket" carries QUIC over its
//! relays, on quinn's `AsyncUdpSocket`.
//!
//! Both queues are bounded ([`MAX_QUEUED`] datagrams): a full queue drops, as a full UDP buffer does,
//! and QUIC's loss recovery and congestion control react as they would on a lossy link.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use meshwork_identity::PeerId;
use meshwork_wire::relayed::{RELAYED_ADDRESSES, is_relayed, relayed_addr};
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::sync::mpsc;

/// The most datagrams waiting in each direction (for the driver to carry out, or for quinn to read).
pub const MAX_QUEUED: usize = 1024;

/// A datagram quinn sent on a relay path: the path's virtual address and the bytes.
pub type Outbound = (SocketAddr, Vec<u8>);

/// The transport's relay paths: open one per relay circuit, feed it what the circuit brings, and carry
/// what [`RelayPaths::outbound`] yields through the circuit. Cheap to clone.
#[derive(Clone)]
pub struct RelayPaths {
    shared: Arc<Shared>,
}

struct Shared {
    /// Paths open now, by virtual address (IPv4 form).
    open: Mutex<HashMap<SocketAddr, Path>>,
    next: AtomicU32,
    /// Datagrams from circuits, for quinn to read.
    inbound: Mutex<VecDeque<Outbound>>,
    /// `inbound.len()`, read without the lock on every receive.
    queued: AtomicUsize,
    /// The endpoint driver's waker, to wake it when a datagram arrives from a circuit.
    waker: Mutex<Option<Waker>>,
    /// Datagrams quinn sent on paths, for the driver to carry.
    to_driver: mpsc::Sender<Outbound>,
    from_quinn: Mutex<Option<mpsc::Receiver<Outbound>>>,
    /// Datagrams dropped because a queue was full or their path was closed.
    dropped: AtomicUsize,
}

/// One open path.
#[derive(Clone, Copy, Debug)]
struct Path {
    /// The peer at the circuit's other end: the only one a connection over the path may authenticate as.
    peer: PeerId,
    /// Whether a connection over it was established.
    carried: bool,
}

impl fmt::Debug for RelayPaths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayPaths")
            .field("open", &lock(&self.shared.open).len())
            .field("queued", &self.shared.queued.load(Ordering::Relaxed))
            .field("dropped", &self.dropped())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An address in its IPv4 form (quinn hands an IPv6 socket's peers IPv4-mapped).
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

impl RelayPaths {
    pub(crate) fn new() -> Self {
        let (to_driver, from_quinn) = mpsc::channel(MAX_QUEUED);
        Self {
            shared: Arc::new(Shared {
                open: Mutex::new(HashMap::new()),
                next: AtomicU32::new(0),
                inbound: Mutex::new(VecDeque::new()),
                queued: AtomicUsize::new(0),
                waker: Mutex::new(None),
                to_driver,
                from_quinn: Mutex::new(Some(from_quinn)),
                dropped: AtomicUsize::new(0),
            }),
        }
    }

    /// Opens a path to `peer` (the other end of a relay circuit) and returns its virtual address: dial
    /// the peer there, or expect its connection from there. A connection over the path that
    /// authenticates as anyone else is refused: a relay cannot hand a circuit to a peer other than the
    /// one it named. `None` if every virtual address is in use.
    pub fn open(&self, peer: PeerId) -> Option<SocketAddr> {
        let mut open = lock(&self.shared.open);
        // Addresses are handed out round-robin, so a closed path's address is not reused until
        // a million others were: a late datagram of an old circuit cannot land in a new one.
        for _ in 0..RELAYED_ADDRESSES {
            let addr = relayed_addr(self.shared.next.fetch_add(1, Ordering::Relaxed));
            if let std::collections::hash_map::Entry::Vacant(entry) = open.entry(addr) {
                entry.insert(Path { peer, carried: false });
                return Some(addr);
            }
        }
        None
    }

    /// Closes the path at `addr`: quinn's later datagrams to it are dropped. The caller closes the
    /// connection over it too (see `QuicTransport::close_path`), which otherwise idles out.
    pub fn close(&self, addr: SocketAddr) {
        lock(&self.shared.open).remove(&canonical(addr));
    }

    /// Whether a path is open at `addr`.
    pub fn is_open(&self, addr: SocketAddr) -> bool {
        lock(&self.shared.open).contains_key(&canonical(addr))
    }

    /// Whether a connection over the open path at `addr` was ever established (it may have closed
    /// since: a circuit carries one connection, so its path is then done).
    pub fn carried_a_connection(&self, addr: SocketAddr) -> bool {
        lock(&self.shared.open)
            .get(&canonical(addr))
            .is_some_and(|path| path.carried)
    }

    /// Whether a connection with `peer` may run over the path at `addr`: it is open, and for that peer.
    pub(crate) fn admits(&self, addr: SocketAddr, peer: PeerId) -> bool {
        lock(&self.shared.open)
            .get(&canonical(addr))
            .is_some_and(|path| path.peer == peer)
    }

    /// Notes that a connection over the path at `addr` was established (for
    /// [`RelayPaths::carried_a_connection`]). Called once the transport watches the connection, so
    /// the path is never seen done between the two.
    pub(crate) fn established(&self, addr: SocketAddr) {
        if let Some(path) = lock(&self.shared.open).get_mut(&canonical(addr)) {
            path.carried = true;
        }
    }

    /// Hands quinn a datagram that arrived through the circuit of the path at `from`. Returns `false`
    /// (and drops it) if that path is not open or the queue is full.
    pub fn deliver(&self, from: SocketAddr, datagram: Vec<u8>) -> bool {
        let from = canonical(from);
        if !self.is_open(from) {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        {
            let mut inbound = lock(&self.shared.inbound);
            if inbound.len() >= MAX_QUEUED {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            inbound.push_back((from, datagram));
            self.shared.queued.store(inbound.len(), Ordering::Release);
        }
        if let Some(waker) = lock(&self.shared.waker).take() {
            waker.wake();
        }
        true
    }

    /// The datagrams quinn sends on relay paths, each with its path's virtual address, for the driver
    /// to carry through the circuits. Only the first call gets the receiver; later calls get `None`.
    pub fn outbound(&self) -> Option<mpsc::Receiver<Outbound>> {
        lock(&self.shared.from_quinn).take()
    }

    /// Datagrams dropped so far: a queue was full, their path was closed, or one came from a relay
    /// path's address on the real socket.
    pub fn dropped(&self) -> usize {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// quinn sends `datagram` to the relay path at `to`.
    fn send(&self, to: SocketAddr, datagram: &[u8]) {
        let to = canonical(to);
        let sent = self.is_open(to) && self.shared.to_driver.try_send((to, datagram.to_vec())).is_ok();
        if !sent {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Moves queued circuit datagrams into quinn's receive buffers; how many.
    fn receive(&self, bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta], ipv6: bool) -> usize {
        if self.shared.queued.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let mut inbound = lock(&self.shared.inbound);
        let mut n = 0;
        for (buf, meta) in bufs.iter_mut().zip(meta.iter_mut()) {
            let Some((from, datagram)) = inbound.pop_front() else {
                break;
            };
            // quinn's buffers hold a full batch of segments, far more than one datagram.
            let len = datagram.len().min(buf.len());
            buf[..len].copy_from_slice(&datagram[..len]);
            let addr = match from {
                SocketAddr::V4(v4) if ipv6 => SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port()),
                other => other,
            };
            *meta = RecvMeta {
                addr,
                len,
                stride: len,
                ecn: None,
                dst_ip: None,
            };
            n += 1;
        }
        self.shared.queued.store(inbound.len(), Ordering::Release);
        n
    }
}

/// The socket the QUIC endpoint uses: the real UDP socket, plus the relay paths.
pub(crate) struct PathSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    paths: RelayPaths,
    ipv6: bool,
    /// Which source the next receive looks at first: they take turns, so a busy relay path cannot
    /// starve the UDP socket, nor a busy socket the relay paths.
    socket_first: AtomicBool,
}

impl PathSocket {
    pub(crate) fn new(inner: Arc<dyn AsyncUdpSocket>, paths: RelayPaths) -> io::Result<Self> {
        let ipv6 = inner.local_addr()?.is_ipv6();
        Ok(Self {
            inner,
            paths,
            ipv6,
            socket_first: AtomicBool::new(false),
        })
    }

    /// Datagrams the relay paths hold, moved into quinn's buffers; `None` (with the endpoint driver's
    /// waker registered) if there are none.
    fn poll_paths(
        &self,
        cx: &Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Option<usize> {
        let n = self.paths.receive(bufs, meta, self.ipv6);
        if n > 0 {
            return Some(n);
        }
        // Registered on every poll that would wait (a path may open and deliver at any time); cloned
        // only when the endpoint driver's waker changed.
        {
            let mut waker = lock(&self.paths.shared.waker);
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        // A datagram delivered between the first look and the waker's registration would wait for the
        // next real one: look again.
        let n = self.paths.receive(bufs, meta, self.ipv6);
        (n > 0).then_some(n)
    }

    /// The real socket's datagrams, without any whose source is a relay path's virtual address: those
    /// come only from the relay paths, never from the network (a spoofed one could otherwise pose as a
    /// relayed peer's).
    fn poll_socket(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let n = match self.inner.poll_recv(cx, bufs, meta) {
            Poll::Ready(Ok(n)) => n,
            other => return other,
        };
        let mut kept = 0;
        for i in 0..n {
            if is_relayed(&meta[i].addr) {
                self.paths.shared.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if kept != i {
                let len = meta[i].len;
                let (to, from) = bufs.split_at_mut(i);
                to[kept][..len].copy_from_slice(&from[0][..len]);
                meta[kept] = meta[i];
            }
            kept += 1;
        }
        // Zero (all dropped) is a valid answer: quinn polls again.
        Poll::Ready(Ok(kept))
    }
}

impl fmt::Debug for PathSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PathSocket")
            .field("inner", &self.inner)
            .field("paths", &self.paths)
            .finish()
    }
}

impl AsyncUdpSocket for PathSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        // Relay paths never block (a full queue drops), so only the real socket's readiness matters.
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        if !is_relayed(&transmit.destination) {
            return self.inner.try_send(transmit);
        }
        // A batch (GSO) holds several datagrams of `segment_size` bytes; a circuit carries them one by one.
        let size = transmit.segment_size.unwrap_or(transmit.contents.len()).max(1);
        for datagram in transmit.contents.chunks(size) {
            self.paths.send(transmit.destination, datagram);
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        if self.socket_first.fetch_xor(true, Ordering::Relaxed) {
            match self.poll_socket(cx, bufs, meta) {
                Poll::Pending => {}
                ready => return ready,
            }
            return self
                .poll_paths(cx, bufs, meta)
                .map_or(Poll::Pending, |n| Poll::Ready(Ok(n)));
        }
        if let Some(n) = self.poll_paths(cx, bufs, meta) {
            return Poll::Ready(Ok(n));
        }
        self.poll_socket(cx, bufs, meta)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}
