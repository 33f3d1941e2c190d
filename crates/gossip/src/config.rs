//! Tuning knobs, with the papers' defaults where the papers give them.

use std::time::Duration;

/// What the messages of an origin without a broadcast tree of its own follow.
///
/// Plumtree's trees are shaped by first arrivals. Per origin, they are shortest-path trees from that
/// origin (flood's hop counts at near-zero redundancy), but each origin's first message floods to form
/// its tree: where every node publishes now and then (a coin's transactions), nearly every message is a
/// first one, and per-origin trees cost a flood's bytes and more. One tree shared by all origins (the
/// single eager set of the paper, Leitão et al. 2007, §3) costs one copy per node from the first message
/// on, but a message climbs from its origin towards where the tree was rooted and back down, so its
/// paths are longer than flood's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Trees {
    /// Every origin forms its own tree: its first message is pushed on every link and duplicates prune.
    /// Shortest paths from the first message on; a flood's traffic for each new origin. Suits a few
    /// origins that publish often (blocks from miners).
    #[default]
    PerOrigin,
    /// An origin without a tree follows the shared tree (no flood; duplicates prune the shared tree with
    /// `PruneShared`); it gets a tree of its own, copied from the shared one, when the §3.8 optimisation
    /// finds it shorter paths. Suits many origins that publish rarely (transactions).
    Shared,
    /// Per-origin trees, but a node whose own tree has not formed yet does not flood: it sends its
    /// message along the tree of a *lender*, a node at most [`Config::lender_hops`] links away that
    /// published on its own tree lately (a neighbour first, then the nearest by the round trips of
    /// [`Command::PeerRoundTrip`](crate::Command::PeerRoundTrip), if the driver gives any)
    /// ([`TreeMessage::Borrowed`](crate::TreeMessage::Borrowed)), and every node forwards it as a message
    /// of that lender. The lender's tree spans the network and reaches the origin a link or two from
    /// its root, so the message takes near-shortest paths (a last delivery 1.2-1.5× a flood's) at a
    /// tree's cost (RMR ≈ 0). A node with no lender, or one that has published
    /// [`BORROW_LIMIT`](crate::BORROW_LIMIT) messages on borrowed trees, floods once and forms its own.
    Borrow,
}

