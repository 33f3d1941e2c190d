//! What the application and [`Gossip`](crate::Gossip) say to each other: commands, events, the verdict
//! on a message, topic options, and the state machine's timers.

use std::net::SocketAddr;

use meshwork_wire::PeerId;

use crate::error::PublishError;
use crate::message::{GossipMessage, MAX_PAYLOAD, MessageId, TopicId};

/// The application's verdict on a received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: deliver it and forward it.
    Accept,
    /// Invalid: drop it and count it against the peer that sent it.
    Reject,
    /// Not worth forwarding, but nobody's fault (e.g. too old): drop it quietly.
    Ignore,
}

/// How a node takes part in a topic: [`TopicOptions::default`] and the `with_` methods. Non-exhaustive,
/// so that an option added later breaks no caller.
///
/// ```
/// use meshwork_gossip::TopicOptions;
///
/// let options = TopicOptions::default().with_validation().with_max_payload(1024);
/// assert!(options.validate && !options.batch_verify);
/// assert_eq!(options.max_payload, 1024);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicOptions {
    /// The largest payload accepted or published on the topic (at most [`MAX_PAYLOAD`]).
    pub max_payload: usize,
    /// If true, every new message waits for [`Command::Validated`] after [`Event::Validate`]; if false,
    /// messages with a good signature are accepted at once.
    pub validate: bool,
    /// If true, origin signatures of messages that come close together are checked in batches of up
    /// to [`Config::verify_batch`](crate::Config::verify_batch), a message waiting at most
    /// [`Config::verify_wait`](crate::Config::verify_wait); one that comes alone is checked at once.
    /// For topics of many small messages (a coin's transactions), where the checks are most of the
    /// CPU; off by default.
    pub batch_verify: bool,
}

impl Default for TopicOptions {
    fn default() -> Self {
        Self {
            max_payload: MAX_PAYLOAD,
            validate: false,
            batch_verify: false,
        }
    }
}

impl TopicOptions {
    /// With a smaller payload limit ([`TopicOptions::max_payload`]).
    #[must_use]
    pub fn with_max_payload(self, max_payload: usize) -> Self {
        Self { max_payload, ..self }
    }

    /// With the application's verdict awaited for every new message ([`TopicOptions::validate`]).
    #[must_use]
    pub fn with_validation(self) -> Self {
        self.with_validate(true)
    }

    /// With the application's verdict awaited (`true`) or not ([`TopicOptions::validate`]).
    #[must_use]
    pub fn with_validate(self, validate: bool) -> Self {
        Self { validate, ..self }
    }

    /// With origin signatures checked in batches under load, or not ([`TopicOptions::batch_verify`]).
    #[must_use]
    pub fn with_batch_verify(self, batch_verify: bool) -> Self {
        Self { batch_verify, ..self }
    }
}

/// What the application asks of [`Gossip`](crate::Gossip).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Join the overlay through these contacts.
    Join(Vec<PeerId>),
    /// Receive and relay messages on a topic.
    Subscribe(TopicId, TopicOptions),
    /// Stop receiving and relaying a topic.
    Unsubscribe(TopicId),
    /// Publish a payload on a subscribed topic.
    Publish(TopicId, Vec<u8>),
    /// The verdict on a message announced by [`Event::Validate`].
    Validated(MessageId, Verdict),
    /// A message `peer` relayed, which gossip delivered or whose verdict was already given, turned out
    /// invalid later: charged as a rejected one ([`Verdict::Reject`]). For what the application can
    /// judge only after the fact, such as a coin's orphan transaction, whose signatures are checked
    /// when its parent comes.
    Blame(PeerId),
    /// The driver observed `peer`'s connection coming from `addr` (send it with every `PeerUp`, before
    /// it). The per-prefix limits of [`AdmissionConfig`](crate::AdmissionConfig) count peers by its IP
    /// (a peer whose address was never reported is under no prefix limit), and gossip names the peer
    /// with it to others, who dial it there: where one socket dials and listens (our QUIC transport),
    /// the source address of a connection is where the peer accepts them. It replaces any address a
    /// peer told us ([`Gossip::address_of`](crate::Gossip::address_of)).
    PeerAddress {
        /// The peer.
        peer: PeerId,
        /// The address (IP and port) its connection comes from.
        addr: SocketAddr,
    },
    /// The driver measured a round trip of `rtt` to `peer` (the node runtime sends it when a
    /// connection comes up, from the QUIC handshake). Plumtree learns from these, as from its own
    /// grafts, how long to wait for an announced message before grafting it
    /// ([`Config::graft_timeout`](crate::Config::graft_timeout)), and with
    /// [`Trees::Borrow`](crate::Trees::Borrow) a node borrows the tree of its nearest lender.
    PeerRoundTrip {
        /// The peer.
        peer: PeerId,
        /// The measured round trip.
        rtt: std::time::Duration,
    },
}

/// What [`Gossip`](crate::Gossip) tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An accepted message, delivered once (also for our own publications, with `hops == 0`).
    Delivered {
        /// Its id.
        id: MessageId,
        /// The signed message.
        message: GossipMessage,
        /// Links it crossed on the first path that reached this node.
        hops: u16,
    },
    /// A new message on a validating topic waits for [`Command::Validated`]. It is not forwarded before.
    Validate {
        /// Its id.
        id: MessageId,
        /// The signed message (signature already checked).
        message: GossipMessage,
        /// The peer it came from.
        from: PeerId,
    },
    /// Our own publication went out with this id.
    Published {
        /// The id.
        id: MessageId,
        /// The topic.
        topic: TopicId,
    },
    /// A local publication was refused.
    PublishFailed(PublishError),
    /// A peer entered the active view.
    NeighborUp(PeerId),
    /// A peer left the active view.
    NeighborDown(PeerId),
    /// A peer's score fell to the ban threshold: it was removed from the views and released (gossip's
    /// hold on the connection only), and gossip refuses it until the ban expires. Why, and until when:
    /// [`Gossip::ban_of`](crate::Gossip::ban_of); how many: [`GossipStats::bans`](crate::GossipStats).
    PeerBanned(PeerId),
}

/// A timer of the gossip state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Timer {
    /// A repair round ([`Config::repair_interval`](crate::Config::repair_interval)): active-view
    /// refill, and a shuffle walk when one is due.
    Shuffle,
    /// Send batched `IHave`s.
    FlushIHave,
    /// An announced message may be missing: graft it.
    Graft(MessageId),
    /// A graft's announcer had until now to send the message: if it has not, it broke its promise.
    Promise {
        /// The announcer grafted.
        peer: PeerId,
        /// The message.
        id: MessageId,
    },
    /// Periodic expiry of the seen cache.
    Sweep,
    /// Messages waiting for a batch check of their signatures have waited long enough.
    Verify,
}
