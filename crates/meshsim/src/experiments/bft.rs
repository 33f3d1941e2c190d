//! `meshsim bft`: Simplex BFT consensus ([`meshwork_consensus::bft`]) among validators spread over the
//! six cloud regions, with Byzantine validators, crashes and a partition that heals.
//!
//! Every validator talks to every other (a validator set is small and known). Validators are placed at
//! random in the regions of [`RegionMatrix::cloud6`](meshwork_sim::RegionMatrix::cloud6), one-way delay
//! half the measured round trip, plus up to `--jitter-ms`. The application proposes opaque digests
//! ([`Digests`](meshwork_consensus::bft::mocks::Digests)): this measures the engine, not block
//! validation.
//!
//! Faults:
//! - `--byzantine F` validators misbehave as `--byzantine-kind`: `equivocate` (two proposals as
//!   leader), `conflict` (conflicting notarize and finalize votes, and a nullify vote beside each
//!   finalize), `silent`, `twins` (two honest engines with one key, each facing half the network), or
//!   `mixed` (the four kinds in turn, starting at a different kind in each run). They are spread evenly over the leader rotation.
//! - `--crash C` honest validators crash for good at `--fault-at` seconds.
//! - `--partition-secs S` splits the validators into two halves at `--fault-at` for S seconds.
//!
//! Figures, over the honest validators (pooled over `--runs` seeds):
//! - `safety_violations`: heights at which two honest validators finalised different blocks (must be 0);
//! - `finality_ms_p50/p99`: from a proposal to its finalisation at each honest validator;
//! - `finality_delays_p50/p99`: the same in one-way delays of the proposer's region (the median one-way
//!   delay from it to the validators). Simplex finalises in three message delays (Chan & Pass, 2023);
//!   commonware reports about 300 ms finality for 50 validators around the world;
//! - `timed_out_views`: views nullified (timed out); 0 in a stable network;
//! - `blocks_per_sec`: blocks every live honest validator finalised, per virtual second after the
//!   faults (from the start without faults);
//! - `resume_ms_after_heal_max`: from the heal (or crash) to the next block every live honest validator
//!   finalised, the worst run;
//! - `validators_convicted`, `evidence_reports`: equivocation evidence collected.

use std::time::Duration;

use clap::Args as ClapArgs;
use meshwork_consensus::bft::mocks::Misbehaviour;
use meshwork_identity::Hash;
use meshwork_sim::metrics::Summary;

use super::bft_net::{RunOutcome, Setup, run as run_once};
use crate::cli::Common;
use crate::clock::{Progress, wall_now};
use crate::plot::Panel;
use crate::report::{Report, trace_hash_of_runs};

/// What Byzantine validators do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Kind {
    /// Two different proposals as leader.
    Equivocate,
    /// Conflicting notarize and finalize votes, and nullify votes beside finalize votes.
    Conflict,
    /// Nothing at all.
    Silent,
    /// Two honest engines with one key, each facing half the network.
    Twins,
    /// The four kinds in turn.
    Mixed,
}

/// Options of `meshsim bft` (`--nodes` is not used: the network is the validators).
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Validators.
    #[arg(long, default_value_t = 50)]
    pub(crate) validators: usize,
    /// Byzantine validators (the guarantees hold up to ⌊(N−1)/3⌋).
    #[arg(long, default_value_t = 0)]
    pub(crate) byzantine: usize,
    /// What the Byzantine validators do.
    #[arg(long, value_enum, default_value = "mixed")]
    pub(crate) byzantine_kind: Kind,
    /// Honest validators that crash for good at `--fault-at`.
    #[arg(long, default_value_t = 0)]
    pub(crate) crash: usize,
    /// Split the validators into two halves at `--fault-at` for this many seconds, then heal.
    #[arg(long, default_value_t = 0)]
    pub(crate) partition_secs: u64,
    /// When crashes and the partition start, in virtual seconds.
    #[arg(long, default_value_t = 10)]
    pub(crate) fault_at: u64,
    /// Virtual seconds to run after the faults (or from the start, without faults).
    #[arg(long, default_value_t = 60)]
    pub(crate) secs: u64,
    /// Runs, with seeds `--seed`, `--seed + 1`, …; figures pooled, violations summed.
    #[arg(long, default_value_t = 1)]
    pub(crate) runs: u64,
    /// Extra random delay per message, up to this many milliseconds.
    #[arg(long, default_value_t = 5)]
    pub(crate) jitter_ms: u64,
    /// How long validators wait for a leader's proposal.
    #[arg(long, default_value_t = 1000)]
    pub(crate) leader_timeout_ms: u64,
    /// How long validators wait for a view to be notarized.
    #[arg(long, default_value_t = 2000)]
    pub(crate) notarization_timeout_ms: u64,
}

