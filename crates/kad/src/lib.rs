//! # meshwork-kad: Kademlia as a pure state machine
//!
//! This crate does no IO, reads no clock and owns no task. It is the Kademlia distributed hash table
//! (Maymounkov and Mazières, *Kademlia: A Peer-to-peer Information System Based on the XOR Metric*,
//! IPTPS 2002) with the defences of S/Kademlia (Baumgart and Mies, *S/Kademlia: A Practicable Approach
//! Towards Secure Key-Based Routing*, ICPADS 2007), written as a [`meshwork_wire::Protocol`]: a driver
//! (the simulator or the tokio node runtime) hands [`Kademlia`] inputs with the current time and carries
//! out the outputs it pushes.
//!
//! ## The model
//!
//! - **Keys and distance** ([`key`]). Peers and records share a 256-bit key space. A peer's key is the
//!   blake3 hash of its [`PeerId`](meshwork_identity::PeerId) ([`Key::from_peer`]); the distance of two
//!   keys is their XOR read as an integer. Every lookup converges because each step halves the distance.
//! - **The routing table** ([`routing_table`]). Bucket `i` holds up to `k` (20) peers whose distance from
//!   us has `i` leading zero bits. A full bucket prefers the peers it has: the least recently seen entry
//!   is pinged and only evicted if it does not answer, the newcomer waiting in a pending slot. The ping
//!   is delayed as the paper's §4.1 delays it: an entry that answered within [`Config::stale_after`]
//!   (10 min) is not pinged, and the newcomer waits to replace the first entry to leave for failing
//!   requests a lookup sends anyway: at once if it has not answered for `stale_after`, after
//!   [`Config::max_failures`] (5) failures in a row if it has, so one lost request does not give a
//!   long-lived entry's place to a candidate a Sybil can make sure is its own. A peer enters when it answers a request of ours or sends us one (the paper's
//!   §2.2: any message from a peer updates its bucket; [`Config::admit_inbound`]), over a connection
//!   authenticated as that peer, never because another peer named it. Ids must solve the static crypto puzzle
//!   ([`meshwork_identity::puzzle`]) at the configured difficulty, and at most a few peers of one /24
//!   (IPv4) or /48 (IPv6) fit in one bucket and in the table. Buckets no lookup touched for an hour are
//!   refreshed by a lookup of a random key in them. Joining ([`Command::Bootstrap`]) is a lookup of our
//!   own key, then a refresh of every bucket farther than our nearest neighbours that it left short of
//!   half a bucket ([`Config::join_fill`]), except those nearer than the `k`-th peer it found: it has
//!   seen everyone there. These refreshes run one after another, nearest bucket first; each ends as
//!   soon as its bucket holds half of `k` peers, and never has more requests in flight than answers
//!   could still fit (or `α`; a stalled lookup would otherwise widen to `k` at once): a node joining
//!   costs a few requests in flight at a time, not one lookup's worth per bucket at once. The other
//!   half of each bucket fills from the peers that ask us things. A join's lookups skip the peers
//!   already in our table once they have names to go on: those have met us.
//! - **Iterative lookups** ([`query`]). A lookup asks the `α` (3) closest peers it knows, learns closer
//!   ones from their answers, and repeats until the closest set stops improving: the `α` closest it has
//!   heard of have all answered ([`query::Finish::Converged`]). A join's lookups go on until the `k`
//!   closest have answered (the paper's rule, [`query::Finish::AllClosest`]): the lookup of our own key,
//!   so that our future neighbours hear of us, and the bucket refreshes, whose answering peers fill
//!   the table; so do the lookups before a store, which goes to peers that answered, never to peers
//!   only named. Each request has a timeout, and each lookup one of its own
//!   ([`Config::query_timeout`], 60 s), past which it ends with what it has; timers are data
//!   ([`Timer`]). With `d > 1` disjoint paths
//!   ([`Config::disjoint_paths`]) a lookup runs `d` searches that never share a peer, so an adversary on
//!   one path cannot eclipse the others. Bucket refreshes run one path: they only seed the table, which
//!   the admission rules above guard, and joining costs half as many requests.
//! - **Records and providers** ([`message::Record`], [`store`]). A record is signed by its publisher in
//!   its own namespace and carries an absolute expiry (driver time); it is stored at the `k` peers
//!   closest to its key and republished by its publisher on a timer. Its key is its publisher's own
//!   ([`Key::for_record`]: nobody else can store under it) or a shared name ([`Key::for_name`]: the
//!   first publisher holds it); [`key`] tells how a key says which. Provider announcements ("I serve
//!   key X") are stored the same way and expire. A store is bounded in total, per peer and per IP
//!   prefix: one publisher holds at most an eighth of its records, one provider announces at most an
//!   eighth of its keys, and the peers of one /24 (/48) send or provide at most a quarter of either
//!   ([`MemoryStore`]). The prefix is the one the driver observed ([`Command::PeerAddress`]; the node
//!   runtime's `on_connected` hook sends it): peers it said nothing of share one quarter.
//!
//! ## Driving it
//!
//! Feed [`Input`](meshwork_wire::Input)s to [`Protocol::handle`](meshwork_wire::Protocol::handle): decoded
//! messages, [`Command`]s (also [`Command::PeerAddress`] when a connection comes up, so the prefix limits
//! count observed addresses), fired timers, and `PeerUp`/`PeerDown`. Carry out the outputs: `Send`,
//! `Dial` (the address is [`Kademlia::address_of`]), `Schedule`, and [`Event`]s for the application.
//! Applications usually talk through the capability traits [`PeerRouting`] and [`ContentRouting`].
//!
//! Nothing is dropped silently. A peer kept out of the routing table because its IP prefix already
//! fills its share, an answer to no request of ours, a message that finds the dial queue full: each is
//! pushed as [`Output::Dropped`](meshwork_wire::Output::Dropped) with its
//! [`DropReason`](meshwork_wire::DropReason) (`PrefixLimit`, `Unsolicited`, `QueueFull`), which the driver
//! logs and counts. Kademlia itself logs nothing. A full bucket is not reported: in any network larger
//! than a few buckets' worth, most peers that answer a lookup meet one.
//!
//! ## Answers and their statistics
//!
//! Every answer [`Event`] (the one a command's query ends with, [`Event::Failed`] included) carries the
//! query's [`QueryStats`]: the requests it sent, on every disjoint path and in the store phase of a put,
//! how many were answered (`successes`), failed before their timer because the connection closed or the
//! answer was unusable (`failures`), or were never answered (`timeouts`), when it started and how long it
//! ran, in the driver's time. A request whose connection closes is sent once more on a new
//! connection (the peer's connection manager may have closed it: `KadTotals::retried`); one whose dial
//! fails, or that was retried already, fails at once: its lookup moves on to other peers without
//! waiting for the request timer. [`Kademlia::totals`] sums the same counts over
//! every request since the node started ([`KadTotals`]), with late and unsolicited answers and peers
//! refused for their prefix.
//!
//! ```
//! use std::time::Duration;
//!
//! use meshwork_identity::Keypair;
//! use meshwork_kad::{Address, Command, Config, Event, Kademlia, PeerInfo, QueryId};
//! use meshwork_wire::{Input, Instant, Output, Protocol};
//!
//! let peer = Keypair::from_seed([1; 32]).peer_id();
//! let mut kad = Kademlia::new(Keypair::from_seed([2; 32]), Config::default(), 7);
//! let mut out = Vec::new();
//! let start = Instant::from_duration(Duration::from_secs(100));
//! kad.handle(start, Input::PeerUp(peer), &mut out);
//! let peers = vec![PeerInfo { id: peer, addr: Address::unknown() }];
//! kad.handle(start, Input::Command(Command::Bootstrap { query: QueryId(1), peers }), &mut out);
//! // The connection closes 30 ms later, before the peer answered. The request is sent once more on
//! // a new connection (the peer's connection manager may have closed it), and that dial fails: the
//! // lookup ends then, not at the request timer (10 s), and the lost request is a failure, not a
//! // timeout.
//! out.clear();
//! kad.handle(start + Duration::from_millis(20), Input::PeerDown(peer), &mut out);
//! assert!(matches!(out.as_slice(), [Output::Dial(p)] if *p == peer));
//! kad.handle(start + Duration::from_millis(30), Input::PeerDown(peer), &mut out);
//! let Some(stats) = out.iter().find_map(|o| match o {
//!     Output::Emit(Event::Bootstrapped { stats, .. }) => Some(*stats),
//!     _ => None,
//! }) else {
//!     panic!("the bootstrap ended");
//! };
//! assert_eq!((stats.requests, stats.successes, stats.failures, stats.timeouts), (1, 0, 1, 0));
//! assert_eq!(stats.started, start);
//! assert_eq!(stats.duration, Duration::from_millis(30));
//! assert_eq!(kad.totals().failures, 1);
//! ```
//!
//! ## Connections
//!
//! The routing table holds addresses, not connections. A request dials its peer on demand (or uses
//! a live connection) and protects that connection from the driver's connection manager
//! ([`Output::Protect`](meshwork_wire::Output::Protect)) while a request to the peer is
//! outstanding; once the last is answered or fails, the driver may close it when it is idle or the
//! node holds too many, unless the peer is an anchor (below). A request whose connection closes is sent once more on a new connection
//! (the other side's manager may have closed it without knowing we wait). Liveness pings go only to
//! a full bucket's oldest entry, one at a time per bucket, and a bucket is refreshed only after
//! [`Config::refresh_interval`] without a lookup in it.
//!
//! A handshake costs a round trip, so a lookup whose first hop must dial takes two round trips for
//! it. Two things give that round trip back. Each of the [`Config::anchors`] farthest buckets (3)
//! keeps an **anchor**: the first peer of the bucket, not a join's seed, that answers a request of
//! ours over a live connection; its connection stays protected, and a keep-alive ping goes to it
//! when it carried nothing for [`Config::anchor_keepalive`] (45 s), since the other side's manager
//! does not know we keep it ([`Kademlia::anchors`], [`KadTotals::anchor_pings`]); a bucket that
//! lost its anchor (its connection closed, it stopped answering) asks one of its peers to be the
//! next a keep-alive period later. And every lookup
//! that ends when it converges asks, besides the `α` closest peers, the closest peer it already has
//! a connection to, an anchor or one another protocol keeps ([`query::ClosestPeers::ask_first`]).
//! A random target falls in the first three buckets 7 times in 8. Measured with `meshsim kad-lookup
//! --nodes 10000 --json` (50 ms links, idle connections closed after 60 s, one path): lookup latency
//! p50 6 round trips without anchors (3 hops), 5 with them (`round_trips_p90` 8 and 7; 6 with them
//! since the simulator's addresses stopped following the keys, below), at 22.7
//! messages a lookup instead of 19.3 (the extra request, and a hop more now and then), 6.0
//! connections a node instead of 1.2 (three anchors of ours, three of others), 44.4 KB a node
//! instead of 43.0. The keep-alive pings cost each idle node 8 messages a minute (4 pings and
//! their answers): 24 of the 292 join messages a node, over the 200 s of virtual time the 10,000
//! joins take. Two anchors gave 6 round trips again; four gave 5, with 32 messages a node of pings
//! while joining. At 100,000 nodes (4 hops at the median) anchors took a lookup from 8 round trips
//! to 7, and 6 once the simulator's addresses stopped following the keys (3 hops at the median,
//! 99.97% of the peers returned among the true `k` closest instead of 91%: the peers nearest a key
//! had shared a /24, and the per-prefix limits kept them out of each other's tables; see
//! `crates/meshsim/src/experiments/kad_node.rs`).
//!
//! A lookup of one peer ([`Command::FindPeer`]) ends as soon as our connection to that peer comes
//! up, as go-libp2p-kad-dht's `FindPeer` stops once connected: the handshake proved the peer holds
//! its key at the address the driver observed, so neither its answer nor those of its neighbours
//! are waited for, which a lookup of a key needs (the `α` closest must answer, and the target's
//! answer may name nearer neighbours than anyone had: another round). Measured with `meshsim
//! kad-lookup --json` (its `find_peer_` keys, 1,000 lookups of random nodes after the 1,000 of keys
//! of the figures above, which they leave as they were): at 10,000 nodes p50 4 round trips at 3
//! hops against 5 (p90 5 against 6), at 22.5 messages a lookup against 22.8 (its requests still out
//! when it ends counted with their answers); at 100,000 nodes p50 5 at 3 hops against 6 (p90 6
//! against 8), at 28.6 messages against 28.9.
//!
//! ## Example
//!
//! ```
//! use meshwork_identity::Keypair;
//! use meshwork_kad::{Address, Command, Config, Kademlia, PeerInfo, QueryId};
//! use meshwork_wire::{Input, Instant, Output, Protocol};
//!
//! let bootstrap = Keypair::from_seed([1; 32]).peer_id();
//! let mut kad = Kademlia::new(Keypair::from_seed([2; 32]), Config::default(), 7);
//! let mut out = Vec::new();
//! let peers = vec![PeerInfo { id: bootstrap, addr: Address::unknown() }];
//! kad.handle(Instant::ZERO, Input::Command(Command::Bootstrap { query: QueryId(1), peers }), &mut out);
//! // Not connected yet: Kademlia asks the driver to dial the bootstrap peer, and queues its request.
//! assert!(out.iter().any(|o| matches!(o, Output::Dial(p) if *p == bootstrap)));
//! out.clear();
//! kad.handle(Instant::ZERO, Input::PeerUp(bootstrap), &mut out);
//! assert!(out.iter().any(|o| matches!(o, Output::Send { to, .. } if *to == bootstrap)));
//! ```
#![deny(missing_docs)]

mod address;
mod behaviour;
mod config;
mod error;
pub mod key;
mod key_memo;
pub mod message;
pub mod query;
#[cfg(feature = "redb")]
mod redb_store;
mod routing;
pub mod routing_table;
pub mod store;

pub use address::{Address, IpPrefix, MAX_OPAQUE_ADDRESS, PeerInfo};
pub use behaviour::anchors::MAX_ANCHORS;
pub use behaviour::state::Kademlia;
pub use behaviour::stats::{KadTotals, QueryStats};
pub use behaviour::types::{Command, Event, QueryId, Timer};
pub use config::Config;
pub use error::{QueryError, RecordError};
pub use key::{Distance, Key};
pub use message::{Message, Record};
#[cfg(feature = "redb")]
pub use redb_store::RedbRecordStore;
pub use routing::{AUTO_QUERY_IDS, ContentRouting, PeerRouting};
pub use store::{MemoryStore, RecordStore};
