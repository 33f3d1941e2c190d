//! Issue #15: gossip on real QUIC over loopback, beside a plain flood on the same nodes and the same
//! overlay, all in this one process.
//!
//! `--nodes` nodes (default 50) each run two protocols on one QUIC endpoint: gossip (HyParView +
//! Plumtree) and the reference, a flood over exactly the links of gossip's active views (its
//! `Links` command; any other connection it hears of, it releases). Every node joins gossip through
//! node 0, 20 ms apart, and the overlay settles: no active view changes for 15 s (HyParView evicts and
//! refills while neighbours are new; a tree link that changes makes its subtree graft, so measuring
//! earlier counts the repairs of a churning overlay, not the broadcast). Then the schedule runs:
//! `--messages` messages (default 200) of `--payload-bytes` (256) at `--rate` messages per second
//! network-wide (20), publishers in rotation (node `k` publishes message `k mod n`, so each origin's
//! first message forms its tree). It can be cut into `--rounds` slices (default 1: the whole
//! schedule); in each round each of three protocols runs the round's slice, then 3 s to drain, so a
//! machine whose load drifts during the run weighs on the three alike. Rounds add pauses to
//! gossip's schedule, which it measures too (three runs with 4: 2, 6 and 8 grafts, against 1-5 in
//! one piece; the drains' membership traffic, about 0.1 wire byte per payload byte). In each round:
//!
//! 1. Gossip.
//! 2. Flood: the reference.
//! 3. Signed flood: the reference again, each copy carrying the message gossip would send (its encoding
//!    as the payload: origin, topic, sequence number, signature), which a node checks before it
//!    delivers and relays it, as it must for anything from the network. The plain flood checks
//!    nothing and sends a smaller header, so against it gossip's CPU includes a signature check per
//!    delivery and its bytes a header the reference lacks; the signed flood tells the two apart.
//!
//! Per protocol: reliability (the worst message's share of nodes reached), each message's last
//! delivery after its publication (p50, p90, p99) and the links that copy crossed (a tree's detour
//! against stalls on the way), latency of every delivery, frame bytes sent (the node's
//! `meshwork_bytes_sent_total` for the protocol's channel, every message of the protocol included:
//! payloads, announcements, membership) per payload byte delivered to a node other than the origin,
//! messages sent per delivery (`meshwork_messages_sent_total`: each costs the runtime the same work
//! whatever its size, so they explain the CPU figure as bytes do not),
//! and the process's CPU time during its slices per delivery (gossip's background — shuffles, sweeps
//! — runs during every slice). The peak RSS (`VmHWM`) covers the whole run, every protocol. Times are
//! read where each node's event pump receives the event, the same way for every protocol. Timing
//! figures are ratios against a flood from the same run: the machine is shared and noisy.
//!
//! Run: `cargo bench -p meshwork-benches --bench gossip_quic -- [--nodes N] [--messages M] [--rate R]
//! [--payload-bytes B] [--trees per-origin|shared|borrow] [--lender-hops H] [--ihave-ms MS]
//! [--rounds R] [--json]` (`--lender-hops`: gossip's `lender_hops`, how far a borrowed tree's root
//! may be; `--ihave-ms`: its `ihave_interval`, how long announcements are batched).

// A benchmark's clock is wall time.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meshwork_benches::flood_reference::{FloodCommand, Reference};
use meshwork_benches::process::{cpu_seconds, prometheus_sum, status_bytes};
use meshwork_gossip::{
    AdmissionConfig, Command, Config as GossipConfig, Event, Gossip, GossipMessage, TopicId, TopicOptions,
    Trees,
};
use meshwork_identity::{Keypair, PeerId};
use meshwork_node::{Handle, Hooks, Node, NodeBuilder, NodeConfig};
use meshwork_sim::flood::MAX_PAYLOAD;
use meshwork_sim::metrics::Summary;
use meshwork_transport::{Config, QuicTransport};
use meshwork_wire::{BoundedBytes, Protocol, ProtocolId};

