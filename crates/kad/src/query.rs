//! The pure iterative lookup, after rust-libp2p's `query/peers/closest.rs`.
//!
//! [`ClosestPeers`] knows nothing of messages or timers: the caller asks [`ClosestPeers::next`] whom to
//! contact, and reports each answer with [`ClosestPeers::on_success`] (and the closer peers it named) or
//! [`ClosestPeers::on_failure`]. Under the paper's rule, at most `α` requests are in flight while the
//! lookup makes progress; when `α` answers in a row bring nobody closer, the lookup is *stalled* and
//! widens to `k` requests in flight, as the Kademlia paper prescribes. When it finishes is the
//! caller's choice ([`Finish`]):
//!
//! - [`Finish::AllClosest`], the paper's rule (§2.3): once the `k` closest peers it knows of have all
//!   answered. Every peer returned has answered, and each of the `k` has heard from us, which a join's
//!   lookup of our own key needs, so that our future neighbours learn of us. It costs at least `k`
//!   requests, and at `α` in flight some `k / α` rounds of them.
//! - [`Finish::Converged`]: as soon as the closest set stops improving, that is, once the `α` closest
//!   peers it knows of have all answered. Those are the nearest peers to the target that anyone named,
//!   and their answers named nobody nearer; the `k` closest known are then the peers that the nearest
//!   peers of the network hold nearest to the target. A lookup that finds a node, a record or
//!   providers needs no more: it ends one round after it reaches the target's neighbourhood. (The
//!   lookup before a store finishes with [`Finish::AllClosest`]: the peers named but not asked may
//!   not exist.)
//!   Measured with `meshsim kad-lookup --nodes 2000` (50 ms links, connections kept open): 15.0
//!   messages a lookup against 46.7 with the paper's rule for every lookup, latency p50 3 round trips
//!   against 15, every target found, and 99.9% of the peers returned among the true `k` closest
//!   (`closest_accuracy`); at 10,000 nodes 19.3 messages, 5 round trips for 3 hops, and 99.7% (with
//!   the addresses of the simulator then, below). When
//!   idle connections close after a minute, as a node's connection manager closes them (the
//!   simulator's default), a hop to a peer not heard from lately pays a handshake: 4 round trips at
//!   2,000 nodes, 6 at 10,000, and 5 again once the first hop can go to a peer we hold a connection
//!   to ([`ClosestPeers::ask_first`]; the anchors of the crate docs' "Connections"). At 100,000
//!   nodes the share was 91% while the simulator derived each peer's address from its key: the
//!   peers nearest a key shared a /24, and the per-prefix limits kept them out of each other's
//!   tables. With addresses independent of keys, as on the internet, it is 99.97% at 100,000 nodes
//!   (6 round trips at 3 hops), 99.99% at 30,000 and 99.96% at 10,000.
//!   Only the peers among the `α` closest are asked, all at once (their number bounds the requests
//!   in flight): a peer farther out could only name peers the closer ones will name too.
//!
//! In either case it also finishes when nobody is left to ask.
//!
//! [`DisjointLookup`] runs `d` of them over disjoint sets of peers (S/Kademlia §4.4): a peer learned by one
//! path is never contacted by another, so a path that meets an adversary cannot poison the others.
//!
//! A lookup keeps whatever the caller knows of each peer with it ([`Contact`]): a bare [`PeerId`], or
//! Kademlia's [`PeerInfo`] with the address it was named with, so the address of a peer to contact is
//! at hand without a map of every address ever named (a lookup hears of hundreds of peers and
//! contacts a few dozen; that map was a tenth of a simulated network's CPU).

use std::collections::BTreeMap;
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::Instant;

use crate::address::PeerInfo;
use crate::key::{Distance, Key};

mod disjoint;
pub use disjoint::DisjointLookup;

/// What a lookup keeps of a peer: at least its id.
pub trait Contact: Clone {
    /// The peer's id.
    fn peer(&self) -> &PeerId;
}

