//! `meshsim coin`: the whole coin node — the same `CoinApp` type the coin node runs over QUIC — at a
//! thousand nodes, with miners, wallets paying each other, and attacks.
//!
//! The network of [`super::coin_net`] starts at genesis and joins through a sparse overlay; miners (Poisson
//! processes of equal hash power, as in `meshsim pow`) start at once. After `--warmup-secs` the genesis
//! faucet funds up to 1,000 honest wallets in one transaction; once it is confirmed, the wallets pay each
//! other, `--txs` payments at `--tx-rate` a second, each submitted to the payer's own node (a wallet that
//! pays twice spends its unconfirmed change). Mining goes on until every payment is confirmed on the
//! best chain (or `--settle-blocks` block times after the last one), then stops, and the network runs
//! quiet for two minutes before the figures are taken.
//!
//! Scenarios: `--censor F` (a share of relays refuse half the transactions), `--partition-secs S` (the
//! nodes split in two halves for S seconds, from just after the payments start), `--crash F` (a share of
//! nodes crash just after the payments start and restart from their stores 30 s later), `--sybil F`
//! (identities that join and drop every transaction and block they should relay).
//!
//! The baseline: flood on the same overlay (the gossip active views at the end, the same link model and
//! regions), publishing a message of the same size from the same origins at the same offsets. Both
//! propagation figures count honest relays only (no censor, Sybil or crashed node).

use std::collections::HashSet;

use clap::Args as ClapArgs;
use meshwork_coin::txid_of;
use meshwork_consensus::genesis_key;
use meshwork_identity::{Hash, Keypair};
use meshwork_ledger::{Amount, OutPoint, Transaction, Transfer, TxId, TxOut};
use meshwork_sim::ChaCha8Rng;
use meshwork_sim::{Control, NodeId};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use super::coin_net::{CoinNet, Roles, app_config};
use super::coin_report::{Outcome, report};
use super::pow_net::{Miners, NetArgs, chain_config};
use crate::cli::Common;
use crate::clock::wall_now;
use crate::report::Report;

/// Options of `meshsim coin`.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) net: NetArgs,
    /// Miners, of equal hash power, spread evenly over the nodes.
    #[arg(long, default_value_t = 10)]
    pub(crate) miners: usize,
    /// Target block interval, in seconds.
    #[arg(long, default_value_t = 30)]
    pub(crate) block_time: u64,
    /// Payments in the workload.
    #[arg(long, default_value_t = 1000)]
    pub(crate) txs: usize,
    /// Payments submitted per virtual second.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) tx_rate: f64,
    /// Virtual seconds of joining and mining before the faucet funds the wallets.
    #[arg(long, default_value_t = 30)]
    pub(crate) warmup_secs: u64,
    /// After the last payment, mining stops once all are confirmed or after this many block times.
    #[arg(long, default_value_t = 20)]
    pub(crate) settle_blocks: u64,
    /// Share of the nodes that refuse to relay half of the transactions.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) censor: f64,
    /// Split the network in two halves for this many virtual seconds (0: no partition).
    #[arg(long, default_value_t = 0)]
    pub(crate) partition_secs: u64,
    /// Share of the nodes that crash and restart from their stores 30 s later.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) crash: f64,
    /// Share of the nodes that are Sybils: they join, then drop every transaction and block.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) sybil: f64,
    /// Relay new blocks whole instead of as compact blocks rebuilt from the mempool: the reference
    /// for `block_relay_bytes_over_block_bytes`.
    #[arg(long)]
    pub(crate) full_blocks: bool,
}

/// Blocks deep at which a transaction counts as confirmed for `confirmed_then_reversed`.
const CONFIRMATIONS: u64 = 6;
/// The most wallets the faucet funds (one output each, in one transaction).
const MAX_WALLETS: usize = 1000;
/// The fee of every workload transaction, in units.
const FEE_UNITS: u64 = 1_000;
/// Virtual seconds between two samples of deep-confirmed transactions.
const SAMPLE_SECS: f64 = 10.0;
/// Heights below the deep end read at each sample: far more than one sample interval adds at any
/// block time (blocks come every second at the fastest), so no deep block is skipped.
const SAMPLE_LOOKBACK_BLOCKS: u64 = 50;
/// Nodes sampled for deep-confirmed transactions.
const SAMPLED_NODES: usize = 16;
/// How long crashed nodes stay down.
const CRASH_SECS: f64 = 30.0;
/// Quiet time after mining stops, before the figures are taken.
const QUIET_SECS: f64 = 120.0;

