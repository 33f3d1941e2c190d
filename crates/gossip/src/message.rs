//! The wire types: what gossip peers send each other. Every collection is bounded (ARCHITECTURE.md).

use std::fmt;
use std::net::SocketAddr;

use meshwork_identity::{Hash, Keypair, Namespace, PeerId, Signature, VerifyError};
use meshwork_wire::{BoundedBytes, BoundedVec};
use serde::{Deserialize, Serialize};

/// The largest payload any gossip message carries, in bytes. Topics may set a smaller limit.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// The most message ids one `IHave` announces.
pub const MAX_IHAVE: usize = 64;
/// The most peers one `Shuffle` or `ShuffleReply` carries.
pub const MAX_SHUFFLE: usize = 16;
/// The namespace of the origin's signature on every broadcast message.
pub const MESSAGE_NAMESPACE: Namespace = Namespace::new(b"meshwork/gossip/message/2");

/// The bytes of a [`TopicId`].
pub const TOPIC_ID_LEN: usize = 16;

/// A topic, named by the first [`TOPIC_ID_LEN`] bytes of the blake3 hash of its name.
///
/// Every copy of a message carries its topic, so its length is paid on every link a message
/// crosses: 16 bytes, as [`MessageId`] (whose length says why that is enough). A topic is open to
/// every publisher, so two names that share an id give their finder nothing it could not have by
/// publishing on the topic itself.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicId(pub [u8; TOPIC_ID_LEN]);

impl TopicId {
    /// The topic with this human-readable name.
    pub fn from_name(name: &str) -> Self {
        Self::from_hash(&Hash::derive("meshwork-gossip topic v1", name.as_bytes()))
    }

    /// The topic whose name hashes to `hash` (its first [`TOPIC_ID_LEN`] bytes).
    pub fn from_hash(hash: &Hash) -> Self {
        Self(prefix(hash))
    }
}

/// The first `N` bytes of a hash: a topic's or a message's id.
fn prefix<const N: usize>(hash: &Hash) -> [u8; N] {
    prefix_of(hash.as_bytes())
}

/// The first `N` bytes of `bytes` (at least `N` long: a hash or a peer id).
fn prefix_of<const N: usize>(bytes: &[u8; 32]) -> [u8; N] {
    let mut id = [0; N];
    id.copy_from_slice(&bytes[..N]);
    id
}

/// Twelve hex digits: plenty to tell ids apart in logs (as `Hash`'s `Debug`).
fn short_hex(bytes: &[u8]) -> String {
    bytes[..6].iter().map(|byte| format!("{byte:02x}")).collect()
}

impl fmt::Debug for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "topic:{}", short_hex(&self.0))
    }
}

/// The bytes of a [`MessageId`].
pub const MESSAGE_ID_LEN: usize = 16;

/// A broadcast message's id: the first [`MESSAGE_ID_LEN`] bytes of the blake3 hash of its signed
/// content (origin, topic, sequence, payload).
///
/// Sixteen bytes, not the hash's 32, because ids are most of what lazy push sends: an `IHave` names
/// each message it announces, a `Graft` and a `Decline` name one, and on a tree every node announces
/// each message to its lazy neighbours (at 50 nodes publishing 256-byte messages, announcements were
/// a sixth of gossip's wire bytes). Ethereum's consensus layer cuts its gossip ids to 20 bytes for
/// the same reason. Two messages share an id only if their signer makes them collide, about 2⁶⁴
/// hashes of work (a birthday search); finding a second message for someone else's id takes 2¹²⁸.
/// A collision costs only its maker: each node keeps the one of the pair it got first, as with
/// equivocation by any other means, which gossip cannot prevent either.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageId(pub [u8; MESSAGE_ID_LEN]);

impl MessageId {
    /// The id of content whose blake3 hash is `hash` (its first [`MESSAGE_ID_LEN`] bytes).
    pub fn from_hash(hash: &Hash) -> Self {
        Self(prefix(hash))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "msg:{}", short_hex(&self.0))
    }
}

/// A message published on a topic, signed by its origin.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GossipMessage {
    /// The peer that published it.
    pub origin: PeerId,
    /// The topic.
    pub topic: TopicId,
    /// The origin's sequence number, which makes equal payloads distinct messages.
    pub seq: u64,
    /// The application's bytes.
    pub payload: BoundedBytes<MAX_PAYLOAD>,
    /// The origin's signature over the content, in [`MESSAGE_NAMESPACE`].
    pub signature: Signature,
}

impl fmt::Debug for GossipMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GossipMessage")
            .field("origin", &self.origin)
            .field("topic", &self.topic)
            .field("seq", &self.seq)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// The signed bytes: fixed-size fields first, the payload last, so the layout is unambiguous.
