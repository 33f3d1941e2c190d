//! A meshwork node running the NAT and relay protocols on a testbed host: what the hole-punching and
//! relay tests and the `hole_punch` benchmark start on every host.

use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_nat::bridge::{BridgeEvent, spawn_bridge};
use meshwork_nat::{
    Nat, NatCommand, NatConfig, NatEvent, Relay, RelayCommand, RelayConfig, RelayEvent, RelayStats,
};
use meshwork_node::{ConnectionLimits, Events, Handle, Hooks, Node, NodeBuilder, NodeConfig, NodeError};
use meshwork_transport::Config;
use meshwork_transport::quic::{QuicTransport, udp_socket};
use tokio::sync::mpsc;

use crate::{Host, TestbedError};

/// A node on a host with [`Nat`] (with the hooks it needs) and [`Relay`] registered, and the relay
/// bridge joining its relay circuits to its QUIC transport.
pub struct NatNode {
    /// The node.
    pub node: Node,
    /// Its transport (a clone of the one the node runs on).
    pub transport: QuicTransport,
    /// Commands to the NAT protocol.
    pub nat: Handle<Nat>,
    /// What the NAT protocol reports.
    pub events: Events<Nat>,
    /// Commands to the relay protocol.
    pub relay: Handle<Relay>,
    /// What the relay bridge reports.
    pub relay_events: mpsc::Receiver<BridgeEvent>,
}

impl NatNode {
    /// Starts a node with `key` on `host` (a fresh UDP port on the host's address, so a fresh NAT
    /// mapping), running `Nat` with `config` and `Relay` as an end only.
    pub async fn start(host: &Host, key: &Keypair, config: NatConfig) -> Result<Self, TestbedError> {
        let (node, ()) = Self::start_with(host, key, config, RelayConfig::default(), |_| Ok(())).await?;
        Ok(node)
    }

    /// Starts a node as [`NatNode::start`] does, whose connection manager keeps to `connections`.
    pub async fn start_limited(
        host: &Host,
        key: &Keypair,
        config: NatConfig,
        connections: ConnectionLimits,
    ) -> Result<Self, TestbedError> {
        let node = NodeConfig {
            connections,
            ..NodeConfig::default()
        };
        let relay = RelayConfig::default();
        let (node, ()) = Self::build(host, key, (config, relay, node), |_| Ok(())).await?;
        Ok(node)
    }

    /// Starts a node as [`NatNode::start`] does, with the relay in the role `relay`, after `register`
    /// added the caller's own protocols to the builder.
    pub async fn start_with<X>(
        host: &Host,
        key: &Keypair,
        config: NatConfig,
        relay: RelayConfig,
        register: impl FnOnce(&mut NodeBuilder) -> Result<X, NodeError>,
    ) -> Result<(Self, X), TestbedError> {
        Self::build(host, key, (config, relay, NodeConfig::default()), register).await
    }

    async fn build<X>(
        host: &Host,
        key: &Keypair,
        (config, relay, node): (NatConfig, RelayConfig, NodeConfig),
        register: impl FnOnce(&mut NodeBuilder) -> Result<X, NodeError>,
    ) -> Result<(Self, X), TestbedError> {
        let addr = SocketAddr::new(host.addr().into(), 0);
        let socket = host.enter(|| udp_socket(addr))??;
        let mut builder = NodeBuilder::new(node);
        let hooks = Hooks {
            address_of: Some(Nat::address_of),
            on_connected: Some(Nat::on_connected),
            ..Hooks::default()
        };
        let (nat, events) = builder.register_with(Nat::new(config), hooks)?;
        let relay_hooks = Hooks {
            on_connected: Some(Relay::on_connected),
            ..Hooks::default()
        };
        let (relay, relay_protocol_events) = builder.register_with(Relay::new(relay), relay_hooks)?;
        let extra = register(&mut builder)?;
        let transport = QuicTransport::with_socket(key, socket, Config::new(builder.protocols())).await?;
        let relay_events = spawn_bridge(transport.clone(), relay.clone(), relay_protocol_events);
        let node = builder.start(transport.clone()).await?;
        let node = Self {
            node,
            transport,
            nat,
            events,
            relay,
            relay_events,
        };
        Ok((node, extra))
    }

    /// The first relay bridge event `pick` accepts within `within`, or `None` (the events before it
    /// are dropped).
    pub async fn next_relay<T>(
        &mut self,
        within: Duration,
        mut pick: impl FnMut(BridgeEvent) -> Option<T>,
    ) -> Option<T> {
        let wait = async {
            while let Some(event) = self.relay_events.recv().await {
                if let Some(found) = pick(event) {
                    return Some(found);
                }
            }
            None
        };
        tokio::time::timeout(within, wait).await.ok().flatten()
    }

