//! Learning our own external address from what peers observe, and confirming it before use.
//!
//! Every peer tells us the address our connection comes from (`Observed`). One peer can lie, and a
//! single report may describe a mapping only that peer sees (a symmetric NAT gives each destination its
//! own port), so an address counts as **confirmed** only while at least `confirmations` distinct
//! reporters report it, each within the last `ttl`, as libp2p's identify and AutoNAT combine
//! observations before advertising one. A report is replaced by the same reporter's next one and
//! forgotten after `ttl`, so an address the NAT no longer uses expires on its own.
//!
//! A reporter is the IP prefix (a /24, a /48) the peer's connection comes from, not the peer: one host
//! under two identities confirmed any address it liked, and under a few dozen it pushed every honest
//! report out of the bounded table. A peer whose address the driver never told counts as itself.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::{Instant, IpPrefix};

use crate::prefix::prefix_of;

/// A change to the set of confirmed addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressChange {
    /// Enough peers now report this address.
    Confirmed(SocketAddr),
    /// Too few fresh reports are left for this address.
    Expired(SocketAddr),
}

/// Who a report counts for: the prefix the reporting peer's connection comes from, or the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Reporter {
    /// The peers of one prefix.
    Net(IpPrefix),
    /// A peer whose address we were not told.
    Peer(PeerId),
}

impl Reporter {
    fn of(peer: PeerId, seen_from: Option<IpAddr>) -> Self {
        seen_from.and_then(prefix_of).map_or(Self::Peer(peer), Self::Net)
    }
}

/// The reports peers made of our address, bounded in the number of reporters.
#[derive(Debug)]
pub struct ObservedAddresses {
    /// Each reporter's latest report and when it came.
    reports: BTreeMap<Reporter, (SocketAddr, Instant)>,
    confirmed: Vec<SocketAddr>,
    confirmations: usize,
    ttl: Duration,
    max_reporters: usize,
}

impl ObservedAddresses {
    /// Confirms an address once `confirmations` reporters (networks, see the module docs) report it
    /// within `ttl`, keeping the latest reports of at most `max_reporters` (the oldest makes room).
    pub fn new(confirmations: usize, ttl: Duration, max_reporters: usize) -> Self {
        Self {
            reports: BTreeMap::new(),
            confirmed: Vec::new(),
            confirmations: confirmations.max(1),
            ttl,
            max_reporters: max_reporters.max(1),
        }
    }

    /// `from`, whose connection comes from `seen_from` (`None`: we were not told), observed us at
    /// `addr`. Returns what changed.
    pub fn report(
        &mut self,
        now: Instant,
        from: PeerId,
        seen_from: Option<IpAddr>,
        addr: SocketAddr,
    ) -> Vec<AddressChange> {
        let from = Reporter::of(from, seen_from);
        if !self.reports.contains_key(&from) && self.reports.len() >= self.max_reporters {
            let oldest = self
                .reports
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(p, _)| *p);
            if let Some(oldest) = oldest {
                self.reports.remove(&oldest);
            }
        }
        self.reports.insert(from, (addr, now));
        self.recount(now)
    }

    /// Forgets reports older than the TTL. Returns what changed.
    pub fn expire(&mut self, now: Instant) -> Vec<AddressChange> {
        self.recount(now)
    }

    /// When the oldest report goes stale, if any report is held: the driver's next expiry check.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.reports
            .values()
            .map(|(_, at)| *at)
            .min()
            .and_then(|at| at.checked_add(self.ttl))
    }

    /// The confirmed addresses, in the order they were confirmed.
    pub fn confirmed(&self) -> &[SocketAddr] {
        &self.confirmed
    }

    fn recount(&mut self, now: Instant) -> Vec<AddressChange> {
        let ttl = self.ttl;
        self.reports
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < ttl);
        let mut votes: BTreeMap<SocketAddr, usize> = BTreeMap::new();
        for (addr, _) in self.reports.values() {
            *votes.entry(*addr).or_default() += 1;
        }
        let holds = |addr: &SocketAddr| votes.get(addr).is_some_and(|n| *n >= self.confirmations);
        let mut changes = Vec::new();
        self.confirmed.retain(|addr| {
            let keep = holds(addr);
            if !keep {
                changes.push(AddressChange::Expired(*addr));
            }
            keep
        });
        for addr in votes.keys() {
            if holds(addr) && !self.confirmed.contains(addr) {
                self.confirmed.push(*addr);
                changes.push(AddressChange::Confirmed(*addr));
            }
        }
        changes
    }
}
