//! Properties of the k-bucket routing table.
#![allow(clippy::unwrap_used)]

use meshwork_identity::{Keypair, PeerId, puzzle};
use meshwork_kad::routing_table::{InsertOutcome, RefuseReason, RoutingTable, TableLimits};
use meshwork_kad::{Address, Key};
use meshwork_wire::Instant;
use proptest::prelude::*;
use std::time::Duration;

fn peer(i: u64) -> PeerId {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    seed[31] = 0xaa;
    Keypair::from_seed(seed).peer_id()
}

fn addr(i: u64) -> Address {
    Address::V4 {
        ip: [10, (i >> 16) as u8, (i >> 8) as u8, i as u8],
        port: 1,
    }
}

fn subnet(net: u8, host: u8) -> Address {
    Address::V4 {
        ip: [192, 168, net, host],
        port: 1,
    }
}

fn limits(k: usize) -> TableLimits {
    TableLimits {
        k,
        puzzle_difficulty: 0,
        max_per_prefix_in_bucket: usize::MAX,
        max_per_prefix_in_table: usize::MAX,
        // Every full bucket pings, as §2.2 alone would; the delayed ping has its own test.
        stale_after: Duration::ZERO,
        max_failures: 5,
    }
}

fn t(ms: u64) -> Instant {
    Instant::from_nanos(ms * 1_000_000)
}

/// Peers (by seed index) whose key falls in bucket `bucket` of `local`'s table.
fn peers_in_bucket(local: &Key, bucket: usize, count: usize) -> Vec<u64> {
    (1000..)
        .filter(|&i| local.distance(&Key::from_peer(&peer(i))).bucket_index() == Some(bucket))
        .take(count)
        .collect()
}

fn naive_leading_zeros(bytes: &[u8; 32]) -> u32 {
    for bit in 0..256 {
        if bytes[bit / 8] & (0x80 >> (bit % 8)) != 0 {
            return bit as u32;
        }
    }
    256
}

