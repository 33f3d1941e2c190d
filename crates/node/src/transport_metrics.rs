//! The transport's counters on the node's metrics page, read at each scrape: what went over the wire
//! (UDP datagrams and bytes, lost packets, every connection ever held), connections closed by reason,
//! and what the transport refused (per-address caps, full listeners, handshakes).

use std::sync::Arc;

use meshwork_transport::CountersSnapshot;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::{CLOSE_PROTOCOL_VIOLATION, CLOSE_REQUESTED, CLOSE_STALLED};

/// Reads the transport's counters now.
pub(crate) type ReadCounters = Arc<dyn Fn() -> CountersSnapshot + Send + Sync>;

/// Encodes a [`CountersSnapshot`] as `meshwork_transport_*` metrics on each scrape.
pub(crate) struct TransportCollector {
    pub(crate) read: ReadCounters,
}

impl std::fmt::Debug for TransportCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransportCollector")
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

fn counter(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> std::fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> std::fmt::Result {
    let metric = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// Connections closed, by a stable reason label: the transport's own reasons, then the node's close
/// codes by name, then any other application code.
fn closes(c: &CountersSnapshot) -> Vec<(&'static str, u64)> {
    let r = &c.closed_by_reason;
    let app = |code: u32| r.application.get(code as usize).copied().unwrap_or(0);
    let named = [CLOSE_PROTOCOL_VIOLATION, CLOSE_REQUESTED, CLOSE_STALLED];
    let other_app: u64 = r
        .application
        .iter()
        .enumerate()
        .filter(|(code, _)| !named.iter().any(|n| *n as usize == *code))
        .map(|(_, n)| *n)
        .sum::<u64>()
        + r.application_other;
    vec![
        ("normal", r.normal),
        ("duplicate", r.duplicate),
        ("shutdown", r.shutdown),
        ("evicted", r.evicted),
        ("timed_out", r.timed_out),
        ("lost", r.lost),
        ("protocol_violation", app(CLOSE_PROTOCOL_VIOLATION)),
        ("requested", app(CLOSE_REQUESTED)),
        ("stalled", app(CLOSE_STALLED)),
        ("application_other", other_app),
    ]
}

impl Collector for TransportCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let c = (self.read)();
        let e = &mut encoder;
        gauge(
            e,
            "transport_inbound_connections",
            "Inbound connections held now",
            c.inbound_connections,
        )?;
        gauge(
            e,
            "transport_outbound_connections",
            "Outbound connections held now",
            c.outbound_connections,
        )?;
        counter(
            e,
            "transport_datagrams_sent",
            "UDP datagrams sent over every connection ever held",
            c.datagrams_sent,
        )?;
        counter(
            e,
            "transport_bytes_sent",
            "UDP payload bytes sent (handshakes, acknowledgements and retransmissions included)",
            c.bytes_sent,
        )?;
        counter(
            e,
            "transport_datagrams_received",
            "UDP datagrams received over every connection ever held",
            c.datagrams_received,
        )?;
        counter(
            e,
            "transport_bytes_received",
            "UDP payload bytes received",
            c.bytes_received,
        )?;
        counter(
            e,
            "transport_packets_lost",
            "Packets declared lost over every connection ever held",
            c.packets_lost,
        )?;
        counter(
            e,
            "transport_bytes_lost",
            "Bytes of the packets declared lost",
            c.bytes_lost,
        )?;
        counter(
            e,
            "transport_handshake_failures",
            "Handshakes that failed or timed out",
            c.handshake_failures,
        )?;
        counter(
            e,
            "transport_inbound_refused",
            "Inbound connections refused: the listener was full, or no handshake to evict past the ceiling",
            c.inbound_refused,
        )?;
        counter(
            e,
            "transport_refused_by_address",
            "Inbound connections refused because their IP or prefix was at its cap",
            c.refused_by_address,
        )?;
        counter(
            e,
            "transport_evicted",
            "Inbound connections closed to make room for a newcomer",
            c.evicted,
        )?;
        counter(
            e,
            "transport_handshakes_evicted",
            "Inbound handshakes cancelled to make room for a newcomer past the handshake ceiling",
            c.handshakes_evicted,
        )?;
        counter(
            e,
            "transport_dials_refused",
            "Dials refused locally: too many outbound connections",
            c.dials_refused,
        )?;
        counter(
            e,
            "transport_frames_timed_out",
            "Frames whose body did not arrive within the frame deadline",
            c.frames_timed_out,
        )?;
        let metric = ConstCounter::new(0u64);
        let mut family = e.encode_descriptor(
            "transport_connections_closed",
            "Connections closed, by reason",
            None,
            metric.metric_type(),
        )?;
        for (reason, value) in closes(&c) {
            ConstCounter::new(value).encode(family.encode_family(&ReasonLabel { reason })?)?;
        }
        Ok(())
    }
}