const DRAIN: Duration = Duration::from_secs(3);
/// The overlay is settled once no active view has changed for this long (one and a half shuffle
/// periods: a view with a free slot tries to fill it on the shuffle timer, and evictions follow)...
const QUIET: Duration = Duration::from_secs(15);
/// ...or, failing that, after this long (reported: the run is then not a steady state).
const SETTLE_CAP: Duration = Duration::from_secs(120);

struct Args {
    nodes: usize,
    messages: usize,
    rate: f64,
    payload: usize,
    trees: Trees,
    lender_hops: u16,
    ihave: Duration,
    rounds: usize,
    json: bool,
}

fn args() -> Args {
    let mut args = Args {
        nodes: 50,
        messages: 200,
        rate: 20.0,
        payload: 256,
        trees: Trees::PerOrigin,
        lender_hops: GossipConfig::default().lender_hops,
        ihave: GossipConfig::default().ihave_interval,
        rounds: 1,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    let number = |name: &str, value: Option<String>| -> f64 {
        value
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} takes a number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--nodes" => args.nodes = number("--nodes", it.next()) as usize,
            "--messages" => args.messages = number("--messages", it.next()) as usize,
            "--rate" => args.rate = number("--rate", it.next()),
            "--payload-bytes" => args.payload = number("--payload-bytes", it.next()) as usize,
            "--trees" => {
                args.trees = match it.next().as_deref() {
                    Some("shared") => Trees::Shared,
                    Some("per-origin") => Trees::PerOrigin,
                    Some("borrow") => Trees::Borrow,
                    other => panic!("--trees takes per-origin, shared or borrow, not {other:?}"),
                }
            }
            "--lender-hops" => args.lender_hops = number("--lender-hops", it.next()) as u16,
            "--ihave-ms" => args.ihave = Duration::from_millis(number("--ihave-ms", it.next()) as u64),
            "--rounds" => args.rounds = number("--rounds", it.next()) as usize,
            "--json" => args.json = true,
            // `cargo bench` passes `--bench`; anything else unknown is ignored too.
            _ => {}
        }
    }
    assert!(
        args.nodes >= 2 && args.rate > 0.0 && args.rounds >= 1,
        "--nodes at least 2, --rate above 0, --rounds at least 1"
    );
    // The signed flood's payload is a whole gossip message: the payload and its header.
    assert!(
        args.payload + 256 <= MAX_PAYLOAD,
        "--payload-bytes at most {}",
        MAX_PAYLOAD - 256
    );
    args
}

/// When each message of one protocol was published and delivered, by its index in the schedule (the
/// first 8 bytes of a gossip payload; the reference's id, less `--messages` for the signed flood).
#[derive(Default)]
struct Log {
    published: HashMap<usize, Instant>,
    /// Each delivery's time, and the links its copy crossed.
    delivered: HashMap<usize, Vec<(Instant, u32)>>,
    /// Active-view changes seen (gossip's `NeighborUp` and `NeighborDown`): a changed tree link makes a
    /// subtree graft.
    view_changes: usize,
}

type SharedLog = Arc<Mutex<Log>>;

fn delivered(log: &SharedLog, index: usize, hops: u32) {
    let at = Instant::now();
    log.lock()
        .expect("log")
        .delivered
        .entry(index)
        .or_default()
        .push((at, hops));
}

/// A payload of `len` bytes that starts with the schedule index.
fn payload(index: usize, len: usize) -> Vec<u8> {
    let mut bytes = vec![0xab; len.max(8)];
    bytes[..8].copy_from_slice(&(index as u64).to_le_bytes());
    bytes
}

fn index_of(payload: &[u8]) -> Option<usize> {
    let head: [u8; 8] = payload.get(..8)?.try_into().ok()?;
    usize::try_from(u64::from_le_bytes(head)).ok()
}