impl Contact for PeerId {
    fn peer(&self) -> &PeerId {
        self
    }
}

impl Contact for PeerInfo {
    fn peer(&self) -> &PeerId {
        &self.id
    }
}

/// Parameters of one lookup.
#[derive(Clone, Copy, Debug)]
pub struct LookupConfig {
    /// Requests in flight while making progress (`α`).
    pub parallelism: usize,
    /// How many peers the lookup returns (`k`).
    pub num_results: usize,
    /// After this long a request no longer counts toward the parallelism limit.
    pub peer_timeout: Duration,
    /// When the lookup is done.
    pub finish: Finish,
}

/// When a lookup is done (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// When the `k` closest peers known have all answered (Kademlia §2.3). Every peer in the result
    /// has answered.
    AllClosest,
    /// When the `α` closest peers known have all answered: the closest set stops improving. The
    /// result's first `α` have answered; the others were named by them, or by other peers that
    /// answered, and were not asked themselves.
    Converged,
}

/// What the lookup wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupState {
    /// Contact this peer now.
    Contact(PeerId),
    /// Wait for answers (requests are in flight, or the parallelism limit is reached).
    Waiting,
    /// Done: read the result.
    Finished,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PeerState {
    NotContacted,
    Waiting(Instant),
    /// Timed out, but may still answer.
    Unresponsive,
    Failed,
    Succeeded,
    /// Not asked: the caller vouches for it and knows what it would learn ([`ClosestPeers::skip`]).
    Skipped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Iterating { no_progress: usize },
    Stalled,
    Finished,
}

/// One iterative lookup of the peers closest to a target, keeping a `C` of each peer ([`Contact`]).
#[derive(Clone, Debug)]
pub struct ClosestPeers<C = PeerId> {
    target: Key,
    config: LookupConfig,
    peers: BTreeMap<Distance, (C, PeerState)>,
    phase: Phase,
    num_waiting: usize,
    /// A peer to contact before any other ([`ClosestPeers::ask_first`]).
    first: Option<Distance>,
}

impl<C: Contact> ClosestPeers<C> {
    /// A lookup of `target`, seeded with the peers we already know (normally the closest of our table).
    pub fn new(target: Key, config: LookupConfig, seeds: impl IntoIterator<Item = C>) -> Self {
        let mut lookup = Self {
            target,
            config,
            peers: BTreeMap::new(),
            phase: Phase::Iterating { no_progress: 0 },
            num_waiting: 0,
            first: None,
        };
        for peer in seeds {
            lookup.learn(peer);
        }
        lookup
    }

    /// The key looked up.
    pub fn target(&self) -> &Key {
        &self.target
    }

    /// Adds `contact` if the lookup does not know its peer yet (what it knows first stays).
    fn learn(&mut self, contact: C) -> Distance {
        let distance = Key::from_peer(contact.peer()).distance(&self.target);
        self.peers
            .entry(distance)
            .or_insert((contact, PeerState::NotContacted));
        distance
    }

    /// What the lookup keeps of `peer`, if it knows it.
    pub fn contact(&self, peer: &PeerId) -> Option<&C> {
        let distance = Key::from_peer(peer).distance(&self.target);
        self.peers.get(&distance).map(|(contact, _)| contact)
    }

    /// Whether the lookup knows `peer` (in any state).
    pub fn knows(&self, peer: &PeerId) -> bool {
        self.contact(peer).is_some()
    }

    /// Requests currently counted as in flight.
    pub fn num_waiting(&self) -> usize {
        self.num_waiting
    }

