//! Issue #19, "reaching peers behind NATs": how often hole punching succeeds, and how fast, per pair
//! of NAT kinds, in the NAT testbed (network namespaces and nftables routers on this machine; needs
//! root, iproute2 and nftables).
//!
//! For each pair of NAT kinds (endpoint-independent on both sides; symmetric on one; symmetric on
//! both), one testbed holds a public rendezvous and `--concurrency` hosts behind each of the two NATs.
//! Every attempt starts two fresh nodes (fresh keys and ports, so fresh NAT mappings), one behind each
//! NAT, registers both with the rendezvous, and asks it to coordinate a punch from the first to the
//! second; it succeeds when the first reports `HolePunched` and holds a connection to the second at the
//! address the rendezvous saw for it (direct, not relayed). Time to a direct connection is the
//! protocol's own measure, from the `Connect` to the connection. The testbed's links have no delay
//! (the kernel here has no netem), so times are the handshake's processing, not round trips.
//!
//!
//! The `eim-eim+relayed` scenario measures the **upgrade**: the two nodes first connect through a relay
//! circuit (the rendezvous is also the relay), and the punch then replaces that connection with a
//! direct one; it succeeds when the first node's connection to the second is direct, at the NAT
//! mapping, and both nodes counted one upgrade (`meshwork_relayed_upgrades_total`).
//!
//! Run: `cargo bench -p meshwork-benches --bench hole_punch -- [--attempts N] [--concurrency C]
//! [--punch-timeout-ms MS] [--scenario NAME] [--json]` (defaults: 100 attempts per pair, 10 at once,
//! 3 s, every scenario).

// A benchmark's clock is wall time.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use std::net::SocketAddr;

use meshwork_identity::{Keypair, PeerId};
use meshwork_nat::{NatCommand, NatConfig, NatEvent, RelayConfig};
use meshwork_sim::metrics::percentile;
use meshwork_testbed::{NatKind, NatNode, Testbed, TestbedError, TestbedSpec};
use meshwork_wire::relayed::is_relayed;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

struct Args {
    attempts: usize,
    concurrency: usize,
    punch_timeout: Duration,
    scenario: Option<String>,
    json: bool,
}

fn args() -> Args {
    let mut args = Args {
        attempts: 100,
        concurrency: 10,
        punch_timeout: Duration::from_secs(3),
        scenario: None,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = || it.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match arg.as_str() {
            "--attempts" => args.attempts = number() as usize,
            "--concurrency" => args.concurrency = (number() as usize).clamp(1, 200),
            "--punch-timeout-ms" => args.punch_timeout = Duration::from_millis(number()),
            "--scenario" => args.scenario = it.next(),
            "--json" => args.json = true,
            _ => {} // cargo bench passes --bench
        }
    }
    args
}

/// One attempt's outcome: the time to a direct connection, or why there was none.
type Outcome = Result<Duration, String>;

/// Whether `node`'s connection to `peer` is at `at` (the NAT mapping) within a second: after an
/// upgrade, the runtime takes the direct connection a moment after the protocol reports the punch.
async fn direct_within(node: &NatNode, peer: PeerId, at: SocketAddr) -> Result<bool, TestbedError> {
    let seen = node
        .connection_where(peer, Duration::from_secs(1), |c| c == Some(at))
        .await?;
    Ok(seen == Some(at))
}

/// B reserves at the relay, A opens a circuit to B and dials over it: the two are then connected
/// through the relay. Why not, if they are not.
async fn relay_first(
    a: &mut NatNode,
    b: &mut NatNode,
    relay: PeerId,
) -> Result<Result<(), String>, TestbedError> {
    if let Err(err) = b.reserve(relay, WAIT).await {
        return Ok(Err(err.to_string()));
    }
    Ok(a.connect_through(relay, b.node.peer_id(), WAIT)
        .await
        .map(|_| ())
        .map_err(|err| err.to_string()))
}

