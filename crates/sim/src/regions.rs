//! A latency matrix between world regions, for [`crate::Latency::Regions`].

use std::time::Duration;

/// One-way latencies between named regions; each node is placed in one region.
///
/// `one_way[i * n + j]` is the delay from region `i` to region `j`. Build your own with
/// [`RegionMatrix::new`], or take the built-in [`RegionMatrix::cloud6`].
#[derive(Clone, Debug, PartialEq)]
pub struct RegionMatrix {
    names: Vec<&'static str>,
    one_way: Vec<Duration>,
}

/// Round-trip times in milliseconds between six public-cloud regions (AWS), average of pings between
/// instances: us-east-1 (N. Virginia), us-west-2 (Oregon), eu-central-1 (Frankfurt), ap-northeast-1
/// (Tokyo), ap-southeast-1 (Singapore), sa-east-1 (São Paulo).
///
/// Source: the "Latency Between AWS Global Regions" inter-region table, as reproduced in
/// <https://acomputerscientistlearnsaws.blogspot.com/2017/04/aws-regions.html> (average RTT, ms); the same
/// kind of figures are published live at <https://www.cloudping.co/grid> (AWS inter-region p50 RTT).
/// Values are rounded to 0.1 ms; the matrix is made symmetric. Within one region we use 2 ms RTT, a
/// typical figure between availability zones and nearby networks (cross-AZ pings measure 0.25–3.4 ms,
/// <https://www.xkyle.com/Measuring-AWS-Region-and-AZ-Latency/>). [`RegionMatrix::cloud6`] halves every
/// RTT to get the one-way delay.
pub const CLOUD6_RTT_MS: [[f64; 6]; 6] = [
    //  VA     OR     FRA    TYO    SIN    SAO
    [2.0, 87.0, 88.7, 145.3, 216.7, 119.5],
    [87.0, 2.0, 159.5, 89.1, 161.4, 182.7],
    [88.7, 159.5, 2.0, 236.5, 325.9, 194.9],
    [145.3, 89.1, 236.5, 2.0, 73.8, 256.8],
    [216.7, 161.4, 325.9, 73.8, 2.0, 328.1],
    [119.5, 182.7, 194.9, 256.8, 328.1, 2.0],
];

/// The names of the regions of [`CLOUD6_RTT_MS`], in order.
pub const CLOUD6_NAMES: [&str; 6] = [
    "us-east-1",
    "us-west-2",
    "eu-central-1",
    "ap-northeast-1",
    "ap-southeast-1",
    "sa-east-1",
];

impl RegionMatrix {
    /// A matrix from region names and one-way delays in row-major order. `None` unless
    /// `one_way.len() == names.len()²` and there is at least one region (at most 256).
    pub fn new(names: Vec<&'static str>, one_way: Vec<Duration>) -> Option<Self> {
        let n = names.len();
        (n > 0 && n <= 256 && one_way.len() == n * n).then_some(Self { names, one_way })
    }

    /// Six public-cloud regions with one-way delays of half the measured RTTs in [`CLOUD6_RTT_MS`].
    pub fn cloud6() -> Self {
        let one_way = CLOUD6_RTT_MS
            .iter()
            .flatten()
            .map(|rtt_ms| Duration::from_secs_f64(rtt_ms / 2.0 / 1000.0))
            .collect();
        Self {
            names: CLOUD6_NAMES.to_vec(),
            one_way,
        }
    }

    /// How many regions there are.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Always false: a matrix has at least one region.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The name of region `i`.
    pub fn name(&self, i: usize) -> Option<&'static str> {
        self.names.get(i).copied()
    }

    /// The one-way delay from region `from` to region `to` (zero if out of range).
    pub fn one_way(&self, from: u8, to: u8) -> Duration {
        let n = self.names.len();
        self.one_way
            .get(usize::from(from) * n + usize::from(to))
            .copied()
            .unwrap_or_default()
    }
}
