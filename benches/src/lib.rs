//! Criterion benchmarks for meshwork. Every benchmark group measures our code (`ours`) next to the raw crate
//! call it wraps (`raw`) in the same run, so results are read as ratios, not absolute numbers.
//!
//! Run one group with `cargo bench -p meshwork-benches --bench identity`, then print the ratios of the
//! medians with `python3 benches/ratios.py`.

pub mod flood_reference;

/// What the process has used so far, read from procfs (Linux); the custom benchmark binaries
/// (`kad_connections`, `gossip_quic`) report memory and CPU with these.
pub mod process {
    /// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`; 0 where there is no procfs).
    pub fn status_bytes(field: &str) -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|line| {
                let rest = line.strip_prefix(field)?.strip_prefix(':')?;
                let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
                Some(kib * 1024)
            })
            .unwrap_or(0)
    }

    /// CPU time the process has used (user and system, all threads), in seconds: fields 14 and 15 of
    /// `/proc/self/stat`, in clock ticks of 1/100 s (0 where there is no procfs).
    pub fn cpu_seconds() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return 0.0;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3, so fields 14 and 15 are at 11 and 12.
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        (ticks(11) + ticks(12)) as f64 / 100.0
    }

    /// Sums a metric of a Prometheus text over every line that starts with `prefix`.
    pub fn prometheus_sum(text: &str, prefix: &str) -> u64 {
        text.lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    }
}

/// The runtime of the benchmarks that run in the NAT testbed (`hole_punch`, `relay`): two worker
/// threads, as on the development machine; `None`, after saying why on stderr, where the testbed
/// cannot run (not root, no `ip` or `nft`).
pub fn testbed_runtime(bench: &str) -> Option<tokio::runtime::Runtime> {
    if let Err(err) = meshwork_testbed::available() {
        eprintln!("{bench}: {err}");
        return None;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    Some(runtime)
}
