//! Reaching peers behind NATs: the coin node's use of `meshwork-nat` (hybrid P2P: a public rendezvous
//! and relay help peers find each other; the data flows peer to peer where it can).
//!
//! Every node runs the NAT protocol (observed addresses, and the rendezvous role when asked) and the
//! relay protocol (the relay role when asked), with the relay bridge joining circuits to its QUIC
//! transport. A node given a rendezvous ([`NatRole::Client`], `coin-node run --use-rendezvous`):
//!
//! 1. registers there under the network's namespace (its genesis block's id) and reserves at the
//!    same node's relay, so others can reach it through it;
//! 2. every [`DISCOVER_EVERY`], asks who else is registered, and for each peer it is not connected to
//!    (the smaller id of each pair starts, so a pair makes one attempt, not two) asks the rendezvous
//!    to coordinate a **hole punch**;
//! 3. when a punch fails (a symmetric NAT on either side), opens a **circuit** through the relay and
//!    dials the peer over it;
//! 4. keeps trying to punch to peers it reaches only through the relay, less often after each failure
//!    (every [`RETRY_AFTER_ROUNDS`] rounds, doubling up to [`MAX_BACKOFF_DOUBLINGS`] times): a punch
//!    that gets through **upgrades** the relayed connection to a direct one, and its circuit closes.
//!
//! The NAT protocol protects the last eight punched connections this node asked for, and as many that
//! others asked for, while they last (`NatConfig::max_punched_kept`), so the connection manager does
//! not trim them above its watermark;
//! one that closes all the same is punched again after [`RETRY_AFTER_ROUNDS`] rounds.
//!
//! The coin's own protocols (gossip, sync, Kademlia) then see the peer like any other. A relayed
//! connection's address is virtual ([`meshwork_wire::relayed`]), so they never store or advertise it.
//! A node started with `--rendezvous` ([`NatRole::Rendezvous`]) serves both roles; it should be
//! publicly reachable.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_nat::PunchFailure;
use meshwork_nat::bridge::BridgeEvent;
use meshwork_nat::{
    Namespace, Nat, NatCommand, NatConfig, NatEvent, Relay, RelayCommand, RelayConfig, RelayEvent,
};
use meshwork_node::{Events, Gauge, Handle, Metrics};
use meshwork_wire::relayed::is_relayed;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

use crate::api::NodeApi;

/// How often a client asks the rendezvous who is registered.
pub const DISCOVER_EVERY: Duration = Duration::from_secs(10);

/// How many discovery rounds after an attempt to reach a peer (punch or relay) before another: a minute.
pub const RETRY_AFTER_ROUNDS: u64 = 6;

/// How many times the wait between punches to one peer doubles after failures: at most 16 minutes
/// between attempts to a peer behind a symmetric NAT, which no punch gets through.
pub const MAX_BACKOFF_DOUBLINGS: u32 = 4;

/// The last attempt to reach a peer directly.
#[derive(Clone, Copy, Debug)]
struct Attempt {
    /// The discovery round it started in.
    round: u64,
    /// Punches to the peer that failed in a row.
    failures: u32,
}

impl Attempt {
    /// Whether another punch is due in `round`.
    fn due(self, round: u64) -> bool {
        let wait = RETRY_AFTER_ROUNDS << self.failures.min(MAX_BACKOFF_DOUBLINGS);
        round.saturating_sub(self.round) >= wait
    }
}

/// How long a registration at the rendezvous holds (renewed at three quarters of it).
const REGISTRATION_TTL: Duration = Duration::from_secs(600);

/// The most peers whose last attempt is remembered.
const MAX_TRACKED: usize = 1024;

/// A node's part in reaching peers behind NATs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NatRole {
    /// Neither serves nor uses a rendezvous: a publicly reachable node, found through `--bootstrap`.
    #[default]
    Direct,
    /// Serves as rendezvous and relay for peers behind NATs (`--rendezvous`). Only on a publicly
    /// reachable node.
    Rendezvous,
    /// Registers at this rendezvous (and reserves at its relay), and reaches the peers registered there
    /// by hole punching, or through the relay when a punch fails (`--use-rendezvous`).
    Client(PeerId, SocketAddr),
}