struct BenchNode {
    node: Node,
    key: Keypair,
    gossip: Handle<Gossip>,
    flood: Handle<Reference>,
}

/// The delivery logs: gossip's, the flood's and the signed flood's.
struct Logs {
    gossip: SharedLog,
    flood: SharedLog,
    signed: SharedLog,
}

fn loopback(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, (i / 250) as u8 + 1, (i % 250) as u8 + 1)
}

fn topic() -> TopicId {
    TopicId::from_name("bench")
}

async fn start(i: usize, args: &Args, logs: &Logs) -> BenchNode {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    let key = Keypair::from_seed(seed);
    let mut builder = NodeBuilder::new(NodeConfig::default());
    let config = GossipConfig {
        trees: args.trees,
        lender_hops: args.lender_hops,
        ihave_interval: args.ihave,
        // Every node is on loopback: one prefix for the admission limits.
        admission: AdmissionConfig::default().without_prefix_limits(),
        ..GossipConfig::default()
    };
    let hooks = Hooks {
        address_of: Some(|g: &Gossip, peer: &PeerId| g.address_of(peer)),
        on_connected: Some(|peer, addr| Some(Command::PeerAddress { peer, addr })),
        on_round_trip: Some(|peer, rtt| Some(Command::PeerRoundTrip { peer, rtt })),
    };
    let (gossip, mut gossip_events) = builder
        .register_with(Gossip::new(key.clone(), config, i as u64), hooks)
        .expect("register gossip");
    let (flood, mut flood_events) = builder.register(Reference::default()).expect("register flood");
    let mut transport = Config::new(builder.protocols());
    transport.limits = transport.limits.loopback_devnet();
    let quic = QuicTransport::bind(&key, SocketAddr::from((loopback(i), 0)), transport)
        .await
        .expect("bind QUIC");
    let node = builder.start(quic).await.expect("start node");
    let log = logs.gossip.clone();
    tokio::spawn(async move {
        while let Some(event) = gossip_events.recv().await {
            match event {
                Event::Delivered { message, hops, .. } => {
                    if let Some(index) = index_of(&message.payload) {
                        delivered(&log, index, u32::from(hops));
                    }
                }
                Event::NeighborUp(_) | Event::NeighborDown(_) => log.lock().expect("log").view_changes += 1,
                _ => {}
            }
        }
    });
    let (log, signed_log, messages) = (logs.flood.clone(), logs.signed.clone(), args.messages);
    tokio::spawn(async move {
        // The signed flood's ids follow the flood's.
        while let Some((id, hops)) = flood_events.recv().await {
            match usize::try_from(id) {
                Ok(index) if index < messages => delivered(&log, index, hops),
                Ok(index) => delivered(&signed_log, index - messages, hops),
                Err(_) => {}
            }
        }
    });
    gossip
        .command(Command::Subscribe(topic(), TopicOptions::default()))
        .await
        .expect("subscribe");
    BenchNode {
        node,
        key,
        gossip,
        flood,
    }
}

/// What one protocol measured, over its slices.
struct Phase {
    reliability_min: f64,
    last_delivery_ms: Summary,
    /// The links the last delivery of each message had crossed: a tree's detour, against stalls on
    /// the way.
    last_delivery_hops: Summary,
    latency_ms: Summary,
    deliveries: usize,
    bytes_per_payload_byte: f64,
    /// Messages the protocol sent (every kind) per delivery: each costs the runtime's per-message
    /// work (queues, a stream write, a packet, the reader, the handler) whatever its size.
    messages_per_delivery: f64,
    cpu_us_per_delivery: f64,
}

