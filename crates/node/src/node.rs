//! [`NodeBuilder`] (register protocols, get handles) and [`Node`] (the running node's control handle).

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use meshwork_identity::PeerId;
use meshwork_transport::{CountersSnapshot, ProtocolSpec, Transport};
use meshwork_wire::{Instant, Protocol, ProtocolId};
use tokio::sync::{mpsc, oneshot};

use crate::connection::Route;
use crate::runtime::{Control, Inbox, Runtime};
use crate::slot::{Driven, Slot};
use crate::{Events, Handle, Hooks, Metrics, NodeConfig, NodeError};

/// Collects the protocols a node runs, then starts it over a transport.
pub struct NodeBuilder {
    config: NodeConfig,
    metrics: Metrics,
    inbox_tx: mpsc::Sender<Inbox>,
    inbox_rx: mpsc::Receiver<Inbox>,
    slots: Vec<Box<dyn Slot>>,
    /// One per channel of every protocol, in registration order.
    routes: Vec<Route>,
    specs: Vec<ProtocolSpec>,
}

/// The most protocols (slots) one node registers; a composite counts once, whatever its channels.
const MAX_SLOTS: usize = 64;

impl std::fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("protocols", &self.specs)
            .finish()
    }
}

impl NodeBuilder {
    /// A node with no protocols yet.
    pub fn new(config: NodeConfig) -> Self {
        let (inbox_tx, inbox_rx) = mpsc::channel(config.inbox_capacity.max(1));
        Self {
            config,
            metrics: Metrics::new(),
            inbox_tx,
            inbox_rx,
            slots: Vec::new(),
            routes: Vec::new(),
            specs: Vec::new(),
        }
    }

    /// Registers `protocol` (its initial state) and returns a handle to it and its events. A composite
    /// (`meshwork_wire::compose`) is one protocol here: every channel it lists is routed to it.
    pub fn register<P>(&mut self, protocol: P) -> Result<(Handle<P>, Events<P>), NodeError>
    where
        P: Protocol + Send + 'static,
        P::Command: Send + 'static,
        P::Event: Send + 'static,
        P::Timer: Send + 'static,
    {
        self.register_with(protocol, Hooks::default())
    }

    /// Registers `protocol` with [`Hooks`] (an address resolver, a command on each new connection).
    pub fn register_with<P>(
        &mut self,
        protocol: P,
        hooks: Hooks<P>,
    ) -> Result<(Handle<P>, Events<P>), NodeError>
    where
        P: Protocol + Send + 'static,
        P::Command: Send + 'static,
        P::Event: Send + 'static,
        P::Timer: Send + 'static,
    {
        let channels = P::channels();
        for (i, channel) in channels.iter().enumerate() {
            let twice = channels[..i].iter().any(|c| c.id == channel.id);
            if twice || self.specs.iter().any(|spec| spec.id == channel.id) {
                return Err(NodeError::DuplicateProtocol(channel.id.to_string()));
            }
        }
        if self.slots.len() >= MAX_SLOTS {
            return Err(NodeError::TooManyProtocols(MAX_SLOTS));
        }
        let index = self.slots.len();
        let (events_tx, events_rx) = mpsc::channel(self.config.event_queue.max(1));
        let metrics = self.metrics.for_protocol(P::ID.as_str());
        let route_base = self.routes.len();
        for (channel, spec) in channels.iter().enumerate() {
            self.routes.push(Route {
                id: spec.id,
                metrics: self.metrics.for_protocol(spec.id.as_str()),
                slot: index,
                channel,
            });
            self.specs.push(ProtocolSpec::new(spec.id, spec.max_message_size));
        }
        self.slots.push(Box::new(Driven::new(
            (index, route_base),
            protocol,
            events_tx,
            metrics,
            hooks,
        )));
        Ok((Handle::new(index, self.inbox_tx.clone()), Events::new(events_rx)))
    }

    /// The protocols registered so far, to configure the transport with
    /// (`meshwork_transport::Config::new(builder.protocols())`).
    pub fn protocols(&self) -> Vec<ProtocolSpec> {
        self.specs.clone()
    }