proptest! {
    /// `Distance` compares by words; it must order exactly as the 256-bit big-endian integer, also
    /// when the distances share a prefix longer than a word.
    #[test]
    fn distances_order_as_big_endian_integers(
        a in proptest::array::uniform32(any::<u8>()),
        b in proptest::array::uniform32(any::<u8>()),
        t in proptest::array::uniform32(any::<u8>()),
        shared in 0usize..=32,
    ) {
        let mut b = b;
        b[..shared].copy_from_slice(&a[..shared]);
        let target = Key::from_bytes(t);
        let (da, db) = (Key::from_bytes(a).distance(&target), Key::from_bytes(b).distance(&target));
        prop_assert_eq!(da.cmp(&db), da.as_bytes().cmp(db.as_bytes()));
        prop_assert_eq!(da.partial_cmp(&db), Some(da.as_bytes().cmp(db.as_bytes())));
        prop_assert_eq!(da == db, da.as_bytes() == db.as_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn bucket_index_is_leading_zeros_and_buckets_never_exceed_k(
        seeds in proptest::collection::vec(0u64..1_000_000, 1..120),
        k in 1usize..6,
        local in any::<u64>(),
    ) {
        let local = Key::from_peer(&peer(local));
        let mut table = RoutingTable::new(local, limits(k));
        for (n, s) in seeds.iter().enumerate() {
            table.insert(peer(*s), addr(*s), t(n as u64));
        }
        for index in 0..256 {
            let bucket = table.bucket(index);
            prop_assert!(bucket.len() <= k);
            for entry in bucket {
                let d = local.distance(&entry.key);
                prop_assert_eq!(naive_leading_zeros(d.as_bytes()) as usize, index);
                prop_assert_eq!(entry.key, Key::from_peer(&entry.peer));
            }
        }
        // The table holds min(k, candidates) per bucket: nothing is lost while a bucket has room.
        let mut per_bucket = vec![std::collections::HashSet::new(); 256];
        for s in &seeds {
            let index = local.distance(&Key::from_peer(&peer(*s))).bucket_index().unwrap();
            per_bucket[index].insert(*s);
        }
        for (index, candidates) in per_bucket.iter().enumerate() {
            prop_assert_eq!(table.bucket(index).len(), candidates.len().min(k));
        }
    }

    #[test]
    fn closest_is_sorted_and_is_the_true_closest(
        seeds in proptest::collection::vec(0u64..1_000_000, 1..80),
        target in any::<[u8; 32]>(),
        count in 1usize..30,
    ) {
        let local = Key::from_peer(&peer(u64::MAX));
        let mut table = RoutingTable::new(local, limits(20));
        for s in &seeds {
            table.insert(peer(*s), addr(*s), t(0));
        }
        let target = Key::from_bytes(target);
        let got: Vec<PeerId> = table.closest(&target, count).iter().map(|e| e.peer).collect();
        let mut all: Vec<PeerId> = table.iter().map(|e| e.peer).collect();
        all.sort_by_key(|p| Key::from_peer(p).distance(&target));
        all.truncate(count);
        prop_assert_eq!(got, all);
    }

    #[test]
    fn closest_is_the_true_closest_for_targets_near_us_too(
        seeds in proptest::collection::vec(0u64..1_000_000, 1..300),
        random in any::<[u8; 32]>(),
        bucket in 0usize..18,
        own_key in any::<bool>(),
        count in 1usize..45,
    ) {
        // `closest` walks the buckets in XOR order from the target's bucket; targets in the deeper
        // buckets (and our own key) take every branch of that order.
        let local = Key::from_peer(&peer(u64::MAX));
        let mut table = RoutingTable::new(local, limits(8));
        for s in &seeds {
            table.insert(peer(*s), addr(*s), t(0));
        }
        let target = if own_key { local } else { local.random_in_bucket(bucket, random) };
        let got: Vec<PeerId> = table.closest(&target, count).iter().map(|e| e.peer).collect();
        let mut all: Vec<PeerId> = table.iter().map(|e| e.peer).collect();
        all.sort_by_key(|p| Key::from_peer(p).distance(&target));
        all.truncate(count);
        prop_assert_eq!(got, all);
    }

    #[test]
    fn random_key_in_bucket_lands_in_that_bucket(local in any::<[u8; 32]>(), random in any::<[u8; 32]>(), bucket in 0usize..256) {
        let local = Key::from_bytes(local);
        let key = local.random_in_bucket(bucket, random);
        prop_assert_eq!(local.distance(&key).bucket_index(), Some(bucket));
    }
}

#[test]
fn a_full_bucket_evicts_only_after_a_failed_ping() {
    let local = Key::from_peer(&peer(1));
    let mut table = RoutingTable::new(local, limits(2));
    let p = peers_in_bucket(&local, 0, 5);
    assert_eq!(
        table.insert(peer(p[0]), addr(p[0]), t(1)),
        InsertOutcome::Inserted
    );
    assert_eq!(
        table.insert(peer(p[1]), addr(p[1]), t(2)),
        InsertOutcome::Inserted
    );
    // Full: the newcomer waits, the oldest must be pinged; nobody is evicted yet.
    assert_eq!(
        table.insert(peer(p[2]), addr(p[2]), t(3)),
        InsertOutcome::PingOldest { oldest: peer(p[0]) }
    );
    assert!(table.contains(&peer(p[0])) && !table.contains(&peer(p[2])));
    assert_eq!(table.pending(0).map(|e| e.peer), Some(peer(p[2])));
    // A second newcomer while the slot is taken is dropped.
    assert_eq!(
        table.insert(peer(p[3]), addr(p[3]), t(4)),
        InsertOutcome::BucketFull
    );
    // The oldest answers: it stays (now most recent) and the candidate is dropped.
    assert_eq!(table.on_ping_result(&peer(p[0]), true, t(5)), None);
    let order: Vec<PeerId> = table.bucket(0).iter().map(|e| e.peer).collect();
    assert_eq!(order, vec![peer(p[1]), peer(p[0])]);
    assert!(table.pending(0).is_none() && !table.contains(&peer(p[2])));
    // Next newcomer: the oldest is now p[1]; it fails to answer and is replaced.
    assert_eq!(
        table.insert(peer(p[4]), addr(p[4]), t(6)),
        InsertOutcome::PingOldest { oldest: peer(p[1]) }
    );
    assert_eq!(table.on_ping_result(&peer(p[1]), false, t(7)), Some(peer(p[4])));
    assert!(!table.contains(&peer(p[1])) && table.contains(&peer(p[4])));
    assert_eq!(table.bucket(0).len(), 2);
}

/// How long the delayed-ping tests let an entry go unheard before it is checked.
const STALE_AFTER: Duration = Duration::from_secs(600);

/// A table with `stale_after` of [`STALE_AFTER`] whose bucket 0 (k = 2) is full: `p[0]` answered at
/// t(1), `p[1]` at t(2); the other `count - 2` peers of bucket 0 are free for the test.
fn full_bucket(count: usize) -> (RoutingTable, Vec<u64>) {
    let local = Key::from_peer(&peer(1));
    let mut table = RoutingTable::new(
        local,
        TableLimits {
            stale_after: STALE_AFTER,
            ..limits(2)
        },
    );
    let p = peers_in_bucket(&local, 0, count);
    table.insert(peer(p[0]), addr(p[0]), t(1));
    table.insert(peer(p[1]), addr(p[1]), t(2));
    (table, p)
}

#[test]
fn a_fresh_oldest_entry_is_not_pinged_and_the_newest_candidate_waits_for_a_place() {
    let stale_after = STALE_AFTER;
    let (mut table, p) = full_bucket(6);
    // The oldest answered a moment ago: no ping, the newcomer waits.
    assert_eq!(table.insert(peer(p[2]), addr(p[2]), t(3)), InsertOutcome::Pending);
    assert_eq!(table.pending(0).map(|e| e.peer), Some(peer(p[2])));
    // A newer candidate takes the slot: the most recently seen is the likeliest alive.
    assert_eq!(table.insert(peer(p[3]), addr(p[3]), t(4)), InsertOutcome::Pending);
    assert_eq!(table.pending(0).map(|e| e.peer), Some(peer(p[3])));
    // An entry that leaves (here removed, as after failed requests) gives the candidate its place.
    table.remove(&peer(p[1]));
    assert!(table.contains(&peer(p[3])) && table.pending(0).is_none());
    // Once the oldest has been quiet past `stale_after`, a newcomer pings it, and while that ping is
    // out the candidate is not replaced.
    let later = t(1) + stale_after;
    assert_eq!(
        table.insert(peer(p[4]), addr(p[4]), later),
        InsertOutcome::PingOldest { oldest: peer(p[0]) }
    );
    assert_eq!(
        table.insert(peer(p[5]), addr(p[5]), later),
        InsertOutcome::BucketFull
    );
    assert_eq!(table.pending(0).map(|e| e.peer), Some(peer(p[4])));
    // The pinged entry left meanwhile (its place went to the candidate); the ping's result still ends
    // the check, so the next newcomer is not refused for ever.
    table.remove(&peer(p[0]));
    assert!(table.contains(&peer(p[4])));
    assert_eq!(table.on_ping_result(&peer(p[0]), false, later), None);
    assert_eq!(
        table.insert(peer(p[5]), addr(p[5]), later),
        InsertOutcome::Pending
    );
}

#[test]
fn an_entry_heard_from_recently_survives_a_few_failed_requests_and_leaves_after_five() {
    let (mut table, p) = full_bucket(3);
    assert_eq!(table.insert(peer(p[2]), addr(p[2]), t(3)), InsertOutcome::Pending);
    // p[1] answered at t(2): four lost requests in a row do not give its place to the candidate.
    for attempt in 1..=4 {
        assert!(!table.on_request_failed(&peer(p[1]), t(10 + attempt)));
        assert_eq!(table.get(&peer(p[1])).map(|e| e.failures), Some(attempt as u8));
    }
    assert!(!table.contains(&peer(p[2])));
    // A request it sends us does not clear the count (a peer that asks and never answers would keep
    // its place for good); an answer does. Five more failures in a row, and the candidate takes the
    // place.
    assert_eq!(
        table.insert(peer(p[1]), addr(p[1]), t(20)),
        InsertOutcome::Updated
    );
    assert_eq!(table.get(&peer(p[1])).map(|e| e.failures), Some(4));
    table.answered(&peer(p[1]));
    assert_eq!(table.get(&peer(p[1])).map(|e| e.failures), Some(0));
    for attempt in 1..=4 {
        assert!(!table.on_request_failed(&peer(p[1]), t(20 + attempt)));
    }
    assert!(table.on_request_failed(&peer(p[1]), t(25)));
    assert!(!table.contains(&peer(p[1])));
    assert!(table.contains(&peer(p[2])), "the candidate took the place");
    // A peer not in the table is not counted.
    assert!(!table.on_request_failed(&peer(p[1]), t(26)));
}

#[test]
fn an_entry_nothing_recent_speaks_for_leaves_at_its_first_failed_request() {
    let (mut table, p) = full_bucket(3);
    assert_eq!(table.insert(peer(p[2]), addr(p[2]), t(3)), InsertOutcome::Pending);
    // p[0] last answered at t(1): just short of `stale_after` it survives a failure, past it not.
    assert!(!table.on_request_failed(&peer(p[0]), t(1) + (STALE_AFTER - Duration::from_millis(1))));
    assert!(table.on_request_failed(&peer(p[0]), t(1) + STALE_AFTER));
    assert!(table.contains(&peer(p[2])));
}

#[test]
fn a_check_that_could_not_be_made_leaves_the_bucket_as_it_was() {
    let stale_after = STALE_AFTER;
    let (mut table, p) = full_bucket(4);
    assert!(table.wants_candidate(0, t(3)), "full, but no candidate yet");
    assert_eq!(table.insert(peer(p[2]), addr(p[2]), t(3)), InsertOutcome::Pending);
    assert!(
        !table.wants_candidate(0, t(4)),
        "a candidate waits and the oldest is fresh: another would change nothing"
    );
    let later = t(1) + stale_after;
    assert!(table.wants_candidate(0, later), "the oldest is due a check");
    assert_eq!(
        table.insert(peer(p[3]), addr(p[3]), later),
        InsertOutcome::PingOldest { oldest: peer(p[0]) }
    );
    assert!(!table.wants_candidate(0, later), "a check is out");
    // The ping could not be sent: nothing is learnt of the oldest, which stays as it was (still due
    // a check), and the candidate goes.
    table.abandon_probe(&peer(p[0]));
    assert_eq!(table.bucket(0)[0].peer, peer(p[0]));
    assert_eq!(table.bucket(0)[0].last_seen, t(1));
    assert!(table.pending(0).is_none());
    assert!(table.wants_candidate(0, later));
}

#[test]
fn a_candidate_that_waited_enters_by_when_it_was_last_seen() {
    let (mut table, p) = full_bucket(3);
    assert_eq!(table.insert(peer(p[2]), addr(p[2]), t(3)), InsertOutcome::Pending);
    // p[1] answers again after the candidate last did.
    assert_eq!(table.insert(peer(p[1]), addr(p[1]), t(5)), InsertOutcome::Updated);
    table.remove(&peer(p[0]));
    let order: Vec<PeerId> = table.bucket(0).iter().map(|e| e.peer).collect();
    assert_eq!(
        order,
        vec![peer(p[2]), peer(p[1])],
        "least recently seen first: the candidate is the next one due a check"
    );
}

#[test]
fn peers_failing_the_puzzle_are_refused() {
    let local = Key::from_peer(&peer(1));
    let difficulty = 3;
    let mut table = RoutingTable::new(
        local,
        TableLimits {
            puzzle_difficulty: difficulty,
            ..limits(20)
        },
    );
    let failing = (10..).find(|&i| !puzzle::solves(&peer(i), difficulty)).unwrap();
    let solving = (10..).find(|&i| puzzle::solves(&peer(i), difficulty)).unwrap();
    assert_eq!(
        table.insert(peer(failing), addr(failing), t(0)),
        InsertOutcome::Refused(RefuseReason::Puzzle)
    );
    assert_eq!(
        table.insert(peer(solving), addr(solving), t(0)),
        InsertOutcome::Inserted
    );
    assert_eq!(table.len(), 1);
}

#[test]
fn we_are_never_in_our_own_table() {
    let me = peer(1);
    let mut table = RoutingTable::new(Key::from_peer(&me), limits(20));
    assert_eq!(
        table.insert(me, addr(1), t(0)),
        InsertOutcome::Refused(RefuseReason::LocalPeer)
    );
}

#[test]
fn per_bucket_prefix_limit() {
    let local = Key::from_peer(&peer(1));
    let lim = TableLimits {
        max_per_prefix_in_bucket: 2,
        max_per_prefix_in_table: 100,
        ..limits(20)
    };
    let mut table = RoutingTable::new(local, lim);
    let p = peers_in_bucket(&local, 0, 4);
    assert_eq!(
        table.insert(peer(p[0]), subnet(1, 1), t(0)),
        InsertOutcome::Inserted
    );
    assert_eq!(
        table.insert(peer(p[1]), subnet(1, 2), t(0)),
        InsertOutcome::Inserted
    );
    assert_eq!(
        table.insert(peer(p[2]), subnet(1, 3), t(0)),
        InsertOutcome::Refused(RefuseReason::BucketPrefixLimit)
    );
    // Another /24 and opaque addresses are not limited.
    assert_eq!(
        table.insert(peer(p[2]), subnet(2, 3), t(0)),
        InsertOutcome::Inserted
    );
    assert_eq!(
        table.insert(peer(p[3]), Address::unknown(), t(0)),
        InsertOutcome::Inserted
    );
}

#[test]
fn per_table_prefix_limit_and_release_on_removal() {
    let local = Key::from_peer(&peer(1));
    let lim = TableLimits {
        max_per_prefix_in_bucket: 10,
        max_per_prefix_in_table: 3,
        ..limits(20)
    };
    let mut table = RoutingTable::new(local, lim);
    let mut ids: Vec<u64> = Vec::new();
    for bucket in 0..4 {
        ids.extend(peers_in_bucket(&local, bucket, 1));
    }
    for (n, id) in ids.iter().take(3).enumerate() {
        assert_eq!(
            table.insert(peer(*id), subnet(7, n as u8), t(0)),
            InsertOutcome::Inserted
        );
    }
    assert_eq!(
        table.insert(peer(ids[3]), subnet(7, 9), t(0)),
        InsertOutcome::Refused(RefuseReason::TablePrefixLimit)
    );
    table.remove(&peer(ids[0]));
    assert_eq!(
        table.insert(peer(ids[3]), subnet(7, 9), t(0)),
        InsertOutcome::Inserted
    );
}

#[test]
fn an_update_moves_the_peer_to_most_recently_seen() {
    let local = Key::from_peer(&peer(1));
    let mut table = RoutingTable::new(local, limits(20));
    let p = peers_in_bucket(&local, 0, 3);
    for (n, id) in p.iter().enumerate() {
        table.insert(peer(*id), addr(*id), t(n as u64));
    }
    assert_eq!(
        table.insert(peer(p[0]), addr(p[0]), t(10)),
        InsertOutcome::Updated
    );
    let order: Vec<PeerId> = table.bucket(0).iter().map(|e| e.peer).collect();
    assert_eq!(order, vec![peer(p[1]), peer(p[2]), peer(p[0])]);
    assert_eq!(table.get(&peer(p[0])).unwrap().last_seen, t(10));
}
