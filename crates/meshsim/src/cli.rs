//! The command line: options every experiment shares, and one subcommand per experiment.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::experiments;
use crate::report::Report;

/// Run a meshwork simulation experiment.
#[derive(Debug, Parser)]
#[command(name = "meshsim", version, about)]
pub(crate) struct Cli {
    /// The experiment to run.
    #[command(subcommand)]
    pub(crate) experiment: Experiment,
}

/// Options every experiment takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct Common {
    /// Number of nodes.
    #[arg(long, default_value_t = 1000)]
    pub(crate) nodes: usize,
    /// Run seed: the same seed gives the same run and the same trace hash.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Write per-message data as CSV to this file (`flood`: a row per delivery; `gossip`: a row per
    /// measured message and protocol, flood's on the same workload and the broadcasts after a crash
    /// included, the warm-up's left out). Other experiments refuse it.
    #[arg(long)]
    pub(crate) csv: Option<PathBuf>,
    /// Draw the experiment's charts (latency CDFs against flood, hops histograms, reliability after
    /// crashes) to this SVG file. Every experiment but `sybil-kad` draws some; it refuses the flag.
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) plot: Option<PathBuf>,
    /// Stop after this many events, whatever happens (a bound on every run).
    #[arg(long, default_value_t = 2_000_000_000)]
    pub(crate) max_events: u64,
}

/// The experiments. Each variant is one file in `src/experiments/`.
#[derive(Debug, Subcommand)]
pub(crate) enum Experiment {
    /// Simplex BFT consensus among N validators in six regions, with Byzantine validators, crashes and a
    /// partition: safety violations (must be 0), finality latency in ms and message delays, timeouts.
    Bft(experiments::bft::Args),
    /// The whole coin node (the CoinApp type the coin node runs) with miners, wallets and attacks.
    Coin(experiments::coin::Args),
    /// Flood messages over a random regular overlay: reliability, RMR, hops, latency.
    Flood(experiments::flood::Args),
    /// HyParView + Plumtree gossip against flood: reliability, RMR, hops, latency, repair after crashes.
    Gossip(experiments::gossip::Args),
    /// Gossip with a share of spammers (`--spammers F`): honest delivery, and how scoring disconnects them.
    GossipSpam(experiments::gossip_spam::Args),
    /// Kademlia lookups among N nodes: success rate, hops, messages and latency per lookup.
    KadLookup(experiments::kad_lookup::Args),
    /// Kademlia lookups with a share of malicious nodes (`--malicious F`) and `--paths D` disjoint paths.
    KadAdversarial(experiments::kad_lookup::Args),
    /// Kademlia records under departures: share still retrievable against the estimate 1 - C^k.
    KadChurn(experiments::kad_churn::Args),
    /// Nakamoto proof of work among N nodes with M miners: stale rate, reorg depths, block propagation.
    Pow(experiments::pow::Args),
    /// Proof of work across a healed partition: convergence on the most work, reorg depth, double-spends.
    PowPartition(experiments::pow_partition::Args),
    /// Sybil joins against HyParView (`--sybil F` of the nodes, from `--sybil-prefixes` /24s): honest views.
    SybilGossip(experiments::sybil_gossip::Args),
    /// Sybil joins against Kademlia (`--malicious F`, from `--sybil-prefixes` /24s): lookup success.
    SybilKad(experiments::sybil_kad::Args),
    /// A late node syncs a long chain from several peers, one of them lying: time, rate, liar dropped.
    Sync(experiments::sync::Args),
}

impl Experiment {
    /// The options shared by all experiments.
    pub(crate) fn common(&self) -> &Common {
        match self {
            Self::Bft(args) => &args.common,
            Self::Coin(args) => &args.common,
            Self::Flood(args) => &args.common,
            Self::Gossip(args) => &args.common,
            Self::GossipSpam(args) => &args.common,
            Self::KadLookup(args) | Self::KadAdversarial(args) => &args.common,
            Self::KadChurn(args) => &args.common,
            Self::Pow(args) => &args.common,
            Self::PowPartition(args) => &args.common,
            Self::SybilGossip(args) => &args.common,
            Self::SybilKad(args) => &args.common,
            Self::Sync(args) => &args.common,
        }
    }

    /// Whether the experiment writes per-message data for `--csv`.
    pub(crate) fn writes_csv(&self) -> bool {
        matches!(self, Self::Flood(_) | Self::Gossip(_))
    }

    /// Whether the experiment draws charts for `--plot`: all but `sybil-kad`.
    pub(crate) fn draws_plot(&self) -> bool {
        !matches!(self, Self::SybilKad(_))
    }

    /// Runs the experiment.
    pub(crate) fn run(&self) -> Result<Report, String> {
        match self {
            Self::Bft(args) => experiments::bft::run(args),
            Self::Coin(args) => experiments::coin::run(args),
            Self::Flood(args) => experiments::flood::run(args),
            Self::Gossip(args) => experiments::gossip::run(args),
            Self::GossipSpam(args) => experiments::gossip_spam::run(args),
            Self::KadLookup(args) => experiments::kad_lookup::run(args, "kad-lookup"),
            Self::KadAdversarial(args) => experiments::kad_lookup::run(args, "kad-adversarial"),
            Self::KadChurn(args) => experiments::kad_churn::run(args),
            Self::Pow(args) => experiments::pow::run(args),
            Self::PowPartition(args) => experiments::pow_partition::run(args),
            Self::SybilGossip(args) => experiments::sybil_gossip::run(args),
            Self::SybilKad(args) => experiments::sybil_kad::run(args),
            Self::Sync(args) => experiments::sync::run(args),
        }
    }
}
