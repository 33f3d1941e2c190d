//! HyParView membership (Leitão, Pereira, Rodrigues, DSN 2007).
//!
//! Each node keeps a small **active view** (the peers it is connected to, the links broadcast runs on) and
//! a larger **passive view** (peers it knows of, kept in reserve). A new node sends `Join` to a contact,
//! which takes it in and announces it with `ForwardJoin` random walks (§4.2); the node where a walk ends
//! asks the joiner to be its neighbour, and nodes a few hops before the end add it to their passive view.
//!
//! Repair: whenever the active view has a free slot (a peer failed, or evicted us with `Disconnect`),
//! the node asks passive peers with `Neighbor` requests. A node with **no neighbour left** (here: two slots
//! free or more) sends one *high-priority* request, which the receiver must accept even with a full view
//! (it drops a random member to make room), so an isolated node always gets back in; otherwise requests
//! are *low priority*, accepted only by peers with room, and a refusal names a peer refused shortly
//! before, which has room too. A peer that refused is not asked again before the next repair round, and the
//! periodic round retries the free slots (the paper's "repeat with another passive peer"). A node left with
//! no neighbour and no passive peer to ask joins again through its contacts. The paper has TCP keep the
//! two ends of a link agreeing; here a connection outlives a link, so a peer whose view still holds us
//! after we dropped it is told: when broadcast traffic comes from it, and at the next round if a former
//! neighbour is connected while no neighbour of ours.
//!
//! The periodic `Shuffle` walk (in [`shuffle`]) exchanges samples of the views, so passive views
//! stay fresh and dead entries get replaced. Rounds come every
//! [`Config::repair_interval`](crate::Config::repair_interval) (10 s); a node whose views are both
//! full, and whose active view has not changed since its last walk, walks only every
//! [`Config::shuffle_interval`](crate::Config::shuffle_interval) (60 s), which cuts what an idle node
//! sends sixfold; any other node walks at every round. A passive view fills only in an overlay of
//! more than 36 nodes (30 passive, 5 active and the node), so smaller ones walk at every round
//! (196 bytes a second a node, idle, at 20 nodes). Settling instead a node whose last walk taught it
//! nothing lets a neighbour that answers each walk at once with nothing put the walks off, and under
//! `meshsim sybil-gossip --settle-secs 30` honest delivery fell from 0.831 to 0.808 over 48 runs, so
//! the rule waits for a signal an attacker cannot forge.
//!
//! The paper trusts every peer. Against Sybils (fresh identities are free) the views are guarded in
//! [`admission`]: membership requests are rate-limited per peer and joins per IP prefix, an IP prefix may
//! hold only a few slots of each view, one neighbour may fill only a share of the passive view, a
//! `ShuffleReply` is taken only in answer to a shuffle of ours, walks (`ForwardJoin`, `Shuffle`) only
//! from active neighbours, and a newcomer evicts an established neighbour at most once per interval and
//! never one of the longest-lived.
//!
//! Every message that names a peer names it with its address ([`addresses`]), so the node can dial
//! the peers it learns of; what a peer tells is checked before it is dialled.

mod addresses;
mod admission;
mod bans;
mod join;
mod repair;
mod shuffle;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use meshwork_wire::{DropReason, Instant, PeerId};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::ban::Bans;
use crate::config::Config;
use crate::message::{MembershipMessage as Msg, PeerEntry};
use addresses::AddressBook;
use admission::Guard;
use shuffle::ShuffleSent;

/// What the membership layer asks of the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HvOut {
    /// Send a membership message over an open connection.
    Send(PeerId, Msg),
    /// Open a connection.
    Dial(PeerId),
    /// Close a connection.
    Disconnect(PeerId),
    /// The peer entered the active view.
    Up(PeerId),
    /// The peer left the active view.
    Down(PeerId),
    /// Something from the peer was refused ([`meshwork_wire::Output::Dropped`]).
    Dropped(PeerId, DropReason),
}

