//! The routing table: 256 k-buckets of peers that answered us.
//!
//! Bucket `i` holds the peers whose key's XOR distance from ours has `i` leading zero bits. Each bucket
//! keeps at most `k` entries, least recently seen first. Kademlia's eviction rule (§2.2 of the paper):
//! when a bucket is full, a new peer does not push out the oldest one — the oldest is pinged first and
//! only evicted if it fails to answer, because long-lived peers are the likeliest to stay. While that
//! ping is out the newcomer waits in the bucket's single pending slot.
//!
//! The ping is delayed as the paper's §4.1 delays it ("Kademlia delays probing contacts until it has
//! useful messages to send them"): if the oldest entry answered us within
//! [`TableLimits::stale_after`], it is taken as alive and not pinged. The newcomer still waits in the
//! pending slot, the paper's replacement cache (of one: the most recently seen candidate), and takes the
//! place of the first entry to leave for failing requests we send anyway, such as a lookup's (at once
//! for an entry that has not answered for `stale_after`, after [`TableLimits::max_failures`] in a row
//! for one that has: `routing_table/eviction.rs`). A ping costs a connection to a peer we may have no other reason to talk to; in a network joining
//! fast, where buckets fill in seconds, undelayed pings were a fifth of every Kademlia request.
//!
//! S/Kademlia defences applied on insertion: the peer's id must solve the static puzzle at the configured
//! difficulty, and at most a configured number of peers of one IP prefix (/24, /48) may sit in one bucket
//! and in the whole table, so one operator with one subnet cannot fill our view.

use std::time::Duration;

use meshwork_identity::{PeerId, puzzle};
use meshwork_wire::Instant;

use crate::{Address, Distance, IpPrefix, Key, PeerInfo};

mod eviction;

/// Limits the table enforces on insertion.
#[derive(Clone, Copy, Debug)]
pub struct TableLimits {
    /// Bucket size `k`.
    pub k: usize,
    /// S/Kademlia puzzle difficulty a peer id must solve.
    pub puzzle_difficulty: u32,
    /// Most peers of one IP prefix per bucket.
    pub max_per_prefix_in_bucket: usize,
    /// Most peers of one IP prefix in the table.
    pub max_per_prefix_in_table: usize,
    /// A full bucket's oldest entry is pinged for a newcomer only if it has not answered us for this
    /// long; a fresher one is taken as alive (see the module doc).
    pub stale_after: Duration,
    /// An entry that answered us within `stale_after` leaves the table once it has failed this many
    /// requests in a row (see [`RoutingTable::on_request_failed`]); at least 1.
    pub max_failures: u8,
}

/// One peer in a bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The peer.
    pub peer: PeerId,
    /// Its key.
    pub key: Key,
    /// Where it can be reached.
    pub addr: Address,
    /// When it last answered us.
    pub last_seen: Instant,
    /// Requests it failed to answer since it last answered (see [`RoutingTable::on_request_failed`]).
    pub failures: u8,
}

