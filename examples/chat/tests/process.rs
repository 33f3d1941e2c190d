//! The `chat` binary, twice: ada starts alone, bob joins through ada's printed `<peer-id>@<addr>`, and
//! a line typed on ada's stdin is printed on bob's stdout as `[ada] text`.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(30);

fn chat(
    args: &[&str],
) -> (
    Child,
    Lines<BufReader<ChildStdout>>,
    Lines<BufReader<ChildStderr>>,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    (child, stdout, stderr)
}

/// The next line that contains `needle`, within [`WAIT`].
async fn line_with<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut Lines<R>, needle: &str) -> String {
    timeout(WAIT, async {
        loop {
            let line = lines.next_line().await.unwrap().expect("the chat exited");
            if line.contains(needle) {
                return line;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no line with {needle:?} in time"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_typed_on_one_chat_is_printed_by_the_other() {
    let (mut ada, mut ada_out, mut ada_err) = chat(&["--listen", "127.0.4.1:0", "--nick", "ada"]);
    let address = line_with(&mut ada_out, "@127.0.4.1:").await;
    let args = [
        "--listen",
        "127.0.5.1:0",
        "--nick",
        "bob",
        "--bootstrap",
        &address,
    ];
    let (mut bob, mut bob_out, _bob_err) = chat(&args);
    line_with(&mut bob_out, "@127.0.5.1:").await;

    // Ada says her line once bob is her gossip neighbour.
    line_with(&mut ada_err, "NeighborUp").await;
    let mut stdin = ada.stdin.take().unwrap();
    stdin.write_all(b"hello bob\n").await.unwrap();
    stdin.flush().await.unwrap();
    assert_eq!(line_with(&mut bob_out, "hello").await, "[ada] hello bob");

    ada.kill().await.unwrap();
    bob.kill().await.unwrap();
}
