//! Who may enter the views, and how fast (the configuration and its reasons are in
//! [`AdmissionConfig`]).
//!
//! - **Requests** (`Join`, `ForwardJoin`, `Neighbor`, `Shuffle`) pass a token bucket per peer, and `Join`s
//!   one per IP prefix too: a peer, or a subnet of fresh identities, cannot make us announce it (each
//!   `Join` starts a walk on every active link) or evict for it faster than honest joining needs.
//! - **Prefixes**: an IP prefix (/24, /48) holds at most a few slots of the active and passive views.
//! - **Sources**: a neighbour fills at most a share of the passive view with the peers it tells us of;
//!   past its share, it replaces its own entries only.
//! - **Evictions**: a newcomer (a `Join`, a high-priority `Neighbor`, the end of a join walk) evicts a
//!   neighbour that is not established yet as HyParView does, but an established one at most once per
//!   [`AdmissionConfig::eviction_interval`], and never one of the
//!   [`AdmissionConfig::protected_neighbors`] longest-lived, established or not (a young overlay has
//!   them too). A newcomer that may evict nobody is not
//!   admitted (it waits in the passive view).

use std::collections::HashMap;

use meshwork_wire::{DropReason, Instant, IpPrefix, PeerId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{HvOut, HyParView};
use crate::bucket::TokenBucket;
use crate::config::AdmissionConfig;
use crate::message::MembershipMessage as Msg;

/// The admission state: when each neighbour came in, the eviction budget, rate limits and who told us
/// of each passive peer. Prefixes are those of the observed addresses in the address book.
#[derive(Debug)]
pub(super) struct Guard {
    config: AdmissionConfig,
    /// When each active neighbour entered the active view.
    since: HashMap<PeerId, Instant>,
    /// From this time on, a newcomer may evict an established neighbour again.
    next_eviction: Instant,
    /// Membership requests, per connected peer.
    requests: HashMap<PeerId, TokenBucket>,
    /// `Join`s, per prefix.
    joins: HashMap<IpPrefix, TokenBucket>,
    /// Referrals taken, per prefix (`repair.rs`).
    referrals: HashMap<IpPrefix, TokenBucket>,
    /// Who told us of each passive peer (absent: the peer itself, e.g. a neighbour we evicted).
    passive_source: HashMap<PeerId, PeerId>,
}

impl Guard {
    pub(super) fn new(config: AdmissionConfig) -> Self {
        Self {
            config,
            since: HashMap::new(),
            next_eviction: Instant::ZERO,
            requests: HashMap::new(),
            joins: HashMap::new(),
            referrals: HashMap::new(),
            passive_source: HashMap::new(),
        }
    }

    pub(super) fn entered_active(&mut self, peer: PeerId, now: Instant) {
        self.since.insert(peer, now);
    }

    pub(super) fn left_active(&mut self, peer: &PeerId) {
        self.since.remove(peer);
    }

    /// A connection closed: its rate limit goes.
    pub(super) fn peer_down(&mut self, peer: &PeerId) {
        self.requests.remove(peer);
    }
}

impl HyParView {
    /// Whether a membership request from `from` is within its limits, or why not: its own allowance
    /// spent, or its prefix's allowance of joins (answers are not requests: they are checked against
    /// what we asked).
    pub(super) fn admits_request(&mut self, from: PeerId, msg: &Msg) -> Result<(), DropReason> {
        let join = match msg {
            Msg::Join => true,
            // A place asked for with eviction, as a join asks, by a peer we did not ask and that is
            // no neighbour: charged as a join, or fresh identities of one /24 could each push out a
            // neighbour still settling in (and each be told our recent messages, and be given its own
            // share of the passive view).
            Msg::Neighbor { high_priority: true } => {
                !self.is_active(&from) && !self.requested.contains_key(&from)
            }
            Msg::ForwardJoin { .. } | Msg::Neighbor { .. } | Msg::Shuffle { .. } => false,
            Msg::NeighborReply { .. } | Msg::Disconnect { .. } | Msg::ShuffleReply { .. } => {
                return Ok(());
            }
        };
        let (now, c) = (self.now, &self.guard.config);
        let (burst, rate) = (c.requests_burst, c.requests_per_sec);
        let (join_burst, join_rate) = (c.prefix_joins_burst, c.prefix_joins_per_sec);
        let allowed = self
            .guard
            .requests
            .entry(from)
            .or_insert(TokenBucket::full(burst, now))
            .take(now, burst, rate);
        let verdict = if !allowed {
            Err(DropReason::RateLimited)
        } else if join
            && self.addresses.prefix(&from).is_some_and(|prefix| {
                !self
                    .guard
                    .joins
                    .entry(prefix)
                    .or_insert(TokenBucket::full(join_burst, now))
                    .take(now, join_burst, join_rate)
            })
        {
            Err(DropReason::PrefixLimit)
        } else {
            Ok(())
        };
        if verdict.is_err() {
            self.requests_refused += 1;
        }
        verdict
    }

    /// Whether `from`'s prefix may take a referral now (charged if so); a peer whose address is
    /// unknown is under no prefix.
    pub(super) fn takes_referral(&mut self, from: &PeerId) -> bool {
        let (now, c) = (self.now, &self.guard.config);
        let (burst, rate) = (c.prefix_referrals_burst, c.prefix_referrals_per_sec);
        self.addresses.prefix(from).is_none_or(|prefix| {
            self.guard
                .referrals
                .entry(prefix)
                .or_insert(TokenBucket::full(burst, now))
                .take(now, burst, rate)
        })
    }

    /// Takes `peer` into the active view, evicting a neighbour (to the passive view) if it is full and
    /// the admission rules allow it ([`admission`]); false if `peer` was not admitted.
    ///
    /// The evicted peer is told that `peer` took its slot (the paper only disconnects it). A random
    /// eviction can cut the last link between a small group and the rest; during a burst of joins such
    /// groups form and, with passive views that only know each other, never merge again. Since `peer`
    /// usually has room, the evicted peer links to it and stays connected to us through it.
    pub(super) fn add_active(&mut self, peer: PeerId, rng: &mut ChaCha8Rng, out: &mut Vec<HvOut>) -> bool {
        if self.is_active(&peer) {
            return true;
        }
        if peer == self.me || self.is_banned(&peer) || self.prefix_full_in_active(&peer) {
            return false;
        }
        if self.active.len() >= self.active_cap {
            let Some(evicted) = self.eviction_victim(rng) else {
                return false;
            };
            let alternative = Some(self.entry(peer));
            out.push(HvOut::Send(evicted, Msg::Disconnect { alternative }));
            self.remove_active(&evicted, out);
            self.add_passive(evicted, None, rng);
        }
        self.remove_passive(&peer);
        self.active.push(peer);
        self.active_changed = true;
        self.guard.entered_active(peer, self.now);
        out.push(HvOut::Up(peer));
        true
    }

    /// Removes `peer` from the active view, if it is there.
    pub(super) fn remove_active(&mut self, peer: &PeerId, out: &mut Vec<HvOut>) {
        if let Some(at) = self.active.iter().position(|p| p == peer) {
            self.active.swap_remove(at);
            self.remember_former(*peer);
            self.active_changed = true;
            self.guard.left_active(peer);
            out.push(HvOut::Down(*peer));
        }
    }

    /// Whether `peer`'s prefix already holds its share of the active view.
    pub(super) fn prefix_full_in_active(&self, peer: &PeerId) -> bool {
        let max = self.guard.config.max_active_per_prefix;
        self.addresses
            .prefix(peer)
            .is_some_and(|prefix| self.count_prefix(&self.active, prefix) >= max)
    }

    fn count_prefix(&self, peers: &[PeerId], prefix: IpPrefix) -> usize {
        peers
            .iter()
            .filter(|p| self.addresses.prefix(p) == Some(prefix))
            .count()
    }

    /// The neighbour a newcomer evicts from a full active view, or `None` if it may evict nobody now.
    ///
    /// The [`protected_neighbors`](crate::AdmissionConfig::protected_neighbors) longest-lived are never
    /// evicted, established or not: a young overlay (or a node that has just joined) would otherwise
    /// lose every honest neighbour to Sybils that arrive in its first minute. Of the rest, neighbours
    /// that are not established yet go first (random among them, as in the paper); an established one
    /// only when the budget allows.
    pub(super) fn eviction_victim(&mut self, rng: &mut ChaCha8Rng) -> Option<PeerId> {
        let (now, config) = (self.now, &self.guard.config);
        let since = |p: &PeerId| self.guard.since.get(p).copied().unwrap_or(now);
        // Oldest first; ties (neighbours that came in at the same time) broken by id, so every run agrees.
        let mut by_age = self.active.clone();
        by_age.sort_by_key(|p| (since(p), *p));
        let protected = config.protected_neighbors.min(self.active_cap.saturating_sub(1));
        let candidates = by_age.get(protected..).unwrap_or_default();
        let (fresh, established): (Vec<PeerId>, Vec<PeerId>) = candidates
            .iter()
            .partition(|p| now - since(p) < config.established_after);
        if !fresh.is_empty() {
            return Some(fresh[rng.gen_range(0..fresh.len())]);
        }
        if now < self.guard.next_eviction || established.is_empty() {
            return None;
        }
        let victim = established[rng.gen_range(0..established.len())];
        self.guard.next_eviction = now + config.eviction_interval;
        Some(victim)
    }

    /// Adds `peer` to the passive view, told of it by `source` (`None`: the peer itself), within the
    /// prefix and source limits; true if it entered. A full view replaces a random entry, so it keeps
    /// sampling the whole overlay; a source over its share replaces one of its own entries.
    pub(super) fn add_passive(&mut self, peer: PeerId, source: Option<PeerId>, rng: &mut ChaCha8Rng) -> bool {
        if peer == self.me
            || self.is_active(&peer)
            || self.passive.contains(&peer)
            || self.is_banned(&peer)
            || self.passive_cap == 0
        {
            return false;
        }
        let config = &self.guard.config;
        if let Some(prefix) = self.addresses.prefix(&peer)
            && self.count_prefix(&self.passive, prefix) >= config.max_passive_per_prefix
        {
            return false;
        }
        let own: Vec<usize> = match source {
            Some(source) => (0..self.passive.len())
                .filter(|&i| self.guard.passive_source.get(&self.passive[i]) == Some(&source))
                .collect(),
            None => Vec::new(),
        };
        let replaced = if own.len() >= config.max_passive_per_source.max(1) {
            Some(own[rng.gen_range(0..own.len())])
        } else if self.passive.len() >= self.passive_cap {
            Some(rng.gen_range(0..self.passive.len()))
        } else {
            None
        };
        match replaced {
            Some(at) => {
                let old = std::mem::replace(&mut self.passive[at], peer);
                self.forget_passive(&old);
            }
            None => self.passive.push(peer),
        }
        if let Some(source) = source {
            self.guard.passive_source.insert(peer, source);
        }
        true
    }

    /// Removes `peer` from the passive view, if it is there.
    pub(super) fn remove_passive(&mut self, peer: &PeerId) {
        if let Some(at) = self.passive.iter().position(|p| p == peer) {
            self.passive.swap_remove(at);
            self.forget_passive(peer);
        }
    }

    fn forget_passive(&mut self, peer: &PeerId) {
        self.guard.passive_source.remove(peer);
        self.forget_address(peer);
    }

    /// Drops the rate limits that have refilled (a fresh bucket is the same) and the addresses of peers
    /// we no longer know, so the maps stay bounded by the connections and the views (a driver need not
    /// report a disconnect we asked for, so `PeerDown` alone would not do).
    pub(super) fn sweep_limits(&mut self) {
        let (now, c) = (self.now, &self.guard.config);
        let (burst, rate) = (c.prefix_joins_burst, c.prefix_joins_per_sec);
        self.guard
            .joins
            .retain(|_, bucket| !bucket.is_full(now, burst, rate));
        let (burst, rate) = (c.prefix_referrals_burst, c.prefix_referrals_per_sec);
        self.guard
            .referrals
            .retain(|_, bucket| !bucket.is_full(now, burst, rate));
        let (burst, rate) = (c.requests_burst, c.requests_per_sec);
        let connected = &self.connected;
        self.guard
            .requests
            .retain(|peer, bucket| connected.contains(peer) || !bucket.is_full(now, burst, rate));
        self.sweep_addresses();
    }
}
