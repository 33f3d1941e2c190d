//! One registered protocol, with its types erased so the node task can hold many in one list.
//!
//! [`Driven`] owns a protocol's state. It decodes frames into the protocol's messages, hands it inputs
//! with `now`, and turns its typed [`Output`]s into untyped [`Action`]s (encoded bytes, timer keys) that
//! the node task carries out. Events go straight to the application's bounded queue.
//!
//! A slot may speak several channels (a composite protocol: `meshwork_wire::compose`). The node keeps one
//! flat list of *routes*, one per channel of every slot; a slot's channels occupy the routes from its
//! `route_base` on, in the order of [`Protocol::channels`].

use std::any::Any;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::{Channel, DecodeError, DropReason, Input, Instant, Output, Protocol, WireMessage};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::metrics::ProtocolMetrics;

/// What the node task does for a protocol, once types are erased.
#[derive(Debug)]
pub(crate) enum Action {
    /// Write `bytes` (an encoded message) to `to` on route (channel) `route`.
    Send {
        to: PeerId,
        route: usize,
        bytes: Vec<u8>,
        /// [`Protocol::is_control`]: the message may use the send queue's reserve.
        control: bool,
    },
    /// Connect to the peer; `slot` asked (a connected peer it had released is handed back to it).
    Dial { peer: PeerId, slot: Option<usize> },
    /// Protocol `slot` no longer wants the peer; the connection closes once no protocol wants it.
    Release { peer: PeerId, slot: usize },
    /// Close every connection to the peer, whoever wants it (the node's own `disconnect`).
    Disconnect(PeerId),
    /// Protocol `slot` protects the peer from the connection manager, or stops protecting it.
    Protect {
        peer: PeerId,
        slot: usize,
        protect: bool,
    },
    /// Fire timer `key` of protocol `slot` after `after`.
    Schedule { after: Duration, slot: usize, key: u64 },
}

/// A request from a [`Handle`](crate::Handle), boxed as `Any` so the inbox is not generic; the slot
/// downcasts it back to [`Call<P>`].
pub(crate) type AnyCall = Box<dyn Any + Send>;

/// A closure run on the protocol's state inside the node task.
pub(crate) type With<P> = Box<dyn FnOnce(&mut P, Instant, &mut Vec<Output<P>>) + Send>;

/// What a handle asks of its protocol.
pub(crate) enum Call<P: Protocol> {
    /// Deliver `Input::Command`.
    Command(P::Command),
    /// Run a closure with the state, `now`, and the output list.
    With(With<P>),
}

/// Builds the command a protocol gets when a connection comes up, from the peer and its address.
pub type OnConnected<P> = fn(PeerId, SocketAddr) -> Option<<P as Protocol>::Command>;

/// Builds the command a protocol gets when a connection comes up, from the peer and the round-trip
/// time the transport measured on it (QUIC: from its handshake; transports that measure none give no
/// command).
pub type OnRoundTrip<P> = fn(PeerId, Duration) -> Option<<P as Protocol>::Command>;

/// Optional ways a protocol helps the runtime, given at registration.
pub struct Hooks<P: Protocol> {
    /// Where the protocol believes a peer can be reached; asked when the node's own address book has no
    /// entry for a peer someone wants to dial (Kademlia knows addresses from its lookups).
    pub address_of: Option<fn(&P, &PeerId) -> Option<SocketAddr>>,
    /// A command to deliver when a connection comes up, built from the peer and its observed address
    /// (Kademlia counts observed addresses for its per-prefix limits). It is delivered again when the
    /// peer's relayed connection is upgraded to a direct one, with the direct address (the protocol
    /// hears no second `PeerUp`).
    pub on_connected: Option<OnConnected<P>>,
    /// A command to deliver when a connection comes up, built from the peer and the connection's
    /// measured round trip, and again with the direct connection's after an upgrade (gossip learns from it how long to wait for a message before grafting it,
    /// so its first repairs on a fast path do not wait the slow default).
    pub on_round_trip: Option<OnRoundTrip<P>>,
}

impl<P: Protocol> Default for Hooks<P> {
    fn default() -> Self {
        Self {
            address_of: None,
            on_connected: None,
            on_round_trip: None,
        }
    }
}

impl<P: Protocol> std::fmt::Debug for Hooks<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("address_of", &self.address_of.is_some())
            .field("on_connected", &self.on_connected.is_some())
            .field("on_round_trip", &self.on_round_trip.is_some())
            .finish()
    }
}

