//! `meshsim pow-partition`: proof of work across a network split in two, then healed.
//!
//! The network of [`super::pow_net`] mines for `--warmup-secs`; then a share `--split` of the nodes (and,
//! with miners spread evenly, about the same share of the hash power) is cut off from the rest for
//! `--partition-secs` (sides drawn at random, miners split in proportion): a [`Control::Partition`] drops every message across the cut, and the connections
//! across it are closed (as TCP connections time out under a real partition). Both sides keep mining.
//! Right after the cut, `--double-spends` coins of the common chain (the genesis faucet coin of
//! [`genesis_key`], then miners' early coinbases) are each spent twice: to one payee on side A, to another
//! on side B, every node of a side getting its side's transaction. At the heal the partition is lifted and
//! the closed connections are dialled again (a `Status` exchange tells each side of the other's tip);
//! mining goes on for `--after-secs`, then the network runs until quiet (at most an hour more).
//!
//! Figures: the share of nodes on the most-work chain at the end (1.0 expected); the reorganisations
//! after the heal (the losing side's depth); and the safety check of confirmation depth: a transaction
//! that any node had in a block `--confirmations` deep (tip included) at the heal is *deep-confirmed*;
//! it *conflicts* if the final chain spends one of its inputs in another transaction. Nakamoto's analysis
//! (S. Nakamoto, *Bitcoin*, 2008, §11) bounds the chance that an attacker (here: the other side) reverses
//! z confirmations; under a partition both sides are honest and the heavier one wins whatever the depth,
//! so the count is 0 only while a side cannot build `--confirmations` blocks during the partition. Runs
//! with a long `--partition-secs` show the conflicts honestly.

use std::collections::{HashMap, HashSet};

use clap::Args as ClapArgs;
use meshwork_consensus::genesis_key;
use meshwork_identity::Keypair;
use meshwork_ledger::{Amount, OutPoint, Transaction, Transfer, TxId, TxOut};
use meshwork_sim::{Control, NodeId};
use rand::seq::SliceRandom;

use super::pow_net::{Miners, NetArgs, PowNet, chain_config, depth_histogram, secs_since};
use crate::cli::Common;
use crate::clock::wall_now;
use crate::plot::Panel;
use crate::report::Report;

/// The fee of each double-spend payment, in units: above the minimum relay fee for its ~140 bytes.
const FEE_UNITS: u64 = 1_000;

/// Options of `meshsim pow-partition`.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) net: NetArgs,
    /// Miners, of equal hash power, spread evenly over the nodes.
    #[arg(long, default_value_t = 10)]
    pub(crate) miners: usize,
    /// Target block interval T, in seconds.
    #[arg(long, default_value_t = 600)]
    pub(crate) block_time: u64,
    /// Mining before the split, in virtual seconds.
    #[arg(long, default_value_t = 3600)]
    pub(crate) warmup_secs: u64,
    /// How long the network stays split, in virtual seconds.
    #[arg(long, default_value_t = 3600)]
    pub(crate) partition_secs: u64,
    /// Mining after the heal, in virtual seconds.
    #[arg(long, default_value_t = 3600)]
    pub(crate) after_secs: u64,
    /// Share of the nodes (and of the miners) on side A.
    #[arg(long, default_value_t = 0.5)]
    pub(crate) split: f64,
    /// Confirmations (the block included) that count a transaction as final.
    #[arg(long, default_value_t = 6)]
    pub(crate) confirmations: u64,
    /// Coins spent twice, once on each side.
    #[arg(long, default_value_t = 4)]
    pub(crate) double_spends: usize,
}

/// One of the conflicting transactions.
struct Spend {
    txid: TxId,
    inputs: Vec<OutPoint>,
}

/// Up to `count` coins of node `i`'s chain that we hold the keys of, spent once to each payee.
fn double_spends(
    net: &PowNet,
    i: usize,
    miners: &Miners,
    count: usize,
) -> Result<Vec<[Transfer; 2]>, String> {
    let chain = net.sim.state(net.nodes[i]).ok_or("node down")?.chain();
    let faucet = genesis_key();
    let payees = [Keypair::from_seed([0xA1; 32]), Keypair::from_seed([0xB0; 32])];
    let mut pairs = Vec::new();
    for height in 0..=chain.tip().height {
        if pairs.len() >= count {
            break;
        }
        let Some(id) = chain.block_id_at_height(height) else {
            continue;
        };
        let Some(block) = chain.block(&id).map_err(|e| e.to_string())? else {
            continue;
        };
        let Some(Transaction::Coinbase(coinbase)) = block.txs.first() else {
            continue;
        };
        let Some(out) = coinbase.outputs.first() else {
            continue;
        };
        let key = if out.owner == faucet.peer_id() {
            &faucet
        } else if let Some(key) = miners.keys.iter().find(|k| k.peer_id() == out.owner) {
            key
        } else {
            continue;
        };
        let coin = OutPoint {
            txid: block.txs[0].txid(),
            index: 0,
        };
        pairs.push(payees.each_ref().map(|payee| {
            Transfer::signed(
                &[(coin, out.amount, key)],
                vec![TxOut {
                    amount: Amount::from_units(out.amount.units().saturating_sub(FEE_UNITS)),
                    owner: payee.peer_id(),
                }],
            )
        }));
    }
    Ok(pairs)
}

