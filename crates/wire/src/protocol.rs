//! The sans-IO protocol contract (ARCHITECTURE.md).
//!
//! A [`Protocol`] is a state machine with no IO. Its driver (the simulator, or the tokio node runtime)
//! owns the sockets, the clock and the timers; it feeds the protocol [`Input`]s together with `now`, and
//! carries out the [`Output`]s the protocol pushes. Randomness is the protocol's own: an RNG it owns,
//! seeded by its constructor, so one seed gives one run.
//!
//! ```
//! use std::time::Duration;
//! use meshwork_wire::{Input, Instant, Output, PeerId, Protocol, ProtocolId};
//!
//! /// Answers every `Ping(n)` with `Pong(n)`, and pings a new peer once it connects.
//! #[derive(Default)]
//! struct PingPong { pongs: u64 }
//!
//! #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
//! enum Msg { Ping(u64), Pong(u64) }
//!
//! impl Protocol for PingPong {
//!     type Message = Msg;
//!     type Command = ();
//!     type Event = u64;
//!     type Timer = PeerId;
//!     const ID: ProtocolId = ProtocolId::new("/example/ping/1");
//!     const MAX_MESSAGE_SIZE: usize = 16;
//!
//!     fn handle(&mut self, _now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
//!         match input {
//!             Input::PeerUp(peer) => out.push(Output::Schedule { after: Duration::from_millis(10), timer: peer }),
//!             Input::Timer(peer) => out.push(Output::Send { to: peer, msg: Msg::Ping(1) }),
//!             Input::Message { from, msg: Msg::Ping(n) } => out.push(Output::Send { to: from, msg: Msg::Pong(n) }),
//!             Input::Message { msg: Msg::Pong(n), .. } => { self.pongs += 1; out.push(Output::Emit(n)) }
//!             Input::Command(()) | Input::PeerDown(_) => {}
//!         }
//!     }
//! }
//! ```

use std::fmt;
use std::time::Duration;

use crate::{Channel, DropReason, Instant, PeerId, ProtocolId, WireMessage};

/// A pure protocol state machine.
pub trait Protocol {
    /// What crosses the wire to and from peers. Decoding must be bounded (see [`crate::bounded`]). Any
    /// serde type is a [`WireMessage`] on one channel; a composite's is built by
    /// [`wire_enum!`](crate::wire_enum).
    type Message: WireMessage;
    /// What the application asks of the protocol (publish, look up, ...).
    type Command: fmt::Debug;
    /// What the protocol tells the application (a message arrived, a lookup finished, ...).
    type Event: fmt::Debug;
    /// A timer the protocol asked for, handed back when it fires. Timers are data, so the simulator can
    /// fire them in virtual time.
    type Timer: Clone + fmt::Debug;

    /// The protocol's versioned id, which the transport uses to route streams to it. A composite's id
    /// names it in metrics and logs; its streams are its children's ([`Protocol::channels`]).
    const ID: ProtocolId;
    /// The largest encoded [`Protocol::Message`] this protocol sends or accepts, in bytes. Frames that
    /// announce more are refused before anything is allocated. A composite gives the largest of its
    /// channels'; each channel is still checked against its own.
    const MAX_MESSAGE_SIZE: usize;

    /// The channels this protocol speaks, each with its own id and maximum message size; a message's
    /// [`WireMessage::channel`] indexes this list. A plain protocol speaks one, its own `ID` (this
    /// default); a composite lists its children's, in the order of its message enum
    /// ([`compose`](crate::compose)).
    fn channels() -> Vec<Channel> {
        vec![Channel::of::<Self>()]
    }

    /// Handles one input at time `now`, pushing the resulting actions onto `out` in the order they should
    /// be carried out. It must not block, and must not clear `out` (the driver may batch several calls).
    fn handle(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>);

    /// Whether `msg` steers the protocol rather than carries its data: small messages whose loss
    /// costs more than their bytes (gossip's grafts, prunes and declines, its membership messages). A
    /// driver that bounds its send queues keeps a reserve for them (the node runtime's
    /// `NodeConfig::control_queue_per_peer`), so a queue that data has filled still takes them. Mark
    /// only small messages, and only as many as the protocol sends per data message or fewer.
    ///
    /// The default is false: everything is data. A composite asks the child whose message it is.
    fn is_control(msg: &Self::Message) -> bool {
        let _ = msg;
        false
    }