impl Entry {
    /// The entry as it travels in messages.
    pub fn info(&self) -> PeerInfo {
        PeerInfo {
            id: self.peer,
            addr: self.addr.clone(),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct KBucket {
    /// Least recently seen first.
    entries: Vec<Entry>,
    /// A candidate for the first place that frees up: the oldest entry's if it fails its liveness
    /// check, or any entry's that leaves for failed requests. Boxed: most buckets never hold one,
    /// and inline it made every bucket 100 bytes larger.
    pending: Option<Box<Entry>>,
    /// Whether the oldest entry's liveness check is out (the candidate then waits for it and is not
    /// replaced by a newer one).
    probing: bool,
    /// The last time a lookup touched this bucket.
    last_refresh: Instant,
}

impl KBucket {
    /// Whether the oldest entry has not answered for `stale_after` at `now` (a newcomer may have it
    /// checked).
    fn oldest_is_stale(&self, now: Instant, stale_after: Duration) -> bool {
        self.entries
            .first()
            .is_some_and(|oldest| now.saturating_duration_since(oldest.last_seen) >= stale_after)
    }
}

/// What [`RoutingTable::insert`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The peer was added.
    Inserted,
    /// The peer was already there; it is now the most recently seen.
    Updated,
    /// The bucket is full: the peer waits in the pending slot, and the caller must ping `oldest`, then
    /// report the result with [`RoutingTable::on_ping_result`].
    PingOldest {
        /// The least recently seen entry of the bucket.
        oldest: PeerId,
    },
    /// The bucket is full and its oldest entry answered within [`TableLimits::stale_after`]: the peer
    /// waits in the pending slot (replacing an earlier candidate) for the first entry to leave for
    /// failed requests ([`RoutingTable::on_request_failed`]), and nobody is pinged.
    Pending,
    /// The bucket is full and a candidate already waits on the oldest entry's liveness check; this
    /// peer was dropped.
    BucketFull,
    /// The peer was refused.
    Refused(RefuseReason),
}

/// Why a peer was refused from the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseReason {
    /// It is us.
    LocalPeer,
    /// Its id does not solve the S/Kademlia puzzle.
    Puzzle,
    /// Its bucket already holds the maximum for its IP prefix.
    BucketPrefixLimit,
    /// The table already holds the maximum for its IP prefix.
    TablePrefixLimit,
}

/// The Kademlia routing table.
#[derive(Clone, Debug)]
pub struct RoutingTable {
    local: Key,
    limits: TableLimits,
    /// Bucket `i` at index `i`, allocated up to the highest bucket used so far: a table of N peers uses
    /// about log2(N) buckets of the 256, and an empty bucket costs some 140 bytes (35 KiB a node if all
    /// were allocated, which a simulation of 100,000 nodes would feel).
    buckets: Vec<KBucket>,
    /// How many entries each IP prefix has, sorted by prefix: a table's few hundred entries in
    /// exactly as many places (a hash map of them held twice the room, 4 KB a node).
    prefix_counts: Vec<(IpPrefix, u32)>,
}

impl RoutingTable {
    /// An empty table around our own key.
    pub fn new(local: Key, limits: TableLimits) -> Self {
        Self {
            local,
            limits,
            buckets: Vec::new(),
            prefix_counts: Vec::new(),
        }
    }

    /// Our own key.
    pub fn local_key(&self) -> &Key {
        &self.local
    }

    /// The bucket index of `key` (leading zeros of its distance from us), `None` for our own key.
    pub fn bucket_index(&self, key: &Key) -> Option<usize> {
        self.local.distance(key).bucket_index()
    }

    /// Where `prefix` is counted in `prefix_counts` (`Err`: where it would go).
    fn prefix_slot(&self, prefix: &IpPrefix) -> Result<usize, usize> {
        self.prefix_counts.binary_search_by_key(prefix, |&(p, _)| p)
    }

    /// How many entries of the table have an address in `prefix`.
    fn prefix_count(&self, prefix: &IpPrefix) -> usize {
        self.prefix_slot(prefix)
            .map_or(0, |at| self.prefix_counts[at].1 as usize)
    }

    /// Whether `peer` could enter the table (puzzle and prefix limits), ignoring bucket fullness.
    pub fn check(&self, peer: &PeerId, addr: &Address) -> Result<usize, RefuseReason> {
        let key = Key::from_peer(peer);
        let index = self.bucket_index(&key).ok_or(RefuseReason::LocalPeer)?;
        if !puzzle::solves(peer, self.limits.puzzle_difficulty) {
            return Err(RefuseReason::Puzzle);
        }
        if self.bucket(index).iter().any(|e| e.peer == *peer) {
            return Ok(index);
        }
        self.prefix_limits(index, addr)?;
        Ok(index)
    }

    /// Whether an entry at `addr` fits bucket `index`'s and the table's per-prefix limits.
    fn prefix_limits(&self, index: usize, addr: &Address) -> Result<(), RefuseReason> {
        if let Some(prefix) = addr.prefix() {
            let in_bucket = self
                .bucket(index)
                .iter()
                .filter(|e| e.addr.prefix() == Some(prefix))
                .count();
            if in_bucket >= self.limits.max_per_prefix_in_bucket {
                return Err(RefuseReason::BucketPrefixLimit);
            }
            if self.prefix_count(&prefix) >= self.limits.max_per_prefix_in_table {
                return Err(RefuseReason::TablePrefixLimit);
            }
        }
        Ok(())
    }

    /// [`RoutingTable::prefix_limits`] as a yes or no.
    fn prefix_room(&self, index: usize, addr: &Address) -> bool {
        self.prefix_limits(index, addr).is_ok()
    }