/// Roles drawn at random among the nodes that do not mine.
fn roles(args: &Args, miners: &[usize]) -> (Roles, Vec<usize>) {
    let n = args.common.nodes;
    let mut rng = ChaCha8Rng::seed_from_u64(args.common.seed ^ 0x0072_6f6c_6573);
    let mut others: Vec<usize> = (0..n).filter(|i| !miners.contains(i)).collect();
    others.shuffle(&mut rng);
    let take = |share: f64| ((share.clamp(0.0, 1.0) * n as f64).round() as usize).min(n);
    let (censors, rest) = others.split_at(take(args.censor).min(others.len()));
    let (sybils, rest) = rest.split_at(take(args.sybil).min(rest.len()));
    let (crashed, _) = rest.split_at(take(args.crash).min(rest.len()));
    let mut roles = Roles {
        censor: vec![false; n],
        sybil: vec![false; n],
    };
    censors.iter().for_each(|&i| roles.censor[i] = true);
    sybils.iter().for_each(|&i| roles.sybil[i] = true);
    (roles, crashed.to_vec())
}

/// Wallet `i`'s key, derived from the run seed.
fn wallet(seed: u64, i: usize) -> Keypair {
    let mut input = seed.to_le_bytes().to_vec();
    input.extend_from_slice(&(i as u64).to_le_bytes());
    Keypair::from_seed(*Hash::digest(&input).as_bytes())
}

pub(crate) fn run(args: &Args) -> Result<Report, String> {
    let common = &args.common;
    let started = wall_now();
    let n = common.nodes;
    if args.miners == 0 || args.miners > n || args.block_time == 0 {
        return Err("--miners must be in 1..=nodes and --block-time positive".into());
    }
    let config = chain_config(args.block_time);
    let t = args.block_time as f64;
    let mut miners = Miners::new(common.seed, n, args.miners, t, 0.0);
    let (roles, crashed) = roles(args, &miners.nodes);
    let app = app_config(!args.full_blocks);
    let mut net = CoinNet::build(
        common.seed,
        &args.net,
        &config,
        &app,
        roles.clone(),
        common.max_events,
    )?;

    // The wallets: honest nodes that do not crash; wallet i belongs to node payers[i].
    let payers: Vec<usize> = (0..n)
        .filter(|i| roles.honest(*i) && !crashed.contains(i))
        .take(MAX_WALLETS)
        .collect();
    if payers.len() < 2 {
        return Err("fewer than two honest wallets".into());
    }
    let keys: Vec<Keypair> = (0..payers.len()).map(|i| wallet(common.seed, i)).collect();

    // Warm-up, then the faucet funds every wallet.
    let warmup = args.warmup_secs as f64;
    mine_until(&mut net, &mut miners, warmup)?;
    let genesis = meshwork_consensus::genesis_block(&config);
    let faucet = OutPoint {
        txid: genesis.txs[0].txid(),
        index: 0,
    };
    let total = genesis.txs[0]
        .outputs()
        .first()
        .map(|o| o.amount.units())
        .unwrap_or_default();
    // The funding pays the minimum relay fee for its size (about 40 bytes an output): built once to
    // measure it, then again with that fee (smaller outputs never encode longer).
    let fund = |fee: u64| {
        let share = total.saturating_sub(fee) / payers.len() as u64;
        let outputs = keys
            .iter()
            .map(|key| TxOut {
                amount: Amount::from_units(share),
                owner: key.peer_id(),
            })
            .collect();
        let spend = (faucet, Amount::from_units(total), &genesis_key());
        (share, Transfer::signed(&[spend], outputs))
    };
    let (mut share, mut funding) = fund(FEE_UNITS);
    let size =
        meshwork_wire::encoded_len(&Transaction::Transfer(funding.clone())).map_err(|e| e.to_string())?;
    let min_fee = config.mempool.min_relay_fee(size).units();
    if min_fee > FEE_UNITS {
        (share, funding) = fund(min_fee);
    }
    let funding_id = Transaction::Transfer(funding.clone()).txid();
    let at = net.at_secs(warmup);
    net.schedule_tx(at, payers[0], funding)?;
    net.records.txs.remove(&funding_id); // Not part of the measured workload.
    let mut clock = warmup;
    let deadline = warmup + 30.0 * t;
    while !confirmed(&net, payers[0], &keys[0]) {
        if clock > deadline || net.budget == 0 {
            return Err("the funding transaction was not confirmed".into());
        }
        clock += 1.0;
        mine_until(&mut net, &mut miners, clock)?;
    }

    // The payments, scheduled ahead; every wallet starts with its funding output.
    let pay_start = clock + 1.0;
    let mut coins: Vec<(OutPoint, u64)> = (0..payers.len())
        .map(|i| {
            let point = OutPoint {
                txid: funding_id,
                index: i as u32,
            };
            (point, share)
        })
        .collect();
    let mut workload = Vec::with_capacity(args.txs);
    let mut tx_size = 0;
    for k in 0..args.txs {
        let (payer, payee) = (k % payers.len(), (k * 7 + 1) % payers.len());
        let payee = if payee == payer {
            (payee + 1) % payers.len()
        } else {
            payee
        };
        let (point, amount) = coins[payer];
        let pay = amount / 4;
        let change = amount.saturating_sub(pay).saturating_sub(FEE_UNITS);
        let tx = Transfer::signed(
            &[(point, Amount::from_units(amount), &keys[payer])],
            vec![
                TxOut {
                    amount: Amount::from_units(pay),
                    owner: keys[payee].peer_id(),
                },
                TxOut {
                    amount: Amount::from_units(change),
                    owner: keys[payer].peer_id(),
                },
            ],
        );
        let txid = txid_of(&tx);
        tx_size = tx_size.max(meshwork_wire::encoded_len(&tx).map_err(|e| e.to_string())?);
        coins[payer] = (OutPoint { txid, index: 1 }, change);
        let at_secs = pay_start + k as f64 / args.tx_rate.max(1e-3);
        net.schedule_tx(net.at_secs(at_secs), payers[payer], tx)?;
        workload.push((txid, payers[payer], at_secs));
    }
    let last_payment = workload.last().map_or(pay_start, |w| w.2);

    // Faults, from just after the payments start.
    let fault_at = pay_start + 5.0;
    if args.partition_secs > 0 {
        let half: Vec<NodeId> = net.nodes[..n / 2].to_vec();
        net.sim
            .schedule_control(net.at_secs(fault_at), Control::Partition(vec![half]))
            .map_err(|e| e.to_string())?;
        let heal = net.at_secs(fault_at + args.partition_secs as f64);
        net.sim
            .schedule_control(heal, Control::Heal)
            .map_err(|e| e.to_string())?;
    }

    // Mine through the workload, sampling deep confirmations, until all is confirmed or time is up.
    let mut deep = HashSet::new();
    let stop_by =
        (last_payment + args.settle_blocks as f64 * t).max(fault_at + args.partition_secs as f64 + 10.0 * t);
    let mut crashed_done = crashed.is_empty();
    loop {
        clock += SAMPLE_SECS;
        if !crashed_done && clock >= fault_at {
            mine_until(&mut net, &mut miners, fault_at)?;
            for &i in &crashed {
                net.crash(i)?;
                net.restart(i, net.at_secs(fault_at + CRASH_SECS))?;
            }
            crashed_done = true;
        }
        mine_until(&mut net, &mut miners, clock)?;
        sample_deep(&net, &mut deep);
        let done = clock > last_payment && confirmed_share(&net, &workload) >= 1.0;
        if done || clock >= stop_by || net.budget == 0 {
            break;
        }
    }
    let mining_stopped = clock;
    net.run_until(net.at_secs(clock + QUIET_SECS), "quiet");
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;

    let outcome = Outcome {
        workload,
        deep,
        mining_stopped,
        crashed,
        tx_size,
        wall_ms,
    };
    report(args, &net, &outcome)
}

