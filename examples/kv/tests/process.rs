//! The `kv` binary as a user runs it: two `kv node` processes, then `kv put` against one and `kv get`
//! against the other, over real QUIC on loopback.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const KV: &str = env!("CARGO_BIN_EXE_kv");

/// Starts `kv node` on `dir`; returns the process and its `<peer-id>@<addr>` line.
async fn node(dir: &Path, bootstrap: Option<&str>) -> (Child, String) {
    let mut command = Command::new(KV);
    command
        .args(["node", "--loopback-devnet", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some(contact) = bootstrap {
        command.args(["--bootstrap", contact]);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    (child, line)
}

/// Runs `kv <args> --data-dir <dir>`; returns whether it succeeded and its stdout.
async fn kv(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(KV)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .await
        .unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_on_one_node_and_get_from_another() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (_first, contact) = node(&a, None).await;
    let (_second, _) = node(&b, Some(&contact)).await;
    // The second node joins in the background; a put before it has peers fails, so try a few times.
    let mut stored = None;
    for _ in 0..30 {
        let (ok, out) = kv(&b, &["put", "greeting", "hello from b"]).await;
        if ok {
            stored = Some(out);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let stored: serde_json::Value = serde_json::from_str(&stored.expect("kv put never succeeded")).unwrap();
    assert!(stored["stored_at"].as_u64().unwrap() >= 1, "{stored}");
    assert_eq!(
        kv(&a, &["get", "greeting"]).await,
        (true, "hello from b\n".to_string())
    );
    let (found, out) = kv(&a, &["get", "nobody put this"]).await;
    assert!(
        !found && out.is_empty(),
        "a missing name must fail with nothing on stdout"
    );
    // The first node cannot take b's name.
    assert!(!kv(&a, &["put", "greeting", "mine"]).await.0);
    assert_eq!(kv(&b, &["get", "greeting"]).await.1, "hello from b\n");
}