    /// The node's metrics (available before it starts, so applications can add gauges).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts the node over `transport` (which must speak every registered protocol), and the metrics
    /// endpoint if one is configured.
    pub async fn start<T: Transport>(self, transport: T) -> Result<Node, NodeError> {
        let metrics_server = match self.config.metrics_addr {
            Some(addr) => Some(self.metrics.serve(addr).await?),
            None => None,
        };
        let transport = Arc::new(transport);
        let (conns_tx, conns_rx) = mpsc::channel(64);
        let runtime = Runtime {
            transport: transport.clone(),
            config: self.config.clone(),
            metrics: self.metrics.clone(),
            slots: self.slots,
            routes: Arc::new(self.routes),
            inbox_tx: self.inbox_tx.clone(),
            conns_tx,
            epoch: (wall_clock(), crate::runtime::monotonic()),
            peers: HashMap::new(),
            released: HashMap::new(),
            addresses: HashMap::new(),
            dialing: HashSet::new(),
            redial: HashSet::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            next_conn: 0,
            actions: Vec::new(),
            send_bytes: Default::default(),
            manager: crate::manager::Manager::new(self.config.connections),
            next_sweep: crate::runtime::monotonic(),
            waiting: HashMap::new(),
            upgraded: HashMap::new(),
            upgrading: HashSet::new(),
        };
        let transport_counters: crate::transport_metrics::ReadCounters = {
            let transport = transport.clone();
            Arc::new(move || transport.counters())
        };
        self.metrics.register_transport(transport_counters.clone());
        let metrics_addr = metrics_server.as_ref().map(|(addr, _)| *addr);
        let metrics_task = metrics_server.map(|(_, task)| task);
        tokio::spawn(async move {
            runtime.run(self.inbox_rx, conns_rx).await;
            if let Some(task) = metrics_task {
                task.abort();
            }
        });
        Ok(Node {
            inbox: self.inbox_tx,
            peer_id: transport.peer_id(),
            local_addr: transport.local_addr(),
            metrics_addr,
            metrics: self.metrics,
            protocols: self.specs.iter().map(|spec| spec.id).collect(),
            transport_counters,
        })
    }
}

/// Protocol time now, as a node counts it: nanoseconds since the Unix epoch, so protocols that need
/// wall time (block timestamps) read it from `now`, and state a protocol persists (a record's expiry)
/// means the same after a restart. A running node reads it once at start; after that its time advances
/// with the monotonic clock, so a wall-clock step never makes protocol time go backwards. Call it to
/// prepare a protocol's state before the node starts (opening a store with expiries, say).
#[allow(clippy::disallowed_methods)] // The runtime is where the real clock enters (ARCHITECTURE.md).
pub fn wall_clock() -> Instant {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Instant::from_duration(since)
}

/// A running node: its identity and address, peers, and shutdown. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inbox: mpsc::Sender<Inbox>,
    peer_id: PeerId,
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    metrics: Metrics,
    protocols: Vec<ProtocolId>,
    transport_counters: Arc<dyn Fn() -> CountersSnapshot + Send + Sync>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer_id", &self.peer_id)
            .field("local_addr", &self.local_addr)
            .field("metrics_addr", &self.metrics_addr)
            .field("protocols", &self.protocols)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Our identity.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Where peers reach us.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the metrics endpoint listens, if it was configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The metrics (render them with [`Metrics::render`], add gauges with [`Metrics::gauge`]).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The transport's counters now (handshakes, connections refused and evicted, duplicates closed,
    /// bytes and datagrams), read without waiting for the node task.
    pub fn transport_counters(&self) -> CountersSnapshot {
        (self.transport_counters)()
    }

    /// The protocols this node runs, in registration order.
    pub fn protocols(&self) -> &[ProtocolId] {
        &self.protocols
    }

    async fn control(&self, control: Control) -> Result<(), NodeError> {
        self.inbox
            .send(Inbox::Control(control))
            .await
            .map_err(|_| NodeError::Stopped)
    }

    /// Tells the node where `peer` can be reached (protocols that dial it will use this address).
    pub async fn add_address(&self, peer: PeerId, addr: SocketAddr) -> Result<(), NodeError> {
        self.control(Control::AddAddress(peer, addr)).await
    }

    /// Connects to `peer` at `addr`. Every protocol sees `PeerUp` once connected, or `PeerDown` if the
    /// dial fails.
    pub async fn dial(&self, peer: PeerId, addr: SocketAddr) -> Result<(), NodeError> {
        self.control(Control::Dial(peer, addr)).await
    }

    /// Closes every connection to `peer`.
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), NodeError> {
        self.control(Control::Disconnect(peer)).await
    }

    /// The connected peers and their addresses (a peer whose only connection is closing is not).
    pub async fn peers(&self) -> Result<Vec<(PeerId, SocketAddr)>, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.control(Control::Peers(reply)).await?;
        answer.await.map_err(|_| NodeError::Stopped)
    }

    /// Stops the node: closes every connection and the transport, and ends the node task. Handles and
    /// event streams report [`NodeError::Stopped`] / `None` afterwards.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        let (done, finished) = oneshot::channel();
        self.control(Control::Shutdown(done)).await?;
        finished.await.map_err(|_| NodeError::Stopped)
    }
}