fn content(origin: &PeerId, topic: &TopicId, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(32 + TOPIC_ID_LEN + 8 + payload.len());
    bytes.extend_from_slice(origin.as_bytes());
    bytes.extend_from_slice(&topic.0);
    bytes.extend_from_slice(&seq.to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

impl GossipMessage {
    /// Builds and signs a message as `keypair`'s peer.
    pub fn sign(keypair: &Keypair, topic: TopicId, seq: u64, payload: BoundedBytes<MAX_PAYLOAD>) -> Self {
        let origin = keypair.peer_id();
        let signature = keypair.sign(MESSAGE_NAMESPACE, &content(&origin, &topic, seq, &payload));
        Self {
            origin,
            topic,
            seq,
            payload,
            signature,
        }
    }

    /// The message id (blake3 of the signed content; the signature is not part of it).
    pub fn id(&self) -> MessageId {
        MessageId::from_hash(&Hash::digest(&content(
            &self.origin,
            &self.topic,
            self.seq,
            &self.payload,
        )))
    }

    /// Checks the origin's signature.
    pub fn verify(&self) -> Result<(), VerifyError> {
        self.origin
            .verify(MESSAGE_NAMESPACE, &self.signed_content(), &self.signature)
    }

    /// The bytes the origin signed, in [`MESSAGE_NAMESPACE`] (for a batch check).
    pub(crate) fn signed_content(&self) -> Vec<u8> {
        content(&self.origin, &self.topic, self.seq, &self.payload)
    }
}

/// A peer named in a membership message, with the address it can be dialled at if the sender knows
/// one. Every place a membership message names a peer carries one of these, so a node can dial the
/// peers it learns of without any other source of addresses. The address is what the sender observed
/// on a live connection (or was told); the receiver treats it as a claim (`hyparview/addresses.rs`).
/// Its encoding is bounded: a tag, at most 16 address bytes and a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerEntry {
    /// The peer.
    pub id: PeerId,
    /// Where it accepts connections, if the sender knows.
    pub addr: Option<SocketAddr>,
}

impl PeerEntry {
    /// A peer whose address the sender does not know (the simulator, or a node not told any).
    pub const fn id_only(id: PeerId) -> Self {
        Self { id, addr: None }
    }
}

/// HyParView membership messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipMessage {
    /// "Take me into your active view": sent by a new node to its contact.
    Join,
    /// A random walk announcing `joiner`, started by the contact.
    ForwardJoin {
        /// The joining peer, with the address the contact observed its connection come from.
        joiner: PeerEntry,
        /// Hops left (starts at the active random walk length).
        ttl: u8,
    },
    /// "Take me into your active view." High priority must be accepted (the sender has no neighbours, or
    /// fewer than half its active view).
    Neighbor {
        /// True if the sender is short: an empty active view, or two slots free or more.
        high_priority: bool,
    },
    /// The answer to [`MembershipMessage::Neighbor`].
    NeighborReply {
        /// True if the sender added us to its active view.
        accepted: bool,
        /// With a refusal: a peer that asked the sender for a slot shortly before and was refused too,
        /// so it has room. In a settled overlay the few nodes with a free slot are refused by every
        /// full node they ask and rarely know each other; a full node that both ask pairs them.
        alternative: Option<PeerEntry>,
    },
    /// "You left my active view"; the receiver moves the sender to its passive view and closes.
    Disconnect {
        /// The peer that took the receiver's slot, if any. It has just been admitted (a joiner, or a node
        /// with few neighbours), so it most likely has room: the receiver asks it first, which keeps the
        /// overlay connected across evictions (the receiver stays two hops from the sender, through it).
        alternative: Option<PeerEntry>,
    },
    /// A random walk that exchanges samples of views.
    Shuffle {
        /// The peer that started it (and gets the reply). The origin does not know its own address: the
        /// first hop fills in the address it observed the origin's connection come from.
        origin: PeerEntry,
        /// Hops left.
        ttl: u8,
        /// A sample of the origin's views.
        peers: BoundedVec<PeerEntry, MAX_SHUFFLE>,
        /// The origin's random number for this walk, which the reply carries back: only the nodes
        /// on the walk know it, so a reply from anyone else is told apart and dropped.
        nonce: u64,
    },
    /// The answer to a shuffle: a sample of the passive view of the walk's last node.
    ShuffleReply {
        /// The sample.
        peers: BoundedVec<PeerEntry, MAX_SHUFFLE>,
        /// The walk's [`MembershipMessage::Shuffle::nonce`].
        nonce: u64,
    },
}

/// Which tree a message follows, as an announcement names it: the first four bytes of the tree's
/// origin (the message's own origin, or the one whose tree it borrowed). An announced message is
/// known only by its id until it arrives, and the id says nothing of its origin; the tag lets a node
/// whose parent on that tree is alive wait for the parent's copy rather than graft a second one, and
/// one whose parent left graft at once (`plumtree/lazy.rs`). Four bytes, not the 32 of the origin:
/// two trees a node holds rarely share a tag (a full table of 16,384 has a pair in about 3% of
/// nodes; two bytes would leave a fifth of the trees sharing one). When two do, the tag stands for
/// the one relayed last, and a message of the other may wait a graft wait longer for the wrong
/// parent or be grafted early: a delay or a duplicate, never a loss. Announcers that name different tags
/// for one message make the node ignore them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TreeTag(pub [u8; 4]);

