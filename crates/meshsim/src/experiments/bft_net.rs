//! One run of `meshsim bft`: validators in the six cloud regions, some Byzantine, some crashed, a
//! partition that heals, and what the honest validators' events tell.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use meshwork_consensus::Fault;
use meshwork_consensus::bft::mocks::{Byzantine, Digests, Misbehaviour};
use meshwork_consensus::bft::{BftConfig, Command, Event, MemoryJournal, Proposal, Simplex, ValidatorSet};
use meshwork_identity::Hash;
use meshwork_sim::{Control, Latency, LinkConfig, NodeId, RegionMatrix, Sim, SimConfig, node_keypair};
use meshwork_wire::Instant;

/// A validator of the simulation: an honest engine, or one wrapped to misbehave.
pub(crate) type Validator = Byzantine<Digests, MemoryJournal>;

/// What one run is made of.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub(crate) seed: u64,
    pub(crate) validators: usize,
    /// The misbehaviour of each validator (`Honest` for most).
    pub(crate) how: Vec<Misbehaviour>,
    /// Honest validators that crash at `fault_at`.
    pub(crate) crash: Vec<usize>,
    /// How long the two halves stay apart, from `fault_at` (zero: no partition).
    pub(crate) partition: Duration,
    pub(crate) fault_at: Duration,
    /// How long to run after the faults are over.
    pub(crate) after: Duration,
    pub(crate) jitter: Duration,
    pub(crate) leader_timeout: Duration,
    pub(crate) notarization_timeout: Duration,
    pub(crate) max_events: u64,
}

/// What the honest validators saw in one run.
#[derive(Debug, Default)]
pub(crate) struct RunOutcome {
    /// Heights at which two honest validators finalised different blocks, plus finalisations out of
    /// height order.
    pub(crate) safety_violations: usize,
    /// Proposal to finalisation at each honest validator, ms.
    pub(crate) finality_ms: Vec<f64>,
    /// The same in one-way delays from the proposer's region (its median to the validators).
    pub(crate) finality_delays: Vec<f64>,
    /// Views nullified (timed out), seen by any honest validator.
    pub(crate) timed_out_views: usize,
    /// Validators convicted of equivocation by an honest one, and evidence reports in all.
    pub(crate) convicted: usize,
    pub(crate) evidence_reports: usize,
    /// The height every live honest validator reached.
    pub(crate) final_height: u64,
    /// Virtual time from the heal (or the start) to the end.
    pub(crate) window_secs: f64,
    /// Blocks finalised by every live honest validator in that window, per second.
    pub(crate) blocks_per_sec: f64,
    /// From the heal to the first block finalised by every live honest validator after it, ms.
    pub(crate) resume_ms: Option<f64>,
    pub(crate) events: u64,
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
    pub(crate) trace_hash: Hash,
}

/// Builds the network of `setup`, runs it, and tallies the honest validators' events.
pub(crate) fn run(setup: &Setup) -> Result<RunOutcome, String> {
    let n = setup.validators;
    let keys: Vec<_> = (0..n as u32).map(|i| node_keypair(setup.seed, i)).collect();
    let set = ValidatorSet::new(keys.iter().map(|k| k.peer_id()).collect()).map_err(|e| e.to_string())?;
    let mut config = BftConfig::new(set, Hash::digest(b"meshsim bft genesis"));
    config.leader_timeout = setup.leader_timeout;
    config.notarization_timeout = setup.notarization_timeout;
    let regions = RegionMatrix::cloud6();
    let link = LinkConfig {
        latency: Latency::Regions(regions.clone()),
        ..LinkConfig::default()
    }
    .with_jitter(setup.jitter);
    let mut sim: Sim<Validator> = Sim::new(SimConfig::new(setup.seed).with_link(link));
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
            Byzantine::new(engine(), Some(engine()), key.clone(), setup.how[init.id.index()])
        })
        .map_err(|e| e.to_string())?;
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            sim.connect(*a, *b).map_err(|e| e.to_string())?;
        }
    }
    for node in &nodes {
        sim.command(*node, Command::Start).map_err(|e| e.to_string())?;
    }
    let region: Vec<u8> = nodes.iter().map(|node| sim.region(*node).unwrap_or(0)).collect();
    // The delay unit of a block: the median one-way delay from its proposer's region to the validators.
    let unit_ms: Vec<f64> = (0..regions.len())
        .map(|r| {
            let mut delays: Vec<f64> = region
                .iter()
                .map(|to| regions.one_way(r as u8, *to).as_secs_f64() * 1000.0)
                .collect();
            delays.sort_by(f64::total_cmp);
            delays[delays.len() / 2].max(1.0)
        })
        .collect();

    let honest: Vec<bool> = setup.how.iter().map(|h| *h == Misbehaviour::Honest).collect();
    let mut tally = Tally::new(n);
    let start = sim.now();
    let mut heal_at = start;
    if !setup.partition.is_zero() || !setup.crash.is_empty() {
        tally.run(
            &mut sim,
            start + setup.fault_at,
            &honest,
            &region,
            &unit_ms,
            setup.max_events,
        );
        for i in &setup.crash {
            sim.apply_control(Control::Crash(nodes[*i]))
                .map_err(|e| e.to_string())?;
        }
        if !setup.partition.is_zero() {
            let half = nodes[..n / 2].to_vec();
            sim.apply_control(Control::Partition(vec![half]))
                .map_err(|e| e.to_string())?;
            let heal = sim.now() + setup.partition;
            tally.run(&mut sim, heal, &honest, &region, &unit_ms, setup.max_events);
            sim.apply_control(Control::Heal).map_err(|e| e.to_string())?;
        }
        heal_at = sim.now();
    }
    let live: Vec<usize> = (0..n)
        .filter(|i| honest[*i] && !setup.crash.contains(i))
        .collect();
    let before = tally.common_height(&live);
    tally.run(
        &mut sim,
        heal_at + setup.after,
        &honest,
        &region,
        &unit_ms,
        setup.max_events,
    );

    let final_height = tally.common_height(&live);
    let window_secs = (sim.now() - heal_at).as_secs_f64();
    let resume_ms = tally
        .first_common_after(&live, before)
        .map(|at| (at - heal_at).as_secs_f64() * 1000.0);
    let stats = sim.stats();
    Ok(RunOutcome {
        safety_violations: tally.safety_violations(),
        finality_ms: tally.finality_ms,
        finality_delays: tally.finality_delays,
        timed_out_views: tally.nullified.len(),
        convicted: tally.convicted.len(),
        evidence_reports: tally.evidence_reports,
        final_height,
        window_secs,
        blocks_per_sec: final_height.saturating_sub(before) as f64 / window_secs.max(1e-9),
        resume_ms,
        events: stats.events,
        messages: stats.messages_sent,
        bytes: stats.bytes_sent,
        trace_hash: sim.trace_hash(),
    })
}