    /// The driver could not send `msg` to `to`, for `reason` (most often
    /// [`DropReason::QueueFull`]: the peer reads slower than we send, and its send queue or budget is
    /// full; or [`DropReason::BudgetSpent`]: the node's budget across peers is spent, by others). The
    /// driver has counted the drop already; this tells the protocol, so one that promised
    /// the peer an answer can say it will not come rather than leave the peer waiting for it (gossip
    /// declines a graft whose answer was dropped, and the grafter asks another announcer at once,
    /// without blaming us). Drivers that never drop a send (the simulator) never call it.
    ///
    /// The default does nothing. A composite forwards it to the child whose message it is.
    fn undelivered(
        &mut self,
        now: Instant,
        to: PeerId,
        msg: Self::Message,
        reason: DropReason,
        out: &mut Vec<Output<Self>>,
    ) {
        let _ = (now, to, msg, reason, out);
    }
}

/// Something that happened to a protocol.
pub enum Input<P: Protocol + ?Sized> {
    /// A message arrived from a peer (already decoded within the protocol's bounds).
    Message {
        /// The authenticated sender.
        from: PeerId,
        /// The message.
        msg: P::Message,
    },
    /// The application asks for something.
    Command(P::Command),
    /// A timer the protocol scheduled has fired.
    Timer(P::Timer),
    /// A connection to this peer is up: messages can now be sent to it.
    PeerUp(PeerId),
    /// The connection to this peer is gone (closed, failed, or the peer crashed).
    PeerDown(PeerId),
}

/// Something a protocol asks its driver to do.
pub enum Output<P: Protocol + ?Sized> {
    /// Send `msg` to `to`. If there is no connection the driver drops it (and may report `PeerDown`).
    Send {
        /// The peer.
        to: PeerId,
        /// The message.
        msg: P::Message,
    },
    /// Tell the application something.
    Emit(P::Event),
    /// Hand `timer` back as [`Input::Timer`] once `after` has passed.
    Schedule {
        /// How long from now.
        after: Duration,
        /// What to hand back.
        timer: P::Timer,
    },
    /// Connect to this peer (the driver knows or finds its address); [`Input::PeerUp`] follows on success.
    Dial(PeerId),
    /// Close the connection to this peer.
    Disconnect(PeerId),
    /// Keep the connection to `peer` open (`protect: true`), or stop keeping it (`false`). A driver
    /// that manages connections (the node runtime's connection manager) never closes a protected
    /// connection to trim its count or because it is idle; unprotected ones may be closed, and the
    /// protocol hears [`Input::PeerDown`]. Protect what the protocol needs right now (gossip's active
    /// view, a peer a request waits on) and bound it; a peer may be protected before it is connected.
    /// Drivers without connection management (the simulator) ignore it.
    Protect {
        /// The peer.
        peer: PeerId,
        /// Whether to keep it.
        protect: bool,
    },
    /// Something from (or for) `peer` was refused: the driver counts it by `reason` and logs the peer.
    /// Nothing else happens; a protocol that also wants the peer gone pushes
    /// [`Output::Disconnect`].
    Dropped {
        /// The peer whose message, request or entry was dropped.
        peer: PeerId,
        /// Why.
        reason: DropReason,
    },
}

impl<P: Protocol + ?Sized> fmt::Debug for Input<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Message { from, msg } => f
                .debug_struct("Message")
                .field("from", from)
                .field("msg", msg)
                .finish(),
            Self::Command(command) => f.debug_tuple("Command").field(command).finish(),
            Self::Timer(timer) => f.debug_tuple("Timer").field(timer).finish(),
            Self::PeerUp(peer) => f.debug_tuple("PeerUp").field(peer).finish(),
            Self::PeerDown(peer) => f.debug_tuple("PeerDown").field(peer).finish(),
        }
    }
}

impl<P: Protocol + ?Sized> fmt::Debug for Output<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Send { to, msg } => f.debug_struct("Send").field("to", to).field("msg", msg).finish(),
            Self::Emit(event) => f.debug_tuple("Emit").field(event).finish(),
            Self::Schedule { after, timer } => f
                .debug_struct("Schedule")
                .field("after", after)
                .field("timer", timer)
                .finish(),
            Self::Dial(peer) => f.debug_tuple("Dial").field(peer).finish(),
            Self::Disconnect(peer) => f.debug_tuple("Disconnect").field(peer).finish(),
            Self::Protect { peer, protect } => f
                .debug_struct("Protect")
                .field("peer", peer)
                .field("protect", protect)
                .finish(),
            Self::Dropped { peer, reason } => f
                .debug_struct("Dropped")
                .field("peer", peer)
                .field("reason", reason)
                .finish(),
        }
    }
}

impl<P: Protocol + ?Sized> Clone for Input<P>
where
    P::Command: Clone,
{
    fn clone(&self) -> Self {
        match self {
            Self::Message { from, msg } => Self::Message {
                from: *from,
                msg: msg.clone(),
            },
            Self::Command(command) => Self::Command(command.clone()),
            Self::Timer(timer) => Self::Timer(timer.clone()),
            Self::PeerUp(peer) => Self::PeerUp(*peer),
            Self::PeerDown(peer) => Self::PeerDown(*peer),
        }
    }
}