    /// Contact, besides the first round's `α`, the closest not yet contacted peer that `warm`
    /// accepts, before any other: a peer we hold a connection to answers one round trip earlier
    /// than one we must dial first (a handshake, then the request), and its answer, which names
    /// peers a step closer, starts the next round as early. Nothing changes if no such peer is
    /// known or it is among the `α` closest (the first round asks it anyway). Returns the peer.
    pub fn ask_first(&mut self, warm: impl Fn(&PeerId) -> bool) -> Option<PeerId> {
        let alpha = self.config.parallelism;
        let (rank, (distance, (peer, _))) = self
            .peers
            .iter()
            .filter(|(_, (_, state))| *state == PeerState::NotContacted)
            .enumerate()
            .find(|(_, (_, (contact, _)))| warm(contact.peer()))?;
        if rank < alpha {
            return None;
        }
        self.first = Some(*distance);
        Some(*peer.peer())
    }

    /// Requests allowed in flight: `α` while progressing, `max(α, k)` once stalled.
    fn capacity(&self) -> usize {
        match self.phase {
            Phase::Stalled => self.config.parallelism.max(self.config.num_results),
            Phase::Iterating { .. } | Phase::Finished => self.config.parallelism,
        }
    }

    /// Advances the lookup at `now`: whom to contact next, whether to wait, or whether it is done.
    /// Call it repeatedly until it stops returning [`LookupState::Contact`].
    pub fn next(&mut self, now: Instant) -> LookupState {
        if self.phase == Phase::Finished {
            return LookupState::Finished;
        }
        if let Some(distance) = self.first.take() {
            if let Some((contact, state @ PeerState::NotContacted)) = self.peers.get_mut(&distance) {
                *state = PeerState::Waiting(now + self.config.peer_timeout);
                self.num_waiting += 1;
                return LookupState::Contact(*contact.peer());
            }
        }
        // One pass, closest first. Succeeded peers count toward the result only while no closer peer is
        // still pending (waiting, or not yet contacted). Every pass looks at every waiting peer, so a
        // timeout far down the list always frees its slot.
        let mut result_counter = Some(0usize);
        // The same count for `Finish::Converged`, which needs only the `α` closest to have answered.
        let settled = match self.config.finish {
            Finish::AllClosest => self.config.num_results,
            Finish::Converged => self.config.parallelism.min(self.config.num_results),
        };
        // A converged lookup asks only among the `α` closest peers still standing: a peer farther
        // out could only name peers the closer ones will name too.
        let window = match self.config.finish {
            Finish::AllClosest => usize::MAX,
            Finish::Converged => settled,
        };
        let mut live = 0usize;
        let mut candidate = None;
        for (distance, (_, state)) in self.peers.iter_mut() {
            match *state {
                PeerState::Waiting(deadline) if now >= deadline => {
                    self.num_waiting -= 1;
                    *state = PeerState::Unresponsive;
                }
                PeerState::Waiting(_) => {
                    result_counter = None;
                    live += 1;
                }
                PeerState::NotContacted => {
                    result_counter = None;
                    if live < window {
                        candidate.get_or_insert(*distance);
                    }
                    live += 1;
                }
                PeerState::Succeeded | PeerState::Skipped => {
                    live += 1;
                    if let Some(count) = result_counter.as_mut() {
                        *count += 1;
                        if *count >= settled {
                            self.phase = Phase::Finished;
                            return LookupState::Finished;
                        }
                    }
                }
                PeerState::Unresponsive | PeerState::Failed => {}
            }
        }
        if let Some(distance) = candidate {
            // The window alone bounds a converged lookup: the peers it holds are asked at once, so a
            // round that names closer peers is followed up without waiting on the stragglers it left
            // behind.
            if self.config.finish == Finish::Converged || self.num_waiting < self.capacity() {
                if let Some((contact, state)) = self.peers.get_mut(&distance) {
                    *state = PeerState::Waiting(now + self.config.peer_timeout);
                    self.num_waiting += 1;
                    return LookupState::Contact(*contact.peer());
                }
            }
            return LookupState::Waiting;
        }
        if self.num_waiting > 0 {
            LookupState::Waiting
        } else {
            self.phase = Phase::Finished;
            LookupState::Finished
        }
    }