/// The honest validators' events, as they come.
struct Tally {
    /// Per validator: height → (final proposal, when).
    finals: Vec<BTreeMap<u64, (Proposal, Instant)>>,
    out_of_order: usize,
    /// Honest proposals: when and in which region they were made.
    proposed: HashMap<Hash, (Instant, u8)>,
    finality_ms: Vec<f64>,
    finality_delays: Vec<f64>,
    nullified: HashSet<u64>,
    convicted: HashSet<meshwork_identity::PeerId>,
    evidence_reports: usize,
}

impl Tally {
    fn new(n: usize) -> Self {
        Self {
            finals: vec![BTreeMap::new(); n],
            out_of_order: 0,
            proposed: HashMap::new(),
            finality_ms: Vec::new(),
            finality_delays: Vec::new(),
            nullified: HashSet::new(),
            convicted: HashSet::new(),
            evidence_reports: 0,
        }
    }

    fn run(
        &mut self,
        sim: &mut Sim<Validator>,
        until: Instant,
        honest: &[bool],
        region: &[u8],
        unit_ms: &[f64],
        max_events: u64,
    ) {
        sim.run(until, max_events, |at, node: NodeId, event| {
            let i = node.index();
            if !honest[i] {
                return;
            }
            match event {
                Event::Proposed(proposal) => {
                    self.proposed.insert(proposal.payload, (at, region[i]));
                }
                Event::Finalized { proposal, .. } => {
                    let finals = &mut self.finals[i];
                    let next = finals.keys().next_back().map_or(1, |h| h + 1);
                    if proposal.height != next {
                        self.out_of_order += 1;
                    }
                    finals.insert(proposal.height, (proposal, at));
                    if let Some((proposed, from)) = self.proposed.get(&proposal.payload) {
                        let ms = (at - *proposed).as_secs_f64() * 1000.0;
                        self.finality_ms.push(ms);
                        self.finality_delays.push(ms / unit_ms[*from as usize]);
                    }
                }
                Event::Nullified { view } => {
                    self.nullified.insert(view);
                }
                Event::Fault {
                    peer,
                    fault: Fault::Equivocation(_),
                } => {
                    self.convicted.insert(peer);
                    self.evidence_reports += 1;
                }
                _ => {}
            }
        });
    }

    fn safety_violations(&self) -> usize {
        let mut by_height: BTreeMap<u64, HashSet<Hash>> = BTreeMap::new();
        for finals in &self.finals {
            for (height, (proposal, _)) in finals {
                by_height.entry(*height).or_default().insert(proposal.payload);
            }
        }
        by_height.values().filter(|set| set.len() > 1).count() + self.out_of_order
    }

    fn common_height(&self, live: &[usize]) -> u64 {
        live.iter()
            .map(|i| self.finals[*i].keys().next_back().copied().unwrap_or(0))
            .min()
            .unwrap_or(0)
    }

    /// When every validator of `live` had finalised height `after + 1`.
    fn first_common_after(&self, live: &[usize], after: u64) -> Option<Instant> {
        live.iter()
            .map(|i| self.finals[*i].get(&(after + 1)).map(|(_, at)| *at))
            .try_fold(Instant::ZERO, |latest, at| at.map(|at| latest.max(at)))
    }
}
