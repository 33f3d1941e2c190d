//! Issue #20, "connections that scale": Kademlia nodes over real QUIC on loopback, all in this one
//! process, and what they cost.
//!
//! Phases:
//!
//! 1. Memory per idle connection, on a fresh set: one hub node and 100 client nodes; `VmRSS` before and
//!    after every client dials the hub, divided by the 200 connection ends (both ends live here).
//! 2. Join: `--nodes` nodes (default 200) start one every 25 ms; each bootstraps through node 0 at once.
//! 3. Settling: after the last join, the routing-table sizes summed over all nodes are polled every
//!    250 ms (all nodes at once); the DHT is settled once every bootstrap has answered, no node's table
//!    is empty (a node whose bootstrap found nobody joins again later), and the sizes have not changed
//!    for 2 s since (reported without that quiet window, from the start of the sweep
//!    that saw the last change; not settled if that takes over 120 s).
//! 4. Lookups: `--lookups` lookups (default 200), ten at a time, each from a random node for the key of
//!    a random other node (`FindNode`, seeded). Success: the target is among the peers returned. Recall:
//!    the share of the 20 peers closest to the target by XOR distance (among all nodes but the one asking,
//!    which never lists itself) that the answer holds. Latency and requests come from the query's
//!    `QueryStats`.
//! 5. Open connections per node (mean, max) right after the lookups and again once the connection
//!    manager's grace period (10 s) has passed, the manager's closes by reason, and the peak RSS
//!    (`VmHWM`) over the whole run.
//! 6. Cold lookups: once the connections of phase 4 have been idle for the manager's idle timeout
//!    (60 s), the same number of lookups again (another seeded plan), `cold_*` in the JSON: what a
//!    lookup costs a node that looked nothing up for a minute, whose first hop dials unless it can
//!    ask a peer it holds a connection to (an anchor, `--anchors`).
//!
//! Besides the figures of the issue it prints what explains them: the RSS of the unconnected nodes of
//! phase 1, the peak of open connections while settling, a trace every 5 s of table size, connections
//! and RSS while settling, the connection manager's states, and each missed lookup's `QueryStats`.
//!
//! Run: `cargo bench -p meshwork-benches --bench kad_connections -- [--nodes N] [--lookups L] [--json]`
//! (`--json` prints one JSON object instead of one line per figure). `--low N`, `--high N` and
//! `--grace-ms MS` set the connection manager's limits of the measured nodes (default: the node's);
//! `--high 100000` measures Kademlia without it. `--anchors N` sets how many far buckets keep a warm
//! connection (Kademlia's `Config::anchors`, default 3; 0 for none).
//!
//! Targets of the issue, for 200 nodes: success 1.0, at most 30 open connections per node, settled
//! within 10 s of the last join, peak RSS at most 400 MB. The same run with 500 nodes completes.

// A benchmark's clock is wall time.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meshwork_benches::process::{prometheus_sum, status_bytes as proc_status};
use meshwork_identity::{Keypair, PeerId};
use meshwork_kad::{
    Address, Command, Config as KadConfig, Event, KadTotals, Kademlia, Key, PeerInfo, QueryId, QueryStats,
};
use meshwork_node::{ConnectionLimits, Handle, Hooks, Node, NodeBuilder, NodeConfig};
use meshwork_transport::{Config, QuicTransport};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use tokio::sync::oneshot;

const JOIN_INTERVAL: Duration = Duration::from_millis(25);
/// Client nodes of the idle-connection phase.
const IDLE_CLIENTS: usize = 100;
/// Lookups in flight at once.
const CONCURRENT_LOOKUPS: usize = 10;
/// The size of the closest set recall is measured against.
const CLOSEST: usize = 20;
const SETTLE_POLL: Duration = Duration::from_millis(250);
const SETTLE_QUIET: Duration = Duration::from_secs(2);
const SETTLE_CAP: Duration = Duration::from_secs(120);
const TRACE_EVERY: Duration = Duration::from_secs(5);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// Who waits for the answer to which query of one node.
type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<Event>>>>;