    /// The first event `pick` accepts within `within`, or `None` (the events before it are dropped).
    pub async fn next<T>(
        &mut self,
        within: Duration,
        mut pick: impl FnMut(NatEvent) -> Option<T>,
    ) -> Option<T> {
        let wait = async {
            while let Some(event) = self.events.recv().await {
                if let Some(found) = pick(event) {
                    return Some(found);
                }
            }
            None
        };
        tokio::time::timeout(within, wait).await.ok().flatten()
    }

    /// Registers under `namespace` at the rendezvous `(peer, addr)` and waits (at most `within`) for
    /// the answer: the address the rendezvous registered us at.
    pub async fn register(
        &mut self,
        rendezvous: (PeerId, SocketAddr),
        namespace: &str,
        within: Duration,
    ) -> Result<SocketAddr, TestbedError> {
        let namespace = namespace
            .try_into()
            .map_err(|_| TestbedError::Unavailable("namespace too long".into()))?;
        self.node.add_address(rendezvous.0, rendezvous.1).await?;
        self.nat
            .command(NatCommand::Register {
                rendezvous: rendezvous.0,
                namespace,
                ttl: Duration::from_secs(600),
            })
            .await?;
        let answer = self
            .next(within, |e| match e {
                NatEvent::Registered { addr, .. } => Some(Ok(addr)),
                NatEvent::RegisterRefused { reason, .. } => Some(Err(reason)),
                _ => None,
            })
            .await;
        match answer {
            Some(Ok(addr)) => Ok(addr),
            Some(Err(reason)) => Err(TestbedError::Refused(reason)),
            None => Err(TestbedError::TimedOut("registration")),
        }
    }

    /// The address this node holds a connection to `peer` at, if it holds one.
    pub async fn connection_to(&self, peer: PeerId) -> Result<Option<SocketAddr>, TestbedError> {
        let peers = self.node.peers().await?;
        Ok(peers.into_iter().find(|(p, _)| *p == peer).map(|(_, addr)| addr))
    }

    /// Polls [`NatNode::connection_to`] every 50 ms until `want` accepts it, for at most `within`;
    /// the last answer either way.
    pub async fn connection_where(
        &self,
        peer: PeerId,
        within: Duration,
        want: impl Fn(Option<SocketAddr>) -> bool,
    ) -> Result<Option<SocketAddr>, TestbedError> {
        let mut last = None;
        for _ in 0..=(within.as_millis() / 50) {
            last = self.connection_to(peer).await?;
            if want(last) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(last)
    }

    /// Reserves at `relay` (which must be dialable: its address added) and waits, at most `within`,
    /// for its answer.
    pub async fn reserve(&mut self, relay: PeerId, within: Duration) -> Result<(), TestbedError> {
        self.relay.command(RelayCommand::Reserve { relay }).await?;
        let answer = self
            .next_relay(within, |e| match e {
                BridgeEvent::Relay(RelayEvent::Reserved { relay: r, .. }) if r == relay => Some(Ok(())),
                BridgeEvent::Relay(RelayEvent::ReserveRefused { relay: r, reason }) if r == relay => {
                    Some(Err(TestbedError::RelayRefused(reason)))
                }
                _ => None,
            })
            .await;
        answer.unwrap_or(Err(TestbedError::TimedOut("reservation")))
    }

    /// Opens a circuit through `relay` to `target` (which reserved there), dials `target` over it,
    /// and returns the circuit's virtual address once the connection over it is up (at most
    /// `within` for each step).
    pub async fn connect_through(
        &mut self,
        relay: PeerId,
        target: PeerId,
        within: Duration,
    ) -> Result<SocketAddr, TestbedError> {
        self.relay
            .command(RelayCommand::Connect { relay, target })
            .await?;
        let opened = self
            .next_relay(within, |e| match e {
                BridgeEvent::Opened {
                    peer,
                    addr,
                    outbound: true,
                    ..
                } if peer == target => Some(Ok(addr)),
                BridgeEvent::Relay(RelayEvent::ConnectRefused {
                    target: t, reason, ..
                }) if t == target => Some(Err(TestbedError::RelayRefused(reason))),
                _ => None,
            })
            .await;
        let at = opened.unwrap_or(Err(TestbedError::TimedOut("circuit")))?;
        self.node.dial(target, at).await?;
        match self.connection_where(target, within, |c| c == Some(at)).await? {
            Some(c) if c == at => Ok(at),
            _ => Err(TestbedError::TimedOut("connection over the circuit")),
        }
    }

    /// How many relayed connections the node has upgraded to direct ones
    /// (`meshwork_relayed_upgrades_total`).
    pub fn relayed_upgrades(&self) -> u64 {
        self.node
            .metrics()
            .render()
            .lines()
            .find_map(|l| l.strip_prefix("meshwork_relayed_upgrades_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The relay role's counters, if this node serves as a relay.
    pub async fn relay_stats(&self) -> Result<Option<RelayStats>, TestbedError> {
        Ok(self.relay.call(|r: &mut Relay, _, _| r.stats()).await?)
    }
}
