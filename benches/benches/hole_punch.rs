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
//! Run: `cargo bench -p meshwork-benches --bench hole_punch -- [--attempts N] [--concurrency C]
//! [--punch-timeout-ms MS] [--json]` (defaults: 100 attempts per pair, 10 at once, 3 s).

// A benchmark's clock is wall time.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use meshwork_identity::Keypair;
use meshwork_nat::{NatCommand, NatConfig, NatEvent};
use meshwork_sim::metrics::percentile;
use meshwork_testbed::{NatKind, NatNode, Testbed, TestbedError, TestbedSpec};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

struct Args {
    attempts: usize,
    concurrency: usize,
    punch_timeout: Duration,
    json: bool,
}

fn args() -> Args {
    let mut args = Args {
        attempts: 100,
        concurrency: 10,
        punch_timeout: Duration::from_secs(3),
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = || it.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match arg.as_str() {
            "--attempts" => args.attempts = number() as usize,
            "--concurrency" => args.concurrency = (number() as usize).clamp(1, 200),
            "--punch-timeout-ms" => args.punch_timeout = Duration::from_millis(number()),
            "--json" => args.json = true,
            _ => {} // cargo bench passes --bench
        }
    }
    args
}

/// One attempt's outcome: the time to a direct connection, or why there was none.
type Outcome = Result<Duration, String>;

async fn attempt(
    bed: &Testbed,
    host: usize,
    seed: u32,
    rendezvous: (meshwork_identity::PeerId, std::net::SocketAddr),
    config: NatConfig,
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
        Ok(elapsed) if a.connection_to(target).await? == Some(b_at) => Ok(elapsed),
        Ok(_) => Err("connected, but not at the NAT mapping".into()),
        Err(reason) => Err(reason),
    };
    a.node.shutdown().await?;
    b.node.shutdown().await?;
    Ok(outcome)
}

async fn scenario(name: &str, nats: [NatKind; 2], args: &Args) -> Result<serde_json::Value, TestbedError> {
    let spec = TestbedSpec {
        public_hosts: 1,
        nats: nats.to_vec(),
        hosts_per_nat: args.concurrency,
    };
    let bed = Testbed::build(&spec)?;
    let rendezvous = NatNode::start(
        bed.public(0),
        &Keypair::from_seed([0xff; 32]),
        NatConfig::rendezvous(),
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
            attempt(&bed, host, seed, at, config.clone())
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
    if let Err(err) = meshwork_testbed::available() {
        eprintln!("hole_punch: {err}");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let scenarios = [
        (
            "eim-eim",
            [NatKind::EndpointIndependent, NatKind::EndpointIndependent],
        ),
        (
            "symmetric-eim",
            [NatKind::Symmetric, NatKind::EndpointIndependent],
        ),
        ("symmetric-symmetric", [NatKind::Symmetric, NatKind::Symmetric]),
    ];
    let mut results = Vec::new();
    for (name, nats) in scenarios {
        let result = runtime
            .block_on(scenario(name, nats, &args))
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
