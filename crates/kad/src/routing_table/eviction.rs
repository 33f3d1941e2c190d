//! How entries leave a bucket: a liveness check's result, a request that went unanswered, a removal;
//! and how the bucket's candidate then takes the place.

use meshwork_identity::PeerId;
use meshwork_wire::Instant;

use super::{Entry, RoutingTable};
use crate::Key;

impl RoutingTable {
    /// The result of the liveness check of a full bucket's oldest entry: if it answered it becomes the
    /// most recently seen and the pending candidate is dropped; if not it is evicted and the candidate
    /// takes its place. Returns the peer that entered the table, if any.
    pub fn on_ping_result(&mut self, peer: &PeerId, alive: bool, now: Instant) -> Option<PeerId> {
        let index = self.bucket_index(&Key::from_peer(peer))?;
        let bucket = self.buckets.get_mut(index)?;
        // Whatever became of the pinged entry meanwhile (a failed lookup request may have removed it),
        // the check is over: the next newcomer may start another.
        bucket.probing = false;
        let pos = bucket.entries.iter().position(|e| e.peer == *peer)?;
        if alive {
            let mut entry = bucket.entries.remove(pos);
            entry.last_seen = now;
            entry.failures = 0;
            bucket.entries.push(entry);
            bucket.pending = None;
            None
        } else {
            let candidate = bucket.pending.as_ref().map(|p| p.peer);
            self.remove(peer);
            candidate.filter(|c| self.contains(c))
        }
    }

    /// The liveness check of `peer` (a full bucket's oldest entry) could not be made (our dial limits):
    /// that says nothing of the entry, so the bucket keeps what it has, as it was, and the candidate
    /// is dropped; the next newcomer may start another check.
    pub fn abandon_probe(&mut self, peer: &PeerId) {
        let Some(index) = self.bucket_index(&Key::from_peer(peer)) else {
            return;
        };
        if let Some(bucket) = self.buckets.get_mut(index) {
            bucket.probing = false;
            bucket.pending = None;
        }
    }

    /// Whether bucket `index` would take a new peer at `now`, in its entries or as a candidate that
    /// changes something: false while a liveness check is out, or when the bucket is full, a candidate
    /// already waits and the oldest entry is too fresh to be checked (another candidate would only
    /// take the first one's place). Kademlia asks this before pinging a peer that asked us something.
    pub fn wants_candidate(&self, index: usize, now: Instant) -> bool {
        let Some(bucket) = self.buckets.get(index) else {
            return true;
        };
        if bucket.entries.len() < self.limits.k {
            return true;
        }
        if bucket.probing {
            return false;
        }
        bucket.oldest_is_stale(now, self.limits.stale_after) || bucket.pending.is_none()
    }

    /// `peer` answered a request of ours: the requests it failed before are forgiven.
    pub fn answered(&mut self, peer: &PeerId) {
        if let Some(entry) = self.get_mut(peer) {
            entry.failures = 0;
        }
    }

    /// A request we sent `peer` (a lookup's, an anchor's keepalive) went unanswered: it
    /// timed out or its connection went down. Returns whether the entry left the table (its bucket's
    /// candidate, if any, taking its place).
    ///
    /// One failure is not enough to evict an entry that answered us within
    /// [`TableLimits::stale_after`](super::TableLimits::stale_after): packets get lost and connections drop, and a long-lived entry
    /// is worth more than the candidate (Kademlia's preference, §2.2), which a Sybil can always
    /// make sure is its own. The paper's §4.1 makes the same point ("valid contacts will sometimes
    /// fail to respond when network packets are dropped"), and go-ethereum's discovery table drops a
    /// node only after five failed `FINDNODE`s in a row (`maxFindnodeFailures`). So an entry leaves
    /// after [`TableLimits::max_failures`](super::TableLimits::max_failures) failures in a row, or at the first one if nothing recent
    /// speaks for it (no answer for `stale_after`, as for a failed liveness check); an answer
    /// clears the count.
    pub fn on_request_failed(&mut self, peer: &PeerId, now: Instant) -> bool {
        let (stale_after, max_failures) = (self.limits.stale_after, self.limits.max_failures.max(1));
        let Some(entry) = self.get_mut(peer) else {
            return false;
        };
        entry.failures = entry.failures.saturating_add(1);
        let stale = now.saturating_duration_since(entry.last_seen) >= stale_after;
        if stale || entry.failures >= max_failures {
            self.remove(peer);
            return true;
        }
        false
    }

    /// Removes `peer`; if its bucket had a pending candidate that fits, the candidate takes its place.
    pub fn remove(&mut self, peer: &PeerId) -> Option<Entry> {
        let index = self.bucket_index(&Key::from_peer(peer))?;
        let bucket = self.buckets.get_mut(index)?;
        let removed = if let Some(pos) = bucket.entries.iter().position(|e| e.peer == *peer) {
            let entry = bucket.entries.remove(pos);
            if let Some(prefix) = entry.addr.prefix()
                && let Ok(at) = self.prefix_slot(&prefix)
            {
                let count = &mut self.prefix_counts[at].1;
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.prefix_counts.remove(at);
                }
            }
            Some(entry)
        } else {
            if bucket.pending.as_ref().is_some_and(|p| p.peer == *peer) {
                bucket.pending = None;
            }
            return None;
        };
        if let Some(pending) = self.buckets[index].pending.take() {
            if self.check(&pending.peer, &pending.addr).is_ok() {
                self.add_entry(index, *pending);
            }
        }
        removed
    }
}