#[derive(Clone)]
struct KadNode {
    node: Node,
    kad: Handle<Kademlia>,
    waiters: Waiters,
}

struct Args {
    nodes: usize,
    lookups: usize,
    json: bool,
    /// The connection manager's limits for every node (defaults, or `--low`, `--high`, `--grace-ms`).
    limits: ConnectionLimits,
    /// Kademlia's `Config::anchors` of the measured nodes (`--anchors`).
    anchors: usize,
}

fn args() -> Args {
    let mut args = Args {
        nodes: 200,
        lookups: 200,
        json: false,
        limits: ConnectionLimits::default(),
        anchors: KadConfig::default().anchors,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--nodes" => args.nodes = number(it.next(), "--nodes"),
            "--lookups" => args.lookups = number(it.next(), "--lookups"),
            "--json" => args.json = true,
            "--low" => args.limits.low_watermark = number(it.next(), "--low"),
            "--high" => args.limits.high_watermark = number(it.next(), "--high"),
            "--anchors" => args.anchors = number(it.next(), "--anchors"),
            "--grace-ms" => {
                args.limits.grace_period = Duration::from_millis(number(it.next(), "--grace-ms") as u64)
            }
            // `cargo bench` passes `--bench`; anything else unknown is ignored too.
            _ => {}
        }
    }
    assert!(args.nodes >= 2, "--nodes must be at least 2");
    args
}

fn number(value: Option<String>, name: &str) -> usize {
    value
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} takes a number"))
}

/// A distinct loopback address per node (all of 127.0.0.0/8 is loopback on Linux), so that per-/24
/// limits see distinct networks.
fn loopback(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, (i / 250) as u8 + 1, (i % 250) as u8, 1)
}

/// How the runtime asks Kademlia for addresses to dial, and tells it each connection's observed address.
fn kad_hooks() -> Hooks<Kademlia> {
    Hooks {
        address_of: Some(|kad: &Kademlia, peer: &PeerId| kad.address_of(peer).and_then(Address::socket_addr)),
        on_connected: Some(|peer, addr| {
            Some(Command::PeerAddress {
                peer,
                addr: addr.into(),
            })
        }),
        on_round_trip: None,
    }
}

/// The query an answer event belongs to.
fn query_of(event: &Event) -> Option<QueryId> {
    match event {
        Event::Bootstrapped { query, .. }
        | Event::ClosestPeers { query, .. }
        | Event::FoundPeer { query, .. }
        | Event::Failed { query, .. } => Some(*query),
        _ => None,
    }
}

/// Starts a Kademlia node over QUIC (as `crates/node/tests/support` does) and a task that hands each
/// answer to whoever waits for its query.
async fn start(set: u8, i: usize, limits: ConnectionLimits, anchors: usize) -> KadNode {
    let mut seed = [set; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    let key = Keypair::from_seed(seed);
    let mut builder = NodeBuilder::new(NodeConfig {
        connections: limits,
        ..NodeConfig::default()
    });
    let mut config = KadConfig::default();
    config.anchors = anchors;
    let kad = Kademlia::new(key.clone(), config, u64::from(set) << 32 | i as u64);
    let (kad, mut events) = builder
        .register_with(kad, kad_hooks())
        .expect("register Kademlia");
    let mut config = Config::new(builder.protocols());
    // Hundreds of nodes in one process on two cores: give slow handshakes room.
    config.timeouts.handshake = Duration::from_secs(30);
    config.limits = config.limits.loopback_devnet();
    let transport = QuicTransport::bind(&key, SocketAddr::from((loopback(i), 0)), config)
        .await
        .expect("bind QUIC");
    let node = builder.start(transport).await.expect("start node");
    let waiters = Waiters::default();
    let pump = waiters.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let Some(query) = query_of(&event) else { continue };
            let waiter = pump.lock().expect("waiters").remove(&query.0);
            if let Some(waiter) = waiter {
                let _ = waiter.send(event);
            }
        }
    });
    KadNode { node, kad, waiters }
}

