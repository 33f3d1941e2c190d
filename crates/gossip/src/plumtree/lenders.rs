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
    /// hop away whatever path its first copy took): within reach, its tree may carry ours. Of more
    /// than [`MAX_LENDERS`], the farthest (then the one heard from least lately) is dropped.
    pub(crate) fn heard(&mut self, now: Instant, origin: PeerId, via: PeerId, hops: u16, links: &Links) {
        let (hops, via) = if links.contains(&origin) {
            (1, origin)
        } else {
            (hops, via)
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

    /// A neighbour's link ended: it lends no more as a neighbour.
    pub(crate) fn forget(&mut self, peer: &PeerId) {
        self.by_origin.remove(peer);
    }

    /// The lender to borrow from now, heard from within [`LENDER_MAX_AGE`]: the fewest links away (a
    /// neighbour before a node two links away), then the nearest by the measured round trip of the
    /// first link towards it (every message's path starts with the way to it, so a lender across an
    /// ocean delays all of them), then the one heard from last.
    pub(crate) fn nearest(
        &self,
        now: Instant,
        links: &Links,
        round_trips: &HashMap<PeerId, Duration>,
    ) -> Option<PeerId> {
        self.by_origin
            .iter()
            .filter(|(peer, lender)| {
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
