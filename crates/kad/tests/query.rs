//! Properties of the iterative lookup state machine, against an oracle network.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_kad::query::{ClosestPeers, DisjointLookup, Finish, LookupConfig, LookupState};
use meshwork_kad::{Address, Key, PeerInfo};
use meshwork_wire::Instant;
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TIMEOUT: Duration = Duration::from_secs(1);

fn peers(n: usize) -> Vec<PeerId> {
    (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            seed[31] = 0x55;
            Keypair::from_seed(seed).peer_id()
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Behaviour {
    Answer,
    Fail,
    Silent,
}

struct Oracle {
    knows: HashMap<PeerId, Vec<PeerId>>,
    behaviour: HashMap<PeerId, Behaviour>,
}

impl Oracle {
    /// Each peer knows a random `share` of the network and answers with the `k` of them closest to the target.
    fn new(all: &[PeerId], share: f64, faulty: f64, rng: &mut ChaCha8Rng) -> Self {
        let mut knows = HashMap::new();
        let mut behaviour = HashMap::new();
        for p in all {
            knows.insert(
                *p,
                all.iter()
                    .copied()
                    .filter(|q| q != p && rng.gen_bool(share))
                    .collect(),
            );
            let b = if rng.gen_bool(faulty) {
                if rng.gen_bool(0.5) {
                    Behaviour::Fail
                } else {
                    Behaviour::Silent
                }
            } else {
                Behaviour::Answer
            };
            behaviour.insert(*p, b);
        }
        Self { knows, behaviour }
    }

    fn answer(&self, peer: &PeerId, target: &Key, k: usize) -> Vec<PeerId> {
        let mut list = self.knows[peer].clone();
        list.sort_by_key(|p| Key::from_peer(p).distance(target));
        list.truncate(k);
        list
    }
}

struct Outcome {
    result: Vec<PeerId>,
    contacted: HashSet<PeerId>,
    learned: HashSet<PeerId>,
    answered: HashSet<PeerId>,
    failed: HashSet<PeerId>,
    max_in_flight: usize,
}

/// Drives `lookup` against `oracle`, answering in FIFO order; returns what happened.
fn drive(lookup: &mut ClosestPeers, oracle: &Oracle, seeds: &[PeerId], k: usize) -> Outcome {
    let target = *lookup.target();
    let mut now = Instant::ZERO;
    let mut in_flight = VecDeque::new();
    let mut contacted = HashSet::new();
    let mut learned: HashSet<PeerId> = seeds.iter().copied().collect();
    let mut answered = HashSet::new();
    let mut failed = HashSet::new();
    let mut max_in_flight = 0;
    for _ in 0..100_000 {
        loop {
            match lookup.next(now) {
                LookupState::Contact(p) => {
                    assert!(contacted.insert(p), "a peer is contacted at most once");
                    in_flight.push_back(p);
                }
                LookupState::Waiting => break,
                LookupState::Finished => {
                    return Outcome {
                        result: lookup.result(),
                        contacted,
                        learned,
                        answered,
                        failed,
                        max_in_flight,
                    };
                }
            }
        }
        max_in_flight = max_in_flight.max(lookup.num_waiting());
        now += Duration::from_millis(10);
        match in_flight.pop_front() {
            Some(p) => match oracle.behaviour[&p] {
                Behaviour::Answer => {
                    let closer = oracle.answer(&p, &target, k);
                    learned.extend(closer.iter().copied());
                    assert!(lookup.on_success(&p, closer));
                    answered.insert(p);
                }
                Behaviour::Fail => {
                    assert!(lookup.on_failure(&p));
                    failed.insert(p);
                }
                Behaviour::Silent => {}
            },
            None => now += TIMEOUT,
        }
    }
    panic!("the lookup did not terminate: {lookup:?} {in_flight:?}");
}

/// A random network of `n` peers (each knowing a `share` of the others, a `faulty` share failing or
/// silent) and a random target, looked up under `config` from three random seeds.
fn random_lookup(seed: u64, n: usize, share: f64, faulty: f64, config: LookupConfig) -> (Key, Outcome) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let all = peers(n);
    let oracle = Oracle::new(&all, share, faulty, &mut rng);
    let target = Key::from_bytes(rng.r#gen());
    let seeds: Vec<PeerId> = all.choose_multiple(&mut rng, 3).copied().collect();
    let mut lookup = ClosestPeers::new(target, config, seeds.clone());
    let out = drive(&mut lookup, &oracle, &seeds, config.num_results);
    (target, out)
}

/// Whether the lookup asked every peer it learned that is closer to `target` than `bound`.
fn closer_all_asked(out: &Outcome, target: &Key, bound: &PeerId) -> bool {
    let bound = Key::from_peer(bound).distance(target);
    out.learned
        .iter()
        .filter(|p| Key::from_peer(p).distance(target) < bound)
        .all(|p| out.contacted.contains(p))
}

fn sorted_by_distance(list: &[PeerId], target: &Key) -> bool {
    list.windows(2)
        .all(|w| Key::from_peer(&w[0]).distance(target) < Key::from_peer(&w[1]).distance(target))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn lookup_terminates_and_returns_the_k_closest_it_learned(
        seed in any::<u64>(),
        n in 30usize..150,
        k in 1usize..12,
        alpha in 1usize..5,
        share in 0.05f64..0.6,
        faulty in 0.0f64..0.4,
    ) {
        let config = LookupConfig { parallelism: alpha, num_results: k, peer_timeout: TIMEOUT, finish: Finish::AllClosest };
        let (target, out) = random_lookup(seed, n, share, faulty, config);

        prop_assert!(out.max_in_flight <= alpha.max(k));
        prop_assert!(sorted_by_distance(&out.result, &target));
        prop_assert!(out.result.iter().all(|p| out.answered.contains(p)), "only peers that answered");
        prop_assert_eq!(out.result.len(), out.answered.len().min(k));
        // The result is the k closest of everyone who answered ...
        let mut answered: Vec<PeerId> = out.answered.iter().copied().collect();
        answered.sort_by_key(|p| Key::from_peer(p).distance(&target));
        answered.truncate(k);
        prop_assert_eq!(&out.result, &answered);
        // ... and no learned peer closer than the k-th result was left uncontacted.
        if out.result.len() == k {
            prop_assert!(closer_all_asked(&out, &target, &out.result[k - 1]));
        }
    }

    #[test]
    fn with_global_knowledge_the_lookup_finds_the_true_k_closest(seed in any::<u64>(), k in 1usize..10) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let all = peers(100);
        let oracle = Oracle::new(&all, 1.0, 0.0, &mut rng);
        let target = Key::from_bytes(rng.r#gen());
        let seeds = vec![all[rng.gen_range(0..100)]];
        let config = LookupConfig { parallelism: 3, num_results: k, peer_timeout: TIMEOUT, finish: Finish::AllClosest };
        let mut lookup = ClosestPeers::new(target, config, seeds.clone());
        let out = drive(&mut lookup, &oracle, &seeds, k);
        let mut truth = all.clone();
        truth.sort_by_key(|p| Key::from_peer(p).distance(&target));
        truth.truncate(k);
        prop_assert_eq!(out.result, truth);
    }

    #[test]
    fn a_converged_lookup_ends_once_the_alpha_closest_answered(
        seed in any::<u64>(),
        n in 30usize..150,
        k in 1usize..12,
        alpha in 1usize..5,
        share in 0.05f64..0.6,
        faulty in 0.0f64..0.4,
    ) {
        let config = LookupConfig { parallelism: alpha, num_results: k, peer_timeout: TIMEOUT, finish: Finish::Converged };
        let (target, out) = random_lookup(seed, n, share, faulty, config);

        prop_assert!(sorted_by_distance(&out.result, &target));
        prop_assert!(out.result.len() <= k);
        prop_assert!(out.result.iter().all(|p| out.learned.contains(p)), "only peers someone named");
        prop_assert!(out.result.iter().all(|p| !out.failed.contains(p)), "a failed peer returned");
        // The closest `α` returned answered, and nobody closer than them was left unasked.
        let verified = alpha.min(out.result.len());
        for p in &out.result[..verified] {
            prop_assert!(out.answered.contains(p), "one of the closest returned never answered");
        }
        if let Some(last) = out.result[..verified].last() {
            prop_assert!(closer_all_asked(&out, &target, last));
        }
    }

    #[test]
    fn with_global_knowledge_a_converged_lookup_finds_the_true_k_closest_in_one_round_more(
        seed in any::<u64>(),
        k in 3usize..10,
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let all = peers(100);
        let oracle = Oracle::new(&all, 1.0, 0.0, &mut rng);
        let target = Key::from_bytes(rng.r#gen());
        let seeds = vec![all[rng.gen_range(0..100)]];
        let config = LookupConfig { parallelism: 3, num_results: k, peer_timeout: TIMEOUT, finish: Finish::Converged };
        let mut lookup = ClosestPeers::new(target, config, seeds.clone());
        let out = drive(&mut lookup, &oracle, &seeds, k);
        let mut truth = all.clone();
        truth.sort_by_key(|p| Key::from_peer(p).distance(&target));
        truth.truncate(k);
        prop_assert_eq!(&out.result, &truth);
        // The seed names the true k closest; asking the closest three of them ends it. The rule of
        // the paper asks all k.
        prop_assert!(out.contacted.len() <= 1 + 3, "{} requests", out.contacted.len());
    }

    #[test]
    fn disjoint_paths_never_share_a_peer(seed in any::<u64>(), d in 1usize..5) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let all = peers(120);
        let oracle = Oracle::new(&all, 0.3, 0.1, &mut rng);
        let target = Key::from_bytes(rng.r#gen());
        let seeds: Vec<PeerId> = all.choose_multiple(&mut rng, 10).copied().collect();
        let config = LookupConfig { parallelism: 3, num_results: 8, peer_timeout: TIMEOUT, finish: Finish::AllClosest };
        let mut lookup = DisjointLookup::new(target, config, d, seeds);
        let mut contacted_by: HashMap<PeerId, usize> = HashMap::new();
        let mut now = Instant::ZERO;
        let mut in_flight = VecDeque::new();
        let mut finished = false;
        for _ in 0..100_000 {
            loop {
                match lookup.next(now) {
                    LookupState::Contact(p) => {
                        let path = lookup.path_of(&p).unwrap();
                        prop_assert!(contacted_by.insert(p, path).is_none());
                        in_flight.push_back(p);
                    }
                    LookupState::Waiting => break,
                    LookupState::Finished => { finished = true; break }
                }
            }
            if finished { break }
            now += Duration::from_millis(10);
            match in_flight.pop_front() {
                Some(p) => match oracle.behaviour[&p] {
                    Behaviour::Answer => { lookup.on_success(&p, oracle.answer(&p, &target, 8)); }
                    Behaviour::Fail => { lookup.on_failure(&p); }
                    Behaviour::Silent => {}
                },
                None => now += TIMEOUT,
            }
        }
        prop_assert!(finished);
        let per_path = lookup.path_results();
        prop_assert_eq!(per_path.len(), d);
        let mut seen = HashSet::new();
        for path in &per_path {
            for p in path {
                prop_assert!(seen.insert(*p), "a peer appears in two paths' results");
            }
        }
        prop_assert!(sorted_by_distance(&lookup.result(), &target));
    }
}

#[test]
fn at_most_alpha_requests_in_flight_while_progressing() {
    let all = peers(40);
    let target = Key::from_bytes([7; 32]);
    let config = LookupConfig {
        parallelism: 3,
        num_results: 20,
        peer_timeout: TIMEOUT,
        finish: Finish::AllClosest,
    };
    let mut lookup = ClosestPeers::new(target, config, all.clone());
    let now = Instant::ZERO;
    let mut contacted = Vec::new();
    while let LookupState::Contact(p) = lookup.next(now) {
        contacted.push(p);
    }
    assert_eq!(contacted.len(), 3);
    assert_eq!(lookup.next(now), LookupState::Waiting);
    // The three contacted first are the three closest seeds.
    let mut sorted = all;
    sorted.sort_by_key(|p| Key::from_peer(p).distance(&target));
    assert_eq!(contacted, sorted[..3].to_vec());
    // One answer frees exactly one slot.
    assert!(lookup.on_success(&contacted[0], Vec::new()));
    assert!(matches!(lookup.next(now), LookupState::Contact(_)));
    assert_eq!(lookup.next(now), LookupState::Waiting);
}

#[test]
fn timeouts_free_capacity_and_failed_peers_are_not_results() {
    let all = peers(6);
    let target = Key::from_bytes([1; 32]);
    let config = LookupConfig {
        parallelism: 2,
        num_results: 3,
        peer_timeout: TIMEOUT,
        finish: Finish::AllClosest,
    };
    let mut lookup = ClosestPeers::new(target, config, all);
    let t0 = Instant::ZERO;
    let LookupState::Contact(a) = lookup.next(t0) else {
        panic!()
    };
    let LookupState::Contact(b) = lookup.next(t0) else {
        panic!()
    };
    assert_eq!(lookup.next(t0), LookupState::Waiting);
    // Nobody answers; after the timeout two more peers are contacted.
    let later = t0 + TIMEOUT;
    let LookupState::Contact(c) = lookup.next(later) else {
        panic!()
    };
    let LookupState::Contact(d) = lookup.next(later) else {
        panic!()
    };
    assert!(![a, b].contains(&c) && ![a, b].contains(&d));
    assert!(lookup.on_failure(&c));
    assert!(
        !lookup.on_failure(&c),
        "a second report for the same peer is ignored"
    );
    // A late answer from a timed-out peer still counts.
    assert!(lookup.on_success(&a, Vec::new()));
    assert!(lookup.on_success(&d, Vec::new()));
    let mut now = later;
    loop {
        match lookup.next(now) {
            LookupState::Contact(p) => assert!(lookup.on_success(&p, Vec::new())),
            LookupState::Waiting => now += TIMEOUT,
            LookupState::Finished => break,
        }
    }
    let result = lookup.result();
    assert_eq!(result.len(), 3);
    assert!(!result.contains(&c) && !result.contains(&b));
    assert!(result.contains(&a) && result.contains(&d));
    assert!(
        !lookup.on_success(&b, Vec::new()),
        "a finished lookup ignores answers"
    );
}

#[test]
fn a_lookup_with_no_seeds_finishes_empty() {
    let config = LookupConfig {
        parallelism: 3,
        num_results: 20,
        peer_timeout: TIMEOUT,
        finish: Finish::AllClosest,
    };
    let mut lookup = ClosestPeers::new(Key::from_bytes([0; 32]), config, Vec::<PeerId>::new());
    assert_eq!(lookup.next(Instant::ZERO), LookupState::Finished);
    assert!(lookup.result().is_empty());
}

#[test]
fn a_lookup_keeps_the_address_a_peer_was_first_named_with() {
    let config = LookupConfig {
        parallelism: 3,
        num_results: 20,
        peer_timeout: TIMEOUT,
        finish: Finish::Converged,
    };
    let ids = peers(3);
    let (a, b, x) = (ids[0], ids[1], ids[2]);
    let at = |id: PeerId, port: u16| PeerInfo {
        id,
        addr: Address::V4 {
            ip: [10, 0, 0, 1],
            port,
        },
    };
    let mut lookup = ClosestPeers::new(Key::from_bytes([0; 32]), config, vec![at(a, 1), at(b, 1)]);
    let asked: Vec<LookupState> = (0..2).map(|_| lookup.next(Instant::ZERO)).collect();
    assert!(asked.contains(&LookupState::Contact(a)) && asked.contains(&LookupState::Contact(b)));
    // `a` names `x` first; `b` names it at another port, and names `a` at another port too.
    assert!(lookup.on_success(&a, vec![at(x, 2)]));
    assert!(lookup.on_success(&b, vec![at(x, 3), at(a, 3)]));
    let port = |id: &PeerId| match lookup.contact(id).map(|c| &c.addr) {
        Some(Address::V4 { port, .. }) => Some(*port),
        _ => None,
    };
    assert_eq!(port(&x), Some(2), "the first naming stays");
    assert_eq!(port(&a), Some(1), "a seed keeps the address it came with");
    assert_eq!(lookup.contact(&peers(4)[3]).map(|c| c.id), None, "never named");
}

/// Every peer `lookup` asks next at `now`, until it waits or finishes.
fn asked(lookup: &mut DisjointLookup, now: Instant) -> Vec<PeerId> {
    let mut out = Vec::new();
    while let LookupState::Contact(peer) = lookup.next(now) {
        out.push(peer);
    }
    out
}

#[test]
fn a_late_answer_on_a_finished_path_claims_no_peer_from_the_others() {
    let target = Key::from_bytes([7; 32]);
    let mut by_distance = peers(64);
    by_distance.sort_by_key(|p| Key::from_peer(p).distance(&target));
    // `x` and `h` are closer than every seed; the seeds are dealt s0, s2 to path 0, s1, s3 to path 1.
    let [x, h, s0, s1, s2, s3] = [0, 1, 2, 3, 4, 5].map(|i| by_distance[i]);
    let config = LookupConfig {
        parallelism: 2,
        num_results: 2,
        peer_timeout: Duration::from_secs(10),
        finish: Finish::Converged,
    };
    let mut lookup = DisjointLookup::new(target, config, 2, vec![s0, s1, s2, s3]);
    let now = Instant::ZERO;
    let first = asked(&mut lookup, now);
    assert!([s0, s1, s2, s3].iter().all(|s| first.contains(s)), "{first:?}");
    // Path 0 converges on x and s0 while s2's answer is still out.
    lookup.on_success(&s0, vec![x]);
    assert_eq!(asked(&mut lookup, now), vec![x]);
    lookup.on_success(&x, vec![]);
    assert!(
        asked(&mut lookup, now).is_empty(),
        "path 0 finished, path 1 waits"
    );
    assert_eq!(lookup.path_results()[0], vec![x, s0]);
    // s2 answers late, naming the target's honest neighbour h, which path 1 then hears of.
    assert!(!lookup.on_success(&s2, vec![h]), "path 0 no longer takes answers");
    lookup.on_success(&s1, vec![h]);
    assert_eq!(asked(&mut lookup, now), vec![h], "path 1 asks h");
}
