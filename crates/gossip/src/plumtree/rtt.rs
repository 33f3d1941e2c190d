//! How long to wait for the tree's copy of an announced message before grafting it.
//!
//! Plumtree (Leitão et al. 2007) waits a fixed timeout after an `IHave`. A fixed value is wrong
//! everywhere but where it was tuned: on a LAN or loopback (round trips under a millisecond) a message
//! the tree lost waits the whole timeout (the 300 ms that dominated our last-delivery p99 against
//! gossipsub on loopback QUIC), and on a slow path a short one grafts copies that were still coming.
//!
//! Here the wait is learnt from two things, each with the estimator TCP uses for its retransmission
//! timeout (RFC 6298: a smoothed value `S`, its variation `V`, bound `S + 4·V`):
//! - **Round trips**: those of our own grafts (a graft sent, the message it asked for received from the
//!   same peer), and those the driver measured (the node runtime passes each QUIC connection's handshake
//!   round trip, `Command::PeerRoundTrip`, so the first repair on a fast path does not wait the slow
//!   default). A graft costs a round trip, so grafting a copy due within one buys nothing.
//! - **Lateness**: how long after the first `IHave` of a message the tree's own copy came (zero when
//!   it came first), once per message received, and also when it came after we had grafted (a
//!   duplicate: the graft was too early). Round trips measured on an idle link say nothing of a copy
//!   queued behind a busy uplink: at 2,000 nodes and 800 messages a second, a wait learnt from
//!   handshakes alone grafted 3.2 times as often as one learnt from graft answers. A message the tree
//!   lost gives no lateness sample (no copy comes), so losses do not lengthen the wait. Unlike a
//!   round trip, lateness comes once per message, so at high rates RFC 6298's eight-sample memory
//!   would be milliseconds: a late sample raises the estimate in full, but a timely one lowers it
//!   only by the share of [`LATENESS_SPACING`] since the sample before, so the estimate comes down
//!   in time, not in messages.
//!
//! The wait is the larger of the two bounds, between a floor (scheduling noise) and the configured
//! timeout, which is also the wait before the first round trip. A peer can lengthen our wait by
//! delaying the copies it owes us or announcing early, but never past that ceiling, the wait we would
//! have without learning.

use std::time::Duration;

use meshwork_wire::Instant;

/// RFC 6298's smoothed estimate of a delay and of its variation (§2: gains 1/8 and 1/4).
#[derive(Debug, Clone, Copy)]
struct Smoothed {
    mean: Duration,
    var: Duration,
}

impl Smoothed {
    /// The first sample (§2.2).
    fn first(sample: Duration) -> Self {
        Self {
            mean: sample,
            var: sample / 2,
        }
    }

    fn sample(&mut self, sample: Duration) {
        self.sample_falling(sample, 1.0);
    }

    /// A sample whose pull downward counts for `fall` (0 to 1) of a full one's; upward it counts in
    /// full.
    fn sample_falling(&mut self, sample: Duration, fall: f64) {
        let deviation = self.mean.abs_diff(sample);
        let gain = |from: Duration, to: Duration| if to < from { fall } else { 1.0 };
        self.var = approach(self.var, deviation, gain(self.var, deviation) / 4.0);
        self.mean = approach(self.mean, sample, gain(self.mean, sample) / 8.0);
    }

    /// `S + 4·V`: what a sample rarely exceeds.
    fn bound(&self) -> Duration {
        self.mean + self.var * 4
    }
}

/// `from` moved toward `to` by `gain` of the difference.
fn approach(from: Duration, to: Duration, gain: f64) -> Duration {
    let (from, to) = (from.as_secs_f64(), to.as_secs_f64());
    Duration::from_secs_f64((from + (to - from) * gain.clamp(0.0, 1.0)).max(0.0))
}