/// Frame bytes and messages the nodes sent on `protocol`'s channel so far.
fn sent(nodes: &[BenchNode], protocol: ProtocolId) -> (u64, u64) {
    let label = format!("{{protocol=\"{}\"", protocol.as_str());
    let (bytes, messages) = (
        format!("meshwork_bytes_sent_total{label}"),
        format!("meshwork_messages_sent_total{label}"),
    );
    nodes.iter().fold((0, 0), |acc, n| {
        let metrics = n.node.metrics().render();
        (
            acc.0 + prometheus_sum(&metrics, &bytes),
            acc.1 + prometheus_sum(&metrics, &messages),
        )
    })
}

/// What one protocol's slices of the schedule cost, summed over the rounds.
#[derive(Clone, Copy, Default)]
struct Cost {
    cpu_seconds: f64,
    bytes: u64,
    messages: u64,
}

/// Publishes messages `range` of the schedule (message `k` from node `k mod n`, at `--rate`, its
/// publication time logged just before), drains, and returns what the protocol sent meanwhile and
/// the process's CPU time.
async fn publish_slice<Fut: Future<Output = ()>>(
    args: &Args,
    nodes: &[BenchNode],
    log: &SharedLog,
    protocol: ProtocolId,
    range: std::ops::Range<usize>,
    publish: &impl Fn(&BenchNode, usize) -> Fut,
) -> Cost {
    let (cpu_before, sent_before) = (cpu_seconds(), sent(nodes, protocol));
    let spacing = Duration::from_secs_f64(1.0 / args.rate);
    let start = tokio::time::Instant::now();
    for (k, index) in range.enumerate() {
        tokio::time::sleep_until(start + spacing.mul_f64(k as f64)).await;
        log.lock().expect("log").published.insert(index, Instant::now());
        publish(&nodes[index % nodes.len()], index).await;
    }
    tokio::time::sleep(DRAIN).await;
    let sent_after = sent(nodes, protocol);
    Cost {
        cpu_seconds: cpu_seconds() - cpu_before,
        bytes: sent_after.0 - sent_before.0,
        messages: sent_after.1 - sent_before.1,
    }
}

/// Turns every node's reference into the signed flood (`on`) or the plain one.
async fn verify(nodes: &[BenchNode], on: bool) {
    for n in nodes {
        n.flood.command(FloodCommand::Verify(on)).await.expect("verify");
    }
}

/// A protocol's figures from its log and its summed cost.
fn summarize(args: &Args, nodes: usize, log: &SharedLog, cost: Cost) -> Phase {
    let log = log.lock().expect("log");
    let (mut reliability_min, mut last, mut latency, mut deliveries) = (1.0f64, Vec::new(), Vec::new(), 0);
    let mut last_hops = Vec::new();
    for index in 0..args.messages {
        let times = log.delivered.get(&index).cloned().unwrap_or_default();
        reliability_min = reliability_min.min(times.len() as f64 / nodes as f64);
        deliveries += times.len().saturating_sub(1);
        let Some(&published) = log.published.get(&index) else {
            continue;
        };
        let ms: Vec<f64> = times
            .iter()
            .map(|(t, _)| t.saturating_duration_since(published).as_secs_f64() * 1000.0)
            .collect();
        if let Some(&(_, hops)) = times.iter().max_by_key(|(t, _)| *t) {
            last_hops.push(f64::from(hops));
        }
        last.push(ms.iter().copied().fold(0.0, f64::max));
        latency.extend(ms);
    }
    let per_delivery = deliveries.max(1) as f64;
    Phase {
        reliability_min,
        last_delivery_ms: Summary::of(last),
        last_delivery_hops: Summary::of(last_hops),
        latency_ms: Summary::of(latency),
        deliveries,
        bytes_per_payload_byte: cost.bytes as f64 / (per_delivery * args.payload.max(8) as f64),
        messages_per_delivery: cost.messages as f64 / per_delivery,
        cpu_us_per_delivery: cost.cpu_seconds * 1e6 / per_delivery,
    }
}

