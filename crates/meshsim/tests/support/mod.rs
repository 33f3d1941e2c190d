//! Running the `meshsim` binary as a user does, shared by the CLI test files.

use std::process::Command;

use serde_json::Value;

/// Runs `meshsim` with `args` (which should include `--json`), requires success, and parses stdout as the
/// one JSON object it prints.
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
    serde_json::from_slice(&output.stdout).unwrap()
}
