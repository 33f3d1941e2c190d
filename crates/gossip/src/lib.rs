//! # meshwork-gossip: topic broadcast over a self-healing overlay
//!
//! This crate is a **pure state machine**: no IO, no clock, no global RNG, no tokio. [`Gossip`] implements
//! [`meshwork_wire::Protocol`]; a driver (the simulator `meshwork-sim`, or the node runtime) feeds it
//! messages, commands, timers and connection events with the current time, and carries out the sends,
//! dials, disconnects and timers it asks for. Its RNG is its own, seeded by the constructor, so a run is
//! reproducible.
//!
//! ## The model
//!
//! Two protocols by Leitão, Pereira and Rodrigues, layered as in their papers and in iroh-gossip:
//!
//! - **Membership: HyParView** ("HyParView: a membership protocol for reliable gossip-based broadcast",
//!   DSN 2007). Each node keeps a small *active view* (5 peers: the connections it keeps, over which
//!   broadcast runs) and a larger *passive view* (30 peers known in reserve). Joining is `Join` to a contact
//!   plus `ForwardJoin` random walks (active walk length 6, passive walk length 3); a free slot in the
//!   active view is filled by `Neighbor` requests to passive peers, with high priority (which the receiver
//!   cannot refuse) for a node that is alone; a periodic `Shuffle` walk refreshes the passive views (every
//!   60 s once both views are full and the active view unchanged, at every 10 s repair round
//!   otherwise). Three
//!   additions keep the overlay in one piece and its views full: an evicted peer is told who took its
//!   slot and asks that peer first; "alone" means two slots free or more, not only none; and a refusal
//!   names a peer refused shortly before, so the last nodes with a free slot find each other.
//!   See [`hyparview`](crate#membership-hyparview).
//! - **Broadcast: Plumtree** ("Epidemic Broadcast Trees", SRDS 2007), with **one tree per origin**.
//!   Active links are *eager* (full messages pushed) or *lazy* (ids announced in batched `IHave`s) for
//!   each origin. Duplicates answer `Prune` (the link turns lazy for that origin), announced messages that
//!   do not arrive in time are fetched with `Graft`, and an announcement of a much shorter path moves the
//!   tree link there (`Shortcut`, the optimisation of §3.8), the neighbour on probation as our parent
//!   (hop counts are the sender's word: `plumtree/trials.rs`). An origin's first broadcast floods the
//!   active view; from then on its messages follow the tree of first arrivals, which is
//!   near-shortest-path from that origin, so redundancy stays near zero (RMR ≈ 0) with flood's hop
//!   counts. A new neighbour is told of recent messages, so a node that was cut off catches up. It joins the trees that have formed
//!   here lazily (the paper adds it eagerly): after half the nodes of 1,000 crash, eager new links
//!   cost every tree's next message a duplicate per link. Over the next 100 messages of 5 publishers
//!   (`meshsim gossip --publishers 5 --messages 100 --fail 0.5`, seeds 1-6, medians) that was 0.036
//!   duplicates per delivery; lazy, 0.022, which is the repair's grafts racing each other: a node
//!   below a node that lost its tree link grafts too, about when its parent's graft is answered, and
//!   its parent's copy then comes as a duplicate. So each tree remembers its **parent** here (the
//!   neighbour whose copy of its last message came first), and an `IHave` names the tree of each
//!   message it announces ([`TreeTag`], four bytes): a node whose parent on that tree is alive waits
//!   a graft wait more for the parent's copy before grafting (unless the parent announces the
//!   message meanwhile: it pushed it elsewhere), and a node whose parent's link closed,
//!   the node nearest the break, grafts after only [`Config::graft_timeout_min`], since no copy comes
//!   from above and the nodes below wait for its copy. A graft's retry waits a round trip with its
//!   variation (at least 1.25 times the mean), not the graft wait, which the driver's alike handshake
//!   samples kept near the mean: a third of the repair's grafts were retries before an answer that was
//!   coming. Over the 20 of seeds 1-23 where a publisher survives half the nodes crashing
//!   (`--fail 0.5`), the median duplicates per delivery after the crash went from 0.0150 to 0.0109
//!   (the retry), then 0.0088 (the parent; 17 seeds at or under 0.01, the worst 0.0117 with four
//!   trees to mend), and the last delivery's p99 after the crash from 1,270 ms to 1,098. With 80%
//!   crashed, over the 7 of seeds 1-12 where a publisher survives: 0.0074 to 0.0035, but the p99
//!   from 654 ms to 835, since there a node often hears of a message before the parent it waits
//!   for does (the wait for the parent was two graft waits then). Counting each duplicate by how
//!   its copy came then showed where the rest came from. Over half were §3.8's shortcut: a copy
//!   that came after a lazy neighbour had announced it at fewer hops moved the tree link to that
//!   neighbour, which turned its link eager just before the copy was forwarded, so the copy went
//!   straight back to a node that held it; a neighbour whose announcement of a message came before
//!   we forward it is not pushed it ([`TreeStats::pushes_spared`]; unless its path was longer than
//!   ours by the optimisation's threshold, the one case where it is still told). And a node whose
//!   graft brings the copy after it waited for its parent now prunes that parent at once
//!   ([`TreeStats::silent_parents_pruned`]), before it forwards the copy: the parent's late copy is
//!   then mostly never sent, and ours does not go up to it. It prunes only once the copy came, only
//!   the parent of the tree the copy is on, and only for a message newer than the tree's last here:
//!   which tree an announced id belongs to is its announcer's word until then, pruning at the graft
//!   let a neighbour prune our honest parents with made-up ids, and an old message replayed once it
//!   left the seen cache was never the parent's to push. With both, a second graft wait for the
//!   parent bought little, so the wait is one. At 1,000 nodes with 5 publishers and half of them
//!   crashing (`--fail 0.5`), over the 11 of seeds 1-68 where four or five publishers survive,
//!   duplicates per delivery after the crash went from 0.0109-0.0153 to 0.0044-0.0071 (five
//!   survive: 0.0115-0.0153 to 0.0063-0.0071), with the after-crash p99 at −9% to +5% of before;
//!   the shortcut's fix alone gave 0.0051-0.0097, and two graft waits with the prune 0.0033-0.0062
//!   at −4% to +11% of the p99. With 80% crashed (seeds 1-10 where a publisher survives) it went
//!   from 0.0021-0.0041 to 0.0009-0.0029, but the p99's median from 820 ms to 960: there a node's
//!   copy pushed up to a parent still repairing was often the fastest path down the rest of the
//!   parent's subtree.
//!   An origin with no eager link left floods its next message.
//!   Of a lazy link's two ends, one announcing a message is enough: a neighbour that announced it
//!   to us holds it, so it is not told back, whether its `IHave` came before the message or while
//!   ours waited for the batch ([`TreeStats::announcements_spared`]) — unless our path is shorter
//!   than the neighbour's by the optimisation's threshold, since our announcement is what moves its
//!   tree link to us (§3.8). Sparing those too cost the repairs after a crash some shortcuts: with 50%
//!   crashed, over the 20 of seeds 1-24 where a publisher survives, the median duplicates per
//!   delivery after the crash went from 0.0153 to 0.0165 (worse in 16 seeds); with the
//!   exception, 0.0149 (worse in 12: no change beyond the noise). On a tree of near-shortest paths
//!   both ends of a lazy link get a message at nearly the same time, so the two announcements
//!   still cross more often than not.
//!
//! ## Many origins, and tail latency
//!
//! In a coin every node is an origin (of its wallets' transactions), so a node keeps trees for thousands
//! of origins: a tree is one bit per active-view slot, about 100 bytes an origin, 16,384 origins by default
//! ([`Config::max_origins`]; the least recently used quarter is forgotten when full). Once every origin
//! has published, every message follows its origin's tree: in `meshsim gossip` at 2,000 nodes with every
//! node publishing, RMR stays near 0 and the wire carries about 1.95 bytes per payload byte delivered
//! (flood: 4.08), and with each node's upload limited, gossip still reaches every node at rates where
//! flood's queues lose some. What per-origin trees cannot make cheap is an origin's *first* message:
//! it floods. For a network of many origins that publish rarely, [`Trees::Shared`] sends the messages
//! of origins without a tree along one tree shared by all (the paper's single eager set, pruned by
//! duplicates with `PruneShared`): a third of a flood's copies at 10,000 nodes (half at 2,000 nodes
//! under load, where grafts race the long tree), but paths two to three times flood's. Per-origin
//! trees suit blocks (few origins, latency first); the shared tree trades latency for bytes where
//! origins are many and rare. [`Trees::Borrow`] keeps most of the latency: a node without a tree of
//! its own sends along the tree of a *lender*, a node a link or two away that published on its own
//! ([`TreeMessage::Borrowed`]). Any origin's tree spans the network, and this one is rooted a link or
//! two from the new origin, so the message takes near-shortest paths without a flood; only the nodes
//! with no lender that near flood, and a node forms its own tree after [`BORROW_LIMIT`] borrowed
//! messages. With neighbours only as lenders, a third of the nodes flood when every node publishes in
//! turn (a dominating set of the overlay); with two links ([`Config::lender_hops`], the default), a
//! tenth. At 2,000 nodes with every message from a new origin, RMR is 0.31 (per-origin: 3.0;
//! neighbours only: 0.93) and the wire carries 2.23 bytes per payload byte (neighbours only 3.18,
//! flood 4.08), with the last delivery's p99 at 1.27× flood's (neighbours only: 1.16×). How many new
//! origins have a lender that near is what decides: at 10,000 nodes, 500 new origins at 200 a second
//! through 200 kB/s uplinks (`meshsim gossip --nodes 10000 --publishers all --trees borrow
//! --payload-bytes 256 --messages 500 --rate 200 --upload-bytes-per-sec 200000`), only 36% borrow,
//! and RMR is 1.96 (4.73 bytes per payload byte against flood's 4.07, p99 2.15× flood's). A borrowed
//! tree is shaped by its own origin's messages only: duplicates of borrowed messages prune nothing and
//! their hop counts move no link, since the flows of many origins pruning one tree leave nodes off it.
//! [`Config::trees`] chooses. Under load, with each node's upload limited, `meshsim gossip --nodes 2000
//! --publishers all --trees borrow --payload-bytes 256 --messages 500 --rate 50,200,800
//! --upload-bytes-per-sec 200000` delivers every message to every node at each rate, as flood does,
//! with 3.02, 2.04 and 1.87 bytes per payload byte (flood 4.08) and the last delivery's p99 at 1.30×,
//! 0.95× and 0.63× flood's (a flood's duplicates queue behind each other where a tree's copies do not).
//!
//! A message a tree lost is fetched after an `IHave` and a wait. The paper's wait is a fixed timeout;
//! here it is learnt like TCP's retransmission timeout (RFC 6298: `SRTT + 4·RTTVAR`), within 5 to
//! 300 ms, from two things: the round trips of our grafts and those the driver measured
//! ([`Command::PeerRoundTrip`], the QUIC handshake's), so on a LAN or loopback a repair costs
//! milliseconds; and how late the tree's own copies came after their first `IHave` (zero when first),
//! including those that came after we had grafted, since a round trip measured on an idle link says
//! nothing of a copy queued behind a busy uplink. At 2,000 nodes publishing 800 messages a second
//! through 200 kB/s uplinks (`meshsim gossip --publishers all --trees borrow --rate 800
//! --upload-bytes-per-sec 200000`), learning lateness cut grafts from 333,264 to 206,710 and RMR
//! from 0.98 to 0.82. A lost message gives no lateness sample, so losses do not lengthen the wait.
//! A late copy raises the estimate at once; a timely one lowers it by RFC 6298's full step only if
//! it comes 25 ms or more after the previous sample, and by a proportional share if sooner, so the
//! estimate comes down over time rather than over messages (at 800 a second, eight messages are ten
//! milliseconds). Over the same sweep that cut grafts again, from 204,442 to 124,980, and at 800
//! messages a second RMR from 0.82 to 0.72 and the wire's bytes per payload byte from 3.30 to 3.13
//! (flood 4.08), with the last delivery's p99 at 1,964 ms against 2,046 (flood 2,331).
//!
//! On top of these:
//!
//! - **Topics** ([`TopicId`]): a node delivers and relays only topics it subscribed to, each with its own
//!   maximum payload. The nodes of one overlay are meant to share their topics (one overlay per
//!   application, as one swarm per topic in iroh-gossip).
//! - **Signed, content-addressed messages** ([`GossipMessage`]): the id is the first 16 bytes of the
//!   blake3 hash of (origin, topic, sequence, payload); the origin signs the same bytes in
//!   [`MESSAGE_NAMESPACE`]. The signature is
//!   verified before anything else is done with a message. A bounded seen cache (count and age) suppresses
//!   duplicates and answers grafts. On a topic subscribed with `batch_verify: true`, messages that come
//!   close together under load wait up to [`Config::verify_wait`] (2 ms), unseen, and their signatures
//!   are checked in one Ed25519 batch of up to [`Config::verify_batch`] (64): a check alone costs about
//!   what four do in a batch. A message that comes alone is checked at once; a forged one in a batch is
//!   found, refused and charged to its sender, and the others go through
//!   ([`GossipStats::signature_batches`], `tests/batch_verify.rs`).
//! - **Validation before forwarding**: on a topic subscribed with `validate: true`, a new message is
//!   announced by [`Event::Validate`] and goes nowhere until the application answers
//!   [`Command::Validated`] with a [`Verdict`] (possibly later). Only accepted messages are delivered and
//!   forwarded; rejected ones count against the peer that sent them. Pending validations are bounded.
//! - **Peer scoring and limits** ([`Penalty`]): bad signatures, rejected messages, broken `IHave` promises
//!   and floods (a token bucket per peer, in driver time) lower a peer's score; at the threshold the peer is
//!   removed from both views, disconnected and refused.
//! - **Slow is not lying.** A congested honest link delays and drops; the scores tell it from a liar
//!   (see `tests/congestion.rs`). An announcer that cannot answer a graft says so
//!   ([`TreeMessage::Decline`], sent also when the driver hands an answer back undelivered,
//!   [`Protocol::undelivered`](meshwork_wire::Protocol::undelivered), and sent again with the next
//!   announcements when the driver hands the decline itself back), and the grafter asks the next one
//!   at once; a promise is given four times the announcer's slowest recent answer, and the longest
//!   wait ([`Config::graft_promise_max`]) until the announcer answers a later graft, which proves it
//!   skipped this one (its answers may all be queued behind a full link); copies pushed before our `Prune` arrived are not waste (within a window that
//!   each further `Prune` of ours extends, and up to a bounded count); relaying
//!   earns room for waste ([`ScoreConfig::relay_credit`]). Grafts, prunes, declines and membership
//!   messages are control messages ([`Protocol::is_control`](meshwork_wire::Protocol::is_control)): the
//!   node runtime keeps room for them in a send queue full of data.
//! - **The [`Broadcast`] capability**: the small trait other crates use to publish, subscribe and validate.
//!
//! ## Membership (HyParView)
//!
//! Active view links are the connections the driver keeps: HyParView asks for them with
//! [`Output::Dial`](meshwork_wire::Output::Dial) and [`Output::Disconnect`](meshwork_wire::Output::Disconnect),
//! and learns of failures from [`Input::PeerDown`](meshwork_wire::Input::PeerDown).
//!
//! **Addresses travel with peers**, so a node that runs gossip alone can dial the peers it learns of.
//! The driver reports the address each connection comes from ([`Command::PeerAddress`]); every
//! membership message that names a peer carries its address ([`PeerEntry`]): a contact names a joiner
//! with the address it observed, a shuffle's first hop names the origin likewise, and samples carry
//! what their sender knows. [`Gossip::address_of`] answers the driver's "where do I dial this peer?".
//! A told address is a claim: it never replaces an observed one, it must be no more local than its
//! teller's own address, only observed addresses count for the prefix limits, and one message makes
//! us dial at most one peer we were told of. The book is bounded (4,096 entries) and forgets a peer
//! that leaves every view.
//!
//! ## Example: three nodes in the simulator
//!
//! ```
//! use meshwork_gossip::{Command, Config, Event, Gossip, TopicId, TopicOptions};
//! use meshwork_sim::{NodeId, Sim, SimConfig};
//! use meshwork_wire::Instant;
//! use std::time::Duration;
//!
//! let mut sim = Sim::new(SimConfig::new(1));
//! let nodes = sim.add_nodes(3, |init| Gossip::new(init.keypair.clone(), Config::default(), init.rng_seed))?;
//! let topic = TopicId::from_name("chat");
//! let contact = sim.peer_id(nodes[0]).unwrap();
//! for &node in &nodes {
//!     sim.command(node, Command::Subscribe(topic, TopicOptions::default()))?;
//!     if node != nodes[0] {
//!         sim.command(node, Command::Join(vec![contact]))?;
//!     }
//! }
//! sim.advance(Duration::from_secs(1), |_, _, _| {});
//! sim.command(nodes[2], Command::Publish(topic, b"hello".to_vec()))?;
//! let mut delivered = 0;
//! sim.advance(Duration::from_secs(1), |_, _, event| {
//!     if let Event::Delivered { .. } = event { delivered += 1 }
//! });
//! assert_eq!(delivered, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod api;
mod ban;
mod broadcast;
mod bucket;
mod cache;
mod config;
mod error;
mod hyparview;
mod message;
mod plumtree;
mod score;
mod state;

pub use ban::Ban;
pub use broadcast::Broadcast;
pub use config::{AdmissionConfig, Config, ScoreConfig, Trees};
pub use error::PublishError;
pub use message::{
    Announcement, GossipMessage, MAX_IHAVE, MAX_PAYLOAD, MAX_SHUFFLE, MESSAGE_ID_LEN, MESSAGE_NAMESPACE,
    MembershipMessage, Message, MessageId, PeerEntry, TOPIC_ID_LEN, TopicId, TreeMessage, TreeRef, TreeTag,
};
pub use plumtree::{BORROW_LIMIT, TreeStats};
pub use score::Penalty;
pub use state::{Command, Event, Gossip, GossipStats, Timer, TopicOptions, Verdict};