/// The node task's view of one protocol.
pub(crate) trait Slot: Send {
    fn message(
        &mut self,
        now: Instant,
        from: PeerId,
        channel: usize,
        bytes: &[u8],
        actions: &mut Vec<Action>,
    ) -> Result<(), DecodeError>;
    fn peer_up(
        &mut self,
        now: Instant,
        peer: PeerId,
        link: (SocketAddr, Duration),
        actions: &mut Vec<Action>,
    );
    /// The connected `peer` moved to a better connection at `link` (a relayed one was upgraded to a
    /// direct one): the hooks run again with it; the protocol sees no `PeerDown` or `PeerUp`.
    fn link_changed(
        &mut self,
        now: Instant,
        peer: PeerId,
        link: (SocketAddr, Duration),
        actions: &mut Vec<Action>,
    );
    fn peer_down(&mut self, now: Instant, peer: PeerId, actions: &mut Vec<Action>);
    /// A message of channel `channel` for `to` was dropped for `reason` before it was written: the
    /// protocol hears it back ([`Protocol::undelivered`]).
    fn undelivered(
        &mut self,
        now: Instant,
        to: PeerId,
        channel: usize,
        bytes: &[u8],
        reason: DropReason,
        actions: &mut Vec<Action>,
    );
    fn timer(&mut self, now: Instant, key: u64, actions: &mut Vec<Action>);
    fn call(&mut self, now: Instant, call: AnyCall, actions: &mut Vec<Action>);
    fn address_of(&self, peer: &PeerId) -> Option<SocketAddr>;
}

/// A protocol's state and everything needed to drive it.
pub(crate) struct Driven<P: Protocol> {
    index: usize,
    /// The route of this protocol's first channel.
    route_base: usize,
    channels: Vec<Channel>,
    state: P,
    out: Vec<Output<P>>,
    timers: HashMap<u64, P::Timer>,
    next_timer: u64,
    events: mpsc::Sender<P::Event>,
    metrics: ProtocolMetrics,
    hooks: Hooks<P>,
}

impl<P: Protocol> Driven<P> {
    pub(crate) fn new(
        (index, route_base): (usize, usize),
        state: P,
        events: mpsc::Sender<P::Event>,
        metrics: ProtocolMetrics,
        hooks: Hooks<P>,
    ) -> Self {
        Self {
            index,
            route_base,
            channels: P::channels(),
            state,
            out: Vec::new(),
            timers: HashMap::new(),
            next_timer: 0,
            events,
            metrics,
            hooks,
        }
    }

    fn input(&mut self, now: Instant, input: Input<P>, actions: &mut Vec<Action>) {
        self.state.handle(now, input, &mut self.out);
        self.flush(actions);
    }

    /// Runs `work` and charges its CPU time to the protocol. Every entry point of [`Slot`] goes through
    /// here exactly once (none calls another), so nothing is counted twice.
    fn charged<R>(&mut self, work: impl FnOnce(&mut Self) -> R) -> R {
        let start = crate::thread_cpu_time();
        let result = work(self);
        if let Some((start, end)) = start.zip(crate::thread_cpu_time()) {
            self.metrics.cpu.inc_by(end.saturating_sub(start).as_secs_f64());
        }
        result
    }

    /// Tells the protocol a link's address and round trip, through its hooks.
    fn link(&mut self, now: Instant, peer: PeerId, link: (SocketAddr, Duration), actions: &mut Vec<Action>) {
        let (addr, rtt) = link;
        if let Some(command) = self.hooks.on_connected.and_then(|hook| hook(peer, addr)) {
            self.input(now, Input::Command(command), actions);
        }
        let measured = (!rtt.is_zero()).then_some(rtt);
        if let Some(command) = self
            .hooks
            .on_round_trip
            .zip(measured)
            .and_then(|(hook, rtt)| hook(peer, rtt))
        {
            self.input(now, Input::Command(command), actions);
        }
    }

