//! What a graft may ask of us: the ids we announced to each neighbour, and the bytes we answer it with.
//!
//! A `Graft` is 35 bytes and its answer the whole message, up to 64 KiB, so grafts are answered only
//! for what they are for in Plumtree: a message we announced to that neighbour by `IHave` (recently:
//! within the seen cache's time to live, while we can still answer), once per id and neighbour, within
//! a token bucket of answer bytes per neighbour ([`Config::graft_burst_bytes`],
//! [`Config::graft_bytes_per_sec`]). A repeated graft or one over the budget is dropped without blame
//! (an honest peer grafts again after its timeout, and the next announcer answers); a graft for an id
//! we never announced to that peer is waste, charged to its allowance like a duplicate on a pruned link.
//!
//! A graft we cannot answer is declined, so the grafter asks another announcer at once and does not
//! hold us to the promise. A `Decline` is control (it may use the send queue's reserve), but a link
//! whose reserve is spent drops it too; then, if it declined a graft for an id we announced to that
//! neighbour, it is **owed**: kept here and sent again with the next batch of announcements, for up
//! to half the grafter's longest wait ([`Config::graft_promise_max`]), unless we answer the graft
//! meanwhile. A decline that never arrived would let the grafter blame us for congestion. At most
//! [`MAX_OWED_PER_PEER`] are owed to one neighbour, so one that never reads holds only its own.

use std::collections::{HashMap, VecDeque};

use meshwork_wire::{Instant, PeerId};

use crate::bucket::TokenBucket;
use crate::config::Config;
use crate::message::MessageId;

/// Whether an announced id was already answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Offer {
    Announced,
    Answered,
}

/// What a graft from a peer is, as far as our announcements to it go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GraftCheck {
    /// We announced the id to the peer and have not answered a graft for it yet.
    Fresh,
    /// We announced it and already answered (or the answer is going out by the tree link).
    Repeated,
    /// We never announced it to the peer (or too long ago to remember).
    Unannounced,
}

/// The ids announced to one neighbour, oldest first, and its answer budget.
#[derive(Debug)]
struct PeerOffers {
    ids: HashMap<MessageId, Offer>,
    order: VecDeque<(Instant, MessageId)>,
    budget: TokenBucket,
}

/// Declines owed at most (dropped by a full send queue, to be sent again): beyond it the oldest is
/// given up, and its grafter may blame us after its longest wait.
const MAX_OWED_DECLINES: usize = 4096;
/// Declines owed to one neighbour at most (one full `IHave`'s worth of ids): a neighbour that never
/// reads cannot push out what is owed to the others.
pub(crate) const MAX_OWED_PER_PEER: usize = 64;
/// Answer budgets of departed neighbours kept at most, until each refills ([`Offers::forget`]).
const MAX_DEPARTED: usize = 4096;

/// The ids announced to each neighbour, bounded per neighbour and in age.
#[derive(Debug)]
pub(crate) struct Offers {
    peers: HashMap<PeerId, PeerOffers>,
    /// The answer budgets of neighbours whose link went down, until they refill: a neighbour that
    /// leaves and comes back (a `Neighbor` request about once a second is within the limits) takes
    /// up the budget it left, not a full one each time, which was 4 MiB of answers a cycle.
    departed: HashMap<PeerId, TokenBucket>,
    /// Declines a full send queue dropped, oldest first, with when the first was dropped.
    owed: VecDeque<(Instant, PeerId, MessageId)>,
    /// The owed declines sent again at the last flush, with when each was first dropped: one dropped
    /// again is owed from that time, not from now.
    resent: HashMap<(PeerId, MessageId), Instant>,
    /// How long an owed decline is worth sending: half the grafter's longest wait for an answer.
    owed_for: std::time::Duration,
    /// Ids remembered per neighbour at most (the seen cache's capacity: more could not be answered).
    capacity: usize,
    burst: f64,
    rate: f64,
    ttl: std::time::Duration,
}

