//! Running the `meshsim` binary as a user does, shared by the CLI test files.

use std::process::Command;

use serde_json::Value;

/// The keys every experiment's report ends with (`Report::footer`), each exactly once.
const FOOTER: [&str; 8] = [
    "events",
    "events_per_sec",
    "cpu_ms",
    "events_per_cpu_sec",
    "wall_ms",
    "rss_bytes",
    "peak_rss_bytes",
    "trace_hash",
];

/// Runs `meshsim` with `args` (which should include `--json`), requires success, and parses stdout as the
/// one JSON object it prints, after checking that it carries the shared footer once.
pub(crate) fn meshsim_json(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_meshsim"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    for key in FOOTER {
        // A JSON object may repeat a key and a parser keeps the last: count them in the text.
        let times = text.matches(&format!("\"{key}\":")).count();
        assert_eq!(times, 1, "{}: footer key {key} appears {times} times", args[0]);
    }
    serde_json::from_slice(&output.stdout).unwrap()
}
