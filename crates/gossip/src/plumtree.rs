//! Plumtree broadcast (Leitão, Pereira, Rodrigues, SRDS 2007, "Epidemic Broadcast Trees").
//!
//! Every active link is **eager** (the full message is pushed along it) or **lazy** (only the message id
//! is announced, in batched `IHave`s). All links start eager, so the first broadcast floods; a node that
//! receives a duplicate answers `Prune` and the link turns lazy, so what remains eager is a spanning tree
//! shaped by the first arrivals. When an announced message does not arrive within a timeout, the node sends
//! `Graft` to an announcer, which sends the message and turns the link eager again: the tree heals itself
//! around failures. An `IHave` with a much shorter path than the tree's copy also grafts (the paper's
//! optimisation), so the tree follows the fastest paths.
//!
//! Messages are forwarded only after the application accepts them (see [`crate::Verdict`]).

use std::collections::{HashMap, HashSet, VecDeque};

use meshwork_wire::{BoundedVec, Instant, PeerId};

use crate::cache::{Entry, SeenCache, Status};
use crate::config::Config;
use crate::message::{Announcement, GossipMessage, MAX_IHAVE, MessageId, TreeMessage};
use crate::score::Penalty;
use crate::state::{Timer, Verdict};

/// Announcers remembered per missing message.
const MAX_ANNOUNCERS: usize = 8;

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
}

#[derive(Debug, Default)]
struct Missing {
    announcers: VecDeque<PeerId>,
    grafted: Option<PeerId>,
}

/// Counters for experiments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeStats {
    /// Full messages pushed (eagerly or in answer to a graft).
    pub gossip_sent: u64,
    /// Full messages received.
    pub gossip_received: u64,
    /// Full messages received that were already known.
    pub duplicates: u64,
    /// `IHave` messages sent.
    pub ihave_sent: u64,
    /// `Graft` messages sent.
    pub grafts_sent: u64,
    /// `Prune` messages sent.
    pub prunes_sent: u64,
}

/// The Plumtree state of one node.
#[derive(Debug)]
pub(crate) struct Plumtree {
    neighbours: Vec<PeerId>,
    lazy: HashSet<PeerId>,
    cache: SeenCache,
    missing: HashMap<MessageId, Missing>,
    lazy_queue: Vec<(PeerId, Announcement)>,
    flush_scheduled: bool,
    pending: usize,
    config: Config,
    pub(crate) stats: TreeStats,
}

