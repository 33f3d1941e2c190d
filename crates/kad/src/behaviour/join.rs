//! Joining: the lookup of our own key through the bootstrap peers, the bucket refreshes that follow
//! it one at a time, and joining again later while nobody has answered.

use meshwork_identity::PeerId;
use meshwork_wire::Instant;
use rand_core::RngCore;

use super::queries::{Kind, Qid};
use super::state::{Kademlia, Out, REJOIN_FIRST, REJOIN_MAX};
use super::stats::QueryStats;
use super::types::{Event, QueryId, Timer};
use crate::PeerInfo;
use crate::key::Key;
use crate::store::RecordStore;

impl<S: RecordStore> Kademlia<S> {
    /// The self-lookup of a join ended, having found `closest`: the bucket refreshes begin, a join
    /// that found nobody is tried again later, and the user's query (if the join was one) is answered.
    pub(crate) fn joined(
        &mut self,
        now: Instant,
        closest: &[PeerId],
        user: Option<QueryId>,
        stats: QueryStats,
        out: &mut Out<S>,
    ) {
        self.after_join(out);
        self.join_refreshes = self.buckets_to_refresh_after_join(closest);
        self.next_join_refresh(now, out);
        if let Some(query) = user {
            let table_size = self.table.len();
            self.emit(
                Event::Bootstrapped {
                    query,
                    table_size,
                    stats,
                },
                out,
            );
        }
    }

    /// After a join (the bootstrap lookup) finished: if nobody answered, try again later through the
    /// bootstrap peers, each time waiting twice as long; once someone has, the wait starts over.
    fn after_join(&mut self, out: &mut Out<S>) {
        if !self.table.is_empty() {
            self.rejoin_delay = REJOIN_FIRST;
            return;
        }
        if self.seeds.is_empty() || self.rejoin_scheduled {
            return;
        }
        self.rejoin_scheduled = true;
        self.schedule(self.rejoin_delay, Timer::Rejoin, out);
        self.rejoin_delay = (self.rejoin_delay * 2).min(REJOIN_MAX);
    }

    /// Joins again through the bootstrap peers (on [`Timer::Rejoin`]), unless a peer has answered
    /// since.
    pub(crate) fn rejoin(&mut self, now: Instant, out: &mut Out<S>) {
        self.rejoin_scheduled = false;
        if !self.table.is_empty() {
            self.rejoin_delay = REJOIN_FIRST;
            return;
        }
        // A copy (at most `MAX_SEEDS`): a join that ends at once must still find the seeds to retry.
        let seeds = self.seeds.clone();
        let qid = Qid::Internal(self.next_internal);
        self.next_internal += 1;
        self.join(now, qid, &seeds, out);
    }

    /// Starts the join, the lookup of our own key, as `qid` through `seeds` (with their addresses).
    pub(crate) fn join(&mut self, now: Instant, qid: Qid, seeds: &[PeerInfo], out: &mut Out<S>) {
        let target = Key::from_peer(&self.local);
        self.start(now, qid, target, Kind::Bootstrap, seeds.to_vec(), out);
    }

    /// Kademlia's join: after the self-lookup, which found `closest`, refresh every bucket farther
    /// than our nearest neighbour (Maymounkov & Mazières 2002, §2.3) that the self-lookup did not
    /// already cover.
    ///
    /// A bucket is covered when it holds [`crate::Config::join_fill`] peers already (all a join's
    /// refresh brings it to), or when it lies wholly
    /// nearer to us than the `k`-th peer the self-lookup found: the lookup ended only once the `k`
    /// closest had answered, so it has seen every peer in that radius. Only the buckets out to that
    /// peer's are left: about `log2(N / k)` of them in a network of `N`, not `log2 N`. Measured: a
    /// third fewer requests until 200 nodes joining at once over QUIC settled
    /// (`benches/benches/kad_connections.rs`), and 30% fewer join messages per node at 1,000
    /// simulated nodes (`meshsim kad-lookup`), with the same tables. A self-lookup that found fewer
    /// than `k` (answers lost, or a network that small) covers nothing beyond our nearest
    /// neighbour.
    fn buckets_to_refresh_after_join(&self, closest: &[PeerId]) -> Vec<usize> {
        let Some(nearest) = (0..Key::BITS).rev().find(|&i| !self.table.bucket(i).is_empty()) else {
            return Vec::new();
        };
        let covered_beyond = if closest.len() >= self.config.k {
            // Bucket 0 is the farthest half of the key space: the k-th peer's bucket has the
            // smallest index among the k.
            closest
                .iter()
                .filter_map(|peer| self.table.bucket_index(&Key::from_peer(peer)))
                .min()
                .map_or(nearest, |farthest| (farthest + 1).min(nearest))
        } else {
            nearest
        };
        (0..covered_beyond)
            .filter(|&index| self.table.bucket(index).len() < self.config.join_fill)
            .collect()
    }

    /// Starts the join's next bucket refresh, nearest bucket first, if any is left. One at a time: over
    /// QUIC each request of a refresh is mostly a dial (a new connection, closed again soon after, and
    /// held by QUIC for three probe timeouts more), and every refresh at once made a joining node the
    /// peak of the whole network's connections. Measured (`benches/benches/kad_connections.rs`, 200
    /// nodes): peak RSS 392 and 411 MB against 463 and 503 MB with the refreshes all at once, in
    /// two pairs of runs, with the settling time unchanged in the first pair (5.5 s) and 11.4 s against
    /// 9.8 s in the second, on a busier machine.
    pub(crate) fn next_join_refresh(&mut self, now: Instant, out: &mut Out<S>) {
        if let Some(index) = self.join_refreshes.pop() {
            let target = self.random_key_in_bucket(index);
            self.start_internal(now, target, Kind::JoinRefresh(index), out);
        }
    }

    pub(crate) fn random_key_in_bucket(&mut self, index: usize) -> Key {
        let mut random = [0u8; 32];
        self.rng.fill_bytes(&mut random);
        self.table.local_key().random_in_bucket(index, random)
    }
}