impl NatRole {
    /// The NAT and relay protocols' configurations for this role.
    pub fn configs(self) -> (NatConfig, RelayConfig) {
        match self {
            Self::Rendezvous => (NatConfig::rendezvous(), RelayConfig::relay()),
            Self::Direct | Self::Client(..) => (NatConfig::default(), RelayConfig::default()),
        }
    }
}

/// The rendezvous namespace of a network: the hex of its genesis block id's first 16 bytes.
pub fn namespace(genesis: &[u8]) -> Namespace {
    let hex: String = genesis.iter().take(16).map(|b| format!("{b:02x}")).collect();
    // 5 + 32 bytes, within the 64-byte bound.
    Namespace::try_from(format!("coin/{hex}")).unwrap_or_default()
}

/// What NAT traversal did, on the node's metrics page (`meshwork_nat_*`; counts since start).
#[derive(Clone, Debug)]
pub struct NatMetrics {
    punched: Gauge,
    punch_ms: Gauge,
    timed_out: Gauge,
    dials_failed: Gauge,
    refused: Gauge,
    relayed: Gauge,
    relay_refused: Gauge,
}

impl NatMetrics {
    /// Registers the gauges on `metrics`.
    pub fn register(metrics: &Metrics) -> Self {
        Self {
            punched: metrics.gauge(
                "nat_punches_succeeded",
                "Hole punches that ended in a direct connection",
            ),
            punch_ms: metrics.gauge(
                "nat_punch_last_ms",
                "Milliseconds from the last successful punch's request to its connection",
            ),
            timed_out: metrics.gauge(
                "nat_punches_timed_out",
                "Hole punches with no connection within the punch timeout (a symmetric NAT, usually)",
            ),
            dials_failed: metrics.gauge("nat_punches_dials_failed", "Hole punches whose every dial failed"),
            refused: metrics.gauge(
                "nat_punches_refused",
                "Hole punches the rendezvous refused or could not start (target gone, rate limit, too many)",
            ),
            relayed: metrics.gauge(
                "nat_relay_circuits_opened",
                "Relay circuits opened to reach a peer",
            ),
            relay_refused: metrics.gauge("nat_relay_circuits_refused", "Relay circuits the relay refused"),
        }
    }

    fn punch_failed(&self, reason: PunchFailure) {
        match reason {
            PunchFailure::TimedOut => &self.timed_out,
            PunchFailure::DialsFailed { .. } => &self.dials_failed,
            PunchFailure::Refused(_) | PunchFailure::RendezvousNotConnected | PunchFailure::TooMany => {
                &self.refused
            }
        }
        .inc();
    }
}

/// The NAT and relay protocols' handles and events, as the node registered them.
pub struct Parts {
    /// Commands to the NAT protocol.
    pub nat: Handle<Nat>,
    /// What it reports.
    pub nat_events: Events<Nat>,
    /// Commands to the relay protocol.
    pub relay: Handle<Relay>,
    /// What the relay bridge reports.
    pub bridge: mpsc::Receiver<BridgeEvent>,
}

