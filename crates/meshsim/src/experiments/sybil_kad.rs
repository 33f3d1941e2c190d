//! `meshsim sybil-kad`: Sybil joins against Kademlia, with a share `--malicious` of the nodes (30% by
//! default) joining from `--sybil-prefixes` /24 prefixes (honest nodes spread over `10.0.0.0/8`, see
//! [`super::kad_node`]).
//!
//! The Sybils join like everyone else (so they enter the tables as far as the per-prefix limits of
//! `meshwork_kad::Config` allow: 2 per bucket and 10 per table for one /24), then turn malicious: they
//! answer every lookup with the Sybils closest to the key and never with an honest peer (an eclipse
//! attempt, [`super::kad_node`]'s lies). Honest nodes then look up the keys of other honest nodes, as
//! `kad-adversarial` does ([`super::kad_lookup`]); `success` is the share of lookups that found their
//! target. `--no-prefix-limits` lifts the per-prefix limits on every node, to show what they buy.
//! `honest_table_malicious_share` is the share of Sybil entries in the honest routing tables before the
//! lookups.
//!
//! The S/Kademlia puzzle is off (`puzzle_difficulty` 0): the simulator's seeded ids do not solve it (as
//! in `coin_net`), and against Sybils it only prices each identity, which the limits here do not depend
//! on. `--paths` sets the disjoint lookup paths (1 by default, the plain Kademlia fast path; the
//! library's default is 2).
//!
//! What it shows (seed 1, 1,000 nodes, 300 Sybils, `--paths 1`): lookups for honest keys succeed 98.2%
//! of the time with the limits (Sybils 26.7% of the honest tables' entries from 4 /24s, 9.6% from one,
//! where 99.7% succeed) and 97.5% without them (29.7%); seeds 2 and 3 give 98.3% and 98.2% from 4 /24s:
//! an honest table holds mostly honest peers, and one honest answer on the way to the target
//! suffices. The limits bound what a few prefixes can place in the tables, which
//! matters when Sybils outnumber honest nodes; fewer prefixes, tighter bound.

use clap::Args as ClapArgs;

use super::kad_lookup::{self, Sybils};
use super::kad_net::NetArgs;
use crate::cli::Common;
use crate::report::Report;

/// Options of `meshsim sybil-kad`.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    net: NetArgs,
    /// Measured lookups, each from a random honest node for the key of another honest node.
    #[arg(long, default_value_t = 1000)]
    lookups: u64,
    /// Share of the nodes that are Sybils.
    #[arg(long, default_value_t = 0.3)]
    malicious: f64,
    /// The /24 prefixes the Sybils join from (round robin).
    #[arg(long, default_value_t = 4)]
    sybil_prefixes: usize,
    /// Lift Kademlia's per-prefix limits on every node (the attack without the defence).
    #[arg(long)]
    no_prefix_limits: bool,
    /// Virtual time between two measured lookups, in milliseconds.
    #[arg(long, default_value_t = 50)]
    lookup_interval_ms: u64,
}

/// Runs the experiment.
pub(crate) fn run(args: &Args) -> Result<Report, String> {
    if args.sybil_prefixes == 0 {
        return Err("--sybil-prefixes must be at least 1".into());
    }
    let lookup = kad_lookup::Args {
        common: args.common.clone(),
        net: args.net.clone(),
        lookups: args.lookups,
        // The experiment measures what the Sybils do to lookups of keys.
        peer_lookups: Some(0),
        malicious: args.malicious,
        lookup_interval_ms: args.lookup_interval_ms,
    };
    let sybils = Sybils {
        prefixes: args.sybil_prefixes,
        lift_limits: args.no_prefix_limits,
    };
    kad_lookup::run_with(&lookup, "sybil-kad", Some(sybils))
}