    /// Records that `peer`, reachable at `addr`, answered us at `now`. Only call this for peers that
    /// answered a request of ours (S/Kademlia: a request alone proves nothing about reachability).
    pub fn insert(&mut self, peer: PeerId, addr: Address, now: Instant) -> InsertOutcome {
        let index = match self.check(&peer, &addr) {
            Ok(index) => index,
            Err(reason) => return InsertOutcome::Refused(reason),
        };
        let (k, stale_after) = (self.limits.k, self.limits.stale_after);
        if let Some(pos) = self.bucket(index).iter().position(|e| e.peer == peer) {
            // An entry that came in at no known address (through a relay) takes the first one
            // observed, within the prefix limits as for a newcomer; otherwise the address of an
            // existing entry is kept: a peer cannot move itself past the prefix limits.
            let learns = !addr.is_unknown()
                && self.bucket(index)[pos].addr.is_unknown()
                && self.prefix_room(index, &addr);
            let prefix = addr.prefix();
            let entries = &mut self.bucket_mut(index).entries;
            let mut entry = entries.remove(pos);
            entry.last_seen = now;
            // Its failure count stays: a request it sent us proves nothing of its answers to ours
            // (one that asks and never answers would keep its place for good); an answer clears it
            // ([`RoutingTable::answered`]).
            if learns {
                entry.addr = addr;
            }
            entries.push(entry);
            if learns {
                self.count_prefix(prefix);
            }
            return InsertOutcome::Updated;
        }
        let bucket = self.bucket_mut(index);
        let entry = Entry {
            peer,
            key: Key::from_peer(&peer),
            addr,
            last_seen: now,
            failures: 0,
        };
        if bucket.entries.len() < k {
            self.add_entry(index, entry);
            return InsertOutcome::Inserted;
        }
        if let Some(pending) = bucket.pending.as_mut().filter(|p| p.peer == peer) {
            pending.last_seen = now;
            return InsertOutcome::BucketFull;
        }
        if bucket.probing {
            return InsertOutcome::BucketFull;
        }
        bucket.pending = Some(Box::new(entry));
        if !bucket.oldest_is_stale(now, stale_after) {
            return InsertOutcome::Pending;
        }
        bucket.probing = true;
        InsertOutcome::PingOldest {
            oldest: bucket.entries[0].peer,
        }
    }

    /// Adds `entry` to bucket `index` where its `last_seen` puts it (least recently seen first): at
    /// the end for a peer that just answered, further in for a candidate that waited a while.
    fn add_entry(&mut self, index: usize, entry: Entry) {
        self.count_prefix(entry.addr.prefix());
        let entries = &mut self.bucket_mut(index).entries;
        let at = entries.partition_point(|e| e.last_seen <= entry.last_seen);
        // Exactly one more place: doubling left a full bucket of 20 holding room for 32, a third of
        // the table's memory, and a bucket grows at most `k` times.
        entries.reserve_exact(1);
        entries.insert(at, entry);
    }

    /// One more entry of the table has an address in `prefix` (if it has one).
    fn count_prefix(&mut self, prefix: Option<IpPrefix>) {
        if let Some(prefix) = prefix {
            match self.prefix_slot(&prefix) {
                Ok(at) => self.prefix_counts[at].1 += 1,
                Err(at) => {
                    self.prefix_counts.reserve_exact(1);
                    self.prefix_counts.insert(at, (prefix, 1));
                }
            }
        }
    }

    /// Bucket `index`, allocating the buckets up to it if they are not yet.
    fn bucket_mut(&mut self, index: usize) -> &mut KBucket {
        if self.buckets.len() <= index {
            self.buckets.resize(index + 1, KBucket::default());
        }
        &mut self.buckets[index]
    }

    /// The entry of `peer`, if it is in the table.
    pub fn get(&self, peer: &PeerId) -> Option<&Entry> {
        let index = self.bucket_index(&Key::from_peer(peer))?;
        self.bucket(index).iter().find(|e| e.peer == *peer)
    }

    /// [`RoutingTable::get`], to change the entry in place.
    fn get_mut(&mut self, peer: &PeerId) -> Option<&mut Entry> {
        let index = self.bucket_index(&Key::from_peer(peer))?;
        self.buckets
            .get_mut(index)?
            .entries
            .iter_mut()
            .find(|e| e.peer == *peer)
    }

    /// Whether `peer` is in the table (not counting pending candidates).
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.get(peer).is_some()
    }

    /// The entries of bucket `index`, least recently seen first.
    pub fn bucket(&self, index: usize) -> &[Entry] {
        self.buckets.get(index).map_or(&[], |b| b.entries.as_slice())
    }

    /// The pending candidate of bucket `index`.
    pub fn pending(&self, index: usize) -> Option<&Entry> {
        self.buckets.get(index).and_then(|b| b.pending.as_deref())
    }

