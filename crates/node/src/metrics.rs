//! Counters and gauges in the Prometheus/OpenMetrics text format, and the optional HTTP endpoint.
//!
//! Every counter is an atomic shared by the node task and the per-connection tasks, so reading the
//! metrics never waits for the node. Applications add their own gauges (chain height, mempool size)
//! with [`Metrics::gauge`]; they appear on the same page.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use meshwork_wire::DropReason;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::NodeError;

/// The label every per-protocol metric carries.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: String,
}

/// The labels of a drop: the protocol (channel) and why.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabel {
    protocol: String,
    reason: &'static str,
}

/// The label of the connection manager's metrics: a state, or a reason to close.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

/// The label of connections the manager closed: why.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// The node's metrics: cheap to clone, every clone sees the same values.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Mutex<Registry>,
    peers: Gauge,
    dials: Counter,
    dial_failures: Counter,
    stalled: Counter,
    penalised: Counter,
    send_queue_bytes: Gauge,
    undrained: Counter,
    /// Relayed connections replaced by direct ones.
    upgraded: Counter,
    messages_in: Family<ProtocolLabel, Counter>,
    messages_out: Family<ProtocolLabel, Counter>,
    bytes_in: Family<ProtocolLabel, Counter>,
    bytes_out: Family<ProtocolLabel, Counter>,
    queue_drops: Family<ProtocolLabel, Counter>,
    event_drops: Family<ProtocolLabel, Counter>,
    invalid_frames: Family<ProtocolLabel, Counter>,
    cpu: Family<ProtocolLabel, CpuSeconds>,
    dropped: Family<DropLabel, Counter>,
    connections: Family<StateLabel, Gauge>,
    managed_closes: Family<ReasonLabel, Counter>,
}

/// Seconds of CPU time, a float counter (the Prometheus convention for durations).
type CpuSeconds = Counter<f64, AtomicU64>;

/// The counters of one protocol, resolved once at registration so the hot path does no label lookup.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProtocolMetrics {
    pub(crate) messages_in: Counter,
    pub(crate) messages_out: Counter,
    pub(crate) bytes_in: Counter,
    pub(crate) bytes_out: Counter,
    pub(crate) queue_drops: Counter,
    pub(crate) event_drops: Counter,
    pub(crate) invalid_frames: Counter,
    /// CPU seconds of the node task's calls into the protocol.
    pub(crate) cpu: CpuSeconds,
    /// One counter per [`DropReason`], in the order of [`DropReason::ALL`].
    dropped: Vec<Counter>,
}