/// Sends `command` (named `query`) and returns a receiver of its answer.
async fn ask(n: &KadNode, query: u64, command: Command) -> oneshot::Receiver<Event> {
    let (tx, rx) = oneshot::channel();
    n.waiters.lock().expect("waiters").insert(query, tx);
    n.kad.command(command).await.expect("node stopped");
    rx
}

async fn answer(rx: oneshot::Receiver<Event>) -> Event {
    tokio::time::timeout(ANSWER_TIMEOUT, rx)
        .await
        .expect("no answer within two minutes")
        .expect("node stopped")
}

fn metric_sum(nodes: &[KadNode], prefix: &str) -> u64 {
    nodes
        .iter()
        .map(|n| prometheus_sum(&n.node.metrics().render(), prefix))
        .sum()
}

async fn shutdown(nodes: &[KadNode]) {
    // All at once: each waits for its connections to close.
    let shutdowns: Vec<_> = nodes
        .iter()
        .map(|n| {
            let node = n.node.clone();
            tokio::spawn(async move { node.shutdown().await })
        })
        .collect();
    for shutdown in shutdowns {
        let _ = shutdown.await;
    }
}

/// Bytes of resident memory per idle connection: one hub, `IDLE_CLIENTS` clients dialling it. The figure
/// covers both ends of each connection (both live in this process): the QUIC connection state of each
/// end (quinn's connection, streams and buffers), the runtime's per-connection tasks and bookkeeping,
/// and whatever Kademlia keeps on `PeerUp`.
/// Returns the bytes per connection end and the RSS of the 101 nodes before they connected.
async fn bytes_per_idle_connection() -> (u64, u64) {
    let hub = start(0xA0, 0, ConnectionLimits::default(), 0).await;
    let mut clients = Vec::with_capacity(IDLE_CLIENTS);
    for i in 1..=IDLE_CLIENTS {
        clients.push(start(0xA0, i, ConnectionLimits::default(), 0).await);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = proc_status("VmRSS");
    for c in &clients {
        c.node
            .dial(hub.node.peer_id(), hub.node.local_addr())
            .await
            .expect("dial");
    }
    // Well inside the manager's grace period (10 s): none of these is trimmed while measured.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let connected = hub.node.peers().await.expect("hub").len();
        if connected >= IDLE_CLIENTS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {connected} of {IDLE_CLIENTS} clients connected to the hub in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = proc_status("VmRSS");
    let mut all = clients;
    all.push(hub);
    shutdown(&all).await;
    (after.saturating_sub(before) / (2 * IDLE_CLIENTS as u64), before)
}

/// One lookup's outcome.
struct Lookup {
    from: usize,
    target: usize,
    returned: usize,
    stats: QueryStats,
    /// Why the query failed, if it did.
    error: Option<String>,
    found: bool,
    recall: f64,
    latency: Duration,
    requests: u32,
}

/// What one round of lookups found.
struct LookupRound {
    success: f64,
    recall: f64,
    requests: f64,
    /// Latency percentiles, in milliseconds.
    p50: f64,
    p99: f64,
}

/// `args.lookups` lookups, ten at a time, each from a random node for the key of a random other node
/// (the plan drawn from `seed`), with query ids from `first_query` on; reports them under `label`.
async fn lookup_round(
    nodes: &Arc<Vec<KadNode>>,
    net: &Arc<(Vec<PeerId>, Vec<Key>)>,
    args: &Args,
    seed: u64,
    first_query: u64,
    label: &str,
    say: &impl Fn(String),
) -> LookupRound {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let plan: Vec<(usize, usize)> = (0..args.lookups)
        .map(|_| {
            let from = rng.next_u64() as usize % args.nodes;
            let target = (from + 1 + rng.next_u64() as usize % (args.nodes - 1)) % args.nodes;
            (from, target)
        })
        .collect();
    let plan = Arc::new(plan);
    let next = Arc::new(AtomicUsize::new(0));
    let lookups_started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENT_LOOKUPS)
        .map(|_| {
            let (nodes, net, plan, next) = (nodes.clone(), net.clone(), plan.clone(), next.clone());
            tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(from, target)) = plan.get(i) else { break };
                    let (ids, keys) = (&net.0, &net.1);
                    let key = keys[target];
                    let query = first_query + i as u64;
                    let rx = ask(
                        &nodes[from],
                        query,
                        Command::FindNode {
                            query: QueryId(query),
                            target: key,
                        },
                    )
                    .await;
                    let (peers, stats, error) = match answer(rx).await {
                        Event::ClosestPeers { peers, stats, .. } => (peers, stats, None),
                        Event::Failed { stats, error, .. } => (Vec::new(), stats, Some(format!("{error:?}"))),
                        other => panic!("unexpected answer {other:?}"),
                    };
                    // The true closest set: every node but the one asking (it never lists itself).
                    let mut truth: Vec<usize> = (0..keys.len()).filter(|&j| j != from).collect();
                    truth.sort_by_key(|&j| keys[j].distance(&key));
                    truth.truncate(CLOSEST);
                    let hits = truth
                        .iter()
                        .filter(|&&j| peers.iter().any(|p| p.id == ids[j]))
                        .count();
                    done.push(Lookup {
                        from,
                        target,
                        returned: peers.len(),
                        stats,
                        error,
                        found: peers.iter().any(|p| p.id == ids[target]),
                        recall: hits as f64 / truth.len() as f64,
                        latency: stats.duration,
                        requests: stats.requests,
                    });
                }
                done
            })
        })
        .collect();
    let mut lookups = Vec::with_capacity(args.lookups);
    for worker in workers {
        lookups.extend(worker.await.expect("lookup worker"));
    }
    let lookups_took = lookups_started.elapsed();
    let count = lookups.len().max(1) as f64;
    let success = lookups.iter().filter(|l| l.found).count() as f64 / count;
    let recall = lookups.iter().map(|l| l.recall).sum::<f64>() / count;
    let requests = lookups.iter().map(|l| f64::from(l.requests)).sum::<f64>() / count;
    let mut latencies: Vec<Duration> = lookups.iter().map(|l| l.latency).collect();
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p50 = ms(percentile(&latencies, 0.50));
    let p99 = ms(percentile(&latencies, 0.99));
    say(format!(
        "{label}: {} in {} ms, {CONCURRENT_LOOKUPS} at a time",
        lookups.len(),
        lookups_took.as_millis()
    ));
    say(format!("success: {success:.3}"));
    for l in lookups.iter().filter(|l| !l.found) {
        say(format!(
            "  missed: node {} for node {}: {} peers returned; requests {}, answered {}, failed {}, timed out {}, {} ms{}",
            l.from,
            l.target,
            l.returned,
            l.stats.requests,
            l.stats.successes,
            l.stats.failures,
            l.stats.timeouts,
            l.stats.duration.as_millis(),
            l.error
                .as_deref()
                .map_or_else(String::new, |e| format!(", failed with {e}"))
        ));
    }
    if let Some(l) = lookups.iter().max_by_key(|l| l.latency) {
        say(format!(
            "  slowest: node {} for node {}: requests {}, answered {}, failed {}, timed out {}, {} ms",
            l.from,
            l.target,
            l.stats.requests,
            l.stats.successes,
            l.stats.failures,
            l.stats.timeouts,
            l.latency.as_millis()
        ));
    }
    let timed_out = lookups.iter().filter(|l| l.stats.timeouts > 0).count();
    say(format!("  lookups with a timed-out request: {timed_out}"));
    say(format!("recall of the {CLOSEST} closest: {recall:.3}"));
    say(format!("lookup latency: p50 {p50:.1} ms, p99 {p99:.1} ms"));
    say(format!("requests per lookup: {requests:.1}"));
    LookupRound {
        success,
        recall,
        requests,
        p50,
        p99,
    }
}