/// Mines every block due before `secs` (virtual seconds since the start), running the network between.
fn mine_until(net: &mut CoinNet, miners: &mut Miners, secs: f64) -> Result<(), String> {
    loop {
        let (when, i) = miners.peek();
        if when > secs || net.budget == 0 {
            break;
        }
        net.run_until(net.at_secs(when), "mining");
        net.mine_block(miners.nodes[i], miners.keys[i].peer_id())?;
        miners.fire(i);
    }
    net.run_until(net.at_secs(secs), "mining");
    Ok(())
}

/// Whether `key` holds confirmed coin at node `i`.
fn confirmed(net: &CoinNet, i: usize, key: &Keypair) -> bool {
    net.app(i)
        .and_then(|app| app.chain().balance(&key.peer_id()).ok())
        .is_some_and(|amount| amount.units() > 0)
}

/// The node holding the most work among the honest nodes that are up.
pub(super) fn best_node(net: &CoinNet) -> Option<(usize, u64)> {
    net.honest_tips()
        .into_iter()
        .max_by_key(|(_, _, _, work)| *work)
        .map(|(i, _, height, _)| (i, height))
}

/// The workload's transactions in the best chain.
fn confirmed_txs(net: &CoinNet) -> HashSet<TxId> {
    best_node(net).map_or_else(HashSet::new, |(i, height)| net.txids_between(i, 1, height))
}

fn confirmed_share(net: &CoinNet, workload: &[(TxId, usize, f64)]) -> f64 {
    let confirmed = confirmed_txs(net);
    let count = workload
        .iter()
        .filter(|(txid, ..)| confirmed.contains(txid))
        .count();
    count as f64 / workload.len().max(1) as f64
}

/// Adds the transactions `CONFIRMATIONS` deep on a sample of honest nodes (both halves of a partition).
fn sample_deep(net: &CoinNet, deep: &mut HashSet<TxId>) {
    let n = net.nodes.len();
    let step = (n / SAMPLED_NODES).max(1);
    for i in (0..n).step_by(step).filter(|&i| net.roles.honest(i)) {
        let Some(app) = net.app(i) else { continue };
        let tip = app.chain().tip().height;
        let Some(top) = tip.checked_sub(CONFIRMATIONS - 1) else {
            continue;
        };
        let from = top.saturating_sub(SAMPLE_LOOKBACK_BLOCKS).max(1);
        deep.extend(net.txids_between(i, from, top));
    }
}
