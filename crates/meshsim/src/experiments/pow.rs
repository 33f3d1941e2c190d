//! `meshsim pow`: Nakamoto consensus over a simulated wide-area network — stale blocks, reorganisations,
//! block propagation and convergence.
//!
//! N nodes run [`ChainSync`](meshwork_consensus::ChainSync) over in-memory chains; M of them mine as
//! described in [`super::pow_net`] (Poisson block discovery at a total rate of one block per `T` seconds,
//! real templates and real nonces) until `--blocks` blocks were found; then the network runs until it is
//! quiet (at most one more hour of virtual time).
//!
//! Figures:
//! - **stale rate**: mined blocks that are not on the final best chain, over blocks mined;
//! - **reorganisations**: every tip change that disconnected blocks, counted by depth (blocks
//!   disconnected), over all nodes;
//! - **convergence**: from the last block found to the moment the last node changed its tip (all nodes
//!   then agree, `all_agree`);
//! - **propagation delay**: from a block being mined to its first connection to each other node's best
//!   chain (p50, p90, mean).
//!
//! For comparison, C. Decker and R. Wattenhofer, *Information Propagation in the Bitcoin Network*
//! (IEEE P2P 2013) measured a mean of 12.6 s for a block to reach a node of Bitcoin's network (median 6.5
//! s), and a fork rate of 1.69% at T = 600 s, which their model ties to propagation delay:
//! stale rate ≈ 1 − exp(−Δ/T) for a mean delay Δ. Our blocks carry only a coinbase and need no
//! signature checks, so propagation here is latency-bound (three one-way delays per hop:
//! `NewTip`, `GetBlocks`, `Block`), whereas 2013 blocks of up to a few hundred kilobytes were dominated by
//! transfer and verification time: expect delays of a second or two, and a stale rate near the model's
//! estimate, `stale_rate_model`.

use clap::Args as ClapArgs;
use meshwork_sim::metrics::Summary;

use super::pow_net::{NetArgs, PowNet, chain_config, depth_histogram, secs_since};
use crate::cli::Common;
use crate::clock::wall_now;
use crate::plot::Panel;
use crate::report::Report;

/// Decker & Wattenhofer's (2013) mean block propagation delay to a node of Bitcoin's network, in ms.
pub(crate) const DECKER_WATTENHOFER_MEAN_MS: f64 = 12_600.0;

/// Options of `meshsim pow`.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) net: NetArgs,
    /// Miners, of equal hash power, spread evenly over the nodes.
    #[arg(long, default_value_t = 10)]
    pub(crate) miners: usize,
    /// Target block interval T, in seconds (the network's mean time between blocks).
    #[arg(long, default_value_t = 600)]
    pub(crate) block_time: u64,
    /// Stop mining after this many blocks.
    #[arg(long, default_value_t = 100)]
    pub(crate) blocks: u64,
}

/// Runs the experiment.
pub(crate) fn run(args: &Args) -> Result<Report, String> {
    let common = &args.common;
    let started = wall_now();
    let n = common.nodes;
    if args.miners == 0 || args.miners > n {
        return Err("--miners must be in 1..=nodes".into());
    }
    if args.block_time == 0 || args.blocks == 0 {
        return Err("--block-time and --blocks must be positive".into());
    }
    let config = chain_config(args.block_time);
    let mut net = PowNet::build(n, common.seed, &args.net, &config, common.max_events)?;
    let t = args.block_time as f64;
    let mut miners = super::pow_net::Miners::new(common.seed, n, args.miners, t, 0.0);

    let mut last = net.start;
    for _ in 0..args.blocks {
        let (when, i) = miners.peek();
        let at = net.at_secs(when);
        net.run_until(at, "mining");
        if net.budget == 0 {
            break;
        }
        net.mine_block(miners.nodes[i], miners.keys[i].peer_id())?;
        miners.fire(i);
        last = at;
    }
    net.run_until(last + std::time::Duration::from_secs(3600), "settling");
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;

    // The final best chain: the most-work tip any node holds.
    let tips: Vec<_> = (0..n).filter_map(|i| net.tip(i)).collect();
    let best = tips
        .iter()
        .max_by_key(|tip| tip.work)
        .copied()
        .ok_or("no live node")?;
    let on_best = tips.iter().filter(|tip| tip.id == best.id).count();
    let holder = (0..n)
        .find(|&i| net.tip(i).is_some_and(|tip| tip.id == best.id))
        .ok_or("no node on the best tip")?;
    let chain = net.sim.state(net.nodes[holder]).ok_or("best node down")?.chain();
    let mined = net.records.order.len();
    let stale = net
        .records
        .order
        .iter()
        .filter(|id| !chain.engine().is_active(id))
        .count();
    let stale_rate = stale as f64 / mined.max(1) as f64;
    let convergence_ms = net
        .records
        .last_tip_change
        .values()
        .map(|&at| (at - last).as_secs_f64() * 1000.0)
        .fold(0.0, f64::max);
    let delays = Summary::of(net.records.delays_ms.clone());
    let reorgs = &net.records.reorgs;
    let stats = net.sim.stats();

    let mut report = Report::new();
    report
        .plot(Panel::Cdf {
            title: format!("Block propagation, {n} nodes, {} s blocks", args.block_time),
            x_label: "ms from mining to a node connecting it".into(),
            series: vec![("blocks".into(), net.records.delays_ms.clone())],
        })
        .plot(Panel::Histogram {
            title: format!("Reorganisations by depth (stale rate {stale_rate:.4})"),
            x_label: "blocks undone".into(),
            series: vec![("reorgs".into(), reorgs.iter().map(|r| r.2 as u64).collect())],
        });
    report
        .add("experiment", "pow")
        .add("seed", common.seed)
        .add("nodes", n)
        .add("miners", args.miners)
        .add("block_time_secs", args.block_time)
        .add("degree", args.net.degree)
        .add("upload_kbps", args.net.upload_kbps)
        .add("blocks_mined", mined)
        .add("final_height", best.height)
        .add("stale_blocks", stale)
        .add("stale_rate", stale_rate)
        .add("stale_rate_model", 1.0 - (-delays.mean / 1000.0 / t).exp())
        .add("reorgs", reorgs.len())
        .add("reorg_depth_max", reorgs.iter().map(|r| r.2).max().unwrap_or(0))
        .add("reorgs_by_depth", depth_histogram(reorgs.iter().map(|r| r.2)))
        .add("all_agree", on_best == n)
        .add("share_on_best_tip", on_best as f64 / n as f64)
        .add("convergence_ms", convergence_ms)
        .add("propagation_samples", delays.count)
        .add("propagation_ms_p50", delays.p50)
        .add("propagation_ms_p90", delays.p90)
        .add("propagation_ms_mean", delays.mean)
        .add("propagation_ms_max", delays.max)
        .add("reference_propagation_ms_mean", DECKER_WATTENHOFER_MEAN_MS)
        .add("messages_sent", stats.messages_sent)
        .add("bytes_sent", stats.bytes_sent)
        .add("virtual_secs", secs_since(net.sim.now(), net.start))
        .footer(stats.events, wall_ms, net.sim.trace_hash());
    Ok(report)
}