    /// Whether an answer from `peer` would be taken now ([`ClosestPeers::on_success`]): the lookup
    /// runs, and asked `peer` (its answer is due, or late).
    pub fn awaits(&self, peer: &PeerId) -> bool {
        if self.phase == Phase::Finished {
            return false;
        }
        let distance = Key::from_peer(peer).distance(&self.target);
        matches!(
            self.peers.get(&distance),
            Some((_, PeerState::Waiting(_) | PeerState::Unresponsive))
        )
    }

    /// `peer` answered and named `closer` peers. Returns false (and ignores the answer) if we were not
    /// waiting for `peer`.
    pub fn on_success(&mut self, peer: &PeerId, closer: impl IntoIterator<Item = C>) -> bool {
        if self.phase == Phase::Finished {
            return false;
        }
        let distance = Key::from_peer(peer).distance(&self.target);
        match self.peers.get_mut(&distance) {
            Some((_, state @ PeerState::Waiting(_))) => {
                self.num_waiting -= 1;
                *state = PeerState::Succeeded;
            }
            Some((_, state @ PeerState::Unresponsive)) => *state = PeerState::Succeeded,
            _ => return false,
        }
        let known_before = self.peers.len();
        let mut progress = false;
        for new in closer {
            let d = self.learn(new);
            progress |= self.peers.keys().next() == Some(&d) || known_before < self.config.num_results;
        }
        self.phase = match self.phase {
            Phase::Iterating { no_progress } if !progress => {
                if no_progress + 1 >= self.config.parallelism {
                    Phase::Stalled
                } else {
                    Phase::Iterating {
                        no_progress: no_progress + 1,
                    }
                }
            }
            Phase::Finished => Phase::Finished,
            _ if progress => Phase::Iterating { no_progress: 0 },
            other => other,
        };
        true
    }

    /// `peer` failed to answer (an error or a timeout). Returns false if we were not waiting for it.
    pub fn on_failure(&mut self, peer: &PeerId) -> bool {
        if self.phase == Phase::Finished {
            return false;
        }
        let distance = Key::from_peer(peer).distance(&self.target);
        match self.peers.get_mut(&distance) {
            Some((_, state @ PeerState::Waiting(_))) => {
                self.num_waiting -= 1;
                *state = PeerState::Failed;
                true
            }
            Some((_, state @ PeerState::Unresponsive)) => {
                *state = PeerState::Failed;
                true
            }
            _ => false,
        }
    }

    /// The caller will not ask `peer`, which [`ClosestPeers::next`] has just handed it, after all: it
    /// vouches for the peer and knows what it would learn (a peer in its routing table, for a lookup
    /// that only fills the table). The peer counts as if it had answered and named nobody new: it
    /// frees its place, counts toward the end of the lookup and is part of the result. Returns false
    /// if we were not waiting for it.
    pub fn skip(&mut self, peer: &PeerId) -> bool {
        let distance = Key::from_peer(peer).distance(&self.target);
        match self.peers.get_mut(&distance) {
            Some((_, state @ PeerState::Waiting(_))) => {
                self.num_waiting -= 1;
                *state = PeerState::Skipped;
                true
            }
            _ => false,
        }
    }

    /// Whether the lookup is finished.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// The (at most `k`) closest peers, closest first: those that answered (or were skipped), and with
    /// [`Finish::Converged`] also those named but not asked (or not yet answering), never one that
    /// failed or timed out.
    pub fn result(&self) -> Vec<C> {
        let returned = |state: &PeerState| match self.config.finish {
            Finish::AllClosest => matches!(state, PeerState::Succeeded | PeerState::Skipped),
            Finish::Converged => !matches!(state, PeerState::Failed | PeerState::Unresponsive),
        };
        self.peers
            .values()
            .filter(|(_, s)| returned(s))
            .map(|(contact, _)| contact.clone())
            .take(self.config.num_results)
            .collect()
    }
}