impl Offers {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            peers: HashMap::new(),
            departed: HashMap::new(),
            owed: VecDeque::new(),
            resent: HashMap::new(),
            owed_for: config.graft_promise_max / 2,
            capacity: config.seen_capacity.max(1),
            burst: config.graft_burst_bytes as f64,
            rate: config.graft_bytes_per_sec as f64,
            ttl: config.seen_ttl,
        }
    }

    fn peer(&mut self, peer: PeerId, now: Instant) -> &mut PeerOffers {
        let (burst, departed) = (self.burst, &mut self.departed);
        self.peers.entry(peer).or_insert_with(|| PeerOffers {
            ids: HashMap::new(),
            order: VecDeque::new(),
            budget: departed
                .remove(&peer)
                .unwrap_or_else(|| TokenBucket::full(burst, now)),
        })
    }

    /// Remembers that `id` was announced to `peer` at `now`.
    pub(crate) fn announced(&mut self, now: Instant, peer: PeerId, id: MessageId) {
        let capacity = self.capacity;
        let offers = self.peer(peer, now);
        if offers.ids.insert(id, Offer::Announced).is_none() {
            offers.order.push_back((now, id));
        }
        while offers.order.len() > capacity {
            if let Some((_, old)) = offers.order.pop_front() {
                offers.ids.remove(&old);
            }
        }
    }

    /// What a graft for `id` from `peer` is.
    pub(crate) fn check(&mut self, now: Instant, peer: &PeerId, id: &MessageId) -> GraftCheck {
        let ttl = self.ttl;
        let Some(offers) = self.peers.get_mut(peer) else {
            return GraftCheck::Unannounced;
        };
        // Forget what is older than the seen cache keeps: we could not answer it anyway.
        while let Some((at, old)) = offers.order.front().copied() {
            if now.saturating_duration_since(at) < ttl {
                break;
            }
            offers.order.pop_front();
            offers.ids.remove(&old);
        }
        match offers.ids.get(id) {
            Some(Offer::Announced) => GraftCheck::Fresh,
            Some(Offer::Answered) => GraftCheck::Repeated,
            None => GraftCheck::Unannounced,
        }
    }

    /// Marks `id` answered for `peer`: later grafts for it are repeats.
    pub(crate) fn answered(&mut self, peer: &PeerId, id: &MessageId) {
        if let Some(offer) = self.peers.get_mut(peer).and_then(|o| o.ids.get_mut(id)) {
            *offer = Offer::Answered;
        }
    }

    /// Whether we answered (or are answering) a graft of `peer`'s for `id`.
    pub(crate) fn is_answered(&self, peer: &PeerId, id: &MessageId) -> bool {
        self.peers
            .get(peer)
            .and_then(|o| o.ids.get(id))
            .is_some_and(|offer| *offer == Offer::Answered)
    }

    /// Takes `bytes` from `peer`'s answer budget; false (and nothing taken) if it does not hold them.
    pub(crate) fn spend(&mut self, now: Instant, peer: PeerId, bytes: usize) -> bool {
        let (burst, rate) = (self.burst, self.rate);
        self.peer(peer, now)
            .budget
            .take_amount(now, bytes as f64, burst, rate)
    }

    /// Forgets a neighbour that went down, and the declines we owed it: its grafts' promises ended
    /// with the link on its side. Its answer budget is kept until it refills, for when it comes
    /// back ([`MAX_DEPARTED`] at most: past it, those refilled are dropped, then new ones are not
    /// kept).
    pub(crate) fn forget(&mut self, now: Instant, peer: &PeerId) {
        let (burst, rate) = (self.burst, self.rate);
        if let Some(mut offers) = self.peers.remove(peer)
            && !offers.budget.is_full(now, burst, rate)
        {
            if self.departed.len() >= MAX_DEPARTED {
                self.departed
                    .retain(|_, budget| !budget.is_full(now, burst, rate));
            }
            if self.departed.len() < MAX_DEPARTED {
                self.departed.insert(*peer, offers.budget);
            }
        }
        self.owed.retain(|(_, to, _)| to != peer);
    }

    /// Our decline of `peer`'s graft for `id` was dropped by a full send queue at `now`: it is owed,
    /// if `id` is one we announced to `peer` (a graft for anything else was waste, and its decline a
    /// courtesy), it is not owed already, and `peer` is owed fewer than [`MAX_OWED_PER_PEER`].
    /// Returns whether it is owed. A decline sent again and dropped again keeps the time it was first
    /// dropped, so it is not retried past its use.
    pub(crate) fn owe(&mut self, now: Instant, peer: PeerId, id: MessageId) -> bool {
        let announced = self.peers.get(&peer).is_some_and(|o| o.ids.contains_key(&id));
        let mut to_peer = self.owed.iter().filter(|(_, p, _)| *p == peer);
        if !announced
            || to_peer.clone().any(|(_, _, i)| *i == id)
            || to_peer.nth(MAX_OWED_PER_PEER - 1).is_some()
        {
            return false;
        }
        let first = self.resent.get(&(peer, id)).copied().unwrap_or(now);
        if self.owed.len() >= MAX_OWED_DECLINES {
            self.owed.pop_front();
        }
        self.owed.push_back((first, peer, id));
        true
    }

    /// We answered `peer`'s graft for `id` after all: a decline of it still owed is not.
    pub(crate) fn settle(&mut self, peer: &PeerId, id: &MessageId) {
        self.owed.retain(|(_, p, i)| p != peer || i != id);
    }

    /// Whether declines are owed (the next flush of announcements sends them).
    pub(crate) fn owes(&self) -> bool {
        !self.owed.is_empty()
    }

    /// The owed declines still worth sending at `now`, oldest first; the others are given up. They are
    /// remembered until the next call, in case a full queue drops them again.
    pub(crate) fn take_owed(&mut self, now: Instant) -> Vec<(PeerId, MessageId)> {
        let owed_for = self.owed_for;
        self.resent.clear();
        let mut due = Vec::with_capacity(self.owed.len());
        for (first, peer, id) in self.owed.drain(..) {
            if now.saturating_duration_since(first) < owed_for {
                self.resent.insert((peer, id), first);
                due.push((peer, id));
            }
        }
        due
    }
}
