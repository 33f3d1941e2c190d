//! Running `ip` and `nft`.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::TestbedError;

/// Runs `args[0]` with the rest as arguments; an error carries the command line and its stderr.
pub(crate) fn run<S: AsRef<str>>(args: &[S]) -> Result<String, TestbedError> {
    run_with_input(args, None)
}

/// Runs a command, writing `input` to its stdin when given (`nft -f -` reads a ruleset there).
pub(crate) fn run_with_input<S: AsRef<str>>(args: &[S], input: Option<&str>) -> Result<String, TestbedError> {
    let line = args.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" ");
    let (program, rest) = args.split_first().ok_or_else(|| TestbedError::Command {
        command: line.clone(),
        stderr: "empty command".into(),
    })?;
    let mut child = Command::new(program.as_ref())
        .args(rest.iter().map(AsRef::as_ref))
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        return Err(TestbedError::Command {
            command: line,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    tracing::trace!(command = %line, "testbed");
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
