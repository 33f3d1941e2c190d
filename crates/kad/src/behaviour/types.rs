//! What the application and the driver exchange with [`crate::Kademlia`].

use meshwork_identity::PeerId;

use super::stats::QueryStats;
use crate::message::RequestId;
use crate::{Address, Key, PeerInfo, QueryError, Record};

/// Names a query the application started, echoed in the query's [`Event`]: chosen by the application in
/// a [`Command`], or handed out by [`crate::PeerRouting`] and [`crate::ContentRouting`] (from
/// [`crate::AUTO_QUERY_IDS`] on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId(pub u64);

/// What the application asks of Kademlia.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Command {
    /// Join the network through `peers`: look up our own key, then refresh every bucket that lookup
    /// did not cover (see the crate docs, "The routing table"). Also starts
    /// the periodic bucket refresh. Answered by [`Event::Bootstrapped`]. If no peer answered (the
    /// table is still empty: the peers were down, or too busy to finish a handshake in time), Kademlia
    /// tries again through the same peers after 1 s, then 2 s, 4 s, … (at most a minute apart) until
    /// one answers; the event reports the first try.
    Bootstrap {
        /// Names the query.
        query: QueryId,
        /// Peers we know of; they enter the table once they answer.
        peers: Vec<PeerInfo>,
    },
    /// Find the `k` peers closest to `target`. Answered by [`Event::ClosestPeers`].
    FindNode {
        /// Names the query.
        query: QueryId,
        /// The key.
        target: Key,
    },
    /// Find one peer's address. Answered by [`Event::FoundPeer`] as soon as we hold a connection
    /// to the peer whose address the driver observed ([`Command::PeerAddress`]; at once if we hold
    /// one already), without waiting for its answer: the handshake proved it holds its key at that
    /// address. Otherwise the lookup ends as [`Command::FindNode`] does.
    FindPeer {
        /// Names the query.
        query: QueryId,
        /// The peer.
        peer: PeerId,
    },
    /// Sign `value` as a record under `key` and store it at the `k` closest peers; it is republished
    /// on a timer. The key is our own ([`Key::for_record`] with our id) or a shared name
    /// ([`Key::for_name`]); another's is refused at once with
    /// [`RecordError::ForeignKey`](crate::RecordError::ForeignKey). Answered by [`Event::PutValue`].
    /// With an empty routing table the answer is [`Event::Failed`] with
    /// [`QueryError::NoPeers`](crate::QueryError::NoPeers); the record is still kept in our own store
    /// and republished on its timer, so it spreads once peers are known.
    PutValue {
        /// Names the query.
        query: QueryId,
        /// The record key.
        key: Key,
        /// The value (at most [`crate::message::MAX_VALUE`] bytes).
        value: Vec<u8>,
    },
    /// Find the record under `key`. The lookup runs until [`crate::Config::value_quorum`] answers (3)
    /// carried a record, or until it converges, and counts them: the publisher the most peers answered
    /// for wins (the first met of a tie), and of its records the latest; one peer cannot serve a stale
    /// version or, under a shared name, its own record. A record
    /// of ours in our own store is the answer at once; another's that we store counts as one answer.
    /// Answered by [`Event::GetValue`].
    GetValue {
        /// Names the query.
        query: QueryId,
        /// The record key.
        key: Key,
    },
    /// Announce that we provide `key`, to the `k` closest peers; re-announced on a timer. Answered by
    /// [`Event::StartedProviding`].
    StartProviding {
        /// Names the query.
        query: QueryId,
        /// The provided key.
        key: Key,
    },
    /// Find providers of `key`. Answered by [`Event::GetProviders`].
    GetProviders {
        /// Names the query.
        query: QueryId,
        /// The provided key.
        key: Key,
    },
    /// From the driver: `peer` is connected from `addr` (the address the transport observed). This
    /// address, not what peers claim, is what the per-prefix limits count.
    PeerAddress {
        /// The peer.
        peer: PeerId,
        /// Its observed address. A relay circuit's virtual address
        /// ([`meshwork_wire::relayed::is_relayed`]) is not where the peer is: it withdraws what was
        /// observed before instead.
        addr: Address,
    },
}

