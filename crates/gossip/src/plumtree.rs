//! Plumtree broadcast (Leitão, Pereira, Rodrigues, SRDS 2007, "Epidemic Broadcast Trees").
//!
//! Every active link is **eager** (the full message is pushed along it) or **lazy** (only the message id
//! is announced, in batched `IHave`s), and that per origin: each origin has its own tree (see [`links`]).
//! All links start eager, so an origin's first broadcast floods; a node that receives a duplicate answers
//! `Prune` and the link turns lazy for that origin, so what remains eager is a spanning tree shaped by the
//! first arrivals. When an announced message does not arrive within a timeout, the node sends
//! `Graft` to an announcer, which sends the message and turns the link eager again: the tree heals
//! itself around failures. An `IHave` announcing a path `threshold` hops shorter than the tree's copy
//! makes the announcer's link the tree link and prunes the old one (the optimisation of §3.8), so a tree
//! bent by repairs straightens out again.
//!
//! Messages are forwarded only after the application accepts them (see [`crate::Verdict`]).

mod announce;
mod answers;
mod in_flight;
mod lazy;
mod lenders;
mod links;
mod missing;
mod offers;
mod receive;
mod rtt;
mod stats;
mod trials;

use std::collections::{HashMap, HashSet};

use meshwork_wire::{Instant, PeerId};

use crate::cache::{Entry, SeenCache, Status};
use crate::config::{Config, Trees};
use crate::message::{Announcement, GossipMessage, MAX_IHAVE, MessageId, TreeMessage, TreeRef};
use crate::score::Penalty;
use crate::state::Timer;
use in_flight::InFlight;
use lenders::Lenders;
use links::Links;
use missing::Missing;
pub(crate) use offers::GraftCheck;
use offers::Offers;
use rtt::GraftWait;
pub use stats::TreeStats;
use trials::Trials;

/// Announcers remembered per missing message.
const MAX_ANNOUNCERS: usize = 8;
/// Grafts whose answer we wait for at most (beyond it a graft is sent without holding its announcer to
/// it): the missing messages times the announcers grafted for each, with room to spare.
const MAX_PROMISES: usize = 4 * 4096;
/// Peers whose in-flight window is kept at most (neighbours, and peers whose link ended lately).
const MAX_IN_FLIGHT_WINDOWS: usize = 4096;
/// Grafted messages remembered at most, to learn how late the tree's copy came after all
/// ([`Plumtree::repaired`]): a sample lost to the bound only slows learning.
const MAX_REPAIRED: usize = 1024;

/// Messages a node publishes on borrowed trees ([`Trees::Borrow`]) before it floods once to form a tree of
/// its own: a node that publishes often earns its own tree's shortest paths, and one that publishes a few
/// messages never pays a flood.
pub const BORROW_LIMIT: u32 = 8;

/// How long a neighbour that declined a graft is asked only after the other announcers of a message:
/// long enough for a congested send queue to drain, short enough that a neighbour whose link recovered
/// is soon grafted first again.
const DECLINE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);

/// What the broadcast layer asks of the node.
#[derive(Debug)]
pub(crate) enum PtOut {
    Send(PeerId, TreeMessage),
    /// A new message waits for the application's verdict.
    Validate {
        id: MessageId,
        message: GossipMessage,
        from: Option<PeerId>,
    },
    /// An accepted message, to deliver to the application.
    Deliver {
        id: MessageId,
        message: GossipMessage,
        hops: u16,
    },
    Schedule(std::time::Duration, Timer),
    Penalty(PeerId, Penalty),
    /// Something from the peer was refused ([`meshwork_wire::Output::Dropped`]).
    Dropped(PeerId, meshwork_wire::DropReason),
}

/// A graft of ours that its announcer has not answered yet: when it went, and its number among our
/// grafts ([`Plumtree::replied`] compares them).
#[derive(Clone, Copy, Debug)]
pub(super) struct Promise {
    grafted: Instant,
    seq: u64,
}

