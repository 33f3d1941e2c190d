//! Tunables of the Kademlia state machine.

use std::time::Duration;

/// Configuration of a [`crate::Kademlia`] node. [`Config::default`] gives the values of the papers.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Bucket size `k`, also the number of peers a lookup returns and a record is stored at (default 20,
    /// at most [`crate::message::MAX_PEERS`]).
    pub k: usize,
    /// The peers a join's bucket refresh brings each bucket to, at most (default 10, half of `k`;
    /// at most `k`). Every peer in a bucket cost a request of ours to meet, so filling each bucket
    /// at join was most of a join's messages (`k` requests and answers per bucket, for some
    /// `log2(N / k)` buckets). Half a bucket is enough for lookups through it: each hop needs one
    /// peer nearer the target, and `α` of them to ask at once. The rest fills from the traffic the
    /// network sends us anyway (every peer that asks us something enters,
    /// [`Config::admit_inbound`]), at no cost. Measured with `meshsim kad-lookup --nodes 10000`:
    /// join messages per node 407 with full buckets, 268 with half, while lookups kept their hops
    /// (p50 3), messages (19.9 and 19.3) and round trips (p50 5), and tables grew from a join's
    /// half buckets to 173 peers a node on average (197 with full ones).
    pub join_fill: usize,
    /// Lookup parallelism `α`: requests in flight per lookup path (default 3).
    pub alpha: usize,
    /// S/Kademlia disjoint lookup paths `d` (default 2, so the defence is on unless turned off; 1 is the
    /// plain Kademlia fast path). With `d > 1` each lookup runs `d` iterative searches that never share a
    /// peer, so one path of honest peers suffices to find the target even if the others meet adversarial
    /// nodes (Baumgart & Mies 2007, §4.4). Bucket refreshes (those of joining too) run one path: they
    /// only seed the routing table, which its admission rules guard, and one path halves their cost.
    pub disjoint_paths: usize,
    /// How long we wait for an answer to one request, from the moment it is sent, before counting it
    /// as timed out (default 10 s). A request that first waits for a dial is bounded by the driver's
    /// dial deadline (a failed dial is a `PeerDown`, which fails it at once), and backed up by three
    /// times this.
    pub request_timeout: Duration,
    /// How long a lookup runs at most (default 60 s, rust-libp2p's query timeout): past it, it ends
    /// with what it has found, as if it had converged. One hostile answer naming unreachable peers
    /// near the target would otherwise hold a lookup for minutes, each of them waiting out a dial,
    /// the window asking them a few at a time. The store requests after a lookup have their own
    /// deadlines.
    pub query_timeout: Duration,
    /// How many answers carrying a valid record end a [`crate::Command::GetValue`] before its lookup
    /// converges (default 3). The answer is chosen among them (the publisher most of them carry, its
    /// latest record), so one peer on the path cannot serve a stale or a rival record while the
    /// others answer honestly; more costs round trips (`meshsim kad-churn`'s `get_ms_p50`), and
    /// `usize::MAX` waits for the lookup to converge. IPNS asks for 16.
    pub value_quorum: usize,
    /// S/Kademlia static puzzle: peers whose id does not solve it at this difficulty never enter the
    /// routing table and are never contacted by lookups (default 0: everyone, since whether ids are
    /// generated to solve it is the application's choice; an application that generates them sets it,
    /// as the coin node does: `meshwork_coin::AppConfig::PUZZLE_DIFFICULTY`, 12 bits).
    pub puzzle_difficulty: u32,
    /// At most this many peers of one IP prefix (/24 or /48) in one bucket (default 2). Lift it only
    /// for a network on one machine, where every peer shares 127.0.0.1.
    pub max_per_prefix_in_bucket: usize,
    /// At most this many peers of one IP prefix in the whole table (default 10; lift it only as
    /// `max_per_prefix_in_bucket`).
    pub max_per_prefix_in_table: usize,
    /// A full bucket pings its oldest entry for a newcomer only if that entry has not answered us for
    /// this long (default 10 min); a fresher one is taken as alive, and the newcomer waits to replace
    /// the first entry to leave for failed requests (Kademlia §4.1; [`crate::routing_table`]). `Duration::ZERO`
    /// pings every time, as §2.2 alone would.
    pub stale_after: Duration,
    /// An entry that answered us within `stale_after` leaves the table after this many requests in a
    /// row go unanswered (default 5, as go-ethereum's discovery table; at least 1, which evicts at the
    /// first failure): one lost request does not cost a long-lived entry its place
    /// ([`RoutingTable::on_request_failed`](crate::routing_table::RoutingTable::on_request_failed)).
    pub max_failures: u8,
    /// A bucket that saw no lookup for this long is refreshed by a lookup of a random key in it (default 1 h).
    pub refresh_interval: Duration,
    /// How long a record stays valid after it is (re)published (default 36 h).
    pub record_ttl: Duration,
    /// Records a node accepts are at most this far in the future (default 48 h).
    pub max_record_ttl: Duration,
    /// The publisher re-signs and re-stores its records this often (default 12 h).
    pub republish_interval: Duration,
    /// How long a provider announcement is kept (default 24 h).
    pub provider_ttl: Duration,
    /// The provider re-announces this often (default 12 h).
    pub reprovide_interval: Duration,
    /// A peer that sends us a request enters our table as a peer that answered us would (default
    /// true), under the same admission rules: the puzzle, the prefix limits, and a full bucket's
    /// preference for the peers it has. This is the paper's rule (Maymounkov & Mazières 2002, §2.2:
    /// "When a Kademlia node receives any message (request or reply) from another node, it updates
    /// the appropriate k-bucket for the sender's node ID"). Without it, a bootstrap node would never
    /// learn of the nodes that join through it.
    ///
    /// The request came over a connection authenticated as that peer, at the address the driver
    /// observed, so it proves what an answer proves: the peer is alive there and speaks Kademlia.
    /// An earlier version pinged the asker back and admitted it on the answer: the ping went over
    /// the same connection, proved nothing more, and was a quarter of the messages of a network
    /// joining (`meshsim kad-lookup`: 481 join messages per node with it, at 2,000 nodes).
    pub admit_inbound: bool,
    /// The address we announce as providers (default none: receivers use the address they observe).
    pub external_address: Option<crate::Address>,
    /// How many of the farthest buckets keep an **anchor** (default 3): one peer of the bucket whose
    /// connection we protect and keep warm, so a lookup into that bucket can ask a peer in its
    /// first round without dialling it ([`crate::routing_table`] entries are addresses, and the
    /// connection manager closes what nobody uses). A random target falls in bucket 0 half the
    /// time and in the first four 15 times in 16. A first hop over a cold connection costs a
    /// handshake and the request (two round trips); over a warm one, the request alone. Measured
    /// with `meshsim kad-lookup --nodes 10000` (50 ms links, connections idle for 60 s closed):
    /// see the crate docs' "Connections". 0 keeps no anchors; at most [`crate::MAX_ANCHORS`] (4).
    pub anchors: usize,
    /// An anchor that carried no Kademlia message either way for this long is pinged (default
    /// 45 s). Keep it below the idle timeout of the peers' connection managers, which close a
    /// connection that carried nothing for that long and do not know we keep it
    /// (`meshwork_node::ConnectionLimits::idle_timeout`, 60 s by default, checked every second). A
    /// far bucket without an anchor asks one of its peers to be one this often too.
    pub anchor_keepalive: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            k: 20,
            join_fill: 10,
            alpha: 3,
            disjoint_paths: 2,
            request_timeout: Duration::from_secs(10),
            query_timeout: Duration::from_secs(60),
            value_quorum: 3,
            puzzle_difficulty: 0,
            max_per_prefix_in_bucket: 2,
            max_per_prefix_in_table: 10,
            stale_after: Duration::from_secs(600),
            max_failures: 5,
            refresh_interval: Duration::from_secs(3600),
            record_ttl: Duration::from_secs(36 * 3600),
            max_record_ttl: Duration::from_secs(48 * 3600),
            republish_interval: Duration::from_secs(12 * 3600),
            provider_ttl: Duration::from_secs(24 * 3600),
            reprovide_interval: Duration::from_secs(12 * 3600),
            admit_inbound: true,
            external_address: None,
            anchors: 3,
            anchor_keepalive: Duration::from_secs(45),
        }
    }
}

impl Config {
    /// The configuration with `k`, `alpha`, `disjoint_paths`, `anchors` (at most
    /// [`crate::MAX_ANCHORS`]) and `anchor_keepalive` (at least a second) clamped to usable values.
    pub(crate) fn sanitized(mut self) -> Self {
        self.k = self.k.clamp(1, crate::message::MAX_PEERS);
        self.join_fill = self.join_fill.clamp(1, self.k);
        self.alpha = self.alpha.max(1);
        self.disjoint_paths = self.disjoint_paths.clamp(1, self.k);
        self.anchors = self.anchors.min(crate::MAX_ANCHORS);
        self.anchor_keepalive = self.anchor_keepalive.max(Duration::from_secs(1));
        self
    }
}
