//! Send budgets: the bytes queued for writing to one peer and to all peers, reserved before a message
//! is queued and given back when it is written or dropped (ARCHITECTURE.md, hostile peers).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use meshwork_wire::DropReason;
use prometheus_client::metrics::gauge::Gauge;

/// Bytes waiting to be written: to one peer, and to all peers beyond each peer's reserved floor.
#[derive(Clone, Debug)]
pub(crate) struct SendBudget {
    peer: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
    gauge: Gauge,
}

impl SendBudget {
    /// A budget for a new connection, sharing the node's `total`.
    pub(crate) fn new(total: &Arc<AtomicU64>, gauge: &Gauge) -> Self {
        Self {
            peer: Arc::new(AtomicU64::new(0)),
            total: total.clone(),
            gauge: gauge.clone(),
        }
    }

    /// Reserves `len` bytes (callers pass a message's capacity: what it holds in memory, not just its
    /// length) if the peer stays within `per_peer` (or has nothing queued) and the part
    /// of its queue beyond its `reserved` floor fits in the node's `total`. The floor keeps the total
    /// from being a shared resource peers that stop reading can exhaust: an honest peer can always queue
    /// that much, whatever the others hold.
    ///
    /// A refusal says which limit it met: the peer's own ([`DropReason::QueueFull`]: it reads slower
    /// than we send to it) or the node's total ([`DropReason::BudgetSpent`]: other peers hold it, which
    /// says nothing of this one).
    pub(crate) fn reserve(&self, len: usize, limits: SendLimits) -> Result<Held, DropReason> {
        let len = len as u64;
        let before = self
            .peer
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q == 0 || q.saturating_add(len) <= limits.per_peer).then_some(q + len)
            })
            .map_err(|_| DropReason::QueueFull)?;
        let shared = (before + len).saturating_sub(before.max(limits.reserved));
        let fits = self.total.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
            (t.saturating_add(shared) <= limits.total).then_some(t + shared)
        });
        if fits.is_err() {
            self.peer.fetch_sub(len, Ordering::AcqRel);
            return Err(DropReason::BudgetSpent);
        }
        self.gauge.inc_by(len as i64);
        Ok(Held {
            budget: self.clone(),
            len,
            shared,
        })
    }
}

/// The send budgets, from [`NodeConfig`](crate::NodeConfig).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendLimits {
    pub(crate) per_peer: u64,
    pub(crate) reserved: u64,
    pub(crate) total: u64,
}

/// Bytes of one queued message, given back to the budget when it is written or dropped (however the
/// writer ends, the queue's contents are dropped with it).
#[derive(Debug)]
pub(crate) struct Held {
    budget: SendBudget,
    len: u64,
    /// The part of `len` drawn on the node's total (the rest is within the peer's reserved floor).
    shared: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.peer.fetch_sub(self.len, Ordering::AcqRel);
        self.budget.total.fetch_sub(self.shared, Ordering::AcqRel);
        self.budget.gauge.dec_by(self.len as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SendLimits = SendLimits {
        per_peer: 1000,
        reserved: 100,
        total: 1500,
    };

    #[test]
    fn a_refusal_says_whether_the_peer_or_the_node_ran_out() {
        let (total, gauge) = (Arc::new(AtomicU64::new(0)), Gauge::default());
        let (slow, other, honest) = (
            SendBudget::new(&total, &gauge),
            SendBudget::new(&total, &gauge),
            SendBudget::new(&total, &gauge),
        );
        // A peer past its own budget: it reads slower than we send.
        let held = slow.reserve(1000, LIMITS).unwrap();
        assert_eq!(slow.reserve(1, LIMITS).err(), Some(DropReason::QueueFull));
        // Two slow peers spend the node's total (beyond their floors: 900 + 600 of 1,500).
        let other_held = other.reserve(700, LIMITS).unwrap();
        assert_eq!(total.load(Ordering::Acquire), 1500);
        // A third peer still queues within its floor, and past it is refused for the node's total,
        // which says nothing of it.
        let floor = honest.reserve(100, LIMITS).unwrap();
        assert_eq!(honest.reserve(1, LIMITS).err(), Some(DropReason::BudgetSpent));
        // What is written is given back.
        drop((held, other_held, floor));
        assert_eq!(total.load(Ordering::Acquire), 0);
        assert!(honest.reserve(101, LIMITS).is_ok());
    }
}