/// How a gossip node behaves. `Config::default()` follows the HyParView and Plumtree papers.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Active view size (the connections kept): 5 (HyParView: fanout + 1).
    pub active_view_capacity: usize,
    /// Passive view size (known peers kept in reserve): 30.
    pub passive_view_capacity: usize,
    /// Active random walk length of `ForwardJoin` and `Shuffle`: 6.
    pub active_random_walk_length: u8,
    /// At this many hops left, a `ForwardJoin` adds the joiner to the passive view: 3.
    pub passive_random_walk_length: u8,
    /// Time between two repair rounds: 10 s. A round forgets refusals, asks for free active slots
    /// and joins again when alone; it sends nothing while the active view is full.
    pub repair_interval: Duration,
    /// Time between two shuffle walks of a settled node: 60 s (iroh-gossip's default too). A walk
    /// keeps the passive view fresh and is most of what membership sends, so a node whose views are
    /// both full, and whose active view has not changed since its last walk, walks less often than it
    /// repairs; any other node walks at every repair round (`hyparview/shuffle.rs`). An idle
    /// 1,000-node overlay sends 33 bytes a second a node for membership and tree upkeep, against 195
    /// at a walk every round (`meshsim gossip --nodes 1000 --publishers 5 --messages 100`,
    /// `gossip_control_bytes_per_node_per_sec`).
    pub shuffle_interval: Duration,
    /// Active peers put in a shuffle.
    pub shuffle_active: usize,
    /// Passive peers put in a shuffle.
    pub shuffle_passive: usize,
    /// Lazy-push ids are batched and sent at this interval.
    pub ihave_interval: Duration,
    /// After an `IHave`, wait at most this long for the message before grafting: 300 ms. The wait is
    /// learnt from round trips (our grafts' and the driver's) and from how late the tree's copies
    /// came after their announcements (RFC 6298's `S + 4·V` of each, `plumtree/rtt.rs`); this is its
    /// ceiling, and the wait until a first round trip is measured.
    pub graft_timeout: Duration,
    /// The shortest learnt wait before grafting: 5 ms (below that, task scheduling and batching noise
    /// on a loopback or LAN path would graft copies that were still coming).
    pub graft_timeout_min: Duration,
    /// After a graft, wait this long for its answer before grafting the next announcer, until a round
    /// trip is measured: 150 ms (at most `graft_timeout`). From then on the wait is a learnt round
    /// trip with its variation (`plumtree/rtt.rs`'s `answer_wait`, within `graft_timeout_min` and
    /// `graft_timeout`): a retry fired before an answer that was coming grafts a second copy, and a
    /// fixed 150 ms fires before every answer on a path slower than that.
    pub graft_retry: Duration,
    /// How long a grafted announcer has to send the message before the graft counts as a broken promise
    /// ([`Penalty::BrokenPromise`](crate::Penalty::BrokenPromise)), once it answered or declined a
    /// later graft of ours (its answers come in the order of our grafts, on one stream, so it skipped
    /// this one): 5 s. Much longer than the retry, which is as short as the round trip allows: at 1,000
    /// transactions a second a busy honest node answered hundreds of grafts a few milliseconds past it
    /// and was banned by its neighbours.
    pub graft_promise: Duration,
    /// The longest a grafted announcer is given: 30 s. Within it, a promise falls due after four times
    /// the slowest recent answer from that announcer, if that is longer than
    /// [`Config::graft_promise`]: a link whose queue holds seconds of traffic (a peer that offers more
    /// than its neighbours can read) delivers answers seconds late, and the announcer is honest. Like
    /// TCP's retransmission timeout, the deadline follows the delay measured on the path. A promise
    /// is due only after this longest wait while no later graft to the announcer was answered: the
    /// answer may be queued behind a link that filled at once (103 grafts into one such link broke
    /// together in a `coin-node bench` run, and an honest neighbour was banned), or in our own inbox.
    pub graft_promise_max: Duration,
    /// Plumtree's optimisation: when an `IHave` announces a message this many hops shorter than the copy
    /// that arrived on the tree, the announcer's link replaces the tree link.
    pub optimization_threshold: u16,
    /// A new neighbour is announced the messages accepted this recently (at most one `IHave`), so a node
    /// that was cut off catches up on what it missed.
    pub catch_up: Duration,
    /// Origins with a broadcast tree of their own kept at most: 16,384 (each origin has its own eager
    /// and lazy links, its parent, its newest message's number and its tag, about 100 bytes, so about
    /// 1.6 MB in all). In a coin every
    /// node is an origin of transactions, so this is sized for networks of thousands of publishers; the
    /// least recently used quarter is forgotten when it is full, and a forgotten origin's next message
    /// forms its tree again.
    pub max_origins: usize,
    /// Messages kept in the seen cache (answering grafts, suppressing duplicates): 65,536, 13 s of a
    /// coin's transactions at 5,000 a second. With 4,096, at 4,000 transactions a second a message
    /// was forgotten a second after it came, and 7,033 grafts in a 30 s run asked announcers for
    /// messages they had already dropped: broken promises, and honest peers banned. Also the ids
    /// remembered per neighbour as announced to it (so its grafts can be told from waste).
    pub seen_capacity: usize,
    /// Bytes the seen cache holds at most (payloads plus an estimate of each entry's fixed cost): 32 MiB.
    /// The oldest messages go first beyond it, so large payloads cannot make the cache grow past it
    /// (4,096 messages of 64 KiB were 256 MiB).
    pub seen_max_bytes: usize,
    /// How long a message stays in the seen cache.
    pub seen_ttl: Duration,
    /// Messages waiting for the application's verdict at most; more are ignored.
    pub max_pending_validations: usize,
    /// Missing messages tracked at most (ids announced by `IHave`, not yet received); one
    /// neighbour's announcements make at most its share among a full active view's neighbours
    /// (`max_missing / active_view_capacity`, at least one).
    pub max_missing: usize,
    /// Bytes of messages sent in answer to one neighbour's grafts at once: 4 MiB, one full `IHave` (64
    /// ids) of messages at the 64 KiB payload limit, so a neighbour catching up is answered at once. A
    /// graft is answered only for an id we announced to that neighbour, once (`plumtree/offers.rs`).
    pub graft_burst_bytes: u64,
    /// Refill of that budget, per second: 1 MiB. A graft over it is dropped without blame (the grafter
    /// asks its next announcer).
    pub graft_bytes_per_sec: u64,
    /// What messages of an origin without a tree of its own follow: per-origin trees (the default) or
    /// the shared tree.
    pub trees: Trees,
    /// With [`Trees::Borrow`]: how many links away a lender may be (1: neighbours only; 0: none, so
    /// every origin's first message floods). 2 by default, a trade of latency for bytes that suits
    /// transactions (set 1 where latency comes first). A tree rooted two links away carries a message
    /// up to a link farther than a neighbour's, and is within reach of far more new origins, so far
    /// fewer first messages flood:
    ///
    /// - `meshsim gossip --nodes 50 --publishers all --trees borrow --payload-bytes 256 --messages 200
    ///   --rate 20`, seeds 1-3, neighbours only → two links: 15-18 of the 200 messages flood → 5-6;
    ///   RMR 0.25-0.29 → 0.08-0.11; wire bytes per payload byte 2.18-2.24 → 1.91-1.97; the last
    ///   delivery's p99 1.18-1.27× flood's → 1.28-1.46×.
    /// - The same at 2,000 nodes and 2,000 messages: 615 flood → 203; RMR 0.93 → 0.31; 3.18 →
    ///   2.23 bytes per payload byte; p99 1.16× → 1.27×.
    /// - `meshsim coin` (1,000 nodes in six regions): 859 → 689 gossip bytes a node per
    ///   transaction; the transactions' propagation p99 1.30× → 1.53× flood's (a lender's way is
    ///   known only by its first link's round trip).
    pub lender_hops: u16,
    /// Messages whose origin signatures are checked in one batch at most, on topics with
    /// [`TopicOptions::batch_verify`](crate::TopicOptions::batch_verify): 64 (1 turns batches off).
    pub verify_batch: usize,
    /// The longest a message waits for the batch: 2 ms. A message that comes this long or more after
    /// the one before it is checked at once, so batches form only under load. Keep it below
    /// [`Config::graft_timeout_min`]: a message waiting for its check is not yet held, and an
    /// announcement of it that came meanwhile would be grafted when that wait ends.
    pub verify_wait: Duration,
    /// Peer scoring and limits.
    pub score: ScoreConfig,
    /// Limits on who enters the views (membership requests, IP prefixes, evictions).
    pub admission: AdmissionConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            active_view_capacity: 5,
            passive_view_capacity: 30,
            active_random_walk_length: 6,
            passive_random_walk_length: 3,
            repair_interval: Duration::from_secs(10),
            shuffle_interval: Duration::from_secs(60),
            shuffle_active: 3,
            shuffle_passive: 4,
            ihave_interval: Duration::from_millis(50),
            graft_timeout: Duration::from_millis(300),
            graft_timeout_min: Duration::from_millis(5),
            graft_retry: Duration::from_millis(150),
            graft_promise: Duration::from_secs(5),
            graft_promise_max: Duration::from_secs(30),
            optimization_threshold: 3,
            max_origins: 16_384,
            catch_up: Duration::from_secs(10),
            seen_capacity: 65_536,
            seen_max_bytes: 32 * 1024 * 1024,
            seen_ttl: Duration::from_secs(120),
            max_pending_validations: 1024,
            max_missing: 4096,
            graft_burst_bytes: 4 * 1024 * 1024,
            graft_bytes_per_sec: 1024 * 1024,
            trees: Trees::PerOrigin,
            lender_hops: 2,
            verify_batch: 64,
            verify_wait: Duration::from_millis(2),
            score: ScoreConfig::default(),
            admission: AdmissionConfig::default(),
        }
    }
}