/// The Plumtree state of one node.
#[derive(Debug)]
pub(crate) struct Plumtree {
    links: Links,
    cache: SeenCache,
    missing: HashMap<MessageId, Missing>,
    /// How many entries of `missing` each neighbour's announcements made: one neighbour makes at most
    /// its share of [`Config::max_missing`] among a full active view's neighbours, so neighbours
    /// announcing made-up ids cannot take every place that honest announcements need.
    missing_by: HashMap<PeerId, usize>,
    lazy_queue: Vec<(PeerId, Announcement)>,
    /// Announcements neighbours made to us, since the last flush, of messages we hold and have queued
    /// to announce to them: those are not sent. At most as many as the queue holds.
    told: HashSet<(PeerId, MessageId)>,
    /// What we announced to each neighbour, and what its grafts may still cost us.
    offers: Offers,
    flush_scheduled: bool,
    pending: usize,
    /// How long an announced message may take before we graft it.
    graft_wait: GraftWait,
    /// Messages a graft of ours brought, with when they were first announced: if the tree's own copy
    /// still comes, we grafted too early, and its lateness teaches the wait. At most
    /// [`MAX_REPAIRED`], each for a few graft timeouts.
    repaired: HashMap<MessageId, Instant>,
    /// Neighbours that grafted a message while it waited for the application's verdict (it came
    /// again after the cache forgot it, and was announced before): it goes to them once accepted,
    /// and a decline does if it is not, so they are not left waiting out their promise. At most a
    /// grafter per link for each of [`Config::max_pending_validations`] messages; swept with the
    /// cache.
    grafted_pending: HashMap<MessageId, Vec<PeerId>>,
    /// Grafts sent and not yet answered by the announcer grafted: each is a broken promise if the
    /// message does not come from that announcer within [`Config::graft_promise`] once a later graft
    /// to it was answered, or within [`Config::graft_promise_max`] in any case.
    promises: HashMap<(PeerId, MessageId), Promise>,
    /// The number of our next graft: grafts are numbered in the order they go out.
    next_graft: u64,
    /// Per neighbour, the number of the latest graft of ours it answered or declined.
    replied: HashMap<PeerId, u64>,
    /// Per neighbour, the slowest recent answer to our grafts (it decays by an eighth with each faster
    /// one): how long its link's queue makes us wait, which a promise is given four times over.
    answer_lag: HashMap<PeerId, std::time::Duration>,
    /// Per peer whose link we pruned or lost, until when the copies it pushed before it heard of it
    /// may still arrive, and how many more of them are excused: [`Plumtree::excuse`].
    in_flight: HashMap<PeerId, InFlight>,
    /// When each neighbour last declined a graft of ours: it is grafted after the other announcers for
    /// a while ([`DECLINE_BACKOFF`]), since its link to us is congested or its budget spent.
    declined: HashMap<PeerId, Instant>,
    /// With [`Trees::Borrow`]: the nodes within [`Config::lender_hops`] whose own messages (on their
    /// own trees) came through us. Our messages may borrow their trees.
    lenders: Lenders,
    /// Messages we published on borrowed trees; `None` once we published on our own tree.
    borrowed: Option<u32>,
    /// When the driver last dropped a data message (a copy or an `IHave`) to each neighbour because its
    /// send queue was full: that neighbour reads slower than we send ([`Plumtree::full_links`]).
    full_links: HashMap<PeerId, Instant>,
    /// The round trip the driver measured to each peer ([`crate::Command::PeerRoundTrip`]), at most
    /// [`MAX_IN_FLIGHT_WINDOWS`] peers: the nearest lender is borrowed from.
    round_trips: HashMap<PeerId, std::time::Duration>,
    /// The parents shortcuts made, on probation, and the neighbours whose claims of fewer hops were
    /// struck ([`trials`]).
    trials: Trials,
    config: Config,
    pub(crate) stats: TreeStats,
}