    /// Turns the protocol's outputs into actions, in order.
    fn flush(&mut self, actions: &mut Vec<Action>) {
        for output in self.out.drain(..) {
            match output {
                Output::Send { to, msg } => {
                    let channel = msg.channel();
                    let control = P::is_control(&msg);
                    let Some(spec) = self.channels.get(channel) else {
                        warn!(protocol = %P::ID, channel, "message for a channel the protocol does not list");
                        continue;
                    };
                    let mut bytes = Vec::new();
                    match msg.encode_to(&mut bytes) {
                        Ok(()) if bytes.len() <= spec.max_message_size => {
                            // Encoding grows the buffer by doubling, so up to half of it is spare; a
                            // queued message is charged to the send budgets by its capacity, and the
                            // spare half would let a peer that never reads hold twice its budget.
                            bytes.shrink_to_fit();
                            actions.push(Action::Send {
                                to,
                                route: self.route_base + channel,
                                bytes,
                                control,
                            });
                        }
                        Ok(()) => {
                            // The protocol broke its own bound; the peer would refuse the frame anyway.
                            warn!(protocol = %spec.id, size = bytes.len(), max = spec.max_message_size, "message over the protocol's maximum not sent");
                            self.metrics.dropped(DropReason::WriteFailed);
                        }
                        Err(err) => warn!(protocol = %spec.id, %err, "message not encodable, not sent"),
                    }
                }
                Output::Emit(event) => match self.events.try_send(event) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        self.metrics.event_drops.inc();
                        debug!(protocol = %P::ID, "event queue full: event dropped");
                    }
                    // Nobody listens: the application dropped its `Events`.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                },
                Output::Schedule { after, timer } => {
                    let key = self.next_timer;
                    self.next_timer += 1;
                    self.timers.insert(key, timer);
                    actions.push(Action::Schedule {
                        after,
                        slot: self.index,
                        key,
                    });
                }
                Output::Dial(peer) => actions.push(Action::Dial {
                    peer,
                    slot: Some(self.index),
                }),
                Output::Disconnect(peer) => actions.push(Action::Release {
                    peer,
                    slot: self.index,
                }),
                Output::Protect { peer, protect } => actions.push(Action::Protect {
                    peer,
                    slot: self.index,
                    protect,
                }),
                Output::Dropped { peer, reason } => {
                    debug!(protocol = %P::ID, %peer, %reason, "dropped");
                    self.metrics.dropped(reason);
                }
            }
        }
    }
}

impl<P> Slot for Driven<P>
where
    P: Protocol + Send + 'static,
    P::Command: Send + 'static,
    P::Event: Send + 'static,
    P::Timer: Send + 'static,
{
    fn message(
        &mut self,
        now: Instant,
        from: PeerId,
        channel: usize,
        bytes: &[u8],
        actions: &mut Vec<Action>,
    ) -> Result<(), DecodeError> {
        self.charged(|s| {
            let msg = P::Message::decode_from(channel, bytes)?;
            s.input(now, Input::Message { from, msg }, actions);
            Ok(())
        })
    }

    fn peer_up(
        &mut self,
        now: Instant,
        peer: PeerId,
        link: (SocketAddr, Duration),
        actions: &mut Vec<Action>,
    ) {
        self.charged(|s| {
            s.link(now, peer, link, actions);
            s.input(now, Input::PeerUp(peer), actions);
        });
    }

    fn link_changed(
        &mut self,
        now: Instant,
        peer: PeerId,
        link: (SocketAddr, Duration),
        actions: &mut Vec<Action>,
    ) {
        self.charged(|s| s.link(now, peer, link, actions));
    }

    fn peer_down(&mut self, now: Instant, peer: PeerId, actions: &mut Vec<Action>) {
        self.charged(|s| s.input(now, Input::PeerDown(peer), actions));
    }

    fn undelivered(
        &mut self,
        now: Instant,
        to: PeerId,
        channel: usize,
        bytes: &[u8],
        reason: DropReason,
        actions: &mut Vec<Action>,
    ) {
        self.charged(|s| {
            // The bytes are our own encoding, so they decode; the message is rebuilt only on a drop,
            // rather than kept beside every queued frame.
            let Ok(msg) = P::Message::decode_from(channel, bytes) else {
                return;
            };
            s.state.undelivered(now, to, msg, reason, &mut s.out);
            s.flush(actions);
        });
    }

    fn timer(&mut self, now: Instant, key: u64, actions: &mut Vec<Action>) {
        if let Some(timer) = self.timers.remove(&key) {
            self.charged(|s| s.input(now, Input::Timer(timer), actions));
        }
    }

    fn call(&mut self, now: Instant, call: AnyCall, actions: &mut Vec<Action>) {
        let Ok(call) = call.downcast::<Call<P>>() else {
            // Handles are typed by their protocol, so this cannot come from a `Handle<P>`.
            warn!(protocol = %P::ID, "call of the wrong type ignored");
            return;
        };
        self.charged(|s| match *call {
            Call::Command(command) => s.input(now, Input::Command(command), actions),
            Call::With(with) => {
                with(&mut s.state, now, &mut s.out);
                s.flush(actions);
            }
        });
    }

    fn address_of(&self, peer: &PeerId) -> Option<SocketAddr> {
        self.hooks
            .address_of
            .and_then(|resolve| resolve(&self.state, peer))
    }
}