/// Penalties, the ban threshold, the ban duration and the allowance of wasted broadcast traffic.
///
/// Penalties fit the crime (ARCHITECTURE.md, hostile peers): a first-seen message that the application
/// accepts never costs anything, however fast it comes, because relaying valid traffic is what a
/// neighbour is for. Only waste is metered: a duplicate on a link we had already pruned for its origin,
/// and a broadcast message from a peer outside our active view. An honest peer wastes a little (a
/// duplicate crossing our `Prune`), so waste is charged to a token bucket and only waste beyond it costs
/// points ([`Penalty::Flood`](crate::Penalty::Flood)).
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreConfig {
    /// Penalty for a message with a bad signature (or over the topic's size).
    pub invalid_message: f64,
    /// Penalty for a message the application rejected.
    pub rejected_message: f64,
    /// Penalty for a graft that was not answered within [`Config::graft_promise`](crate::Config::graft_promise) (a broken `IHave` promise).
    /// An honest announcer may only be slow (a busy link, a repeated graft it refuses), so this costs
    /// about one second of recovery: sustained faster than recovery (an announcer of ids it never
    /// delivers) it bans, occasional slowness never does.
    pub broken_promise: f64,
    /// Penalty for each wasted message beyond the allowance ([`ScoreConfig::rate_burst`]).
    pub flood: f64,
    /// A peer whose score falls to this or below is banned: removed from the views, released by gossip,
    /// and refused by gossip for [`ScoreConfig::ban_duration`].
    pub ban_threshold: f64,
    /// How long a ban lasts, in driver time: 10 minutes. The peer is accepted again afterwards, with a
    /// clean score.
    pub ban_duration: Duration,
    /// Points a negative score recovers per second.
    pub recovery_per_sec: f64,
    /// Allowance of wasted broadcast messages (duplicates on pruned links, messages from outside the
    /// active view) a peer may send in a burst before each costs [`ScoreConfig::flood`].
    pub rate_burst: f64,
    /// Refill of that allowance, per second.
    pub rate_per_sec: f64,
    /// Allowance a peer may bank, beyond [`ScoreConfig::rate_burst`], by relaying: each first-seen
    /// message it sends adds one wasted message it may send. A busy honest link has as many copies in
    /// flight when we prune it as its sender had queued for us (the node runtime queues up to 1,024
    /// messages a peer), so the credit covers a full queue with room to spare; an attacker's waste
    /// stays bounded by the valid traffic it relays.
    pub relay_credit: f64,
    /// Bans remembered at most (the oldest is forgotten first).
    pub max_banned: usize,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            invalid_message: 50.0,
            rejected_message: 20.0,
            broken_promise: 1.0,
            flood: 5.0,
            ban_threshold: -100.0,
            ban_duration: Duration::from_secs(600),
            recovery_per_sec: 1.0,
            rate_burst: 500.0,
            rate_per_sec: 200.0,
            relay_credit: 4096.0,
            max_banned: 1024,
        }
    }
}