/// Runs the node's NAT traversal until `stopped`: for a client, the loop of the module docs; for the
/// other roles, the log of what the protocols report.
pub async fn run(
    api: NodeApi,
    parts: Parts,
    role: NatRole,
    namespace: Namespace,
    mut stopped: watch::Receiver<bool>,
) {
    let Parts {
        nat,
        mut nat_events,
        relay,
        mut bridge,
    } = parts;
    let rendezvous = match role {
        NatRole::Client(peer, addr) => {
            let _ = api.node().add_address(peer, addr).await;
            let registered = nat
                .command(NatCommand::Register {
                    rendezvous: peer,
                    namespace: namespace.clone(),
                    ttl: REGISTRATION_TTL,
                })
                .await;
            let reserved = relay.command(RelayCommand::Reserve { relay: peer }).await;
            if registered.is_err() || reserved.is_err() {
                return;
            }
            Some(peer)
        }
        NatRole::Direct | NatRole::Rendezvous => None,
    };
    let metrics = NatMetrics::register(api.node().metrics());
    let me = api.node().peer_id();
    // Each peer's last attempt: discovery rounds are the clock (no time is read here).
    let mut tried: HashMap<PeerId, Attempt> = HashMap::new();
    let mut round = 0u64;
    let mut tick = tokio::time::interval(DISCOVER_EVERY);
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = tick.tick(), if rendezvous.is_some() => {
                let Some(rendezvous) = rendezvous else { continue };
                round += 1;
                let discover = NatCommand::Discover {
                    rendezvous,
                    namespace: namespace.clone(),
                    limit: meshwork_nat::MAX_DISCOVERED as u16,
                    after: None,
                };
                if nat.command(discover).await.is_err() {
                    break;
                }
            }
            event = nat_events.recv() => match event {
                None => break,
                Some(NatEvent::Discovered { rendezvous, registrations, .. }) => {
                    // Peers reached through a relay circuit are punched to again: an upgrade.
                    let direct: Vec<PeerId> = match api.node().peers().await {
                        Ok(peers) => peers.into_iter().filter(|(_, addr)| !is_relayed(addr)).map(|(p, _)| p).collect(),
                        Err(_) => break,
                    };
                    // Longer than the longest wait, so a peer's failures are kept until its next
                    // attempt is due, and the wait stays at its cap.
                    let forget_after = RETRY_AFTER_ROUNDS << (MAX_BACKOFF_DOUBLINGS + 1);
                    tried.retain(|_, last| round.saturating_sub(last.round) < forget_after);
                    for registration in registrations {
                        let peer = registration.peer;
                        let due = tried.get(&peer).is_none_or(|last| last.due(round));
                        let room = tried.len() < MAX_TRACKED || tried.contains_key(&peer);
                        if peer <= me || direct.contains(&peer) || !due || !room {
                            continue;
                        }
                        let failures = tried.get(&peer).map_or(0, |last| last.failures);
                        tried.insert(peer, Attempt { round, failures });
                        debug!(%peer, addr = %registration.addr, failures, "punching a hole");
                        let _ = nat.command(NatCommand::Connect { rendezvous, target: peer }).await;
                    }
                }
                Some(NatEvent::PunchFailed { peer, reason }) => {
                    metrics.punch_failed(reason);
                    info!(%peer, %reason, "hole punch failed");
                    if let Some(last) = tried.get_mut(&peer) {
                        last.failures = last.failures.saturating_add(1);
                    }
                    // Both sides of a punch hear that it failed; the one that started it (the smaller
                    // id) opens the circuit, so a pair gets one; none if the pair has one already
                    // (the punch was an upgrade attempt).
                    let connected = match api.node().peers().await {
                        Ok(peers) => peers.iter().any(|(p, _)| *p == peer),
                        Err(_) => break,
                    };
                    if let Some(relay_peer) = rendezvous.filter(|_| me < peer && !connected) {
                        info!(%peer, "reaching the peer through the relay");
                        let _ = relay.command(RelayCommand::Connect { relay: relay_peer, target: peer }).await;
                    }
                }
                Some(NatEvent::HolePunched { peer, elapsed, .. }) => {
                    // The NAT protocol keeps the connection (`NatConfig::max_punched_kept`); should it
                    // close anyway, the peer is punched again a minute after this attempt, not at the
                    // next round, and its failures start over.
                    if let Some(last) = tried.get_mut(&peer) {
                        last.failures = 0;
                    }
                    metrics.punched.inc();
                    metrics.punch_ms.set(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX));
                    info!(%peer, ?elapsed, "hole punched: direct connection");
                }
                Some(other) => debug!(?other, "nat"),
            },
            event = bridge.recv() => match event {
                None => break,
                Some(BridgeEvent::Opened { peer, addr, outbound: true, .. }) => {
                    metrics.relayed.inc();
                    info!(%peer, %addr, "relay circuit open; dialling over it");
                    let _ = api.node().dial(peer, addr).await;
                }
                Some(BridgeEvent::Relay(RelayEvent::ConnectRefused { target, reason, .. })) => {
                    metrics.relay_refused.inc();
                    info!(peer = %target, %reason, "the relay refused a circuit");
                }
                Some(other) => debug!(?other, "relay"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_between_punches_doubles_after_failures_up_to_its_cap() {
        let waits: Vec<u64> = (0..7)
            .map(|failures| {
                let last = Attempt { round: 100, failures };
                (100..1000).find(|&round| last.due(round)).unwrap() - 100
            })
            .collect();
        assert_eq!(waits, vec![6, 12, 24, 48, 96, 96, 96]);
    }
}