/// Runs the experiment.
pub(crate) fn run(args: &Args) -> Result<Report, String> {
    let common = &args.common;
    let started = wall_now();
    let n = common.nodes;
    if args.miners < 2 || args.miners > n {
        return Err("--miners must be in 2..=nodes".into());
    }
    if !(args.split > 0.0 && args.split < 1.0) || args.block_time == 0 {
        return Err("--split must be in (0, 1) and --block-time positive".into());
    }
    let config = chain_config(args.block_time);
    let mut net = PowNet::build(n, common.seed, &args.net, &config, common.max_events)?;
    let mut miners = Miners::new(common.seed, n, args.miners, args.block_time as f64, 0.0);
    // Sides drawn at random (the overlay is not uniform in node index), miners split in proportion.
    let mut side = vec![1usize; n];
    let (mut mining, mut others): (Vec<usize>, Vec<usize>) = (0..n).partition(|i| miners.nodes.contains(i));
    for group in [&mut mining, &mut others] {
        group.shuffle(net.sim.rng());
        let take = ((group.len() as f64 * args.split).round() as usize).min(group.len());
        for &i in &group[..take] {
            side[i] = 0;
        }
    }
    let side_a_count = side.iter().filter(|&&s| s == 0).count();
    if side_a_count == 0 || side_a_count == n {
        return Err("--split leaves a side empty".into());
    }
    let side_of = |i: usize| side[i];
    let cut_secs = args.warmup_secs as f64;
    let heal_secs = cut_secs + args.partition_secs as f64;
    let end_secs = heal_secs + args.after_secs as f64;

    let mut spends: Vec<Spend> = Vec::new();
    let mut cross: Vec<(NodeId, NodeId)> = Vec::new();
    let mut phase = 0; // 0: warm-up, 1: split, 2: healed
    let mut deep: HashSet<TxId> = HashSet::new();
    let mut confirmed: HashSet<TxId> = HashSet::new();
    let mut side_tips = Vec::new();
    let mut isolated = 0;
    let mut mined_per_side = [0u64; 2];
    for _ in 0..10_000_000u64 {
        let (when, miner) = miners.peek();
        if phase == 0 && when >= cut_secs {
            net.run_until(net.at_secs(cut_secs), "warm-up");
            let side_a: Vec<NodeId> = (0..n)
                .filter(|&i| side_of(i) == 0)
                .map(|i| net.nodes[i])
                .collect();
            for &a in &side_a {
                for b in net
                    .sim
                    .links(a)
                    .filter(|b| side_of(b.index()) == 1)
                    .collect::<Vec<_>>()
                {
                    cross.push((a, b));
                }
            }
            net.sim
                .apply_control(Control::Partition(vec![side_a]))
                .map_err(|e| e.to_string())?;
            for &(a, b) in &cross {
                net.sim
                    .apply_control(Control::Disconnect(a, b))
                    .map_err(|e| e.to_string())?;
            }
            let pairs = double_spends(&net, 0, &miners, args.double_spends)?;
            for pair in pairs {
                for (side, tx) in pair.into_iter().enumerate() {
                    spends.push(Spend {
                        txid: Transaction::Transfer(tx.clone()).txid(),
                        inputs: tx.inputs.iter().map(|input| input.prevout).collect(),
                    });
                    for i in (0..n).filter(|&i| side_of(i) == side) {
                        net.submit_tx(i, tx.clone())?;
                    }
                }
            }
            phase = 1;
            continue;
        }
        if phase == 1 && when >= heal_secs {
            net.run_until(net.at_secs(heal_secs), "partition");
            // Which double-spends are confirmed, and how deep, on each node's chain now.
            for i in 0..n {
                let Some(state) = net.sim.state(net.nodes[i]) else {
                    continue;
                };
                let (chain, tip) = (state.chain(), state.chain().tip());
                for spend in &spends {
                    let depth = net
                        .records
                        .mined
                        .iter()
                        .filter(|(id, m)| m.txids.contains(&spend.txid) && chain.engine().is_active(id))
                        .map(|(_, m)| tip.height + 1 - m.height)
                        .max();
                    if let Some(depth) = depth {
                        confirmed.insert(spend.txid);
                        if depth >= args.confirmations {
                            deep.insert(spend.txid);
                        }
                    }
                }
            }
            isolated = net
                .nodes
                .iter()
                .filter(|&&node| net.sim.links(node).next().is_none())
                .count();
            // Each side's tip: the most-work tip among its nodes.
            side_tips = [0, 1]
                .iter()
                .filter_map(|&s| {
                    (0..n)
                        .filter(|&i| side_of(i) == s)
                        .filter_map(|i| net.tip(i))
                        .max_by_key(|t| t.work)
                })
                .collect();
            net.sim.apply_control(Control::Heal).map_err(|e| e.to_string())?;
            for &(a, b) in &cross {
                net.sim.connect(a, b).map_err(|e| e.to_string())?;
            }
            phase = 2;
            continue;
        }
        if when >= end_secs || net.budget == 0 {
            break;
        }
        net.run_until(net.at_secs(when), "mining");
        let node = miners.nodes[miner];
        net.mine_block(node, miners.keys[miner].peer_id())?;
        if phase == 1 {
            mined_per_side[side_of(node)] += 1;
        }
        miners.fire(miner);
    }
    let heal = net.at_secs(heal_secs);
    net.run_until(net.at_secs(end_secs + 3600.0), "settling");
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;

    // The most-work chain at the end, and who is on it.
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
    let chain = net.sim.state(net.nodes[holder]).ok_or("node down")?.chain();
    // Every outpoint the final chain spends, and by which transaction.
    let mut spent: HashMap<OutPoint, TxId> = HashMap::new();
    for height in 1..=best.height {
        let Some(id) = chain.block_id_at_height(height) else {
            continue;
        };
        let Some(block) = chain.block(&id).map_err(|e| e.to_string())? else {
            continue;
        };
        for tx in block.txs.iter() {
            if let Transaction::Transfer(transfer) = tx {
                for input in transfer.inputs.iter() {
                    spent.insert(input.prevout, tx.txid());
                }
            }
        }
    }
    let conflicts = |txid: &TxId| {
        spends
            .iter()
            .any(|s| s.txid == *txid && s.inputs.iter().any(|o| spent.get(o).is_some_and(|by| by != txid)))
    };
    let deep_conflicts = deep.iter().filter(|txid| conflicts(txid)).count();
    let reversed = confirmed.iter().filter(|txid| conflicts(txid)).count();
    let final_spends = spends
        .iter()
        .filter(|s| spent.values().any(|t| *t == s.txid))
        .count();
    let losing: Vec<&str> = side_tips
        .iter()
        .zip(["a", "b"])
        .filter(|(tip, _)| !chain.engine().is_active(&tip.id))
        .map(|(_, name)| name)
        .collect();
    let after: Vec<usize> = net
        .records
        .reorgs
        .iter()
        .filter(|r| r.0 >= heal)
        .map(|r| r.2)
        .collect();
    let stats = net.sim.stats();

    let mut report = Report::new();
    report
        .plot(Panel::Histogram {
            title: "Reorganisations after the heal, by depth (the losing side's blocks undone)".into(),
            x_label: "blocks undone".into(),
            series: vec![("reorgs".into(), after.iter().map(|&d| d as u64).collect())],
        })
        .plot(Panel::Cdf {
            title: "Block propagation".into(),
            x_label: "ms from mining to a node connecting it".into(),
            series: vec![("blocks".into(), net.records.delays_ms.clone())],
        });
    report
        .add("experiment", "pow-partition")
        .add("seed", common.seed)
        .add("nodes", n)
        .add("miners", args.miners)
        .add("block_time_secs", args.block_time)
        .add("side_a_nodes", side_a_count)
        .add("isolated_nodes_during_partition", isolated)
        .add("partition_secs", args.partition_secs)
        .add("cut_links", cross.len())
        .add("blocks_mined", net.records.order.len())
        .add("blocks_mined_side_a", mined_per_side[0])
        .add("blocks_mined_side_b", mined_per_side[1])
        .add("side_a_height_at_heal", side_tips.first().map_or(0, |t| t.height))
        .add("side_b_height_at_heal", side_tips.get(1).map_or(0, |t| t.height))
        .add("losing_side", losing.join(","))
        .add("final_height", best.height)
        .add("share_on_most_work_chain", on_best as f64 / n as f64)
        .add("reorgs_after_heal", after.len())
        .add(
            "reorg_depth_after_heal_max",
            after.iter().copied().max().unwrap_or(0),
        )
        .add("reorgs_after_heal_by_depth", depth_histogram(after.into_iter()))
        .add("confirmations", args.confirmations)
        .add("double_spend_txs", spends.len())
        .add("double_spend_txs_on_final_chain", final_spends)
        .add("confirmed_at_heal", confirmed.len())
        .add("confirmed_then_reversed", reversed)
        .add("deep_confirmed_at_heal", deep.len())
        .add("deep_conflicts", deep_conflicts)
        .add("messages_sent", stats.messages_sent)
        .add("bytes_sent", stats.bytes_sent)
        .add("virtual_secs", secs_since(net.sim.now(), net.start))
        .footer(stats.events, wall_ms, net.sim.trace_hash());
    Ok(report)
}