/// A lateness sample closer than this to the previous one lowers the estimate by a share of what a
/// full sample would, in proportion (a late one raises it in full): the estimate comes down over about
/// eight of these spans however many timely copies come, rather than over eight messages, which at
/// 800 a second is ten milliseconds and lets a burst of timely copies hide the late ones just before.
const LATENESS_SPACING: Duration = Duration::from_millis(25);

/// The graft timeout learnt from round trips and from the lateness of the tree's copies.
#[derive(Debug, Clone)]
pub(crate) struct GraftWait {
    round_trip: Option<Smoothed>,
    /// Starts at zero (a copy is not late until one is seen late), so a node that only ever got its
    /// copies first waits what the round trips say.
    lateness: Smoothed,
    /// When the last lateness sample came.
    last_lateness: Option<Instant>,
    floor: Duration,
    ceiling: Duration,
}

impl GraftWait {
    pub(crate) fn new(floor: Duration, ceiling: Duration) -> Self {
        Self {
            round_trip: None,
            lateness: Smoothed {
                mean: Duration::ZERO,
                var: Duration::ZERO,
            },
            last_lateness: None,
            floor: floor.min(ceiling),
            ceiling,
        }
    }

    /// One round trip: a graft's, or one the driver measured.
    pub(crate) fn sample(&mut self, rtt: Duration) {
        match &mut self.round_trip {
            None => self.round_trip = Some(Smoothed::first(rtt)),
            Some(smoothed) => smoothed.sample(rtt),
        }
    }

    /// How late the tree's copy of one message came after its first announcement (zero if it came
    /// first). Samples past the ceiling count as the ceiling: the wait never exceeds it anyway, and one
    /// copy stuck for seconds should not hold the estimate up for long after. `now` is when the copy
    /// came: samples sooner than [`LATENESS_SPACING`] after the last lower the estimate in proportion.
    pub(crate) fn lateness(&mut self, now: Instant, late: Duration) {
        let since = self
            .last_lateness
            .map_or(LATENESS_SPACING, |last| now.saturating_duration_since(last));
        let fall = (since.as_secs_f64() / LATENESS_SPACING.as_secs_f64()).min(1.0);
        self.last_lateness = Some(now);
        self.lateness.sample_falling(late.min(self.ceiling), fall);
    }

    /// How long to wait for a copy before grafting (and before grafting the next announcer).
    pub(crate) fn timeout(&self) -> Duration {
        match self.round_trip {
            None => self.ceiling,
            Some(rtt) => rtt
                .bound()
                .max(self.lateness.bound())
                .clamp(self.floor, self.ceiling),
        }
    }

    /// How long a graft's answer may take before the next announcer is grafted, once a round trip was
    /// measured: the round trip's `S + 4·V`, but at least `1.25·S`. The variation needs the margin:
    /// the driver's samples are one per new link and alike (a handshake's), so they shrink `V` toward
    /// zero, and a bound near the mean fires before many answers that were coming; each such retry
    /// grafts a second copy. At 1,000 nodes with 50-60 ms links, half of them crashing, retries at the
    /// graft wait were a third of the grafts after the crash, and nearly every one brought a duplicate
    /// (`meshsim gossip --fail 0.5`: median duplicates per delivery 0.0150 with them, 0.0109 with
    /// this wait, over 20 seeds). Between the floor and the ceiling, as the wait.
    pub(crate) fn answer_wait(&self) -> Option<Duration> {
        let rtt = self.round_trip?;
        let bound = rtt.mean + (rtt.var * 4).max(rtt.mean / 4);
        Some(bound.clamp(self.floor, self.ceiling))
    }

