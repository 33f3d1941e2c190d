//! The periodic shuffle of HyParView: a random walk carrying a sample of the origin's views; the
//! node where it ends answers with a sample of its passive view, and both keep what they learn in their
//! passive views. This is what keeps passive views fresh enough to repair the active view from.
//!
//! Both ends are guarded, since a shuffle writes into the passive view that repairs draw from: a walk is
//! taken only from an active neighbour (walks run over active links), and a `ShuffleReply` only while a
//! shuffle of ours is outstanding (for a repair interval after the walk starts), once, with at most as
//! many peers as we sent, and only with the walk's nonce: a random number the walk carries and its
//! reply carries back, which only the nodes on the walk have seen. Without it (before
//! `/meshwork/gossip/4`) any connected peer could send replies all the time and catch each of our
//! walks: its sample went into our passive view, and the honest reply, coming second, was dropped.
//!
//! A reply that is not the one awaited is dropped and costs its sender nothing: whoever sends a
//! `Shuffle` names the walk's origin, so anyone can make an honest node answer us. A neighbour of an
//! attacker that keeps ending made-up walks "from" us would otherwise be charged for every honest
//! answer, until it was banned here; done to each of our neighbours, that bans them all and eclipses
//! us. Ignored, a reply costs us one message's handling, bounded like any other by the driver's
//! per-peer limits.

use meshwork_wire::{BoundedVec, DropReason, Instant, PeerId};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{HvOut, HyParView};
use crate::message::{MAX_SHUFFLE, MembershipMessage as Msg, PeerEntry};

/// A `Shuffle` passing through ([`MembershipMessage::Shuffle`](crate::MembershipMessage::Shuffle)'s
/// fields).
pub(super) struct Walk {
    pub(super) origin: PeerEntry,
    pub(super) ttl: u8,
    pub(super) peers: BoundedVec<PeerEntry, MAX_SHUFFLE>,
    pub(super) nonce: u64,
}

/// A shuffle of ours waiting for its reply.
#[derive(Clone, Copy, Debug)]
pub(super) struct ShuffleSent {
    /// Peers we sent: the reply carries at most as many.
    size: usize,
    /// When the walk started: its reply is taken for a repair interval, as long as it was when a walk
    /// started every round (a walk crosses seven links and the reply one more, seconds at most).
    at: Instant,
    /// The walk's nonce, which its reply carries back.
    nonce: u64,
}