impl Plumtree {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            links: Links::new(config.max_origins, config.trees),
            cache: SeenCache::new(config.seen_capacity, config.seen_max_bytes, config.seen_ttl),
            missing: HashMap::new(),
            missing_by: HashMap::new(),
            lazy_queue: Vec::new(),
            told: HashSet::new(),
            offers: Offers::new(config),
            flush_scheduled: false,
            pending: 0,
            graft_wait: GraftWait::new(config.graft_timeout_min, config.graft_timeout),
            repaired: HashMap::new(),
            grafted_pending: HashMap::new(),
            promises: HashMap::new(),
            next_graft: 0,
            replied: HashMap::new(),
            answer_lag: HashMap::new(),
            in_flight: HashMap::new(),
            declined: HashMap::new(),
            lenders: Lenders::new(config.lender_hops),
            borrowed: Some(0),
            round_trips: HashMap::new(),
            full_links: HashMap::new(),
            trials: Trials::default(),
            config: config.clone(),
            stats: TreeStats::default(),
        }
    }

    /// Neighbours on the tree of `origin`.
    pub(crate) fn eager_peers(&self, origin: PeerId) -> impl Iterator<Item = &PeerId> + '_ {
        let links = &self.links;
        links
            .neighbours()
            .iter()
            .filter(move |p| !links.is_lazy(&origin, p))
    }

    /// Neighbours only announced to for messages of `origin`.
    pub(crate) fn lazy_peers(&self, origin: PeerId) -> impl Iterator<Item = &PeerId> + '_ {
        let links = &self.links;
        links
            .neighbours()
            .iter()
            .filter(move |p| links.is_lazy(&origin, p))
    }

    /// Origins whose tree has formed here (with [`Trees::Shared`], those with a tree
    /// of their own).
    pub(crate) fn tree_count(&self) -> usize {
        self.links.origins()
    }

    /// The origin of the tree `name` stands for here ([`TreeMessage::Borrowed`]), if any: found by
    /// its tag, and only if the rest of the name matches.
    pub(crate) fn tree_of(&self, name: TreeRef) -> Option<PeerId> {
        self.links
            .origin_of(name.tag())
            .filter(|origin| name.names(origin))
    }

    pub(crate) fn cached(&self, id: &MessageId) -> Option<&GossipMessage> {
        self.cache.get(id).map(|e| &e.message)
    }

    pub(crate) fn pending_validations(&self) -> usize {
        self.pending
    }

    /// A new neighbour: eager for every origin, and told of the messages of the last `catch_up` (at most
    /// one `IHave` worth). Plumtree announces a message only when forwarding it, so a node that was cut off
    /// (all its neighbours failed, or were spammers it banned) would never learn of what it missed; with
    /// the announcement it grafts the missing ones from its new neighbour.
    pub(crate) fn neighbor_up(&mut self, now: Instant, peer: PeerId, out: &mut Vec<PtOut>) {
        self.links.up(peer);
        let since = Instant::from_duration(now.as_duration().saturating_sub(self.config.catch_up));
        for announcement in self.cache.recent(since, MAX_IHAVE) {
            self.lazy_queue.push((peer, announcement));
        }
        self.schedule_flush(out);
    }

    pub(crate) fn neighbor_down(&mut self, now: Instant, peer: PeerId, out: &mut Vec<PtOut>) {
        self.excuse_pushes(now, peer);
        self.links.down(peer);
        // Its shortcuts on probation end without blame, and where it was still the parent, the
        // parents they replaced are asked back.
        for (origin, replaced) in self.trials.close(&peer) {
            if self.links.parent_of(&origin) == links::Parent::Left {
                self.restore_parent(origin, replaced, out);
            }
        }
        self.offers.forget(now, &peer);
        self.declined.remove(&peer);
        self.lenders.forget(&peer);
        // What it promised ends with the link: the graft timers move on to other announcers, and a
        // neighbour that left (a view change, a full queue that timed out) broke nothing.
        self.promises.retain(|(promiser, _), _| *promiser != peer);
        // What it announced goes too: if the link comes back, the peer has forgotten its offers to us
        // (`offers.forget` on its side) and would count a graft for them as waste.
        for missing in self.missing.values_mut() {
            missing.announcers.retain(|(announcer, _)| *announcer != peer);
        }
        self.replied.remove(&peer);
        self.answer_lag.remove(&peer);
        self.full_links.remove(&peer);
    }

    /// How many neighbours had a data message to them dropped by a full send queue within `within`
    /// before `now`.
    pub(crate) fn full_links(&self, now: Instant, within: std::time::Duration) -> usize {
        self.full_links
            .values()
            .filter(|at| now.saturating_duration_since(**at) < within)
            .count()
    }

    /// A message a local publisher signed: accepted at once, delivered and pushed.
    pub(crate) fn publish(
        &mut self,
        now: Instant,
        id: MessageId,
        message: GossipMessage,
        out: &mut Vec<PtOut>,
    ) {
        if self.cache.contains(&id) {
            return;
        }
        let entry = Entry {
            tree: self.tree_to_publish_on(now, message.origin),
            message: message.clone(),
            hops: 0,
            status: Status::Accepted,
            parent: None,
            holders: Vec::new(),
            copies_from: Vec::new(),
        };
        self.insert(now, id, entry);
        out.push(PtOut::Deliver { id, message, hops: 0 });
        self.forward(id, None, out);
    }

    /// The tree our next message follows: our own once it has formed (or with any mode but
    /// [`Trees::Borrow`]), else for up to [`BORROW_LIMIT`] messages the tree of the nearest lender
    /// ([`Lenders::nearest`]). Without a lender our message floods and forms our own tree.
    fn tree_to_publish_on(&mut self, now: Instant, me: PeerId) -> PeerId {
        let Some(borrowed) = self.borrowed.filter(|_| self.config.trees == Trees::Borrow) else {
            return me;
        };
        match self.lenders.nearest(now, me, &self.links, &self.round_trips) {
            Some(lender) if borrowed < BORROW_LIMIT => {
                self.borrowed = Some(borrowed + 1);
                self.stats.published_borrowed += 1;
                lender
            }
            _ => {
                self.borrowed = None;
                me
            }
        }
    }

    fn insert(&mut self, now: Instant, id: MessageId, entry: Entry) {
        let dropped = self.cache.insert(now, id, entry);
        self.pending = self.pending.saturating_sub(dropped.len());
    }

    /// Forgets expired cache entries.
    pub(crate) fn sweep(&mut self, now: Instant) {
        let dropped = self.cache.expire(now);
        self.pending = self.pending.saturating_sub(dropped.len());
        self.forget_arrived();
        let cache = &self.cache;
        self.grafted_pending.retain(|id, _| cache.contains(id));
        self.forget_old_repairs(now);
        self.trials.sweep(now);
        self.in_flight.retain(|_, window| window.until > now);
    }

    /// A round trip the driver measured to `peer`: a sample for the wait before grafting, and the
    /// peer's distance when we choose a tree to borrow. The driver measures a connection before the
    /// peer joins the active view, so any peer is kept; when full, only neighbours are.
    pub(crate) fn round_trip(&mut self, peer: PeerId, rtt: std::time::Duration) {
        self.graft_wait.sample(rtt);
        if self.round_trips.len() >= MAX_IN_FLIGHT_WINDOWS && !self.round_trips.contains_key(&peer) {
            let links = &self.links;
            self.round_trips.retain(|p, _| links.contains(p));
        }
        if self.round_trips.len() < MAX_IN_FLIGHT_WINDOWS || self.round_trips.contains_key(&peer) {
            self.round_trips.insert(peer, rtt);
        }
    }

    /// The smoothed round trip of our grafts, once one was answered.
    pub(crate) fn graft_rtt(&self) -> Option<std::time::Duration> {
        self.graft_wait.srtt()
    }

    pub(crate) fn cache_len(&self) -> usize {
        self.cache.len()
    }
}
