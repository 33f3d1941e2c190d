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
//!    dials the peer over it.
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
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

use crate::api::NodeApi;

/// How often a client asks the rendezvous who is registered.
pub const DISCOVER_EVERY: Duration = Duration::from_secs(10);

/// How many discovery rounds after an attempt to reach a peer (punch or relay) before another: a minute.
pub const RETRY_AFTER_ROUNDS: u64 = 6;

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
    // The discovery round of each peer's last attempt: rounds are the clock (no time is read here).
    let mut tried: HashMap<PeerId, u64> = HashMap::new();
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
                    let connected: Vec<PeerId> = match api.node().peers().await {
                        Ok(peers) => peers.into_iter().map(|(p, _)| p).collect(),
                        Err(_) => break,
                    };
                    tried.retain(|_, at| round.saturating_sub(*at) < RETRY_AFTER_ROUNDS);
                    for registration in registrations {
                        let peer = registration.peer;
                        if peer <= me || connected.contains(&peer) || tried.contains_key(&peer) || tried.len() >= MAX_TRACKED {
                            continue;
                        }
                        tried.insert(peer, round);
                        debug!(%peer, addr = %registration.addr, "punching a hole");
                        let _ = nat.command(NatCommand::Connect { rendezvous, target: peer }).await;
                    }
                }
                Some(NatEvent::PunchFailed { peer, reason }) => {
                    metrics.punch_failed(reason);
                    info!(%peer, %reason, "hole punch failed");
                    // Both sides of a punch hear that it failed; the one that started it (the smaller
                    // id) opens the circuit, so a pair gets one.
                    if let Some(relay_peer) = rendezvous.filter(|_| me < peer) {
                        info!(%peer, "reaching the peer through the relay");
                        let _ = relay.command(RelayCommand::Connect { relay: relay_peer, target: peer }).await;
                    }
                }
                Some(NatEvent::HolePunched { peer, elapsed, .. }) => {
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