impl Args {
    /// The setup of the run with `seed`.
    fn setup(&self, seed: u64) -> Result<Setup, String> {
        let n = self.validators;
        if n == 0 || self.byzantine + self.crash >= n {
            return Err("--validators must exceed --byzantine plus --crash".into());
        }
        let kinds = [
            Misbehaviour::Equivocate,
            Misbehaviour::Conflict,
            Misbehaviour::Silent,
            Misbehaviour::Twins,
        ];
        let mut how = vec![Misbehaviour::Honest; n];
        for k in 0..self.byzantine {
            how[k * n / self.byzantine] = match self.byzantine_kind {
                Kind::Equivocate => Misbehaviour::Equivocate,
                Kind::Conflict => Misbehaviour::Conflict,
                Kind::Silent => Misbehaviour::Silent,
                Kind::Twins => Misbehaviour::Twins,
                // Each run starts the cycle elsewhere, so that many runs of a small network see every kind.
                Kind::Mixed => kinds[(k + seed as usize) % kinds.len()],
            };
        }
        let crash: Vec<usize> = (0..n)
            .rev()
            .filter(|i| how[*i] == Misbehaviour::Honest)
            .take(self.crash)
            .collect();
        Ok(Setup {
            seed,
            validators: n,
            how,
            crash,
            partition: Duration::from_secs(self.partition_secs),
            fault_at: Duration::from_secs(self.fault_at),
            after: Duration::from_secs(self.secs),
            jitter: Duration::from_millis(self.jitter_ms),
            leader_timeout: Duration::from_millis(self.leader_timeout_ms),
            notarization_timeout: Duration::from_millis(self.notarization_timeout_ms),
            max_events: self.common.max_events,
        })
    }
}

/// Runs the experiment.
pub(crate) fn run(args: &Args) -> Result<Report, String> {
    let started = wall_now();
    let mut progress = Progress::new();
    let mut outcomes: Vec<RunOutcome> = Vec::new();
    for k in 0..args.runs.max(1) {
        let seed = args.common.seed.wrapping_add(k);
        outcomes.push(run_once(&args.setup(seed)?)?);
        let violations: usize = outcomes.iter().map(|o| o.safety_violations).sum();
        progress.tick(|| format!("run {}/{}: {violations} safety violations", k + 1, args.runs));
    }
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let pooled =
        |f: fn(&RunOutcome) -> &Vec<f64>| Summary::of(outcomes.iter().flat_map(|o| f(o).clone()).collect());
    let finality = pooled(|o| &o.finality_ms);
    let delays = pooled(|o| &o.finality_delays);
    let sum = |f: fn(&RunOutcome) -> u64| outcomes.iter().map(f).sum::<u64>();
    let runs = outcomes.len() as f64;
    let resumed: Vec<f64> = outcomes.iter().filter_map(|o| o.resume_ms).collect();
    let hashes: Vec<Hash> = outcomes.iter().map(|o| o.trace_hash).collect();
    let trace_hash = trace_hash_of_runs(&hashes);
    let first = &outcomes[0];

    let mut report = Report::new();
    report.plot(Panel::Cdf {
        title: format!(
            "Finality, {} validators, {} Byzantine",
            args.validators, args.byzantine
        ),
        x_label: "ms from proposal to finalisation".into(),
        series: vec![(
            "honest validators".into(),
            outcomes.iter().flat_map(|o| o.finality_ms.clone()).collect(),
        )],
    });
    report
        .add("experiment", "bft")
        .add("seed", args.common.seed)
        .add("runs", outcomes.len())
        .add("validators", args.validators)
        .add("byzantine", args.byzantine)
        .add(
            "byzantine_kind",
            format!("{:?}", args.byzantine_kind).to_lowercase(),
        )
        .add("crashed", args.crash)
        .add("partition_secs", args.partition_secs)
        .add(
            "safety_violations",
            outcomes.iter().map(|o| o.safety_violations).sum::<usize>(),
        )
        .add(
            "runs_with_violations",
            outcomes.iter().filter(|o| o.safety_violations > 0).count(),
        )
        .add("finality_samples", finality.count)
        .add("finality_ms_p50", finality.p50)
        .add("finality_ms_p99", finality.p99)
        .add("finality_delays_p50", delays.p50)
        .add("finality_delays_p99", delays.p99)
        .add(
            "timed_out_views",
            outcomes.iter().map(|o| o.timed_out_views).sum::<usize>(),
        )
        .add(
            "timed_out_views_per_run",
            outcomes.iter().map(|o| o.timed_out_views).sum::<usize>() as f64 / runs,
        )
        .add(
            "blocks_per_sec",
            outcomes.iter().map(|o| o.blocks_per_sec).sum::<f64>() / runs,
        )
        .add(
            "blocks_per_sec_min",
            outcomes
                .iter()
                .map(|o| o.blocks_per_sec)
                .fold(f64::INFINITY, f64::min),
        )
        .add("final_height", first.final_height)
        .add("window_secs", first.window_secs)
        .add("runs_resumed", resumed.len())
        .add(
            "resume_ms_after_heal_max",
            resumed.iter().copied().fold(0.0, f64::max),
        )
        .add(
            "validators_convicted",
            outcomes.iter().map(|o| o.convicted).sum::<usize>(),
        )
        .add(
            "evidence_reports",
            outcomes.iter().map(|o| o.evidence_reports).sum::<usize>(),
        )
        .add("messages_sent", sum(|o| o.messages))
        .add("bytes_sent", sum(|o| o.bytes))
        .footer(sum(|o| o.events), wall_ms, trace_hash);
    Ok(report)
}