impl ProtocolMetrics {
    /// Counts one drop for `reason` (a full queue or a spent budget also in the older `queue_drops`).
    pub(crate) fn dropped(&self, reason: DropReason) {
        if let Some(counter) = self.dropped.get(reason.index()) {
            counter.inc();
        }
        if reason.is_congestion() {
            self.queue_drops.inc();
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of node metrics, all zero, under the `meshwork` prefix.
    pub fn new() -> Self {
        let inner = Inner {
            registry: Mutex::new(Registry::with_prefix("meshwork")),
            peers: Gauge::default(),
            dials: Counter::default(),
            dial_failures: Counter::default(),
            stalled: Counter::default(),
            penalised: Counter::default(),
            send_queue_bytes: Gauge::default(),
            undrained: Counter::default(),
            upgraded: Counter::default(),
            messages_in: Family::default(),
            messages_out: Family::default(),
            bytes_in: Family::default(),
            bytes_out: Family::default(),
            queue_drops: Family::default(),
            event_drops: Family::default(),
            invalid_frames: Family::default(),
            cpu: Family::default(),
            dropped: Family::default(),
            connections: Family::default(),
            managed_closes: Family::default(),
        };
        {
            let mut registry = inner.registry.lock().unwrap_or_else(PoisonError::into_inner);
            registry.register(
                "peers",
                "Peers with at least one open connection",
                inner.peers.clone(),
            );
            registry.register("dials", "Dials started", inner.dials.clone());
            registry.register(
                "dial_failures",
                "Dials that failed or timed out",
                inner.dial_failures.clone(),
            );
            registry.register(
                "stalled_peers",
                "Connections closed because a write or a frame made no progress within its deadline",
                inner.stalled.clone(),
            );
            registry.register(
                "penalised_peers",
                "Connections closed because the peer broke the wire rules",
                inner.penalised.clone(),
            );
            registry.register(
                "send_queue_bytes",
                "Encoded bytes waiting in every peer's send queues",
                inner.send_queue_bytes.clone(),
            );
            registry.register(
                "undrained_closes",
                "Connections closed gracefully (simultaneous-dial losers, released peers) whose streams \
                 were not done within the drain deadline: what was in flight on them may be lost",
                inner.undrained.clone(),
            );
            registry.register(
                "relayed_upgrades",
                "Peers whose connection through a relay circuit was replaced by a direct one (a hole \
                 punch, or a direct dial, got through)",
                inner.upgraded.clone(),
            );
            registry.register(
                "messages_received",
                "Messages received, by protocol",
                inner.messages_in.clone(),
            );
            registry.register(
                "messages_sent",
                "Messages sent, by protocol",
                inner.messages_out.clone(),
            );
            registry.register(
                "bytes_received",
                "Frame bytes received, by protocol",
                inner.bytes_in.clone(),
            );
            registry.register(
                "bytes_sent",
                "Frame bytes sent, by protocol",
                inner.bytes_out.clone(),
            );
            registry.register(
                "queue_drops",
                "Messages dropped because a peer's send queue was full, by protocol",
                inner.queue_drops.clone(),
            );
            registry.register(
                "event_drops",
                "Events dropped because the application's event queue was full, by protocol",
                inner.event_drops.clone(),
            );
            registry.register(
                "invalid_frames",
                "Frames refused (too large, malformed, trailing bytes); the sender is disconnected",
                inner.invalid_frames.clone(),
            );
            registry.register(
                "protocol_cpu_seconds",
                "CPU time of the node task's calls into each protocol (decoding its messages, its \
                 handlers, encoding what it sends), by protocol; threads a protocol starts are not in it",
                inner.cpu.clone(),
            );
            registry.register(
                "connections",
                "Connected peers by the connection manager's state: protected (a protocol needs it), \
                 new (in its grace period), closable (idle or trimmed when the time comes)",
                inner.connections.clone(),
            );
            registry.register(
                "connections_closed",
                "Connections the connection manager closed, by reason: idle (nothing carried for the \
                 idle timeout), trimmed (above the high watermark, least recently active)",
                inner.managed_closes.clone(),
            );
            registry.register(
                "dropped",
                "Messages, requests and peers dropped, by protocol and reason (queue_full, \
                 connection_closed, write_failed, decode_failed, prefix_limit, ban, rate_limited, \
                 unsolicited, full, budget_spent); nothing is lost without a count here",
                inner.dropped.clone(),
            );
        }
        Self {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn for_protocol(&self, protocol: &str) -> ProtocolMetrics {
        let label = ProtocolLabel {
            protocol: protocol.to_owned(),
        };
        let i = &self.inner;
        ProtocolMetrics {
            messages_in: i.messages_in.get_or_create(&label).clone(),
            messages_out: i.messages_out.get_or_create(&label).clone(),
            bytes_in: i.bytes_in.get_or_create(&label).clone(),
            bytes_out: i.bytes_out.get_or_create(&label).clone(),
            queue_drops: i.queue_drops.get_or_create(&label).clone(),
            event_drops: i.event_drops.get_or_create(&label).clone(),
            invalid_frames: i.invalid_frames.get_or_create(&label).clone(),
            cpu: i.cpu.get_or_create(&label).clone(),
            dropped: DropReason::ALL
                .iter()
                .map(|reason| {
                    let label = DropLabel {
                        protocol: protocol.to_owned(),
                        reason: reason.label(),
                    };
                    i.dropped.get_or_create(&label).clone()
                })
                .collect(),
        }
    }

    /// Counts a connection the connection manager closed.
    pub(crate) fn managed_close(&self, why: crate::manager::Why) {
        let label = ReasonLabel { reason: why.label() };
        self.inner.managed_closes.get_or_create(&label).inc();
    }

    /// Publishes the connection manager's counts by state.
    pub(crate) fn connection_states(&self, states: crate::manager::States) {
        for (state, count) in [
            ("protected", states.protected),
            ("new", states.new),
            ("closable", states.closable),
        ] {
            let gauge = self.inner.connections.get_or_create(&StateLabel { state });
            gauge.set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    pub(crate) fn peers(&self) -> &Gauge {
        &self.inner.peers
    }

    pub(crate) fn dial_started(&self) {
        self.inner.dials.inc();
    }

    pub(crate) fn dial_failed(&self) {
        self.inner.dial_failures.inc();
    }

    pub(crate) fn upgraded(&self) {
        self.inner.upgraded.inc();
    }

    pub(crate) fn stalled(&self) {
        self.inner.stalled.inc();
    }

    pub(crate) fn penalised(&self) {
        self.inner.penalised.inc();
    }

    /// Counts graceful closes that hit their deadline (shared with the closing tasks).
    pub(crate) fn undrained(&self) -> Counter {
        self.inner.undrained.clone()
    }

    /// The gauge of bytes waiting in send queues (shared with the writers, which lower it).
    pub(crate) fn send_queue_bytes(&self) -> Gauge {
        self.inner.send_queue_bytes.clone()
    }

    /// Puts the transport's counters on the page, read at each scrape (`meshwork_transport_*`).
    pub(crate) fn register_transport(&self, read: crate::transport_metrics::ReadCounters) {
        self.inner
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .register_collector(Box::new(crate::transport_metrics::TransportCollector { read }));
    }

    /// Registers an application gauge (say `chain_height`) and returns it; set it whenever the value
    /// changes. It is published as `meshwork_<name>`.
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        let gauge = Gauge::default();
        self.inner
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .register(name, help, gauge.clone());
        gauge
    }

    /// CPU time the node task has spent in calls into `protocol` (its id, as in
    /// [`Protocol::ID`](meshwork_wire::Protocol::ID)): decoding its frames, its handlers and timers,
    /// encoding what it sends. Measured with the thread's CPU clock ([`thread_cpu_time`](crate::thread_cpu_time)),
    /// so time the task waited for a core is not in it, nor are threads the protocol starts itself.
    /// Zero for a protocol the node does not run, or where the platform has no thread CPU clock.
    pub fn protocol_cpu(&self, protocol: &str) -> Duration {
        let label = ProtocolLabel {
            protocol: protocol.to_owned(),
        };
        let seconds = self.inner.cpu.get(&label).map_or(0.0, |counter| counter.get());
        Duration::try_from_secs_f64(seconds).unwrap_or_default()
    }

    /// Messages for `protocol` (its id) that the node dropped because a peer's send queue or byte budget
    /// was full, or the node's send budget across peers was spent (`meshwork_queue_drops_total`). Zero
    /// for a protocol the node does not run.
    pub fn queue_drops(&self, protocol: &str) -> u64 {
        let label = ProtocolLabel {
            protocol: protocol.to_owned(),
        };
        self.inner
            .queue_drops
            .get(&label)
            .map_or(0, |counter| counter.get())
    }

    /// Every metric, in the OpenMetrics text format (which Prometheus scrapes).
    pub fn render(&self) -> String {
        let mut text = String::new();
        let registry = self.inner.registry.lock().unwrap_or_else(PoisonError::into_inner);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }

    /// Serves `GET /metrics` on `addr` until the returned task is aborted. Returns the bound address (so
    /// port 0 works) and the task.
    pub async fn serve(
        &self,
        addr: SocketAddr,
    ) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), NodeError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| NodeError::Metrics { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| NodeError::Metrics { addr, source })?;
        let metrics = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let metrics = metrics.clone();
                        async move { Ok::<_, Infallible>(answer(&metrics, &req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Ok((local, task))
    }
}

fn answer(metrics: &Metrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = if req.method() == hyper::Method::GET && req.uri().path() == "/metrics"
    {
        (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        )
    } else {
        (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try GET /metrics\n".to_owned(),
        )
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