/// The HyParView views of one node, and the connections it is opening.
#[derive(Debug)]
pub(crate) struct HyParView {
    me: PeerId,
    active: Vec<PeerId>,
    passive: Vec<PeerId>,
    connected: HashSet<PeerId>,
    /// Dials in progress, with the messages to send once the connection is up.
    dialing: HashMap<PeerId, Vec<Msg>>,
    /// Our `Neighbor` requests not answered yet: their priority and the repair round they were sent in.
    /// A request unanswered for a whole round is dropped (the request or its answer was lost), so it never
    /// blocks the next one.
    requested: HashMap<PeerId, Request>,
    /// Repair rounds so far.
    round: u64,
    /// Peers that refused us (or evicted us) since the last repair round: not asked again before the next,
    /// so a node with a free slot walks through its passive view instead of insisting on one peer.
    refused: HashSet<PeerId>,
    /// The contacts given to `join`, asked again while the node has nobody else (join retries).
    contacts: Vec<PeerId>,
    bans: Bans,
    /// The driver time of the input being handled (bans, eviction budget and rate limits run on it).
    now: Instant,
    /// The limits on who enters the views ([`admission`]).
    guard: Guard,
    /// Where peers can be dialled ([`addresses`]).
    addresses: AddressBook,
    /// The shuffle of ours that a `ShuffleReply` may answer.
    shuffle_sent: Option<ShuffleSent>,
    /// Time between two shuffle walks ([`Config::shuffle_interval`](crate::Config::shuffle_interval)).
    shuffle_interval: Duration,
    /// Time between two repair rounds ([`Config::repair_interval`](crate::Config::repair_interval)):
    /// also how long a walk's reply is awaited, and how long a seeker is remembered (it asks again
    /// each round anyway).
    repair_interval: Duration,
    /// When our last shuffle walk started: rounds come every
    /// [`Config::repair_interval`](crate::Config::repair_interval), walks less often.
    last_walk: Option<Instant>,
    /// A peer entered or left the active view since our last walk.
    active_changed: bool,
    /// Peers that left the active view, oldest first, with the round they left in: the link check of
    /// [`repair`] tells one still connected at the next round that it is no neighbour of ours.
    former: VecDeque<(PeerId, u64)>,
    /// Peers we refused a slot recently, newest last: each is named once to another refused peer
    /// ([`repair`]).
    seekers: VecDeque<(PeerEntry, Instant)>,
    /// Membership requests ignored over their limits, and answers nobody asked for (for the stats).
    pub(crate) requests_refused: u64,
    active_cap: usize,
    passive_cap: usize,
    arwl: u8,
    prwl: u8,
    shuffle_active: usize,
    shuffle_passive: usize,
}

/// A `Neighbor` request in flight.
#[derive(Clone, Copy, Debug)]
struct Request {
    high_priority: bool,
    round: u64,
}

/// Contacts remembered for join retries.
const MAX_CONTACTS: usize = 8;

impl HyParView {
    pub(crate) fn new(me: PeerId, config: &Config) -> Self {
        Self {
            me,
            active: Vec::new(),
            passive: Vec::new(),
            connected: HashSet::new(),
            dialing: HashMap::new(),
            requested: HashMap::new(),
            round: 0,
            refused: HashSet::new(),
            contacts: Vec::new(),
            bans: Bans::new(config.score.max_banned, config.score.ban_duration),
            now: Instant::ZERO,
            guard: Guard::new(config.admission.clone()),
            addresses: AddressBook::default(),
            shuffle_sent: None,
            seekers: VecDeque::new(),
            former: VecDeque::new(),
            shuffle_interval: config.shuffle_interval,
            repair_interval: config.repair_interval,
            last_walk: None,
            active_changed: false,
            requests_refused: 0,
            active_cap: config.active_view_capacity.max(1),
            passive_cap: config.passive_view_capacity,
            arwl: config.active_random_walk_length,
            prwl: config.passive_random_walk_length,
            shuffle_active: config.shuffle_active,
            shuffle_passive: config.shuffle_passive,
        }
    }

