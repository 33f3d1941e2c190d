//! How long to wait for the tree's copy of an announced message before grafting it.
//!
//! Plumtree (Leitão et al. 2007) waits a fixed timeout after an `IHave`. A fixed value is wrong
//! everywhere but where it was tuned: on a LAN or loopback (round trips under a millisecond) a message
//! the tree lost waits the whole timeout (the 300 ms that dominated our last-delivery p99 against
//! gossipsub on loopback QUIC), and on a slow path a short one grafts copies that were still coming.
//! Here the wait is learnt from the round trips of our own grafts (a graft sent, the message it asked
//! for received from the same peer), and from those the driver measured (the node runtime passes
//! each QUIC connection's handshake round trip, `Command::PeerRoundTrip`, so the first repair on a
//! fast path does not wait the slow default), with the estimator TCP uses for its retransmission timeout
//! (RFC 6298: smoothed round trip `SRTT`, its variation `RTTVAR`, timeout `SRTT + 4·RTTVAR`), bounded
//! below by a floor (scheduling noise) and above by the configured timeout, which is also the wait
//! before the first sample.

use std::time::Duration;

/// The graft timeout learnt from graft round trips.
#[derive(Debug, Clone)]
pub(crate) struct GraftWait {
    srtt: Option<Duration>,
    rttvar: Duration,
    floor: Duration,
    ceiling: Duration,
}

impl GraftWait {
    pub(crate) fn new(floor: Duration, ceiling: Duration) -> Self {
        Self {
            srtt: None,
            rttvar: Duration::ZERO,
            floor: floor.min(ceiling),
            ceiling,
        }
    }

    /// One graft's round trip (RFC 6298 §2: gains 1/8 and 1/4).
    pub(crate) fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let deviation = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + deviation) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    /// How long to wait for a copy before grafting (and before grafting the next announcer).
    pub(crate) fn timeout(&self) -> Duration {
        match self.srtt {
            None => self.ceiling,
            Some(srtt) => (srtt + self.rttvar * 4).clamp(self.floor, self.ceiling),
        }
    }

    /// The smoothed round trip, once a graft has been answered.
    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_wait_follows_measured_round_trips_within_its_bounds() {
        let mut wait = GraftWait::new(5 * MS, 300 * MS);
        assert_eq!(wait.timeout(), 300 * MS, "no sample yet: the configured timeout");
        for _ in 0..50 {
            wait.sample(2 * MS);
        }
        assert_eq!(wait.timeout(), 5 * MS, "loopback round trips: the floor");
        for _ in 0..50 {
            wait.sample(100 * MS);
        }
        let learnt = wait.timeout();
        assert!(learnt >= 100 * MS && learnt < 150 * MS, "{learnt:?}");
        for _ in 0..50 {
            wait.sample(2_000 * MS);
        }
        assert_eq!(wait.timeout(), 300 * MS, "a slow path: the ceiling");
    }
}
