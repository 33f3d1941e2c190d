//! Issue #19: what a relayed connection costs against a direct one, in the NAT testbed (network
//! namespaces and nftables routers on this machine; needs root, iproute2 and nftables).
//!
//! Two nodes behind endpoint-independent NATs and a public relay. Each round moves `--mib` MiB of
//! application messages (32 KiB each, at most 1 MiB ahead of what arrived) from A to B over a **direct** connection (hole punched) and over a
//! **relayed** one (a circuit through the relay, the QUIC session end to end), in alternating order, and
//! times each transfer from the first send to B's last receipt. The relay's circuit limit is raised so
//! the transfer fits. Reported: the median throughput of each path over `--rounds` rounds, their ratio,
//! and the worst round of each. The testbed's links have no delay or bandwidth limit, so this is the
//! cost of the relay's processing (every datagram crosses the node runtime of both ends and of the
//! relay), not of a longer path.
//!
//! Run: `cargo bench -p meshwork-benches --bench relay -- [--mib N] [--rounds R] [--json]`
//! (defaults: 8 MiB, 5 rounds).

// A benchmark's clock is wall time.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use meshwork_identity::{Keypair, PeerId};
use meshwork_nat::{NatCommand, NatConfig, NatEvent, RelayConfig, RelayLimits};
use meshwork_node::{Events, Handle};
use meshwork_sim::metrics::percentile;
use meshwork_testbed::{NatKind, NatNode, Testbed, TestbedError, TestbedSpec};
use meshwork_wire::{Input, Instant as ProtocolInstant, Output, Protocol, ProtocolId};
use serde::{Deserialize, Serialize};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const BLOB: usize = 32 * 1024;

/// Sends blobs and reports their sizes on arrival.
struct Blob;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Bytes(Vec<u8>);

impl Protocol for Blob {
    type Message = Bytes;
    type Command = (PeerId, Vec<u8>);
    type Event = usize;
    type Timer = ();
    const ID: ProtocolId = ProtocolId::new("/bench/blob/1");
    const MAX_MESSAGE_SIZE: usize = 64 * 1024;

    fn handle(&mut self, _now: ProtocolInstant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        match input {
            Input::Command((to, bytes)) => out.push(Output::Send {
                to,
                msg: Bytes(bytes),
            }),
            Input::Message { msg, .. } => out.push(Output::Emit(msg.0.len())),
            _ => {}
        }
    }
}

type BlobNode = (NatNode, (Handle<Blob>, Events<Blob>));

struct Args {
    mib: usize,
    rounds: usize,
    json: bool,
}

fn args() -> Args {
    let mut args = Args {
        mib: 8,
        rounds: 5,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = || it.next().and_then(|v| v.parse::<usize>().ok()).unwrap_or(1);
        match arg.as_str() {
            "--mib" => args.mib = number().max(1),
            "--rounds" => args.rounds = number().max(1),
            "--json" => args.json = true,
            _ => {} // cargo bench passes --bench
        }
    }
    args
}

/// Starts a node with the blob protocol on `host`.
async fn start(
    host: &meshwork_testbed::Host,
    seed: u8,
    nat: NatConfig,
    relay: RelayConfig,
) -> Result<BlobNode, TestbedError> {
    let key = Keypair::from_seed([seed; 32]);
    NatNode::start_with(host, &key, nat, relay, |b| b.register(Blob)).await
}

/// Blobs in flight at once: 1 MiB, within the node's per-peer send queue, so nothing is dropped
/// there and the transfer measures the path.
const WINDOW: usize = 32;

/// Moves `bytes` from `from` to `to`, at most [`WINDOW`] blobs ahead of what arrived; the time until
/// all arrived.
async fn transfer(
    from: &BlobNode,
    to: &mut BlobNode,
    bytes: usize,
    what: &'static str,
) -> Result<Duration, TestbedError> {
    let target = to.0.node.peer_id();
    let blobs = bytes.div_ceil(BLOB);
    let started = Instant::now();
    let (mut sent, mut got) = (0, 0);
    while got < blobs * BLOB {
        while sent < blobs && sent * BLOB < got + WINDOW * BLOB {
            from.1.0.command((target, vec![0x5a; BLOB])).await?;
            sent += 1;
        }
        match tokio::time::timeout(WAIT, to.1.1.recv()).await {
            Ok(Some(n)) => got += n,
            Ok(None) | Err(_) => return Err(TestbedError::TimedOut(what)),
        }
    }
    Ok(started.elapsed())
}