async fn attempt(
    bed: &Testbed,
    host: usize,
    seed: u32,
    rendezvous: (PeerId, SocketAddr),
    (config, relayed_first): (NatConfig, bool),
) -> Result<Outcome, TestbedError> {
    let key = |side: u8| {
        let mut bytes = [side; 32];
        bytes[..4].copy_from_slice(&seed.to_be_bytes());
        Keypair::from_seed(bytes)
    };
    let mut a = NatNode::start(bed.private(0, host), &key(1), config.clone()).await?;
    let mut b = NatNode::start(bed.private(1, host), &key(2), config).await?;
    a.register(rendezvous, "bench", WAIT).await?;
    let b_at = b.register(rendezvous, "bench", WAIT).await?;
    let target = b.node.peer_id();
    if relayed_first && let Err(reason) = relay_first(&mut a, &mut b, rendezvous.0).await? {
        a.node.shutdown().await?;
        b.node.shutdown().await?;
        return Ok(Err(reason));
    }
    a.nat
        .command(NatCommand::Connect {
            rendezvous: rendezvous.0,
            target,
        })
        .await?;
    let outcome = a
        .next(WAIT, |e| match e {
            NatEvent::HolePunched { elapsed, .. } => Some(Ok(elapsed)),
            NatEvent::PunchFailed { reason, .. } => Some(Err(format!("{reason:?}"))),
            _ => None,
        })
        .await
        .unwrap_or_else(|| Err("no outcome".into()));
    let outcome = match outcome {
        Ok(_) if !direct_within(&a, target, b_at).await? => {
            Err("connected, but not at the NAT mapping".into())
        }
        Ok(elapsed) if relayed_first => {
            // B takes the direct connection at its own moment; then each side counts one upgrade.
            let a_id = a.node.peer_id();
            let direct = |c: Option<SocketAddr>| c.is_some_and(|c| !is_relayed(&c));
            b.connection_where(a_id, Duration::from_secs(1), direct).await?;
            match (a.relayed_upgrades(), b.relayed_upgrades()) {
                (1, 1) => Ok(elapsed),
                counts => Err(format!("direct, but upgrades counted (A, B) = {counts:?}")),
            }
        }
        other => other,
    };
    a.node.shutdown().await?;
    b.node.shutdown().await?;
    Ok(outcome)
}

async fn scenario(
    (name, nats, relayed_first): (&str, [NatKind; 2], bool),
    args: &Args,
) -> Result<serde_json::Value, TestbedError> {
    let spec = TestbedSpec {
        public_hosts: 1,
        nats: nats.to_vec(),
        hosts_per_nat: args.concurrency,
    };
    let bed = Testbed::build(&spec)?;
    let (rendezvous, ()) = NatNode::start_with(
        bed.public(0),
        &Keypair::from_seed([0xff; 32]),
        NatConfig::rendezvous(),
        RelayConfig::relay(),
        |_| Ok(()),
    )
    .await?;
    let at = (rendezvous.node.peer_id(), rendezvous.node.local_addr());
    let config = NatConfig {
        punch_timeout: args.punch_timeout,
        ..NatConfig::default()
    };
    let started = Instant::now();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut seed = 0u32;
    while outcomes.len() < args.attempts {
        let round = (args.attempts - outcomes.len()).min(args.concurrency);
        let attempts = (0..round).map(|host| {
            seed += 1;
            attempt(&bed, host, seed, at, (config.clone(), relayed_first))
        });
        for outcome in futures::future::join_all(attempts).await {
            outcomes.push(outcome?);
        }
    }
    rendezvous.node.shutdown().await?;
    let mut times: Vec<f64> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok())
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    times.sort_by(f64::total_cmp);
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    for reason in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        *failures.entry(reason.clone()).or_default() += 1;
    }
    let successes = times.len();
    Ok(json!({
        "nats": name,
        "attempts": outcomes.len(),
        "successes": successes,
        "success_rate": successes as f64 / outcomes.len().max(1) as f64,
        "direct_ms_p50": percentile(&times, 50.0),
        "direct_ms_p99": percentile(&times, 99.0),
        "failures": failures,
        "wall_ms": started.elapsed().as_millis() as u64,
    }))
}

fn main() {
    let args = args();
    let Some(runtime) = meshwork_benches::testbed_runtime("hole_punch") else {
        return;
    };
    let eim = [NatKind::EndpointIndependent; 2];
    let scenarios = [
        ("eim-eim", eim, false),
        ("eim-eim+relayed", eim, true),
        (
            "symmetric-eim",
            [NatKind::Symmetric, NatKind::EndpointIndependent],
            false,
        ),
        ("symmetric-symmetric", [NatKind::Symmetric; 2], false),
    ];
    let mut results = Vec::new();
    for (name, nats, relayed_first) in scenarios {
        if args.scenario.as_ref().is_some_and(|only| only != name) {
            continue;
        }
        let result = runtime
            .block_on(scenario((name, nats, relayed_first), &args))
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        if !args.json {
            println!("{result}");
        }
        results.push(result);
    }
    if args.json {
        println!("{}", json!({ "hole_punch": results }));
    }
}
