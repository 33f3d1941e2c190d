//! Simplex in the simulator: healthy networks, silent, equivocating and conflicting validators, Twins,
//! partitions, and many seeds of all of them. The property every test checks first is **safety**: no two
//! honest validators finalise different blocks at one height.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should stop loudly

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use meshwork_consensus::Fault;
use meshwork_consensus::bft::mocks::{Byzantine, Digests, Misbehaviour};
use meshwork_consensus::bft::{BftConfig, Command, Event, MemoryJournal, Proposal, Simplex, ValidatorSet};
use meshwork_identity::{Hash, PeerId};
use meshwork_sim::{Control, LinkConfig, NodeId, Sim, SimConfig, node_keypair};

type Node = Byzantine<Digests, MemoryJournal>;

/// What the honest validators saw.
#[derive(Debug, Default)]
struct Outcome {
    /// Per honest validator: height → final proposal.
    finals: BTreeMap<usize, BTreeMap<u64, Proposal>>,
    /// Validators convicted of equivocation by an honest one.
    convicted: HashSet<PeerId>,
    /// Views nullified, as seen by any honest validator.
    nullified: HashSet<u64>,
    /// Heights finalised twice by one validator, or not in order.
    out_of_order: usize,
}

impl Outcome {
    /// Heights at which two honest validators finalised different proposals.
    fn safety_violations(&self) -> usize {
        let mut by_height: BTreeMap<u64, HashSet<Proposal>> = BTreeMap::new();
        for finals in self.finals.values() {
            for (height, proposal) in finals {
                by_height.entry(*height).or_default().insert(*proposal);
            }
        }
        by_height.values().filter(|set| set.len() > 1).count() + self.out_of_order
    }

    /// The height every honest validator reached.
    fn common_height(&self) -> u64 {
        self.finals
            .values()
            .map(|f| f.keys().next_back().copied().unwrap_or(0))
            .min()
            .unwrap_or(0)
    }
}

struct Net {
    sim: Sim<Node>,
    how: Vec<Misbehaviour>,
    outcome: Outcome,
}

impl Net {
    fn new(seed: u64, how: Vec<Misbehaviour>, link: LinkConfig) -> Self {
        let n = how.len();
        let keys: Vec<_> = (0..n as u32).map(|i| node_keypair(seed, i)).collect();
        let set = ValidatorSet::new(keys.iter().map(|k| k.peer_id()).collect()).unwrap();
        let config = BftConfig::new(set, Hash::digest(b"genesis"));
        let mut sim = Sim::new(SimConfig::new(seed).with_link(link));
        let behaviours = how.clone();
        let nodes = sim
            .add_nodes(n, |init| {
                let key = init.keypair.clone();
                let engine = || {
                    Simplex::new(
                        config.clone(),
                        key.clone(),
                        Digests::new(key.peer_id()),
                        MemoryJournal::new(),
                    )
                };
                Byzantine::new(engine(), Some(engine()), key.clone(), behaviours[init.id.index()])
            })
            .unwrap();
        for (i, a) in nodes.iter().enumerate() {
            for b in &nodes[i + 1..] {
                sim.connect(*a, *b).unwrap();
            }
        }
        for node in &nodes {
            sim.command(*node, Command::Start).unwrap();
        }
        Self {
            sim,
            how,
            outcome: Outcome::default(),
        }
    }

    fn run_for(&mut self, duration: Duration) {
        let until = self.sim.now() + duration;
        let how = &self.how;
        let outcome = &mut self.outcome;
        self.sim.run_until(until, |_, node, event| {
            if how[node.index()] != Misbehaviour::Honest {
                return;
            }
            match event {
                Event::Finalized { proposal, .. } => {
                    let finals = outcome.finals.entry(node.index()).or_default();
                    let next = finals.keys().next_back().map_or(1, |h| h + 1);
                    if proposal.height != next {
                        outcome.out_of_order += 1;
                    }
                    finals.insert(proposal.height, proposal);
                }
                Event::Nullified { view } => {
                    outcome.nullified.insert(view);
                }
                Event::Fault {
                    peer,
                    fault: Fault::Equivocation(_),
                } => {
                    outcome.convicted.insert(peer);
                }
                _ => {}
            }
        });
    }
}

fn link(ms: u64) -> LinkConfig {
    LinkConfig::constant(Duration::from_millis(ms)).with_jitter(Duration::from_millis(ms / 5))
}

fn honest(n: usize) -> Vec<Misbehaviour> {
    vec![Misbehaviour::Honest; n]
}

#[test]
fn a_stable_network_finalises_every_view_in_three_message_delays() {
    let mut net = Net::new(1, honest(4), LinkConfig::constant(Duration::from_millis(50)));
    net.run_for(Duration::from_secs(10));
    let outcome = &net.outcome;
    assert_eq!(outcome.safety_violations(), 0);
    assert!(
        outcome.nullified.is_empty(),
        "no view timed out: {:?}",
        outcome.nullified
    );
    // A view lasts two delays (proposal, notarize votes): 100 views in 10 s, less the last in flight.
    let height = outcome.common_height();
    assert!((95..=100).contains(&height), "height {height}");
}

