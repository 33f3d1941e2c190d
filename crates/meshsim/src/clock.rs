//! Wall-clock measurements and progress for the command line (never inside the simulation).

use std::time::Duration;

/// The one place meshsim reads the real clock: to time a run and pace progress lines.
#[allow(clippy::disallowed_methods)]
pub(crate) fn wall_now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Prints a progress line on stderr every few seconds of wall time.
pub(crate) struct Progress {
    started: std::time::Instant,
    last: std::time::Instant,
    every: Duration,
}

impl Progress {
    pub(crate) fn new() -> Self {
        let now = wall_now();
        Self {
            started: now,
            last: now,
            every: Duration::from_secs(2),
        }
    }

    /// Call often; prints at most once per interval.
    pub(crate) fn tick(&mut self, what: impl FnOnce() -> String) {
        let now = wall_now();
        if now.duration_since(self.last) >= self.every {
            self.last = now;
            eprintln!(
                "[{:>6.1}s] {}",
                now.duration_since(self.started).as_secs_f64(),
                what()
            );
        }
    }
}

/// Resident memory of this process from `/proc/self/status` (Linux): `(VmRSS, VmHWM)` in bytes.
pub(crate) fn memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU time this (single-threaded) process has run, from `/proc/self/schedstat` (Linux). Unlike wall time
/// it does not count time spent waiting for a core, so it stays meaningful on a busy machine.
pub(crate) fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    let nanos = stat.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(nanos))
}