impl Command {
    /// The id of the query this command starts; `None` for [`Command::PeerAddress`], which starts
    /// none.
    pub fn query(&self) -> Option<QueryId> {
        match self {
            Self::Bootstrap { query, .. }
            | Self::FindNode { query, .. }
            | Self::FindPeer { query, .. }
            | Self::PutValue { query, .. }
            | Self::GetValue { query, .. }
            | Self::StartProviding { query, .. }
            | Self::GetProviders { query, .. } => Some(*query),
            Self::PeerAddress { .. } => None,
        }
    }
}

/// What Kademlia tells the application. Every answer carries the [`QueryStats`] of its query.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// The bootstrap lookup finished.
    Bootstrapped {
        /// The query.
        query: QueryId,
        /// Peers in the routing table now.
        table_size: usize,
        /// What the query sent and how long it ran.
        stats: QueryStats,
    },
    /// A [`Command::FindNode`] finished.
    ClosestPeers {
        /// The query.
        query: QueryId,
        /// The key looked up.
        target: Key,
        /// The closest peers that answered, closest first. A peer we have not met comes with the
        /// address another peer named it with: a claim, not checked.
        peers: Vec<PeerInfo>,
        /// What the query sent and how long it ran.
        stats: QueryStats,
    },
    /// A [`Command::FindPeer`] finished.
    FoundPeer {
        /// The query.
        query: QueryId,
        /// The peer looked up.
        peer: PeerId,
        /// The peer and its address, if our connection to it came up (then the address the driver
        /// observed), or, where the driver tells no addresses, if it answered the lookup (then our
        /// table's address, else the one a peer named it with: a claim).
        found: Option<PeerInfo>,
        /// What the query sent and how long it ran.
        stats: QueryStats,
    },
    /// A [`Command::PutValue`] finished.
    PutValue {
        /// The query.
        query: QueryId,
        /// The record key.
        key: Key,
        /// How many peers accepted the record.
        stored_at: usize,
        /// What the query sent and how long it ran.
        stats: QueryStats,
    },
    /// A [`Command::GetValue`] finished.
    GetValue {
        /// The query.
        query: QueryId,
        /// The record key.
        key: Key,
        /// The record the answers chose ([`Command::GetValue`]), if any carried a valid one.
        record: Option<Record>,
        /// What the query sent and how long it ran.
        stats: QueryStats,
    },
    /// A [`Command::StartProviding`] finished.
    StartedProviding {
        /// The query.
        query: QueryId,
        /// The provided key.
        key: Key,
        /// How many peers accepted the announcement.
        stored_at: usize,
        /// What the query sent and how long it ran.
        stats: QueryStats,
    },
    /// A [`Command::GetProviders`] finished.
    GetProviders {
        /// The query.
        query: QueryId,
        /// The provided key.
        key: Key,
        /// The providers found: at most `k`, and at most half of them from one answer.
        providers: Vec<PeerInfo>,
        /// What the query sent and how long it ran.
        stats: QueryStats,
    },
    /// A command could not start or failed.
    Failed {
        /// The query.
        query: QueryId,
        /// Why.
        error: QueryError,
        /// What the query sent and how long it ran.
        stats: QueryStats,
    },
}

impl Event {
    /// The query this event answers (every event answers one), for a driver that matches answers to
    /// the commands it sent.
    pub fn query(&self) -> QueryId {
        match self {
            Self::Bootstrapped { query, .. }
            | Self::ClosestPeers { query, .. }
            | Self::FoundPeer { query, .. }
            | Self::PutValue { query, .. }
            | Self::GetValue { query, .. }
            | Self::StartedProviding { query, .. }
            | Self::GetProviders { query, .. }
            | Self::Failed { query, .. } => *query,
        }
    }
}

/// Kademlia's timers (timers are data: the driver hands them back).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timer {
    /// Fail the request `0` (scheduled at once, for a request our dial limits could not take).
    Request(RequestId),
    /// Time out every request past its deadline ([`crate::Config::request_timeout`] after it was
    /// sent). One timer serves all requests: it is set for the earliest deadline, rounded up to a
    /// whole second, and set again when it fires.
    Deadlines,
    /// Refresh stale buckets and expire stored records.
    Refresh,
    /// Republish our record under this key.
    Republish(Key),
    /// Re-announce that we provide this key.
    Reprovide(Key),
    /// Join again through the bootstrap peers if the routing table is still empty.
    Rejoin,
    /// Ping the anchors that were quiet for [`crate::Config::anchor_keepalive`], and a candidate in
    /// each far bucket without one (set for the next anchor due, or a period on while a bucket
    /// lacks one).
    Keepalive,
}
