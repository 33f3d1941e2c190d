//! Figures an experiment reports: percentiles, reliability, redundancy, and a log of deliveries.

use meshwork_wire::Instant;

use crate::NodeId;

/// The `p`-th percentile (`0.0..=100.0`) of `sorted` (ascending), nearest-rank method. `None` if empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 100.0) };
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1).min(sorted.len() - 1)).copied()
}

/// Count, extremes, mean and the usual percentiles of a set of values.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    /// How many values.
    pub count: usize,
    /// The smallest.
    pub min: f64,
    /// The median.
    pub p50: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The largest.
    pub max: f64,
    /// The mean.
    pub mean: f64,
}

impl Summary {
    /// Summarises `values` (any order; NaNs sort last). All zero if `values` is empty.
    pub fn of(mut values: Vec<f64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        let at = |p| percentile(&values, p).unwrap_or_default();
        Self {
            count: values.len(),
            min: values[0],
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            max: values[values.len() - 1],
            mean: values.iter().sum::<f64>() / values.len() as f64,
        }
    }
}

/// The share of live nodes that delivered a message: `delivered / live` (1.0 when `live` is zero).
pub fn reliability(delivered: usize, live: usize) -> f64 {
    if live == 0 {
        1.0
    } else {
        delivered as f64 / live as f64
    }
}

/// Relative Message Redundancy, `m / (n - 1) - 1`, where `m` is the number of payload messages sent to
/// spread one broadcast and `n` the number of nodes that received it (Leitão, Pereira, Rodrigues, "Epidemic
/// Broadcast Trees", SRDS 2007). Zero means every node got it exactly once; flooding a graph of average
/// degree `d` gives about `d - 2`. `None` when `n < 2`. For several broadcasts, pass the sums of `m` and of
/// `n - 1` through [`rmr_total`].
pub fn rmr(messages: u64, receivers: u64) -> Option<f64> {
    (receivers >= 2).then(|| messages as f64 / (receivers - 1) as f64 - 1.0)
}

/// RMR over several broadcasts: `Σm / Σ(n - 1) - 1`.
pub fn rmr_total(messages: u64, sum_receivers_minus_one: u64) -> Option<f64> {
    (sum_receivers_minus_one > 0).then(|| messages as f64 / sum_receivers_minus_one as f64 - 1.0)
}

/// One delivery of a tagged message to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The experiment's tag for the message (its id).
    pub tag: u64,
    /// Who delivered it.
    pub node: NodeId,
    /// When.
    pub at: Instant,
    /// After how many hops (0 at the origin).
    pub hops: u32,
}

/// Records when each tagged message was published and where and when it was delivered, for latency,
/// hop and reliability figures.
#[derive(Clone, Debug, Default)]
pub struct DeliveryLog {
    published: Vec<(u64, Instant)>,
    deliveries: Vec<Delivery>,
}

impl DeliveryLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Message `tag` was published at `at`.
    pub fn publish(&mut self, tag: u64, at: Instant) {
        self.published.push((tag, at));
    }

    /// Message `tag` was delivered to `node` at `at` after `hops` hops.
    pub fn deliver(&mut self, tag: u64, node: NodeId, at: Instant, hops: u32) {
        self.deliveries.push(Delivery { tag, node, at, hops });
    }

    /// When `tag` was published.
    pub fn published_at(&self, tag: u64) -> Option<Instant> {
        self.published.iter().find(|(t, _)| *t == tag).map(|(_, at)| *at)
    }

    /// The published tags, in order.
    pub fn tags(&self) -> impl Iterator<Item = u64> + '_ {
        self.published.iter().map(|(tag, _)| *tag)
    }

    /// Every delivery, in the order they happened.
    pub fn deliveries(&self) -> &[Delivery] {
        &self.deliveries
    }

    /// Deliveries of `tag`.
    pub fn deliveries_of(&self, tag: u64) -> impl Iterator<Item = &Delivery> + '_ {
        self.deliveries.iter().filter(move |d| d.tag == tag)
    }

    /// Delivery latency in milliseconds (delivery time minus publish time), origins excluded.
    pub fn latencies_ms(&self) -> Vec<f64> {
        let mut starts: Vec<(u64, Instant)> = self.published.clone();
        starts.sort_unstable_by_key(|(tag, _)| *tag);
        self.deliveries
            .iter()
            .filter(|d| d.hops > 0)
            .filter_map(|d| {
                let at = starts.binary_search_by_key(&d.tag, |(tag, _)| *tag).ok()?;
                Some((d.at - starts[at].1).as_secs_f64() * 1000.0)
            })
            .collect()
    }

    /// The largest hop count of any delivery.
    pub fn max_hops(&self) -> u32 {
        self.deliveries.iter().map(|d| d.hops).max().unwrap_or(0)
    }
}