    /// Every entry, bucket by bucket.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flat_map(|b| b.entries.iter())
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.entries.len()).sum()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(|b| b.entries.is_empty())
    }

    /// The (at most) `count` entries closest to `target`, closest first.
    ///
    /// The buckets are visited nearest to `target` first, so only they are measured and sorted, not
    /// the whole table (answering `FindNode` was a fifth of a simulated network's CPU when every
    /// answer measured all 150 to 200 entries). Let `D` be our distance to `target` and `i` its
    /// bucket. Every peer of bucket `i` is nearer to `target` than any other peer: XOR clears the bit
    /// `D` and it share. A peer of a bucket `j > i` is at `D` with bit `j` flipped, so the buckets
    /// where `D` has a one come next, the highest bit first, then those where it has a zero, the
    /// lowest bit first; the buckets `j < i` are farther still, the lowest bit first. Each bucket in
    /// that order holds only peers farther than every peer of the buckets before it, so whole buckets
    /// are taken until `count` is reached, and only they are sorted.
    pub fn closest(&self, target: &Key, count: usize) -> Vec<&Entry> {
        if count == 0 {
            return Vec::new();
        }
        let distance = self.local.distance(target);
        let used = self.buckets.len();
        let bit = |j: usize| distance.as_bytes()[j / 8] & (0x80 >> (j % 8)) != 0;
        // Our own key has no bucket: with `i` past the last one, the order is every bucket, the
        // nearest first.
        let i = distance.bucket_index().unwrap_or(Key::BITS);
        let order = std::iter::once(i)
            .chain((i + 1..used).filter(move |&j| bit(j)))
            .chain((i + 1..used).rev().filter(move |&j| !bit(j)))
            .chain((0..i.min(used)).rev());
        let mut taken: Vec<(Distance, &Entry)> = Vec::with_capacity(count + self.limits.k);
        for index in order {
            if taken.len() >= count {
                break;
            }
            if let Some(bucket) = self.buckets.get(index) {
                taken.extend(bucket.entries.iter().map(|e| (e.key.distance(target), e)));
            }
        }
        // Distinct entries have distinct keys, hence distinct distances. Each distance is computed
        // once, not once per comparison.
        taken.sort_unstable_by_key(|&(d, _)| d);
        taken.truncate(count);
        taken.into_iter().map(|(_, e)| e).collect()
    }

    /// Notes that a lookup for a key in bucket `index` started at `now`.
    pub fn touch_bucket(&mut self, index: usize, now: Instant) {
        if index < Key::BITS {
            self.bucket_mut(index).last_refresh = now;
        }
    }

    /// The buckets that need a refresh at `now`: every bucket up to the highest non-empty one whose last
    /// lookup is older than `interval` (buckets nearer to us are covered by lookups of our own key).
    pub fn stale_buckets(&self, now: Instant, interval: Duration) -> Vec<usize> {
        let Some(highest) = self.buckets.iter().rposition(|b| !b.entries.is_empty()) else {
            return Vec::new();
        };
        (0..=highest.min(Key::BITS - 1))
            .filter(|&i| now.saturating_duration_since(self.buckets[i].last_refresh) >= interval)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use meshwork_identity::Keypair;

    use super::*;

    #[test]
    fn buckets_are_allocated_only_up_to_the_highest_one_used() {
        // Buckets large enough that every peer below finds room.
        let limits = TableLimits {
            k: 64,
            puzzle_difficulty: 0,
            max_per_prefix_in_bucket: 64,
            max_per_prefix_in_table: 1000,
            stale_after: Duration::ZERO,
            max_failures: 5,
        };
        let local = Keypair::from_seed([1; 32]).peer_id();
        let mut table = RoutingTable::new(Key::from_peer(&local), limits);
        assert!(table.buckets.is_empty());
        let addr = Address::V4 {
            ip: [10, 0, 0, 1],
            port: 1,
        };
        let mut highest = 0;
        for i in 2..50u8 {
            let peer = Keypair::from_seed([i; 32]).peer_id();
            let index = table.bucket_index(&Key::from_peer(&peer)).unwrap();
            table.insert(peer, addr.clone(), Instant::ZERO);
            highest = highest.max(index);
            assert_eq!(table.buckets.len(), highest + 1);
            assert!(table.contains(&peer));
        }
        // 48 random peers land within the first dozen buckets, not all 256.
        assert!(table.buckets.len() < 16, "{}", table.buckets.len());
        // Reading a bucket never used allocates nothing.
        assert!(table.bucket(200).is_empty());
        assert!(table.pending(200).is_none());
        assert_eq!(table.buckets.len(), highest + 1);
    }
}