    /// The driver time of the input about to be handled.
    pub(crate) fn set_now(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    pub(crate) fn active(&self) -> &[PeerId] {
        &self.active
    }

    pub(crate) fn passive(&self) -> &[PeerId] {
        &self.passive
    }

    pub(crate) fn is_active(&self, peer: &PeerId) -> bool {
        self.active.contains(peer)
    }

    /// Sends now if connected, else dials and sends once the connection is up.
    fn send(&mut self, to: PeerId, msg: Msg, out: &mut Vec<HvOut>) {
        if self.connected.contains(&to) {
            out.push(HvOut::Send(to, msg));
        } else {
            let queued = self.dialing.entry(to).or_default();
            if queued.is_empty() {
                out.push(HvOut::Dial(to));
            }
            if queued.len() < 4 {
                queued.push(msg);
            }
        }
    }

    /// Asks `peer` to take us into its active view, remembering the request so that only a reply to a
    /// request of ours can add the peer (an unsolicited "accepted" is ignored).
    fn request(&mut self, peer: PeerId, high_priority: bool, out: &mut Vec<HvOut>) {
        let round = self.round;
        self.requested.insert(peer, Request { high_priority, round });
        self.send(peer, Msg::Neighbor { high_priority }, out);
    }

    pub(crate) fn on_peer_up(&mut self, peer: PeerId, rng: &mut ChaCha8Rng, out: &mut Vec<HvOut>) {
        if self.is_banned(&peer) {
            out.push(HvOut::Dropped(peer, DropReason::Banned));
            out.push(HvOut::Disconnect(peer));
            return;
        }
        self.connected.insert(peer);
        for msg in self.dialing.remove(&peer).unwrap_or_default() {
            if msg == Msg::Join {
                // The joiner takes its contact into its active view right away (HyParView §4.2).
                self.add_active(peer, rng, out);
            }
            out.push(HvOut::Send(peer, msg));
        }
    }

    pub(crate) fn on_peer_down(&mut self, peer: PeerId, rng: &mut ChaCha8Rng, out: &mut Vec<HvOut>) {
        self.connected.remove(&peer);
        let failed_dial = self.dialing.remove(&peer).is_some();
        let unanswered = self.requested.remove(&peer).is_some();
        if failed_dial || unanswered {
            // Unreachable, or gone before answering: forget it (the paper drops failed passive peers).
            self.remove_passive(&peer);
        }
        self.remove_active(&peer, out);
        self.guard.peer_down(&peer);
        self.forget_address(&peer);
        self.fill(rng, out);
    }

    pub(crate) fn on_message(&mut self, from: PeerId, msg: Msg, rng: &mut ChaCha8Rng, out: &mut Vec<HvOut>) {
        if self.is_banned(&from) {
            out.push(HvOut::Dropped(from, DropReason::Banned));
            out.push(HvOut::Disconnect(from));
            return;
        }
        if let Err(reason) = self.admits_request(from, &msg) {
            out.push(HvOut::Dropped(from, reason));
            return;
        }
        match msg {
            Msg::Join => {
                if !self.add_active(from, rng, out) {
                    // No room for a newcomer now (the eviction budget is spent, or its prefix holds its
                    // share): it waits in the passive view, and the walks below still find it a place.
                    out.push(HvOut::Dropped(from, self.refusal(&from)));
                    out.push(HvOut::Send(from, Msg::Disconnect { alternative: None }));
                    self.add_passive(from, None, rng);
                }
                // The joiner is named with the address its connection came from: the node where a walk
                // ends dials it.
                let joiner = self.entry(from);
                for peer in self.active.clone() {
                    if peer != from {
                        let ttl = self.arwl;
                        out.push(HvOut::Send(peer, Msg::ForwardJoin { joiner, ttl }));
                    }
                }
            }
            Msg::ForwardJoin { joiner, ttl } => self.on_forward_join(from, joiner, ttl, rng, out),
            Msg::Neighbor { high_priority } => {
                // A high-priority request comes from a node two slots short: accepted (the paper) unless it
                // would evict a neighbour the admission rules protect.
                let room = self.active.len() < self.active_cap;
                let accepted =
                    self.is_active(&from) || ((high_priority || room) && self.add_active(from, rng, out));
                let reply = if accepted {
                    self.requested.remove(&from);
                    Msg::NeighborReply {
                        accepted,
                        alternative: None,
                    }
                } else {
                    out.push(HvOut::Dropped(from, self.refusal(&from)));
                    self.refer(from)
                };
                out.push(HvOut::Send(from, reply));
            }
            Msg::NeighborReply {
                accepted,
                alternative,
            } => {
                let request = self.requested.remove(&from);
                let full = self.active.len() >= self.active_cap;
                let low_priority = request.is_some_and(|r| !r.high_priority);
                if accepted && request.is_some() && !(low_priority && full) && self.add_active(from, rng, out)
                {
                    self.fill(rng, out);
                } else if accepted && request.is_some() {
                    // Requests to us filled the slot meanwhile (or the newcomer may not evict anyone).
                    // Undo rather than evict a neighbour: in a settled overlay every eviction cuts
                    // broadcast trees that run over the link.
                    out.push(HvOut::Dropped(from, self.refusal(&from)));
                    out.push(HvOut::Send(from, Msg::Disconnect { alternative: None }));
                    self.add_passive(from, None, rng);
                } else {
                    if !accepted {
                        self.refused.insert(from);
                        if let Some(peer) = alternative
                            && request.is_some()
                        {
                            self.follow_referral(from, peer, low_priority, out);
                        }
                    } else if !self.is_active(&from) {
                        // An acceptance of a request we never made (or gave up on): nothing to take,
                        // but the peer took us into its view, so it is told (a closed connection tells
                        // it too, but in a composite another protocol may keep the connection open).
                        // (From a neighbour it crossed a request of its own to us: already linked.)
                        out.push(HvOut::Dropped(from, DropReason::Unsolicited));
                        out.push(HvOut::Send(from, Msg::Disconnect { alternative: None }));
                    }
                    if !self.is_active(&from) && !self.requested.contains_key(&from) {
                        self.close(from, out);
                    }
                    self.fill(rng, out);
                }
            }
            Msg::Disconnect { alternative } => {
                let asked = self.requested.contains_key(&from);
                if !self.is_active(&from) && (!asked || alternative.is_none()) {
                    // No neighbour of ours: a stranger, or a peer telling us again what we know (a
                    // link check crossed its eviction's `Disconnect`), is let go and changes nothing
                    // else: marked as refusing, an honest peer was passed over by our next requests.
                    // One we are asking again crossed our request with its link check (it had
                    // dropped us and did not know we were asking): the request's answer decides, a
                    // refusal being a `NeighborReply`. Taken as a refusal, the answer could come
                    // back an acceptance we no longer expect, for a place a neighbour of the peer's
                    // was evicted to make.
                    if !asked {
                        self.close(from, out);
                    }
                    return;
                }
                // Evicted by a neighbour (or by one we asked, whose acceptance we have not seen):
                // it goes to the passive view, as the paper has it. Only such a peer names one we
                // dial (anyone else's hint was let go above, so a connection cannot be spent on making
                // us dial addresses of its choice): the peer that took our slot, asked first. Refill
                // at once (a node evicted from its last link is isolated until then), but not from
                // the peer that just made room for someone else.
                self.remove_active(&from, out);
                self.add_passive(from, None, rng);
                self.close(from, out);
                self.refused.insert(from);
                if let Some(peer) = alternative
                    && self.is_candidate(&peer.id)
                    && self.plausible(&peer, &from)
                {
                    let high_priority = self.is_short();
                    self.request(peer.id, high_priority, out);
                    self.remember(&peer);
                }
                self.fill(rng, out);
            }
            Msg::Shuffle {
                origin,
                ttl,
                peers,
                nonce,
            } => {
                let walk = shuffle::Walk {
                    origin,
                    ttl,
                    peers,
                    nonce,
                };
                self.on_shuffle(from, walk, rng, out)
            }
            Msg::ShuffleReply { peers, nonce } => self.on_shuffle_reply(from, &peers, nonce, rng, out),
        }
    }

    /// Closes the connection. A request to the peer will get no answer now, and no `PeerDown` tells us
    /// of a close of our own: forget it here.
    fn close(&mut self, peer: PeerId, out: &mut Vec<HvOut>) {
        self.requested.remove(&peer);
        if self.connected.remove(&peer) {
            out.push(HvOut::Disconnect(peer));
        }
    }

    fn random_active_except(&self, except: &[PeerId], rng: &mut ChaCha8Rng) -> Option<PeerId> {
        let candidates: Vec<PeerId> = self
            .active
            .iter()
            .filter(|p| !except.contains(p))
            .copied()
            .collect();
        candidates.choose(rng).copied()
    }
}
