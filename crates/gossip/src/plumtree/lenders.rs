//! Lenders: the nodes whose trees a new origin's messages may borrow ([`Trees::Borrow`]).
//!
//! An origin's first message floods to form its tree. With [`Trees::Borrow`] a node whose own tree has
//! not formed sends along the tree of a node that published on its own lately instead: any origin's
//! tree spans the network, so a tree rooted near us carries our message on near-shortest paths at a
//! tree's cost. A lender is a node whose own message came through us at most
//! [`Config::lender_hops`](crate::Config::lender_hops) links from it; the nearer its root, the
//! shorter the detour (a message climbs towards the root as far as it is from us before it spreads
//! down the far branches).
//!
//! [`Trees::Borrow`]: crate::Trees::Borrow

use std::collections::HashMap;
use std::time::Duration;

use meshwork_wire::{Instant, PeerId};

use super::links::Links;
use crate::message::TreeTag;

/// Lenders remembered at most: a handful is all a node chooses from.
const MAX_LENDERS: usize = 16;

/// How long after a lender's last message on its own tree we still lend its tree to our messages:
/// longer, and the other nodes may have forgotten the tree (their table of trees is least recently
/// used) or the overlay moved under it.
const LENDER_MAX_AGE: Duration = Duration::from_secs(3600);

/// A node whose tree our messages may borrow.
#[derive(Clone, Copy, Debug)]
struct Lender {
    /// When its last message on its own tree came through us.
    at: Instant,
    /// Links between it and us (one for a neighbour).
    hops: u16,
    /// The neighbour its message came through (itself, for a neighbour): the first link of the way
    /// to it, whose round trip is what we can measure of that way.
    via: PeerId,
}

/// The lenders within reach, at most [`MAX_LENDERS`].
#[derive(Debug)]
pub(crate) struct Lenders {
    by_origin: HashMap<PeerId, Lender>,
    /// [`Config::lender_hops`](crate::Config::lender_hops).
    max_hops: u16,
}

impl Lenders {
    pub(crate) fn new(max_hops: u16) -> Self {
        Self {
            by_origin: HashMap::new(),
            max_hops,
        }
    }

    /// `origin`'s own message came through us from `via`, `hops` links from it (a neighbour's is one
    /// hop away whatever path its first copy took; any other at least two, whatever the copy says):
    /// within reach, its tree may carry ours. Of more than [`MAX_LENDERS`], the farthest (then the one
    /// heard from least lately) is dropped. The hop count is the relay's word: a neighbour that
    /// understates it draws our messages onto a far tree, which costs them latency but loses nothing
    /// (every node holds every formed tree).
    pub(crate) fn heard(&mut self, now: Instant, origin: PeerId, via: PeerId, hops: u16, links: &Links) {
        let (hops, via) = if links.contains(&origin) {
            (1, origin)
        } else {
            (hops.max(2), via)
        };
        if hops > self.max_hops {
            return;
        }
        self.by_origin.insert(origin, Lender { at: now, hops, via });
        if self.by_origin.len() > MAX_LENDERS {
            let farthest = self
                .by_origin
                .iter()
                .max_by_key(|(peer, lender)| (lender.hops, std::cmp::Reverse(lender.at), **peer))
                .map(|(peer, _)| *peer);
            if let Some(farthest) = farthest {
                self.by_origin.remove(&farthest);
            }
        }
    }

    /// A neighbour's link ended: it lends no more, and neither do the lenders whose messages came
    /// through it (the way to them starts elsewhere now, if they are still in reach).
    pub(crate) fn forget(&mut self, peer: &PeerId) {
        self.by_origin
            .retain(|origin, lender| origin != peer && lender.via != *peer);
    }

    /// The lender to borrow from now, other than `me` (our own message may come back once we have
    /// forgotten it), heard from within [`LENDER_MAX_AGE`]: the fewest links away (a neighbour before
    /// a node two links away), then the nearest by the measured round trip of the first link towards
    /// it (every message's path starts with the way to it, so a lender across an ocean delays all of
    /// them), then the one heard from last.
    pub(crate) fn nearest(
        &self,
        now: Instant,
        me: PeerId,
        links: &Links,
        round_trips: &HashMap<PeerId, Duration>,
    ) -> Option<PeerId> {
        self.by_origin
            .iter()
            .filter(|(peer, lender)| {
                **peer != me &&
                // A neighbour lends while its link lasts; any lender, while its tag names its tree here
                // (the receivers resolve the tag: a forgotten tree would make our message flood).
                (lender.hops > 1 || links.contains(peer))
                    && links.origin_of(TreeTag::of(peer)) == Some(**peer)
                    && now.saturating_duration_since(lender.at) <= LENDER_MAX_AGE
            })
            .min_by_key(|(peer, lender)| {
                let rtt = round_trips.get(&lender.via).copied().unwrap_or(Duration::MAX);
                let (heard, peer) = (std::cmp::Reverse(lender.at), std::cmp::Reverse(**peer));
                (lender.hops, rtt, heard, peer)
            })
            .map(|(peer, _)| *peer)
    }
}