/// Gossip's active views as undirected links: each node's reference floods over these.
async fn overlay(nodes: &[BenchNode]) -> HashMap<PeerId, Vec<PeerId>> {
    let mut links: HashMap<PeerId, Vec<PeerId>> = HashMap::new();
    for n in nodes {
        let me = n.node.peer_id();
        let view = n
            .gossip
            .with(|g: &mut Gossip| g.active_view().to_vec())
            .await
            .expect("view");
        for peer in view {
            for (a, b) in [(me, peer), (peer, me)] {
                let entry = links.entry(a).or_default();
                if !entry.contains(&b) {
                    entry.push(b);
                }
            }
        }
    }
    links
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    let wall = Instant::now();
    let logs = Logs {
        gossip: SharedLog::default(),
        flood: SharedLog::default(),
        signed: SharedLog::default(),
    };
    let mut nodes = Vec::new();
    for i in 0..args.nodes {
        nodes.push(start(i, &args, &logs).await);
    }
    let addresses: Vec<(PeerId, SocketAddr)> = nodes
        .iter()
        .map(|n| (n.node.peer_id(), n.node.local_addr()))
        .collect();
    for n in &nodes {
        for &(peer, addr) in &addresses {
            if peer != n.node.peer_id() {
                n.node.add_address(peer, addr).await.expect("address");
            }
        }
    }
    let contact = addresses[0].0;
    for n in &nodes[1..] {
        n.gossip
            .command(Command::Join(vec![contact]))
            .await
            .expect("join");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // HyParView keeps evicting and refilling while neighbours are new (a newcomer may evict one that
    // is not established yet): measuring then would count the repairs of a churning overlay.
    let joined = Instant::now();
    let (mut seen, mut quiet_since) = (usize::MAX, Instant::now());
    while joined.elapsed() < SETTLE_CAP && quiet_since.elapsed() < QUIET {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let changes = logs.gossip.lock().expect("log").view_changes;
        if changes != seen {
            (seen, quiet_since) = (changes, Instant::now());
        }
    }
    let settled_ms = joined.elapsed().saturating_sub(QUIET).as_secs_f64() * 1000.0;

    let len = args.payload;
    // Connections closed as duplicates or by the connection manager: each one a bounce protocols hear.
    let counters = |nodes: &[BenchNode]| -> (u64, u64) {
        nodes.iter().fold((0, 0), |acc, n| {
            let duplicates = n.node.transport_counters().duplicates_closed;
            let managed = prometheus_sum(&n.node.metrics().render(), "meshwork_connections_closed_total");
            (acc.0 + duplicates, acc.1 + managed)
        })
    };
    let links = overlay(&nodes).await;
    let mean_degree = links.values().map(Vec::len).sum::<usize>() as f64 / nodes.len() as f64;
    for n in &nodes {
        let peers = links.get(&n.node.peer_id()).cloned().unwrap_or_default();
        n.flood.command(FloodCommand::Links(peers)).await.expect("links");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let publish_gossip = |n: &BenchNode, index: usize| {
        let handle = n.gossip.clone();
        async move {
            let publish = Command::Publish(topic(), payload(index, len));
            handle.command(publish).await.expect("publish");
        }
    };
    let publish_flood = |n: &BenchNode, index: usize| {
        let handle = n.flood.clone();
        async move {
            let body = BoundedBytes::try_from(payload(index, len)).expect("payload fits");
            let publish = FloodCommand::Publish(index as u64, body);
            handle.command(publish).await.expect("publish");
        }
    };
    let messages = args.messages;
    let publish_signed = |n: &BenchNode, index: usize| {
        let handle = n.flood.clone();
        let body = BoundedBytes::try_from(payload(index, len)).expect("payload fits");
        let message = GossipMessage::sign(&n.key, topic(), index as u64, body);
        let encoded = meshwork_wire::encode(&message).expect("a message encodes");
        async move {
            let body = BoundedBytes::try_from(encoded).expect("a signed payload fits");
            let publish = FloodCommand::Publish((messages + index) as u64, body);
            handle.command(publish).await.expect("publish");
        }
    };
    // The protocols take turns, a slice of the schedule each per round: a machine whose load drifts
    // during the run weighs on all three alike.
    let rounds = args.rounds.min(args.messages.max(1));
    let mut cost = [Cost::default(); 3];
    // Over gossip's slices only.
    let (mut view_changes, mut connection_closes) = (0, 0);
    let view_changes_now = || logs.gossip.lock().expect("log").view_changes;
    for round in 0..rounds {
        let range = round * args.messages / rounds..(round + 1) * args.messages / rounds;
        let (changes_before, counters_before) = (view_changes_now(), counters(&nodes));
        let gossip_slice = publish_slice(
            &args,
            &nodes,
            &logs.gossip,
            Gossip::ID,
            range.clone(),
            &publish_gossip,
        )
        .await;
        let counters_after = counters(&nodes);
        view_changes += view_changes_now() - changes_before;
        connection_closes += (counters_after.0 - counters_before.0) + (counters_after.1 - counters_before.1);
        let slices = [
            gossip_slice,
            publish_slice(
                &args,
                &nodes,
                &logs.flood,
                Reference::ID,
                range.clone(),
                &publish_flood,
            )
            .await,
            {
                verify(&nodes, true).await;
                let signed =
                    publish_slice(&args, &nodes, &logs.signed, Reference::ID, range, &publish_signed);
                let signed = signed.await;
                verify(&nodes, false).await;
                signed
            },
        ];
        for (total, slice) in cost.iter_mut().zip(slices) {
            total.cpu_seconds += slice.cpu_seconds;
            total.bytes += slice.bytes;
            total.messages += slice.messages;
        }
    }
    let gossip = summarize(&args, nodes.len(), &logs.gossip, cost[0]);
    let flood = summarize(&args, nodes.len(), &logs.flood, cost[1]);
    let signed = summarize(&args, nodes.len(), &logs.signed, cost[2]);
    let totals = gossip_totals(&nodes).await;
    let peak_rss = status_bytes("VmHWM");
    for n in &nodes {
        let _ = n.node.shutdown().await;
    }
    let figures: Vec<(&str, f64)> = vec![
        ("nodes", args.nodes as f64),
        ("messages", args.messages as f64),
        ("rate", args.rate),
        ("payload_bytes", args.payload as f64),
        ("lender_hops", f64::from(args.lender_hops)),
        ("overlay_degree_mean", mean_degree),
        ("overlay_settled_after_joins_ms", settled_ms),
        ("gossip_reliability_min", gossip.reliability_min),
        ("flood_reliability_min", flood.reliability_min),
        ("gossip_last_delivery_ms_p50", gossip.last_delivery_ms.p50),
        ("gossip_last_delivery_ms_p90", gossip.last_delivery_ms.p90),
        ("gossip_last_delivery_ms_p99", gossip.last_delivery_ms.p99),
        ("flood_last_delivery_ms_p50", flood.last_delivery_ms.p50),
        ("flood_last_delivery_ms_p90", flood.last_delivery_ms.p90),
        ("flood_last_delivery_ms_p99", flood.last_delivery_ms.p99),
        (
            "last_delivery_p99_over_flood",
            gossip.last_delivery_ms.p99 / flood.last_delivery_ms.p99.max(1e-9),
        ),
        ("gossip_last_delivery_hops_p50", gossip.last_delivery_hops.p50),
        ("gossip_last_delivery_hops_p99", gossip.last_delivery_hops.p99),
        ("flood_last_delivery_hops_p50", flood.last_delivery_hops.p50),
        ("flood_last_delivery_hops_p99", flood.last_delivery_hops.p99),
        (
            "signed_flood_last_delivery_hops_p99",
            signed.last_delivery_hops.p99,
        ),
        ("gossip_latency_ms_p50", gossip.latency_ms.p50),
        ("flood_latency_ms_p50", flood.latency_ms.p50),
        (
            "gossip_wire_bytes_per_payload_byte",
            gossip.bytes_per_payload_byte,
        ),
        ("flood_wire_bytes_per_payload_byte", flood.bytes_per_payload_byte),
        ("gossip_messages_per_delivery", gossip.messages_per_delivery),
        ("flood_messages_per_delivery", flood.messages_per_delivery),
        ("signed_flood_reliability_min", signed.reliability_min),
        ("signed_flood_last_delivery_ms_p50", signed.last_delivery_ms.p50),
        ("signed_flood_last_delivery_ms_p90", signed.last_delivery_ms.p90),
        ("signed_flood_last_delivery_ms_p99", signed.last_delivery_ms.p99),
        (
            "last_delivery_p99_over_signed_flood",
            gossip.last_delivery_ms.p99 / signed.last_delivery_ms.p99.max(1e-9),
        ),
        (
            "signed_flood_wire_bytes_per_payload_byte",
            signed.bytes_per_payload_byte,
        ),
        ("signed_flood_messages_per_delivery", signed.messages_per_delivery),
        ("signed_flood_cpu_us_per_delivery", signed.cpu_us_per_delivery),
        (
            "cpu_per_delivery_over_signed_flood",
            gossip.cpu_us_per_delivery / signed.cpu_us_per_delivery.max(1e-9),
        ),
        ("gossip_cpu_us_per_delivery", gossip.cpu_us_per_delivery),
        ("flood_cpu_us_per_delivery", flood.cpu_us_per_delivery),
        (
            "cpu_per_delivery_over_flood",
            gossip.cpu_us_per_delivery / flood.cpu_us_per_delivery.max(1e-9),
        ),
        ("gossip_deliveries", gossip.deliveries as f64),
        ("flood_deliveries", flood.deliveries as f64),
        ("gossip_grafts", totals.grafts as f64),
        ("gossip_bans", totals.bans as f64),
        ("gossip_rate_limited", totals.rate_limited as f64),
        ("gossip_membership_refused", totals.membership_refused as f64),
        ("gossip_view_changes_while_measured", view_changes as f64),
        ("connections_closed_while_measured", connection_closes as f64),
        ("gossip_graft_rtt_ms_mean", totals.rtt_ms),
        ("peak_rss_bytes", peak_rss as f64),
        ("wall_ms", wall.elapsed().as_secs_f64() * 1000.0),
    ];
    if args.json {
        let body: Vec<String> = figures.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        println!("{{{}}}", body.join(","));
    } else {
        for (key, value) in &figures {
            println!("{key:<42} {value:.4}");
        }
    }
}

/// Gossip's counters over the run, summed over the nodes.
#[derive(Default)]
struct GossipTotals {
    grafts: u64,
    /// The mean of the nodes' learnt round trips (ms; 0 if none).
    rtt_ms: f64,
    /// Bans, and messages refused by the rate limits: an honest run has none.
    bans: u64,
    rate_limited: u64,
    membership_refused: u64,
}

async fn gossip_totals(nodes: &[BenchNode]) -> GossipTotals {
    let (mut totals, mut rtts) = (GossipTotals::default(), Vec::new());
    for n in nodes {
        let (stats, rtt) = n
            .gossip
            .with(|g: &mut Gossip| (g.stats(), g.graft_rtt()))
            .await
            .expect("stats");
        totals.grafts += stats.tree.grafts_sent;
        totals.bans += stats.bans;
        totals.rate_limited += stats.rate_limited;
        totals.membership_refused += stats.membership_refused;
        rtts.extend(rtt.map(|r| r.as_secs_f64() * 1000.0));
    }
    totals.rtt_ms = rtts.iter().sum::<f64>() / rtts.len().max(1) as f64;
    totals
}