#[test]
fn a_silent_validator_costs_only_the_views_it_leads() {
    let mut how = honest(4);
    how[2] = Misbehaviour::Silent;
    let mut net = Net::new(2, how, link(50));
    net.run_for(Duration::from_secs(30));
    let outcome = &net.outcome;
    assert_eq!(outcome.safety_violations(), 0);
    let led_by_silent = outcome.nullified.iter().filter(|v| *v % 4 == 2).count();
    assert_eq!(
        led_by_silent,
        outcome.nullified.len(),
        "only its views: {:?}",
        outcome.nullified
    );
    assert!(
        outcome.common_height() >= 20,
        "height {}",
        outcome.common_height()
    );
}

#[test]
fn equivocating_and_conflicting_validators_cannot_fork_and_are_convicted() {
    let mut how = honest(7);
    how[1] = Misbehaviour::Equivocate;
    how[4] = Misbehaviour::Conflict;
    let mut net = Net::new(3, how, link(40));
    net.run_for(Duration::from_secs(30));
    let outcome = &net.outcome;
    assert_eq!(outcome.safety_violations(), 0);
    assert!(
        outcome.common_height() >= 20,
        "height {}",
        outcome.common_height()
    );
    let conflicting = net.sim.peer_id(NodeId(4)).unwrap();
    assert!(
        outcome.convicted.contains(&conflicting),
        "convicted: {:?}",
        outcome.convicted
    );
    let honest: Vec<PeerId> = [0, 2, 3, 5, 6]
        .iter()
        .map(|i| net.sim.peer_id(NodeId(*i)).unwrap())
        .collect();
    assert!(honest.iter().all(|p| !outcome.convicted.contains(p)));
}

#[test]
fn twins_cannot_fork_the_chain() {
    // Validator 3 runs twice with one key, each twin facing half of the network.
    let mut how = honest(4);
    how[3] = Misbehaviour::Twins;
    let mut net = Net::new(4, how, link(50));
    net.run_for(Duration::from_secs(30));
    assert_eq!(net.outcome.safety_violations(), 0);
    assert!(
        net.outcome.common_height() >= 20,
        "height {}",
        net.outcome.common_height()
    );
}

#[test]
fn a_partition_without_a_quorum_stalls_and_the_heal_resumes_finality() {
    let mut net = Net::new(5, honest(4), link(50));
    net.run_for(Duration::from_secs(5));
    let before = net.outcome.common_height();
    assert!(before > 0);
    net.sim
        .apply_control(Control::Partition(vec![vec![NodeId(0), NodeId(1)]]))
        .unwrap();
    net.run_for(Duration::from_secs(60));
    let during = net.outcome.finals.values().map(|f| f.len() as u64).max().unwrap();
    // Nothing is final on either side (each has two of four: no quorum); in-flight votes may finish a
    // view or two.
    assert!(during <= before + 2, "{before} then {during}");
    net.sim.apply_control(Control::Heal).unwrap();
    net.run_for(Duration::from_secs(30));
    assert_eq!(net.outcome.safety_violations(), 0);
    assert!(
        net.outcome.common_height() >= during + 10,
        "after the heal: {}",
        net.outcome.common_height()
    );
}

#[test]
fn many_seeds_of_every_misbehaviour_and_a_partition_stay_safe_and_live() {
    let kinds = [
        Misbehaviour::Equivocate,
        Misbehaviour::Conflict,
        Misbehaviour::Silent,
        Misbehaviour::Twins,
    ];
    for seed in 0..40u64 {
        // Four validators, one faulty of a kind chosen by the seed, lossy jittered links, and a
        // partition of a random side that heals.
        let mut how = honest(4);
        how[(seed % 4) as usize] = kinds[(seed / 4 % 4) as usize];
        let link = link(20 + seed % 60).with_loss(0.02);
        let mut net = Net::new(1000 + seed, how, link);
        net.run_for(Duration::from_secs(3));
        let side = vec![NodeId((seed % 4) as u32), NodeId(((seed + 1) % 4) as u32)];
        net.sim.apply_control(Control::Partition(vec![side])).unwrap();
        net.run_for(Duration::from_secs(10));
        net.sim.apply_control(Control::Heal).unwrap();
        let healed = net.outcome.common_height();
        net.run_for(Duration::from_secs(40));
        let outcome = &net.outcome;
        assert_eq!(outcome.safety_violations(), 0, "seed {seed}: {outcome:?}");
        let views: Vec<(u64, u64)> = (0..4)
            .map(|i| {
                let engine = net.sim.state(NodeId(i)).unwrap().engine();
                (engine.view(), engine.finalized().height)
            })
            .collect();
        assert!(
            outcome.common_height() > healed,
            "seed {seed}: no progress after the heal; (view, final height) per node: {views:?}, nullified {:?}",
            outcome.nullified
        );
    }
}
