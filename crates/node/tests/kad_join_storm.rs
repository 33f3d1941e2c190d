//! Two hundred Kademlia nodes join over real QUIC on loopback, one every 25 ms, then each looks up
//! another. Nothing is lost silently: every request is answered, and every frame written is read, while
//! about a thousand simultaneous dials are resolved and the connection managers trim connections
//! underneath.
//!
//! Before the runtime drained the losers of simultaneous dials, this scenario left tens to hundreds of
//! requests per run unanswered (each stalling a lookup path for the 10 s request timeout), with no
//! counter showing why.
#![allow(clippy::unwrap_used)]
// A test's deadlines are wall time.
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_kad::{Command, Config, Event, KadTotals, Kademlia, PeerInfo, QueryId};
use meshwork_node::{Events, Handle, Node, NodeBuilder, NodeConfig};
use support::{Net, kad_hooks, loopback};
use tokio::time::{Instant, sleep, timeout};

const NODES: usize = 200;
const JOIN_INTERVAL: Duration = Duration::from_millis(25);
/// Seeded runs (the nodes' keys and Kademlia RNGs); `MESHWORK_STORM_RUNS` asks for more (the closing
/// figures of issue #21 are from five).
fn runs() -> u8 {
    std::env::var("MESHWORK_STORM_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(1)
}

struct KadNode {
    node: Node,
    kad: Handle<Kademlia>,
    events: Events<Kademlia>,
}

async fn start(run: u8, i: usize) -> KadNode {
    let mut seed = [run; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    let key = Keypair::from_seed(seed);
    // The default connection manager trims thousands of connections underneath (each node keeps
    // about 16): a trimmed connection drains both ways before it closes, and a request dropped while
    // every connection to its peer was closing is asked again.
    let mut builder = NodeBuilder::new(NodeConfig::default());
    let kad = Kademlia::new(key.clone(), Config::default(), u64::from(run) << 32 | i as u64);
    let (kad, events) = builder.register_with(kad, kad_hooks()).unwrap();
    let node = Net::Quic.start(builder, &key, loopback(i)).await;
    KadNode { node, kad, events }
}

/// Waits for the answer to `query` on one node, skipping other events.
async fn answer(events: &mut Events<Kademlia>, query: QueryId) -> Event {
    timeout(Duration::from_secs(120), async {
        loop {
            let event = events.recv().await.expect("node stopped");
            match &event {
                Event::Bootstrapped { query: q, .. }
                | Event::FoundPeer { query: q, .. }
                | Event::Failed { query: q, .. }
                    if *q == query =>
                {
                    return event;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("no answer within two minutes")
}

/// Sums a counter of the Prometheus text over every line that starts with `prefix`.
fn metric(text: &str, prefix: &str) -> u64 {
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Frames written and read over every node, and drops by reason.
fn frames(nodes: &[KadNode]) -> (u64, u64, u64) {
    let (mut sent, mut received, mut dropped) = (0, 0, 0);
    for n in nodes {
        let text = n.node.metrics().render();
        sent += metric(&text, "meshwork_messages_sent_total{");
        received += metric(&text, "meshwork_messages_received_total{");
        dropped += metric(&text, "meshwork_dropped_total{");
    }
    (sent, received, dropped)
}

async fn totals(nodes: &[KadNode]) -> KadTotals {
    let mut sum = KadTotals::default();
    for n in nodes {
        let t = n.kad.with(|kad| kad.totals()).await.unwrap();
        sum.requests += t.requests;
        sum.successes += t.successes;
        sum.failures += t.failures;
        sum.timeouts += t.timeouts;
        sum.unsolicited += t.unsolicited;
        sum.prefix_refused += t.prefix_refused;
        sum.queue_full += t.queue_full;
        sum.late_answers += t.late_answers;
    }
    sum
}

async fn join_storm(run: u8) {
    let started = Instant::now();
    let mut nodes = vec![start(run, 0).await];
    let seed = PeerInfo {
        id: nodes[0].node.peer_id(),
        addr: nodes[0].node.local_addr().into(),
    };
    // A node joins every 25 ms: it bootstraps through the first node at once, without waiting for
    // the others' bootstraps to finish.
    for i in 1..NODES {
        let next = started + JOIN_INTERVAL * i as u32;
        tokio::time::sleep_until(next).await;
        let n = start(run, i).await;
        n.kad
            .command(Command::Bootstrap {
                query: QueryId(1),
                peers: vec![seed.clone()],
            })
            .await
            .unwrap();
        nodes.push(n);
    }
    let joined = started.elapsed();
    for (i, n) in nodes.iter_mut().enumerate().skip(1) {
        match answer(&mut n.events, QueryId(1)).await {
            Event::Bootstrapped { table_size, .. } => assert!(table_size >= 1, "node {i} learned nobody"),
            other => panic!("node {i}: bootstrap ended with {other:?}"),
        }
    }
    let bootstrapped = started.elapsed();

    // Every node looks up another (the next one round the ring), all at once.
    let ids: Vec<PeerId> = nodes.iter().map(|n| n.node.peer_id()).collect();
    for (i, n) in nodes.iter().enumerate() {
        let peer = ids[(i + 1) % NODES];
        n.kad
            .command(Command::FindPeer {
                query: QueryId(2),
                peer,
            })
            .await
            .unwrap();
    }
    let mut missed = Vec::new();
    for (i, n) in nodes.iter_mut().enumerate() {
        if !matches!(
            answer(&mut n.events, QueryId(2)).await,
            Event::FoundPeer { found: Some(_), .. }
        ) {
            missed.push(i);
        }
    }
    let found = NODES - missed.len();
    // A lookup launched while two hundred others race may miss a peer whose neighbours just trimmed
    // their connections (on a loaded machine, 1 or 2 in 200); a user looks again, and so does the test:
    // the second try must find it.
    for &i in &missed {
        let peer = ids[(i + 1) % NODES];
        let n = &mut nodes[i];
        n.kad
            .command(Command::FindPeer {
                query: QueryId(3),
                peer,
            })
            .await
            .unwrap();
        assert!(
            matches!(
                answer(&mut n.events, QueryId(3)).await,
                Event::FoundPeer { found: Some(_), .. }
            ),
            "run {run}: node {i} did not find its peer on the second try either"
        );
    }
    let looked_up = started.elapsed();

    // Let what is in flight land: the frame counts stop moving.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = frames(&nodes);
    loop {
        sleep(Duration::from_millis(500)).await;
        let now = frames(&nodes);
        if now == last && now.0 == now.1 || Instant::now() > deadline {
            last = now;
            break;
        }
        last = now;
    }
    let (sent, received, dropped) = last;
    let sum = |prefix: &str| -> u64 {
        nodes
            .iter()
            .map(|n| metric(&n.node.metrics().render(), prefix))
            .sum()
    };
    eprintln!(
        "run {run}: undrained closes {}, stalled {}, penalised {}, dial failures {}; drops: {}",
        sum("meshwork_undrained_closes_total"),
        sum("meshwork_stalled_peers_total"),
        sum("meshwork_penalised_peers_total"),
        sum("meshwork_dial_failures_total"),
        [
            "queue_full",
            "connection_closed",
            "write_failed",
            "decode_failed",
            "prefix_limit",
            "unsolicited"
        ]
        .map(|r| format!(
            "{r} {}",
            sum(&format!(
                "meshwork_dropped_total{{protocol=\"/meshwork/kad/2\",reason=\"{r}\"}}"
            ))
        ))
        .join(", ")
    );
    let kad = totals(&nodes).await;
    let duplicates: u64 = nodes
        .iter()
        .map(|n| n.node.transport_counters().duplicates_closed)
        .sum();
    eprintln!(
        "run {run}: joined {joined:?}, bootstrapped {bootstrapped:?}, looked up {looked_up:?}; \
         found {found}/{NODES} at the first try; kad requests {} answered {} failed {} unanswered (timed out) {} of which answered late {}; \
         frames sent {sent} received {received} dropped {dropped}; duplicate connections closed {duplicates}",
        kad.requests, kad.successes, kad.failures, kad.timeouts, kad.late_answers
    );
    // Every request is answered. One whose answer comes after its 10 s timer (the machine is busy:
    // two hundred nodes on a few cores) counts as timed out and as answered late; one never answered
    // would count only as timed out. Whether answers beat the timer depends on the machine's load, so
    // the test does not assert it (the figure is printed above).
    assert_eq!(
        kad.timeouts, kad.late_answers,
        "run {run}: requests never answered"
    );
    assert_eq!(
        sent, received,
        "run {run}: frames written but never read ({dropped} counted drops)"
    );
    // All at once: each waits for its connections to close.
    let shutdowns: Vec<_> = nodes
        .iter()
        .map(|n| {
            let node = n.node.clone();
            tokio::spawn(async move { node.shutdown().await })
        })
        .collect();
    for shutdown in shutdowns {
        shutdown.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_nodes_join_at_25ms_intervals_and_no_request_goes_unanswered() {
    for run in 1..=runs() {
        join_storm(run).await;
    }
}
