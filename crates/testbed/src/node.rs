//! A meshwork node running the NAT protocol on a testbed host: what the hole-punching tests and the
//! `hole_punch` benchmark start on every host.

use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_nat::{Nat, NatCommand, NatConfig, NatEvent};
use meshwork_node::{Events, Handle, Hooks, Node, NodeBuilder, NodeConfig};
use meshwork_transport::Config;
use meshwork_transport::quic::{QuicTransport, udp_socket};

use crate::{Host, TestbedError};

/// A node on a host with [`Nat`] registered (with the hooks it needs), its handle and its events.
pub struct NatNode {
    /// The node.
    pub node: Node,
    /// Commands to the NAT protocol.
    pub nat: Handle<Nat>,
    /// What the NAT protocol reports.
    pub events: Events<Nat>,
}

impl NatNode {
    /// Starts a node with `key` on `host` (a fresh UDP port on the host's address, so a fresh NAT
    /// mapping), running `Nat` with `config`.
    pub async fn start(host: &Host, key: &Keypair, config: NatConfig) -> Result<Self, TestbedError> {
        let addr = SocketAddr::new(host.addr().into(), 0);
        let socket = host.enter(|| udp_socket(addr))??;
        let mut builder = NodeBuilder::new(NodeConfig::default());
        let hooks = Hooks {
            address_of: Some(Nat::address_of),
            on_connected: Some(Nat::on_connected),
            ..Hooks::default()
        };
        let (nat, events) = builder.register_with(Nat::new(config), hooks)?;
        let transport = QuicTransport::with_socket(key, socket, Config::new(builder.protocols())).await?;
        let node = builder.start(transport).await?;
        Ok(Self { node, nat, events })
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
}