impl HyParView {
    /// A round: repair first (refusals forgotten, free slots asked for, join retried when alone), then
    /// a shuffle walk through a random active peer if one is due.
    ///
    /// A walk is most of what membership sends (a sample of seven peers over seven links, and a reply
    /// straight back: about 190 bytes a second a node at one walk every 10 s). In a settled
    /// neighbourhood (both views full, and no peer entered or left the active view since our last
    /// walk) it only keeps the passive view fresh, so it runs once every
    /// [`Config::shuffle_interval`](crate::Config::shuffle_interval).
    /// Otherwise it runs every round: a node whose views have room (peers failed, or the overlay is
    /// still forming) repairs from fresh passive peers, and two nodes each one short pair only once a
    /// walk has told one of the other; a node whose active view churns (failures, evictions, an
    /// attack) is the one likely to repair next.
    pub(crate) fn on_shuffle_timer(&mut self, rng: &mut ChaCha8Rng, out: &mut Vec<HvOut>) {
        self.new_round(rng, out);
        let now = self.now;
        let settled = self.active.len() >= self.active_cap
            && self.passive.len() >= self.passive_cap
            && !self.active_changed;
        let due = !settled
            || self
                .last_walk
                .is_none_or(|at| now.saturating_duration_since(at) >= self.shuffle_interval);
        if !due {
            return;
        }
        // One reply per walk: the last walk's, if it never came, is no longer expected.
        self.shuffle_sent = None;
        let Some(&target) = self.active.choose(rng) else {
            return;
        };
        self.last_walk = Some(now);
        self.active_changed = false;
        let mut peers: Vec<PeerId> = self
            .active
            .choose_multiple(rng, self.shuffle_active)
            .filter(|p| **p != target)
            .copied()
            .collect();
        peers.extend(self.passive.choose_multiple(rng, self.shuffle_passive));
        peers.truncate(MAX_SHUFFLE);
        let peers: Vec<PeerEntry> = peers.into_iter().map(|p| self.entry(p)).collect();
        let peers = BoundedVec::try_from(peers).unwrap_or_default();
        let (ttl, nonce) = (self.arwl, rng.r#gen());
        self.shuffle_sent = Some(ShuffleSent {
            size: peers.len(),
            at: now,
            nonce,
        });
        // We do not know our own address: the first hop names us with the one it observes.
        let origin = PeerEntry::id_only(self.me);
        let shuffle = Msg::Shuffle {
            origin,
            ttl,
            peers,
            nonce,
        };
        out.push(HvOut::Send(target, shuffle));
    }

    /// A shuffle walk passing through: forwarded while it has hops left, answered where it ends.
    ///
    /// The first hop names the origin with the address it observes the origin's connection come from
    /// (whatever the origin said). Where the walk ends, the origin is the one peer the walk makes us
    /// dial (for the reply), and only if its address is one we would dial on the last hop's word.
    pub(super) fn on_shuffle(
        &mut self,
        from: PeerId,
        walk: Walk,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<HvOut>,
    ) {
        let Walk {
            mut origin,
            ttl,
            peers,
            nonce,
        } = walk;
        if !self.is_active(&from) {
            // Not a walk over one of our links: nothing it says goes into our views.
            out.push(HvOut::Dropped(from, DropReason::Unsolicited));
            return;
        }
        if origin.id == from {
            origin.addr = self.addresses.observed(&from);
        }
        if !self.plausible(&origin, &from) {
            return;
        }
        // No walk is longer than ours (`on_forward_join` says why).
        let ttl = ttl.min(self.arwl);
        let next = self.random_active_except(&[from, origin.id], rng);
        match next {
            Some(next) if ttl > 0 => {
                let ttl = ttl - 1;
                let shuffle = Msg::Shuffle {
                    origin,
                    ttl,
                    peers,
                    nonce,
                };
                out.push(HvOut::Send(next, shuffle));
            }
            _ if origin.id != self.me => {
                let mut reply = self.passive.clone();
                reply.shuffle(rng);
                reply.truncate(peers.len().min(MAX_SHUFFLE));
                let reply: Vec<PeerEntry> = reply.into_iter().map(|p| self.entry(p)).collect();
                self.take_sample(from, peers.iter().chain(std::iter::once(&origin)), rng);
                let peers = BoundedVec::try_from(reply).unwrap_or_default();
                self.send(origin.id, Msg::ShuffleReply { peers, nonce }, out);
                self.remember(&origin);
            }
            _ => {}
        }
    }

    /// Takes the peers of a sample told by `from` into the passive view, with their addresses; an
    /// entry with an address we would not dial on `from`'s word is skipped.
    fn take_sample<'a>(
        &mut self,
        from: PeerId,
        sample: impl Iterator<Item = &'a PeerEntry>,
        rng: &mut ChaCha8Rng,
    ) {
        for entry in sample {
            if self.plausible(entry, &from) && self.add_passive(entry.id, Some(from), rng) {
                self.remember(entry);
            }
        }
    }

    /// The answer to our shuffle: its peers go to the passive view; a connection opened only for the reply
    /// is closed. A reply to no shuffle of ours, or without its nonce, changes nothing (the awaited
    /// reply is still taken), and costs its sender nothing (the module docs say why).
    pub(super) fn on_shuffle_reply(
        &mut self,
        from: PeerId,
        peers: &[PeerEntry],
        nonce: u64,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<HvOut>,
    ) {
        let (now, window) = (self.now, self.repair_interval);
        let awaited = self
            .shuffle_sent
            .filter(|sent| sent.nonce == nonce && now.saturating_duration_since(sent.at) < window);
        match awaited {
            Some(sent) => {
                self.shuffle_sent = None;
                self.take_sample(from, peers.iter().take(sent.size), rng);
            }
            None => {
                self.requests_refused += 1;
                out.push(HvOut::Dropped(from, DropReason::Unsolicited));
            }
        }
        let busy =
            self.is_active(&from) || self.dialing.contains_key(&from) || self.requested.contains_key(&from);
        if !busy {
            self.close(from, out);
        }
    }
}