/// The nearest-rank percentile `p` (0..=1) of sorted `values`.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Table sizes and requests sent, summed over every node.
async fn tables(nodes: &[KadNode]) -> (usize, u64, usize) {
    // All nodes at once: each answers when its task gets to the call, which under a join storm can
    // take a while; one at a time, a sweep would take the sum of those waits.
    let calls: Vec<_> = nodes
        .iter()
        .map(|n| {
            let kad = n.kad.clone();
            tokio::spawn(async move {
                kad.with(|kad| (kad.routing_table().len(), kad.totals().requests))
                    .await
                    .expect("node stopped")
            })
        })
        .collect();
    let (mut size, mut requests, mut empty) = (0, 0, 0);
    for call in calls {
        let (s, r) = call.await.expect("table read");
        size += s;
        requests += r;
        empty += usize::from(s == 0);
    }
    (size, requests, empty)
}

/// Kademlia's totals summed over every node.
async fn kad_totals(nodes: &[KadNode]) -> KadTotals {
    let mut each = Vec::with_capacity(nodes.len());
    for n in nodes {
        each.push(n.kad.with(|kad| kad.totals()).await.expect("node stopped"));
    }
    each.into_iter().sum()
}

/// Kademlia's anchors per node, and the keep-alive pings sent, over all nodes.
async fn anchors(nodes: &[KadNode]) -> (f64, u64) {
    let (mut anchors, mut pings) = (0, 0);
    for n in nodes {
        let (a, p) = n
            .kad
            .with(|kad| (kad.anchors().count(), kad.totals().anchor_pings))
            .await
            .expect("node stopped");
        anchors += a;
        pings += p;
    }
    (anchors as f64 / nodes.len().max(1) as f64, pings)
}

