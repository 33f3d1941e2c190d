//! Link models: how long a message takes from one node to another, and whether it arrives at all.

use std::time::Duration;

use crate::RegionMatrix;

/// The base one-way latency between two nodes.
#[derive(Clone, Debug, PartialEq)]
pub enum Latency {
    /// Every message takes exactly this long.
    Constant(Duration),
    /// Each message draws its latency uniformly from `min..=max`.
    Uniform {
        /// The shortest latency.
        min: Duration,
        /// The longest latency.
        max: Duration,
    },
    /// Each node is placed in a region (uniformly at random, from the run's RNG, when it is added; see
    /// [`crate::Sim::set_region`]) and a message takes the matrix's one-way delay between the two regions.
    Regions(RegionMatrix),
}

impl Default for Latency {
    /// 50 ms, a typical one-way delay on the internet within a continent.
    fn default() -> Self {
        Self::Constant(Duration::from_millis(50))
    }
}

/// The network every message crosses: latency, jitter, loss and upload bandwidth.
///
/// A message sent at `t` by node `a` to node `b` arrives at
/// `start + size / upload + latency(a, b) + jitter`, where `start` is when `a`'s uplink is free again
/// (messages queue behind each other on the sender's uplink, which is what makes big fan-outs slow), unless
/// it is lost (probability `loss`, drawn per message) or a partition separates `a` and `b`.
/// Jitter may reorder messages between the same two nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// The base latency.
    pub latency: Latency,
    /// Extra delay drawn uniformly from `0..=jitter` for every message.
    pub jitter: Duration,
    /// The probability that a message is lost, in `0.0..=1.0`.
    pub loss: f64,
    /// Each node's upload bandwidth in bytes per second; `None` for unlimited (no serialisation delay).
    pub upload_bytes_per_sec: Option<u64>,
    /// Close a connection that carried no message either way for this long and that neither end
    /// protects ([`Output::Protect`](meshwork_wire::Output::Protect)), as the node runtime's connection
    /// manager does (its default is 60 s); both ends get `PeerDown`. `None` keeps every connection
    /// until a protocol or the experiment closes it.
    pub idle_timeout: Option<Duration>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            latency: Latency::default(),
            jitter: Duration::ZERO,
            loss: 0.0,
            upload_bytes_per_sec: None,
            idle_timeout: None,
        }
    }
}

impl LinkConfig {
    /// A lossless link with a constant latency and no bandwidth limit.
    pub fn constant(latency: Duration) -> Self {
        Self {
            latency: Latency::Constant(latency),
            ..Self::default()
        }
    }

    /// The same link with jitter.
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// The same link losing each message with probability `loss` (clamped to `0.0..=1.0`).
    pub fn with_loss(mut self, loss: f64) -> Self {
        self.loss = if loss.is_nan() { 0.0 } else { loss.clamp(0.0, 1.0) };
        self
    }

    /// The same link with idle connections closed after `timeout` ([`LinkConfig::idle_timeout`]).
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout.max(Duration::from_millis(1)));
        self
    }

    /// The same link with an upload limit per node, in bytes per second.
    pub fn with_upload(mut self, bytes_per_sec: u64) -> Self {
        self.upload_bytes_per_sec = Some(bytes_per_sec.max(1));
        self
    }
}

/// The time to push `bytes` through an uplink of `bytes_per_sec`, in nanoseconds (rounded up).
pub(crate) fn serialisation_nanos(bytes: usize, bytes_per_sec: u64) -> u64 {
    let bytes = bytes as u128;
    let nanos = (bytes * 1_000_000_000).div_ceil(u128::from(bytes_per_sec.max(1)));
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