#[cfg(test)]
mod tests {
    use meshwork_identity::Keypair;

    use super::*;
    use crate::config::Trees;

    fn peers(n: u8) -> Vec<PeerId> {
        (0..n).map(|i| Keypair::from_seed([i; 32]).peer_id()).collect()
    }

    fn secs(s: u64) -> Instant {
        Instant::from_nanos(s * 1_000_000_000)
    }

    /// Links with `neighbours`, holding the trees of `origins` (relayed here).
    fn links(neighbours: &[PeerId], origins: &[PeerId], capacity: usize) -> Links {
        let mut links = Links::new(capacity, Trees::Borrow);
        neighbours.iter().for_each(|n| links.up(*n));
        origins.iter().for_each(|o| links.relaying(*o, None, None));
        links
    }

    #[test]
    fn of_more_than_the_limit_the_farthest_least_lately_heard_is_dropped() {
        let p = peers(20);
        let (me, neighbour, far) = (p[0], p[1], &p[2..]);
        let links = links(&[neighbour], &p[1..], 64);
        let mut lenders = Lenders::new(2);
        lenders.heard(secs(1), neighbour, neighbour, 1, &links);
        for (i, origin) in far.iter().enumerate() {
            lenders.heard(secs(2 + i as u64), *origin, neighbour, 2, &links);
        }
        assert_eq!(lenders.by_origin.len(), MAX_LENDERS);
        // The neighbour outlasts every lender two links away, heard from earlier though it was.
        assert!(lenders.by_origin.contains_key(&neighbour));
        // Of those two links away, the first ones heard from went.
        assert!(!lenders.by_origin.contains_key(&far[0]));
        assert!(lenders.by_origin.contains_key(far.last().unwrap()));
        let rtts = HashMap::new();
        assert_eq!(lenders.nearest(secs(100), me, &links, &rtts), Some(neighbour));
    }

    #[test]
    fn a_lender_heard_from_too_long_ago_or_whose_tree_is_forgotten_lends_nothing() {
        let p = peers(4);
        let (me, neighbour, lender, other) = (p[0], p[1], p[2], p[3]);
        let rtts = HashMap::new();
        let held = links(&[neighbour], &[lender], 16);
        let mut lenders = Lenders::new(2);
        lenders.heard(secs(0), lender, neighbour, 2, &held);
        assert_eq!(lenders.nearest(secs(3600), me, &held, &rtts), Some(lender));
        assert_eq!(lenders.nearest(secs(3601), me, &held, &rtts), None);
        // A table of one tree forgets the lender's when another forms.
        let mut forgotten = links(&[neighbour], &[lender], 1);
        forgotten.relaying(other, None, None);
        assert_eq!(lenders.nearest(secs(1), me, &forgotten, &rtts), None);
    }

    #[test]
    fn a_relay_cannot_make_a_far_lender_a_neighbour_nor_are_we_our_own() {
        let p = peers(4);
        let (me, neighbour, lender) = (p[0], p[1], p[2]);
        let links = links(&[neighbour], &[lender, me], 16);
        let rtts = HashMap::new();
        let mut lenders = Lenders::new(1);
        // A copy that claims one link (or none) from a node that is not our neighbour: two at least,
        // past a limit of one.
        lenders.heard(secs(1), lender, neighbour, 0, &links);
        lenders.heard(secs(1), lender, neighbour, 1, &links);
        assert!(lenders.by_origin.is_empty(), "kept, never chosen: {lenders:?}");
        assert_eq!(lenders.nearest(secs(2), me, &links, &rtts), None);
        // Our own message, come back once forgotten, lends us nothing.
        let mut lenders = Lenders::new(2);
        lenders.heard(secs(1), me, neighbour, 2, &links);
        assert_eq!(lenders.nearest(secs(2), me, &links, &rtts), None);
    }
}