impl TreeTag {
    /// The tag of `origin`'s tree.
    pub fn of(origin: &PeerId) -> Self {
        let bytes = origin.as_bytes();
        Self([bytes[0], bytes[1], bytes[2], bytes[3]])
    }
}

/// The tree a borrowed copy follows ([`TreeMessage::Borrowed`]): the first eight bytes of the tree's
/// origin, not its 32. A receiver finds the tree by the first four (its [`TreeTag`], as for an
/// announcement) and follows it only if the other four match as well; otherwise the copy is its own
/// origin's there. The four more bytes matter because a borrowed copy, unlike an announcement, is
/// pushed along the tree it names, and a duplicate of one counts against its sender: a tag that
/// stood for another tree (two trees sharing one, or a key ground to share one, about 2³² tries)
/// would have an honest node push copies its neighbours hold. Eight bytes take 2⁶⁴ tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TreeRef(pub [u8; 8]);

impl TreeRef {
    /// The name of `origin`'s tree.
    pub fn of(origin: &PeerId) -> Self {
        Self(prefix_of(origin.as_bytes()))
    }

    /// The tag under which the tree is found.
    pub fn tag(&self) -> TreeTag {
        TreeTag([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    /// Whether this names `origin`'s tree.
    pub fn names(&self, origin: &PeerId) -> bool {
        *self == Self::of(origin)
    }
}

/// A message id announced lazily, with the hop count at which the announcer received it and the tree
/// it came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// The message id.
    pub id: MessageId,
    /// Links the message crossed to reach the announcer.
    pub hops: u16,
    /// The tree the message follows.
    pub tree: TreeTag,
}

/// Plumtree broadcast messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TreeMessage {
    /// Eager push of a full message along a tree link.
    Gossip {
        /// The signed message.
        message: GossipMessage,
        /// Links crossed so far (at the receiver, including this one).
        hops: u16,
    },
    /// Lazy push: ids of messages the sender has, for peers off the tree.
    IHave {
        /// The announced ids.
        ids: BoundedVec<Announcement, MAX_IHAVE>,
    },
    /// "Send me this message (you announced it and it did not come): our link becomes a tree link for its
    /// origin."
    Graft {
        /// The missing message.
        id: MessageId,
    },
    /// "I got a duplicate of this origin's message from you: our link is no longer on its tree."
    Prune {
        /// The origin whose tree the link leaves (every origin has its own tree).
        origin: PeerId,
    },
    /// "You announced this origin's messages much sooner than my tree delivers them: our link joins its
    /// tree" (the optimisation of Plumtree §3.8, a graft without a message; the old tree link is pruned).
    Shortcut {
        /// The origin whose tree the link joins.
        origin: PeerId,
    },
    /// "I got a duplicate from you of a message whose origin has no tree of its own here: our link
    /// leaves the shared tree" ([`Trees::Shared`](crate::Trees::Shared)).
    PruneShared,
    /// "You grafted this message from me and it is not coming": the answer to a `Graft` that we cannot
    /// send now (its bytes are over your answer budget, our send queue to you dropped the message, or we
    /// no longer hold it). The grafter asks its next announcer at once and does not hold us to the
    /// promise of our `IHave`. Like an `eth/68` node's answer that leaves out the transactions it cannot
    /// serve, it turns a timeout into a quick "no".
    Decline {
        /// The message grafted.
        id: MessageId,
    },
    /// Eager push of a message along the tree of another origin: the message's own origin had no tree
    /// yet and borrowed the tree of a nearby node that publishes on its own
    /// ([`Trees::Borrow`](crate::Trees::Borrow)). Receivers treat it as a message of the tree `tree`
    /// names for every tree decision (which links push it, what a duplicate prunes, what a graft
    /// mends) and as a message of its signer for everything else (its id, its signature, the
    /// application). A name that stands for no tree at the receiver (the tree was forgotten there,
    /// never formed, or shares its tag with the one relayed last) makes the message one of its own
    /// origin's there, as a new origin's first message is: it floods onward from that node, and its
    /// origin lends nothing. So naming a tree gains a sender nothing it could not have by publishing.
    /// Eight bytes of the tree's origin ([`TreeRef`]), not 32, since most messages of a network of
    /// new origins are borrowed.
    Borrowed {
        /// The tree the message follows.
        tree: TreeRef,
        /// The signed message.
        message: GossipMessage,
        /// Links crossed so far (at the receiver, including this one).
        hops: u16,
    },
}

impl TreeMessage {
    /// Whether this carries data (a full message, or an `IHave` announcing some) rather than steers
    /// the tree: a dropped one is a message or a promise not sent, never an answer someone waits for.
    pub fn is_data(&self) -> bool {
        matches!(
            self,
            Self::Gossip { .. } | Self::Borrowed { .. } | Self::IHave { .. }
        )
    }
}

/// Everything that crosses the wire on `/meshwork/gossip/4`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Membership (HyParView).
    Membership(MembershipMessage),
    /// Broadcast (Plumtree).
    Tree(TreeMessage),
}