impl Plumtree {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            neighbours: Vec::new(),
            lazy: HashSet::new(),
            cache: SeenCache::new(config.seen_capacity, config.seen_ttl),
            missing: HashMap::new(),
            lazy_queue: Vec::new(),
            flush_scheduled: false,
            pending: 0,
            config: config.clone(),
            stats: TreeStats::default(),
        }
    }

    pub(crate) fn eager_peers(&self) -> impl Iterator<Item = &PeerId> + '_ {
        self.neighbours.iter().filter(|p| !self.lazy.contains(p))
    }

    pub(crate) fn lazy_peers(&self) -> impl Iterator<Item = &PeerId> + '_ {
        self.neighbours.iter().filter(|p| self.lazy.contains(p))
    }

    pub(crate) fn cached(&self, id: &MessageId) -> Option<&GossipMessage> {
        self.cache.get(id).map(|e| &e.message)
    }

    pub(crate) fn pending_validations(&self) -> usize {
        self.pending
    }

    pub(crate) fn neighbor_up(&mut self, peer: PeerId) {
        if !self.neighbours.contains(&peer) {
            self.neighbours.push(peer);
        }
        self.lazy.remove(&peer);
    }

    pub(crate) fn neighbor_down(&mut self, peer: PeerId) {
        self.neighbours.retain(|p| *p != peer);
        self.lazy.remove(&peer);
    }

    fn make_eager(&mut self, peer: PeerId) {
        self.lazy.remove(&peer);
    }

    fn make_lazy(&mut self, peer: PeerId) {
        if self.neighbours.contains(&peer) {
            self.lazy.insert(peer);
        }
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
            message: message.clone(),
            hops: 0,
            status: Status::Accepted,
            parent: None,
        };
        self.insert(now, id, entry);
        out.push(PtOut::Deliver { id, message, hops: 0 });
        self.forward(id, None, out);
    }

    fn insert(&mut self, now: Instant, id: MessageId, entry: Entry) {
        let dropped = self.cache.insert(now, id, entry);
        self.pending = self.pending.saturating_sub(dropped.len());
    }

    /// A full message from `from`, whose signature the caller has checked.
    pub(crate) fn on_gossip(
        &mut self,
        now: Instant,
        from: PeerId,
        id: MessageId,
        message: GossipMessage,
        hops: u16,
        out: &mut Vec<PtOut>,
    ) {
        self.stats.gossip_received += 1;
        if self.cache.contains(&id) {
            self.stats.duplicates += 1;
            if self.neighbours.contains(&from) && !self.lazy.contains(&from) {
                self.make_lazy(from);
                self.stats.prunes_sent += 1;
                out.push(PtOut::Send(from, TreeMessage::Prune));
            }
            return;
        }
        self.missing.remove(&id);
        self.make_eager(from);
        if self.pending >= self.config.max_pending_validations {
            return; // Dropped unseen: a later copy may get through once the queue drains.
        }
        let entry = Entry {
            message: message.clone(),
            hops,
            status: Status::Pending { from: Some(from) },
            parent: Some(from),
        };
        self.insert(now, id, entry);
        self.pending += 1;
        out.push(PtOut::Validate {
            id,
            message,
            from: Some(from),
        });
    }

    /// The application's verdict on a pending message. Returns false if no such message was pending.
    pub(crate) fn validated(&mut self, id: MessageId, verdict: Verdict, out: &mut Vec<PtOut>) -> bool {
        let Some(entry) = self.cache.get_mut(&id) else {
            return false;
        };
        let Status::Pending { from } = entry.status else {
            return false;
        };
        self.pending = self.pending.saturating_sub(1);
        match verdict {
            Verdict::Accept => {
                entry.status = Status::Accepted;
                out.push(PtOut::Deliver {
                    id,
                    message: entry.message.clone(),
                    hops: entry.hops,
                });
                self.forward(id, from, out);
            }
            Verdict::Reject => {
                entry.status = Status::Dropped;
                if let Some(from) = from {
                    out.push(PtOut::Penalty(from, Penalty::Rejected));
                }
            }
            Verdict::Ignore => entry.status = Status::Dropped,
        }
        true
    }

    fn forward(&mut self, id: MessageId, except: Option<PeerId>, out: &mut Vec<PtOut>) {
        let Some(entry) = self.cache.get(&id) else {
            return;
        };
        let hops = entry.hops.saturating_add(1);
        for peer in &self.neighbours {
            if Some(*peer) == except {
                continue;
            }
            if self.lazy.contains(peer) {
                let announcement = Announcement { id, hops: entry.hops };
                self.lazy_queue.push((*peer, announcement));
            } else {
                self.stats.gossip_sent += 1;
                let message = entry.message.clone();
                out.push(PtOut::Send(*peer, TreeMessage::Gossip { message, hops }));
            }
        }
        if !self.lazy_queue.is_empty() && !self.flush_scheduled {
            self.flush_scheduled = true;
            out.push(PtOut::Schedule(self.config.ihave_interval, Timer::FlushIHave));
        }
    }

    /// Sends the batched announcements.
    pub(crate) fn flush_ihave(&mut self, out: &mut Vec<PtOut>) {
        self.flush_scheduled = false;
        let mut by_peer: HashMap<PeerId, Vec<Announcement>> = HashMap::new();
        for (peer, announcement) in self.lazy_queue.drain(..) {
            by_peer.entry(peer).or_default().push(announcement);
        }
        let mut peers: Vec<_> = by_peer.into_iter().collect();
        peers.sort_by_key(|(peer, _)| *peer); // deterministic order
        for (peer, ids) in peers {
            for chunk in ids.chunks(MAX_IHAVE) {
                let Ok(ids) = BoundedVec::try_from(chunk.to_vec()) else {
                    continue;
                };
                self.stats.ihave_sent += 1;
                out.push(PtOut::Send(peer, TreeMessage::IHave { ids }));
            }
        }
    }

    pub(crate) fn on_ihave(&mut self, from: PeerId, ids: &[Announcement], out: &mut Vec<PtOut>) {
        for announcement in ids {
            if let Some(entry) = self.cache.get(&announcement.id) {
                let (parent, hops, accepted) = (entry.parent, entry.hops, entry.status == Status::Accepted);
                if accepted && let Some(parent) = parent {
                    self.maybe_optimize(from, parent, hops, announcement.hops, out);
                }
                continue;
            }
            if !self.missing.contains_key(&announcement.id) {
                if self.missing.len() >= self.config.max_missing {
                    continue;
                }
                let timer = Timer::Graft(announcement.id);
                out.push(PtOut::Schedule(self.config.graft_timeout, timer));
            }
            let missing = self.missing.entry(announcement.id).or_default();
            if missing.announcers.len() < MAX_ANNOUNCERS && !missing.announcers.contains(&from) {
                missing.announcers.push_back(from);
            }
        }
    }

    /// The paper's optimisation (§3.8): a much shorter path through a lazy link replaces the tree link.
    fn maybe_optimize(
        &mut self,
        from: PeerId,
        parent: PeerId,
        hops: u16,
        announced: u16,
        out: &mut Vec<PtOut>,
    ) {
        let via_announcer = announced.saturating_add(1);
        if parent != from
            && self.lazy.contains(&from)
            && via_announcer.saturating_add(self.config.optimization_threshold) <= hops
            && self.neighbours.contains(&parent)
            && !self.lazy.contains(&parent)
        {
            self.stats.grafts_sent += 1;
            self.stats.prunes_sent += 1;
            out.push(PtOut::Send(from, TreeMessage::Graft { id: None }));
            out.push(PtOut::Send(parent, TreeMessage::Prune));
            self.lazy.remove(&from);
            self.lazy.insert(parent);
        }
    }

    /// The graft timer of a missing message fired.
    pub(crate) fn on_graft_timer(&mut self, id: MessageId, out: &mut Vec<PtOut>) {
        if self.cache.contains(&id) {
            self.missing.remove(&id);
            return;
        }
        let Some(missing) = self.missing.get_mut(&id) else {
            return;
        };
        if let Some(previous) = missing.grafted.take() {
            out.push(PtOut::Penalty(previous, Penalty::BrokenPromise));
        }
        while let Some(peer) = missing.announcers.pop_front() {
            if self.neighbours.contains(&peer) {
                missing.grafted = Some(peer);
                self.lazy.remove(&peer);
                self.stats.grafts_sent += 1;
                out.push(PtOut::Send(peer, TreeMessage::Graft { id: Some(id) }));
                out.push(PtOut::Schedule(self.config.graft_retry, Timer::Graft(id)));
                return;
            }
        }
        self.missing.remove(&id);
    }

    pub(crate) fn on_graft(&mut self, from: PeerId, id: Option<MessageId>, out: &mut Vec<PtOut>) {
        self.make_eager(from);
        let Some(entry) = id.and_then(|id| self.cache.get(&id)) else {
            return;
        };
        if entry.status == Status::Accepted {
            self.stats.gossip_sent += 1;
            let message = entry.message.clone();
            let hops = entry.hops.saturating_add(1);
            out.push(PtOut::Send(from, TreeMessage::Gossip { message, hops }));
        }
    }

    pub(crate) fn on_prune(&mut self, from: PeerId) {
        self.make_lazy(from);
    }

    /// Forgets expired cache entries.
    pub(crate) fn sweep(&mut self, now: Instant) {
        let dropped = self.cache.expire(now);
        self.pending = self.pending.saturating_sub(dropped.len());
        let cache = &self.cache;
        self.missing.retain(|id, _| !cache.contains(id));
    }

    /// Whether an identical copy (same id, same signature) is already in the cache: it was verified then.
    pub(crate) fn is_known_copy(&self, id: &MessageId, message: &GossipMessage) -> bool {
        self.cache
            .get(id)
            .is_some_and(|e| e.message.signature == message.signature)
    }

    pub(crate) fn cache_len(&self) -> usize {
        self.cache.len()
    }
}