    /// The smoothed round trip, once one was measured.
    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.round_trip.map(|rtt| rtt.mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A clock for lateness samples: each call is `step` after the last.
    fn clock(step: Duration) -> impl FnMut() -> Instant {
        let mut now = Instant::from_duration(Duration::from_secs(1));
        move || {
            now += step;
            now
        }
    }

    /// Twenty copies 80 ms late, one `tick` apart: the wait covers them at once. Returns it.
    fn raise_with_late_copies(wait: &mut GraftWait, tick: &mut impl FnMut() -> Instant) -> Duration {
        for _ in 0..20 {
            wait.lateness(tick(), 80 * MS);
        }
        let busy = wait.timeout();
        assert!(busy >= 80 * MS, "the wait covers the late copies: {busy:?}");
        busy
    }

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

    #[test]
    fn late_copies_lengthen_the_wait_and_timely_ones_bring_it_back() {
        // Messages a spacing apart: each sample counts in full, as RFC 6298's.
        let mut tick = clock(LATENESS_SPACING);
        let mut wait = GraftWait::new(5 * MS, 300 * MS);
        for _ in 0..50 {
            wait.sample(20 * MS);
            wait.lateness(tick(), Duration::ZERO);
        }
        let idle = wait.timeout();
        assert!(
            idle < 30 * MS,
            "copies that come first leave the round trip's wait: {idle:?}"
        );
        // A burst of traffic: the tree's copies queue behind it and come 80 ms after the announcements.
        raise_with_late_copies(&mut wait, &mut tick);
        for _ in 0..50 {
            wait.lateness(tick(), Duration::ZERO);
        }
        assert!(
            wait.timeout() < 30 * MS,
            "back to the round trip's: {:?}",
            wait.timeout()
        );
        // Lateness alone never lifts a wait past its ceiling, nor replaces the missing round trip.
        let mut fresh = GraftWait::new(5 * MS, 300 * MS);
        fresh.lateness(tick(), 10 * MS);
        assert_eq!(fresh.timeout(), 300 * MS);
        fresh.sample(20 * MS);
        for _ in 0..10 {
            fresh.lateness(tick(), 10_000 * MS);
        }
        assert_eq!(fresh.timeout(), 300 * MS);
    }

    #[test]
    fn a_burst_of_timely_copies_does_not_hide_the_late_ones_just_before() {
        // 1,000 messages a second: a millisecond between samples.
        let mut tick = clock(MS);
        let mut wait = GraftWait::new(5 * MS, 300 * MS);
        for _ in 0..50 {
            wait.sample(20 * MS);
        }
        let busy = raise_with_late_copies(&mut wait, &mut tick);
        // Fifty timely copies within 50 ms: per message the wait would be back to the round trip's
        // (as the test above shows for messages a spacing apart); in time it has come down a little.
        for _ in 0..50 {
            wait.lateness(tick(), Duration::ZERO);
        }
        let after_burst = wait.timeout();
        assert!(
            after_burst >= busy / 2,
            "50 ms of timely copies: {after_burst:?} after {busy:?}"
        );
        // A second of them brings it back down.
        for _ in 0..1_000 {
            wait.lateness(tick(), Duration::ZERO);
        }
        assert!(wait.timeout() < 30 * MS, "{:?}", wait.timeout());
    }

    #[test]
    fn a_graft_answer_is_given_more_than_the_mean_round_trip() {
        let mut wait = GraftWait::new(5 * MS, 300 * MS);
        assert_eq!(
            wait.answer_wait(),
            None,
            "no round trip yet: the configured retry"
        );
        // The driver's handshakes, all alike: the variation shrinks toward zero.
        for _ in 0..50 {
            wait.sample(110 * MS);
        }
        let answer = wait.answer_wait().unwrap();
        assert!(
            wait.timeout() < 115 * MS,
            "the wait itself is near the mean: {:?}",
            wait.timeout()
        );
        assert!(
            answer >= 110 * MS * 5 / 4,
            "an answer jittered past the mean is still waited for: {answer:?}"
        );
        // A slow path: beyond the fixed 150 ms retry, within the ceiling.
        for _ in 0..50 {
            wait.sample(200 * MS);
        }
        let slow = wait.answer_wait().unwrap();
        assert!(slow > 240 * MS && slow <= 300 * MS, "{slow:?}");
    }
}