/// Who may enter the views, and how fast: the defences of HyParView against eclipse attacks.
///
/// HyParView (Leitão et al. 2007) accepts every `Join` and every high-priority `Neighbor` request, evicting
/// a random neighbour when full, so a stream of fresh identities empties an active view of honest
/// neighbours. Here membership requests are rate-limited per peer and joins per IP prefix; a prefix may
/// hold only a few slots of each view; one peer may fill only a share of the passive view; and an
/// established neighbour is evicted by a newcomer at most once per [`AdmissionConfig::eviction_interval`],
/// never if it is among the longest-lived (Bitcoin Core protects its longest-connected and most useful
/// inbound peers from eviction in the same spirit, `net.cpp` `AttemptToEvictConnection`).
///
/// Prefixes are a /24 for IPv4 and a /48 for IPv6 (as Kademlia's routing table counts them); the driver
/// reports addresses with [`Command::PeerAddress`](crate::Command::PeerAddress), and a peer whose
/// address is unknown is not counted under any prefix. On a loopback devnet every node shares one
/// prefix: [`AdmissionConfig::without_prefix_limits`] lifts the prefix limits there.
#[derive(Clone, Debug, PartialEq)]
pub struct AdmissionConfig {
    /// Membership requests (`Join`, `ForwardJoin`, `Neighbor`, `Shuffle`) one peer may send in a burst;
    /// more are ignored: 16.
    pub requests_burst: f64,
    /// Refill of that burst, per second: 1. An honest neighbour relays well under one walk a second.
    pub requests_per_sec: f64,
    /// `Join`s from one IP prefix in a burst: 8. More are ignored (not admitted, not announced).
    pub prefix_joins_burst: f64,
    /// Refill of that burst, per second: 0.1 (one join from a prefix every 10 s in the long run).
    pub prefix_joins_per_sec: f64,
    /// Referrals one IP prefix may take in a burst: 2. A refused `Neighbor` request names a peer we
    /// refused shortly before (it has room) and leaves the requester in its place, once; without a
    /// limit, fresh identities of one subnet took every referral, and left only themselves to name.
    pub prefix_referrals_burst: f64,
    /// Refill of that burst, per second: 0.1 (one a repair round; a node with a free slot asks a
    /// full peer about once a round).
    pub prefix_referrals_per_sec: f64,
    /// Active neighbours from one IP prefix at most: 2 (of 5).
    pub max_active_per_prefix: usize,
    /// Passive peers from one IP prefix at most (among those whose address is known): 4.
    pub max_passive_per_prefix: usize,
    /// Passive peers one neighbour may have told us of at most (in shuffles, forwarded joins): 8 of 30.
    /// A neighbour over its share replaces one of its own entries, never another's (addrman's source
    /// buckets in Bitcoin Core serve the same end).
    pub max_passive_per_source: usize,
    /// A neighbour in the active view this long is established: 60 s.
    pub established_after: Duration,
    /// Newcomers evict an established neighbour at most once per this interval: 60 s. Neighbours that
    /// are not established yet can be evicted at any time (that is HyParView's churn while joining).
    pub eviction_interval: Duration,
    /// The longest-lived neighbours (established or not) that newcomers never evict: 3. At least one slot is left
    /// open to newcomers whatever this says, so joins still get in.
    pub protected_neighbors: usize,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            requests_burst: 16.0,
            requests_per_sec: 1.0,
            prefix_joins_burst: 8.0,
            prefix_joins_per_sec: 0.1,
            prefix_referrals_burst: 2.0,
            prefix_referrals_per_sec: 0.1,
            max_active_per_prefix: 2,
            max_passive_per_prefix: 4,
            max_passive_per_source: 8,
            established_after: Duration::from_secs(60),
            eviction_interval: Duration::from_secs(60),
            protected_neighbors: 3,
        }
    }
}

impl AdmissionConfig {
    /// These limits without the per-prefix ones, for a devnet on one machine (every peer shares the
    /// loopback prefix). Never for a public network.
    pub fn without_prefix_limits(self) -> Self {
        Self {
            prefix_joins_burst: f64::INFINITY,
            prefix_joins_per_sec: f64::INFINITY,
            prefix_referrals_burst: f64::INFINITY,
            prefix_referrals_per_sec: f64::INFINITY,
            max_active_per_prefix: usize::MAX,
            max_passive_per_prefix: usize::MAX,
            ..self
        }
    }
}