/// Open connections per node: mean and max.
async fn connections(nodes: &[KadNode]) -> (f64, usize) {
    let calls: Vec<_> = nodes
        .iter()
        .map(|n| {
            let node = n.node.clone();
            tokio::spawn(async move { node.peers().await.expect("node stopped").len() })
        })
        .collect();
    let mut total = 0;
    let mut max = 0;
    for call in calls {
        let open = call.await.expect("peers read");
        total += open;
        max = max.max(open);
    }
    (total as f64 / nodes.len() as f64, max)
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(args));
}

#[allow(clippy::too_many_lines)]
async fn run(args: Args) {
    let wall = Instant::now();
    let say = |line: String| {
        if !args.json {
            println!("{line}");
        }
    };

    // 1. Memory per idle connection, before anything else runs.
    let (per_connection, unconnected) = bytes_per_idle_connection().await;
    say(format!(
        "bytes per idle connection (per end; {IDLE_CLIENTS} connections, both ends here): {per_connection}"
    ));
    say(format!(
        "RSS of {} unconnected nodes: {unconnected} bytes ({} per node, the process's own included)",
        IDLE_CLIENTS + 1,
        unconnected / (IDLE_CLIENTS as u64 + 1)
    ));

    // 2. Join: one node every 25 ms, each bootstrapping through node 0 at once.
    let started = Instant::now();
    let mut nodes = vec![start(1, 0, args.limits, args.anchors).await];
    let seed = PeerInfo {
        id: nodes[0].node.peer_id(),
        addr: nodes[0].node.local_addr().into(),
    };
    let mut bootstraps = Vec::with_capacity(args.nodes);
    for i in 1..args.nodes {
        tokio::time::sleep_until((started + JOIN_INTERVAL * i as u32).into()).await;
        let n = start(1, i, args.limits, args.anchors).await;
        let rx = ask(
            &n,
            1,
            Command::Bootstrap {
                query: QueryId(1),
                peers: vec![seed.clone()],
            },
        )
        .await;
        bootstraps.push(rx);
        nodes.push(n);
    }
    let last_join = Instant::now();
    say(format!(
        "joined: {} nodes in {} ms (scheduled {} ms)",
        args.nodes,
        last_join.duration_since(started).as_millis(),
        (JOIN_INTERVAL * (args.nodes as u32 - 1)).as_millis()
    ));
    // Every bootstrap's answer, collected while the tables are polled below.
    let mut bootstrapped = tokio::spawn(async move {
        let mut empty = 0;
        let mut failed = 0;
        for rx in bootstraps {
            match answer(rx).await {
                Event::Bootstrapped { table_size, .. } => empty += usize::from(table_size == 0),
                _ => failed += 1,
            }
        }
        (Instant::now(), empty, failed)
    });

    // 3. Settling: every bootstrap has answered, every node has someone in its table (one whose
    // bootstrap found nobody waits to join again), and the summed table sizes have not changed for
    // 2 s since (a DHT whose nodes are still joining is not settled, however still its tables).
    let (mut size, requests_at_join, _) = tables(&nodes).await;
    let mut changed = Instant::now();
    let mut requests_now;
    // The most connections seen open while settling: per node on average, and on one node.
    let (mut peak_mean, mut peak_max) = connections(&nodes).await;
    // Every 5 s: per node, table size and open connections, and the process's RSS.
    let mut trace = Vec::new();
    let mut next_trace = last_join;
    // The longest sweep over the nodes: how precise the settling time is.
    let mut slowest_sweep = Duration::ZERO;
    // When the last bootstrap answered, and how many failed or left an empty table.
    let mut boot: Option<(Instant, usize, usize)> = None;
    let settled = loop {
        tokio::time::sleep(SETTLE_POLL).await;
        if boot.is_none() && bootstrapped.is_finished() {
            boot = Some((&mut bootstrapped).await.expect("bootstrap answers"));
        }
        let sweep = Instant::now();
        let (s, r, empty) = tables(&nodes).await;
        requests_now = r;
        let (mean, max) = connections(&nodes).await;
        peak_mean = peak_mean.max(mean);
        peak_max = peak_max.max(max);
        let now = Instant::now();
        slowest_sweep = slowest_sweep.max(now.duration_since(sweep));
        if now >= next_trace {
            while next_trace <= now {
                next_trace += TRACE_EVERY;
            }
            // Connections the transports still hold (closing ones included), and those quinn still
            // holds (draining ones included).
            let (mut held, mut draining) = (0u64, 0u64);
            for n in &nodes {
                let c = n.node.transport_counters();
                held += c.inbound_connections + c.outbound_connections;
                draining += c.endpoint_connections;
            }
            trace.push(format!(
                "{}s: table {:.1}, conns {mean:.1} (transports hold {:.1}, quinn {:.1}), tasks {}, RSS {} MiB",
                now.duration_since(last_join).as_secs(),
                s as f64 / args.nodes as f64,
                held as f64 / args.nodes as f64,
                draining as f64 / args.nodes as f64,
                tokio::runtime::Handle::current().metrics().num_alive_tasks(),
                proc_status("VmRSS") / (1024 * 1024)
            ));
        }
        if s != size {
            size = s;
            // Changed before this sweep read it.
            changed = sweep;
        }
        if let Some((at, ..)) = boot
            && empty == 0
        {
            let quiet_since = changed.max(at);
            if now.duration_since(quiet_since) >= SETTLE_QUIET {
                break Some(quiet_since.saturating_duration_since(last_join));
            }
        }
        if now.duration_since(last_join) >= SETTLE_CAP {
            break None;
        }
    };
    let (bootstrapped_at, empty_tables, failed_bootstraps) = match boot {
        Some(boot) => boot,
        None => bootstrapped.await.expect("bootstrap answers"),
    };
    say(format!("settling trace (since last join): {}", trace.join("; ")));
    let settled_ms = settled.map(|d| d.as_millis() as u64);
    say(format!(
        "settled after last join: {}",
        settled_ms.map_or_else(
            || format!("not settled within {} s", SETTLE_CAP.as_secs()),
            |ms| format!("{ms} ms")
        )
    ));
    say(format!(
        "table sizes last changed: {} ms after last join",
        changed.saturating_duration_since(last_join).as_millis()
    ));
    say(format!(
        "slowest sweep of the tables while settling: {} ms (polled every {} ms)",
        slowest_sweep.as_millis(),
        SETTLE_POLL.as_millis()
    ));
    say(format!(
        "bootstraps answered: {} ms after last join ({failed_bootstraps} failed, {empty_tables} with an empty table)",
        bootstrapped_at.saturating_duration_since(last_join).as_millis()
    ));
    let seed_counters = nodes[0].node.transport_counters();
    let (refused, dials_refused, handshakes_failed) = nodes.iter().fold((0, 0, 0), |acc, n| {
        let c = n.node.transport_counters();
        (
            acc.0 + c.inbound_refused,
            acc.1 + c.dials_refused,
            acc.2 + c.handshake_failures,
        )
    });
    say(format!(
        "transport refusals: seed node 0 refused {} inbound ({} inbound accepted); all nodes: {refused} inbound refused, {dials_refused} dials refused, {handshakes_failed} handshakes failed",
        seed_counters.inbound_refused, seed_counters.inbound_connections
    ));
    say(format!(
        "open connections per node while settling: peak mean {peak_mean:.1}, peak max {peak_max}; peak RSS by settling {:.1} MiB",
        proc_status("VmHWM") as f64 / (1024.0 * 1024.0)
    ));
    say(format!(
        "routing table size: {:.1} per node at settling; kad requests sent: {requests_at_join} at last join, {requests_now} at settling",
        size as f64 / args.nodes as f64
    ));

    // 4. Lookups of random existing peers from random nodes, ten at a time.
    let ids: Vec<PeerId> = nodes.iter().map(|n| n.node.peer_id()).collect();
    let keys: Vec<Key> = ids.iter().map(Key::from_peer).collect();
    let nodes = Arc::new(nodes);
    let net = Arc::new((ids, keys));
    let warm = lookup_round(&nodes, &net, &args, 20, 2, "lookups", &say).await;
    let LookupRound {
        success,
        recall,
        requests,
        p50,
        p99,
    } = warm;

    // 5. Open connections, the manager's closes, memory.
    let (open_mean, open_max) = connections(&nodes).await;
    say(format!(
        "open connections per node after lookups: mean {open_mean:.1}, max {open_max}"
    ));
    let states = |nodes: &[KadNode]| {
        ["protected", "new", "closable"]
            .map(|s| {
                format!(
                    "{s} {}",
                    metric_sum(nodes, &format!("meshwork_connections{{state=\"{s}\"}}"))
                )
            })
            .join(", ")
    };
    say(format!("connection states (all nodes): {}", states(&nodes)));
    let kad = kad_totals(&nodes).await;
    say(format!(
        "kad, all nodes: requests {} (liveness pings {}), admitted on asking {}, dials {}, retried {}, timeouts {}",
        kad.requests, kad.liveness_pings, kad.admitted_inbound, kad.dials, kad.retried, kad.timeouts
    ));
    let after_grace = args.limits.grace_period + Duration::from_secs(1);
    tokio::time::sleep(after_grace).await;
    let (grace_mean, grace_max) = connections(&nodes).await;
    say(format!(
        "open connections per node {} s later (grace period over): mean {grace_mean:.1}, max {grace_max}",
        after_grace.as_secs()
    ));
    say(format!("connection states (all nodes): {}", states(&nodes)));
    say(format!(
        "RSS now (grace period over): {:.1} MiB; tasks alive: {}",
        proc_status("VmRSS") as f64 / (1024.0 * 1024.0),
        tokio::runtime::Handle::current().metrics().num_alive_tasks()
    ));
    let closed_idle = metric_sum(&nodes, "meshwork_connections_closed_total{reason=\"idle\"}");
    let closed_trimmed = metric_sum(&nodes, "meshwork_connections_closed_total{reason=\"trimmed\"}");
    say(format!(
        "connections closed by the manager (all nodes): idle {closed_idle}, trimmed {closed_trimmed}"
    ));
    let peak_rss = proc_status("VmHWM");
    let per_node = peak_rss / args.nodes as u64;
    say(format!(
        "peak RSS: {} bytes ({:.1} MiB), {} bytes ({:.2} MiB) per node",
        peak_rss,
        peak_rss as f64 / (1024.0 * 1024.0),
        per_node,
        per_node as f64 / (1024.0 * 1024.0)
    ));

    // 6. The same number of lookups once every connection the first ones opened has been idle for
    // the manager's idle timeout: what is left is what protocols protect (Kademlia's anchors), so a
    // lookup's first hop dials unless it can ask a peer it holds a connection to.
    tokio::time::sleep(args.limits.idle_timeout + Duration::from_secs(2)).await;
    let (idle_mean, idle_max) = connections(&nodes).await;
    let (anchors_per_node, anchor_pings) = anchors(&nodes).await;
    say(format!(
        "open connections per node after the idle timeout: mean {idle_mean:.1}, max {idle_max}; \
         anchors per node {anchors_per_node:.2}, {anchor_pings} keep-alive pings so far (all nodes)"
    ));
    let first_query = 2 + args.lookups as u64;
    let cold = lookup_round(
        &nodes,
        &net,
        &args,
        21,
        first_query,
        "lookups after the idle timeout",
        &say,
    )
    .await;

    shutdown(&nodes).await;
    let wall_ms = wall.elapsed().as_millis();
    say(format!("wall: {wall_ms} ms"));
    if args.json {
        let settled = settled_ms.map_or_else(|| "null".to_owned(), |ms| ms.to_string());
        println!(
            "{{\"nodes\":{},\"lookups\":{},\"anchors\":{},\"success\":{success:.4},\"recall_20_closest\":{recall:.4},\
             \"lookup_latency_ms_p50\":{p50:.1},\"lookup_latency_ms_p99\":{p99:.1},\
             \"requests_per_lookup\":{requests:.2},\"settled_after_last_join_ms\":{settled},\
             \"open_connections_per_node_mean\":{open_mean:.2},\"open_connections_per_node_max\":{open_max},\
             \"open_connections_per_node_mean_after_grace\":{grace_mean:.2},\
             \"open_connections_per_node_max_after_grace\":{grace_max},\
             \"connections_closed_idle\":{closed_idle},\"connections_closed_trimmed\":{closed_trimmed},\
             \"peak_rss_bytes\":{peak_rss},\"rss_bytes_per_node\":{per_node},\
             \"bytes_per_idle_connection\":{per_connection},\
             \"open_connections_per_node_peak_mean_settling\":{peak_mean:.2},\
             \"open_connections_per_node_peak_max_settling\":{peak_max},\
             \"open_connections_per_node_mean_idle\":{idle_mean:.2},\
             \"anchors_per_node\":{anchors_per_node:.2},\"anchor_pings\":{anchor_pings},\
             \"cold_success\":{:.4},\"cold_lookup_latency_ms_p50\":{:.1},\
             \"cold_lookup_latency_ms_p99\":{:.1},\"cold_requests_per_lookup\":{:.2},\"wall_ms\":{wall_ms}}}",
            args.nodes, args.lookups, args.anchors, cold.success, cold.p50, cold.p99, cold.requests
        );
    }
}
