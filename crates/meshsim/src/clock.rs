//! Wall-clock measurements and progress for the command line (never inside the simulation).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The one place meshsim reads the real clock: to time a run and pace progress lines.
#[allow(clippy::disallowed_methods)]
pub(crate) fn wall_now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Set once `--json` asks for nothing but the report: progress stays hidden.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Hides every later [`Progress`] (`--json`: scripts read stdout, and stderr stays clean too).
pub(crate) fn hide_progress() {
    QUIET.store(true, Ordering::Relaxed);
}

/// A live status line on stderr (indicatif's spinner with the elapsed wall time). indicatif draws
/// nothing when stderr is not a terminal (a pipe, a CI log), and nothing is drawn after
/// [`hide_progress`]; the line is cleared when the `Progress` is dropped.
pub(crate) struct Progress {
    bar: ProgressBar,
    last: std::time::Instant,
}

/// How often the message is rebuilt: it is read by a person.
const EVERY: Duration = Duration::from_millis(200);

impl Progress {
    pub(crate) fn new() -> Self {
        let target = if QUIET.load(Ordering::Relaxed) {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = ProgressBar::with_draw_target(None, target).with_style(style);
        Self {
            bar,
            last: wall_now(),
        }
    }

    /// Call often; rebuilds the message at most every [`EVERY`], and never when nothing is drawn.
    pub(crate) fn tick(&mut self, what: impl FnOnce() -> String) {
        if self.bar.is_hidden() {
            return;
        }
        let now = wall_now();
        if now.duration_since(self.last) >= EVERY {
            self.last = now;
            self.bar.set_message(what());
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
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