/// One pair connected directly (hole punched) and one pair connected through the relay.
async fn run(args: &Args) -> Result<serde_json::Value, TestbedError> {
    let nats = [NatKind::EndpointIndependent, NatKind::EndpointIndependent];
    let spec = TestbedSpec {
        public_hosts: 1,
        nats: nats.to_vec(),
        hosts_per_nat: 2,
    };
    let bed = Testbed::build(&spec)?;
    let limits = RelayLimits {
        max_circuit_bytes: u64::MAX,
        ..RelayLimits::default()
    };
    let relay_config = RelayConfig {
        serve: Some(limits),
        ..RelayConfig::default()
    };
    let relay = start(bed.public(0), 1, NatConfig::rendezvous(), relay_config).await?;
    let at = (relay.0.node.peer_id(), relay.0.node.local_addr());

    // The direct pair: registered at the rendezvous, then punched.
    let mut direct_a = start(bed.private(0, 0), 2, NatConfig::default(), RelayConfig::default()).await?;
    let mut direct_b = start(bed.private(1, 0), 3, NatConfig::default(), RelayConfig::default()).await?;
    direct_a.0.register(at, "bench", WAIT).await?;
    direct_b.0.register(at, "bench", WAIT).await?;
    let target = direct_b.0.node.peer_id();
    direct_a
        .0
        .nat
        .command(NatCommand::Connect {
            rendezvous: at.0,
            target,
        })
        .await?;
    direct_a
        .0
        .next(WAIT, |e| matches!(e, NatEvent::HolePunched { .. }).then_some(()))
        .await
        .ok_or(TestbedError::TimedOut("hole punch"))?;

    // The relayed pair: B reserved at the relay, A's circuit to it, A dialled over it.
    let mut relayed_a = start(bed.private(0, 1), 4, NatConfig::default(), RelayConfig::default()).await?;
    let mut relayed_b = start(bed.private(1, 1), 5, NatConfig::default(), RelayConfig::default()).await?;
    for node in [&relayed_a, &relayed_b] {
        node.0.node.add_address(at.0, at.1).await?;
    }
    relayed_b.0.reserve(at.0, WAIT).await?;
    let target = relayed_b.0.node.peer_id();
    relayed_a.0.connect_through(at.0, target, WAIT).await?;

    let bytes = args.mib * 1024 * 1024;
    // A warm-up transfer on each path (connections, congestion windows), not counted.
    transfer(&direct_a, &mut direct_b, BLOB * 4, "direct warm-up").await?;
    transfer(&relayed_a, &mut relayed_b, BLOB * 4, "relayed warm-up").await?;
    let (mut direct, mut relayed) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let mib_per_sec = |d: Duration| bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64();
        // Alternate the order so neither path always runs on a machine warmed by the other.
        if round % 2 == 0 {
            direct.push(mib_per_sec(
                transfer(&direct_a, &mut direct_b, bytes, "direct transfer").await?,
            ));
            relayed.push(mib_per_sec(
                transfer(&relayed_a, &mut relayed_b, bytes, "relayed transfer").await?,
            ));
        } else {
            relayed.push(mib_per_sec(
                transfer(&relayed_a, &mut relayed_b, bytes, "relayed transfer").await?,
            ));
            direct.push(mib_per_sec(
                transfer(&direct_a, &mut direct_b, bytes, "direct transfer").await?,
            ));
        }
    }
    let relay_bytes = relay
        .0
        .relay
        .call(|r: &mut meshwork_nat::Relay, _, _| r.stats().map(|s| s.bytes_relayed))
        .await?;
    for node in [&direct_a, &direct_b, &relayed_a, &relayed_b, &relay] {
        node.0.node.shutdown().await?;
    }
    direct.sort_by(f64::total_cmp);
    relayed.sort_by(f64::total_cmp);
    let median = |v: &[f64]| percentile(v, 50.0).unwrap_or(0.0);
    Ok(json!({
        "mib_per_transfer": args.mib,
        "rounds": args.rounds,
        "direct_mib_per_s_median": median(&direct),
        "direct_mib_per_s_worst": direct.first(),
        "relayed_mib_per_s_median": median(&relayed),
        "relayed_mib_per_s_worst": relayed.first(),
        "relayed_over_direct": median(&relayed) / median(&direct).max(f64::MIN_POSITIVE),
        "relay_bytes_carried": relay_bytes,
    }))
}

fn main() {
    let args = args();
    let Some(runtime) = meshwork_benches::testbed_runtime("relay") else {
        return;
    };
    let result = runtime
        .block_on(run(&args))
        .unwrap_or_else(|err| panic!("relay: {err}"));
    if args.json {
        println!("{result}");
    } else {
        println!("{}", serde_json::to_string_pretty(&result).unwrap_or_default());
    }
}
