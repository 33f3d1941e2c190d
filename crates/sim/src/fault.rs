//! Faults: partitions, crashes, churn, and adversarial nodes.

use std::fmt;
use std::time::Duration;

use meshwork_wire::{Instant, PeerId, Protocol};
use rand_chacha::ChaCha8Rng;

use crate::NodeId;

/// A change to the network or to a node, applied at a chosen virtual time with
/// [`crate::Sim::schedule_control`] (or at once with [`crate::Sim::apply_control`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Split the network: each listed group can only reach itself; nodes in no group form one more group.
    /// Connections stay up (a silent partition, as when a route fails), but every message across a cut is
    /// dropped, including messages already in flight, and dials across it fail.
    Partition(Vec<Vec<NodeId>>),
    /// Undo any partition: every node can reach every other again.
    Heal,
    /// The node crashes: its state is dropped, its pending timers and messages are discarded, and each
    /// of its peers is told `PeerDown` one link latency later.
    Crash(NodeId),
    /// A crashed node comes back with a fresh state from the restart factory
    /// ([`crate::Sim::set_restart`]) and connects to a few random live nodes.
    Restart(NodeId),
    /// Connect two nodes now (both get `PeerUp`), as if one had dialled the other.
    Connect(NodeId, NodeId),
    /// Close the connection between two nodes (both get `PeerDown`).
    Disconnect(NodeId, NodeId),
}

/// Node churn: nodes leave (crash) at random and come back after `downtime`.
///
/// Departures form a Poisson process of `leaves_per_sec` over `start..end`; each picks a node uniformly at
/// random (a node already down is left alone). Every departure schedules a [`Control::Restart`]
/// `downtime` later, so a restart factory must be set.
#[derive(Clone, Debug, PartialEq)]
pub struct Churn {
    /// When churn begins.
    pub start: Instant,
    /// When it stops (no departure after this; restarts may follow).
    pub end: Instant,
    /// Mean departures per second of virtual time, over the whole network.
    pub leaves_per_sec: f64,
    /// How long a node stays away before it restarts.
    pub downtime: Duration,
}

/// A predicate choosing which outgoing messages an adversary drops: `(recipient, message) -> drop?`.
pub type DropFilter<P> = Box<dyn FnMut(&PeerId, &<P as Protocol>::Message) -> bool>;

/// A function that turns an outgoing message into another one (an equivocation, a lie), or into
/// `None`: bytes that do not decode, which the recipient counts as a decode failure and never sees.
pub type Corrupter<P> =
    Box<dyn FnMut(&PeerId, <P as Protocol>::Message, &mut ChaCha8Rng) -> Option<<P as Protocol>::Message>>;

/// How an adversarial node treats the messages its (honest) protocol state sends.
///
/// The node runs the normal protocol, so it stays connected and looks alive; the behaviour is applied to
/// each message on its way out, before the link model.
pub enum Behaviour<P: Protocol> {
    /// Drop everything it sends (a black hole).
    DropAll,
    /// Drop the messages the filter selects.
    DropIf(DropFilter<P>),
    /// Hold every message back this much longer.
    Delay(Duration),
    /// Send garbage: every message arrives as bytes that fail to decode (counted, then discarded).
    Garbage,
    /// Rewrite messages with a function (which may return `None` for garbage).
    Corrupt(Corrupter<P>),
}

impl<P: Protocol> fmt::Debug for Behaviour<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DropAll => f.write_str("DropAll"),
            Self::DropIf(_) => f.write_str("DropIf(..)"),
            Self::Delay(delay) => f.debug_tuple("Delay").field(delay).finish(),
            Self::Garbage => f.write_str("Garbage"),
            Self::Corrupt(_) => f.write_str("Corrupt(..)"),
        }
    }
}

/// What an adversary decided for one message.
pub(crate) enum Verdict<M> {
    Drop,
    Send {
        msg: M,
        extra_delay: Duration,
    },
    /// Bytes that will not decode; the original message, if still at hand, sizes them.
    Garbage(Option<M>),
}

impl<P: Protocol> Behaviour<P> {
    pub(crate) fn apply(
        &mut self,
        to: &PeerId,
        msg: P::Message,
        rng: &mut ChaCha8Rng,
    ) -> Verdict<P::Message> {
        match self {
            Self::DropAll => Verdict::Drop,
            Self::DropIf(filter) => {
                if filter(to, &msg) {
                    Verdict::Drop
                } else {
                    Verdict::Send {
                        msg,
                        extra_delay: Duration::ZERO,
                    }
                }
            }
            Self::Delay(delay) => Verdict::Send {
                msg,
                extra_delay: *delay,
            },
            Self::Garbage => Verdict::Garbage(Some(msg)),
            Self::Corrupt(corrupt) => match corrupt(to, msg, rng) {
                Some(msg) => Verdict::Send {
                    msg,
                    extra_delay: Duration::ZERO,
                },
                None => Verdict::Garbage(None),
            },
        }
    }
}
