//! CPU time, read from the operating system's per-thread and per-process clocks.
//!
//! The node task charges each protocol the CPU time of the calls it makes into it
//! ([`Metrics::protocol_cpu`](crate::Metrics::protocol_cpu)); benchmarks use the same clocks to say where
//! a run's time went. A CPU clock, unlike the wall clock, does not advance while the thread waits for a
//! core, so its readings hold on a shared, oversubscribed machine.
//!
//! Both clocks are `clock_gettime(2)`: `CLOCK_THREAD_CPUTIME_ID` (about a quarter of a microsecond a
//! reading on Linux, which serves it by a system call) and `CLOCK_PROCESS_CPUTIME_ID` (every thread of
//! the process, including threads that have ended). On platforms without them both functions return
//! `None`.
// Reading a CPU clock is the driver's business: protocol code never sees these.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

/// CPU time the calling thread has used since it started (user and system), `None` where the platform
/// has no per-thread clock.
pub fn thread_cpu_time() -> Option<Duration> {
    imp::read(imp::THREAD)
}

/// CPU time the whole process has used (every thread, ended ones included), `None` where the platform
/// has no process clock.
pub fn process_cpu_time() -> Option<Duration> {
    imp::read(imp::PROCESS)
}

#[cfg(unix)]
mod imp {
    use std::time::Duration;

    use nix::time::{ClockId, clock_gettime};

    pub(super) const THREAD: ClockId = ClockId::CLOCK_THREAD_CPUTIME_ID;
    pub(super) const PROCESS: ClockId = ClockId::CLOCK_PROCESS_CPUTIME_ID;

    pub(super) fn read(clock: ClockId) -> Option<Duration> {
        let spec = clock_gettime(clock).ok()?;
        let secs = u64::try_from(spec.tv_sec()).ok()?;
        let nanos = u32::try_from(spec.tv_nsec()).ok()?;
        Some(Duration::new(secs, nanos))
    }
}

#[cfg(not(unix))]
mod imp {
    use std::time::Duration;

    pub(super) const THREAD: () = ();
    pub(super) const PROCESS: () = ();

    pub(super) fn read((): ()) -> Option<Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_computes_uses_cpu_time_and_a_sleeping_one_does_not_count_the_sleep() {
        let before = thread_cpu_time().expect("a per-thread CPU clock on this platform");
        // Work the optimiser cannot remove: a hash chain, long enough to take well over a clock tick.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for i in 0..20_000_000_u64 {
            x = (x ^ i).wrapping_mul(0x5851_f42d_4c95_7f2d).rotate_left(17);
        }
        std::hint::black_box(x);
        let worked = thread_cpu_time().expect("clock") - before;
        assert!(worked > Duration::ZERO, "no CPU time counted for a busy loop");

        let before = thread_cpu_time().expect("clock");
        std::thread::sleep(Duration::from_millis(200));
        let slept = thread_cpu_time().expect("clock") - before;
        assert!(
            slept < Duration::from_millis(100),
            "a 200 ms sleep counted {slept:?} of CPU time"
        );

        let process = process_cpu_time().expect("a process CPU clock on this platform");
        assert!(
            process >= worked,
            "the process used less CPU ({process:?}) than one of its threads"
        );
    }
}
