//! `meshsim sync`: a node joins late and catches up a long chain from several peers, one of which lies.
//!
//! A chain of `--blocks` blocks (coinbase only, `--block-time` seconds apart, real proof of work at the
//! regtest limit) is built once; `--peers` nodes resume from copies of it and a fresh node connects to
//! all of them over the link model of [`super::pow_net`] (cloud6 regions, upload bandwidth). The sync is
//! headers-first with parallel block download (as Bitcoin Core since 0.10: headers from one peer, bodies
//! from all within a moving window; see [`meshwork_consensus::sync`]).
//!
//! One peer (`--liar`) is the first the late node meets (two seconds before the others) and claims
//! enormous work in its `Status`, so it is the first asked for headers (the worst case), and then: `blocks` sends blocks whose bodies do not match their headers, `headers` sends header chains
//! with a broken link, `silent` answers nothing (its answers are replaced by repeated `Status`
//! messages), `none` is honest. The figures: virtual time from the connections to the late node's tip
//! reaching the source tip, blocks per second of virtual time, whether the liar was disconnected (and
//! why), and the blocks each peer served the late node.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use clap::{Args as ClapArgs, ValueEnum};
use meshwork_consensus::pow::mine;
use meshwork_consensus::sync::{ChainSync, Message};
use meshwork_consensus::{Chain, SyncConfig, genesis_block};
use meshwork_ledger::{Block, MemoryStore, Transaction};
use meshwork_sim::{Behaviour, Control, Sim, SimConfig};
use meshwork_wire::Instant;

use super::pow_net::{NetArgs, Node, Records, chain_config, fresh_node, secs_since};
use crate::cli::Common;
use crate::clock::{Progress, wall_now};
use crate::plot::Panel;
use crate::report::Report;

/// How the lying peer lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Liar {
    /// No liar.
    None,
    /// Blocks whose bodies do not match their headers.
    Blocks,
    /// Header chains with a broken link.
    Headers,
    /// Never answers a request.
    Silent,
}

/// Options of `meshsim sync`.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) net: NetArgs,
    /// Length of the chain to catch up.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) blocks: u64,
    /// Peers serving the chain (the liar included).
    #[arg(long, default_value_t = 4)]
    pub(crate) peers: usize,
    /// How the last peer lies.
    #[arg(long, value_enum, default_value_t = Liar::Blocks)]
    pub(crate) liar: Liar,
    /// Seconds between the source chain's blocks.
    #[arg(long, default_value_t = 600)]
    pub(crate) block_time: u64,
}

/// Blocks each serving peer sent to the late node, by peer index.
type Served = Rc<RefCell<BTreeMap<usize, u64>>>;

/// The liar's (or an honest peer's) outgoing messages, counted and maybe rewritten.
fn behaviour(index: usize, lie: Liar, served: Served) -> Behaviour<Node> {
    Behaviour::Corrupt(Box::new(move |_, msg, _| {
        if matches!(msg, Message::Block(_)) {
            *served.borrow_mut().entry(index).or_default() += 1;
        }
        Some(match (lie, msg) {
            (Liar::None, msg) => msg,
            (_, Message::Status { tip, height, .. }) => Message::Status {
                tip,
                height,
                work: u128::MAX / 2,
            },
            (Liar::Blocks, Message::Block(mut block)) => {
                let mut txs = block.txs.into_inner();
                if let Some(Transaction::Coinbase(coinbase)) = txs.first_mut() {
                    coinbase.extra = b"not what the header says".to_vec().try_into().ok()?;
                }
                block.txs = txs.try_into().ok()?;
                Message::Block(block)
            }
            (Liar::Headers, Message::Headers(headers)) if headers.len() >= 2 => {
                let mut headers = headers.into_inner();
                headers[0].nonce ^= 1;
                Message::Headers(headers.try_into().ok()?)
            }
            (Liar::Silent, Message::Headers(_) | Message::Block(_) | Message::NotFound(_)) => {
                Message::Status {
                    tip: meshwork_identity::Hash::ZERO,
                    height: 0,
                    work: u128::MAX / 2,
                }
            }
            (_, msg) => msg,
        })
    }))
}

/// Runs the experiment.
pub(crate) fn run(args: &Args) -> Result<Report, String> {
    let common = &args.common;
    let started = wall_now();
    if args.peers < 2 || args.blocks == 0 || args.block_time == 0 {
        return Err("--peers must be at least 2, --blocks and --block-time positive".into());
    }
    let config = chain_config(args.block_time);

    // The source chain, mined on schedule.
    let genesis = genesis_block(&config);
    let mut source = Chain::open(MemoryStore::new(), config.clone(), genesis, config.genesis_time)
        .map_err(|e| e.to_string())?;
    let owner = meshwork_consensus::genesis_key().peer_id();
    let mut progress = Progress::new();
    for height in 1..=args.blocks {
        let now = config.genesis_time + height * args.block_time;
        let template = source.block_template(owner, now).map_err(|e| e.to_string())?;
        let header = mine(template.header, 1, 1 << 24).ok_or("no nonce found")?;
        source
            .submit_block(Block { header, ..template }, now)
            .map_err(|e| e.to_string())?;
        progress.tick(|| format!("building the chain: {height} of {} blocks", args.blocks));
    }
    let target = source.tip();
    let built_ms = started.elapsed().as_secs_f64() * 1000.0;
    let store = source.into_store();

    // The peers, then the late node.
    let mut sim: Sim<Node> = Sim::new(SimConfig::new(common.seed).with_link(args.net.link()));
    let start = Instant::from_duration(Duration::from_secs(target.header.timestamp + 60));
    sim.run_until(start, |_, _, _| {});
    let mut peers = Vec::with_capacity(args.peers);
    for _ in 0..args.peers {
        let chain = Chain::open(
            store.clone(),
            config.clone(),
            genesis_block(&config),
            target.header.timestamp,
        )
        .map_err(|e| e.to_string())?;
        let node = ChainSync::new(chain, SyncConfig::default());
        peers.push(sim.add_node(|_| node).map_err(|e| e.to_string())?);
    }
    let late_state = fresh_node(&config)?;
    let late = sim.add_node(|_| late_state).map_err(|e| e.to_string())?;
    let served: Served = Rc::default();
    let liar_index = args.peers - 1;
    for (i, &peer) in peers.iter().enumerate() {
        let lie = if i == liar_index { args.liar } else { Liar::None };
        sim.set_adversary(peer, behaviour(i, lie, served.clone()))
            .map_err(|e| e.to_string())?;
    }
    // The liar is the first peer the late node meets (the worst case: it is asked for headers first);
    // the honest peers connect two seconds later.
    sim.connect(late, peers[liar_index]).map_err(|e| e.to_string())?;
    for &peer in &peers[..liar_index] {
        sim.schedule_control(start + Duration::from_secs(2), Control::Connect(late, peer))
            .map_err(|e| e.to_string())?;
    }

    // Run until the late node holds the source tip (or the network goes quiet, or a day passes).
    let mut records = Records::default();
    let deadline = start + Duration::from_secs(86_400);
    let mut budget = common.max_events;
    let mut done_at: Option<Instant> = None;
    let mut progress = Progress::new();
    // The late node's height over virtual time, one point per slice of events.
    let mut climb: Vec<(f64, f64)> = vec![(0.0, 0.0)];
    while budget > 0 {
        let outcome = sim.run(deadline, budget.min(50_000), |at, node, event| {
            records.on_event(at, node, event);
        });
        budget = budget.saturating_sub(outcome.events);
        let tip = sim.state(late).map(|s| s.chain().tip());
        climb.push((secs_since(sim.now(), start), tip.map_or(0.0, |t| t.height as f64)));
        if done_at.is_none() && tip.is_some_and(|t| t.id == target.id) {
            done_at = Some(records.last_tip_change.get(&late).copied().unwrap_or(sim.now()));
        }
        if outcome.stop != meshwork_sim::Stop::EventLimit || done_at.is_some() {
            break;
        }
        progress.tick(|| {
            format!(
                "syncing: virtual {:.1}s, height {}",
                secs_since(sim.now(), start),
                tip.map_or(0, |t| t.height)
            )
        });
    }
    // Let the last messages settle (bounded), so the liar's fate is known.
    let settle = sim.now() + Duration::from_secs(60);
    sim.run(settle, budget.min(100_000), |at, node, event| {
        records.on_event(at, node, event);
    });
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;

    let late_tip = sim.state(late).map(|s| s.chain().tip()).ok_or("late node down")?;
    let liar = peers[liar_index];
    let liar_peer = sim.peer_id(liar).ok_or("no liar")?;
    let liar_fault = records
        .faults
        .iter()
        .find(|f| f.1 == late && f.2 == liar_peer)
        .map(|f| f.3.clone());
    let honest_faulted = records
        .faults
        .iter()
        .filter(|f| f.1 == late && f.2 != liar_peer)
        .count();
    let sync_secs = done_at.map(|at| secs_since(at, start));
    let by_peer: serde_json::Map<String, serde_json::Value> = served
        .borrow()
        .iter()
        .map(|(i, count)| (format!("peer{i}"), (*count).into()))
        .collect();
    let stats = sim.stats();

    let mut report = Report::new();
    report
        .plot(Panel::Lines {
            title: format!("Sync of a late node from {} peers", args.peers),
            x_label: "virtual s".into(),
            y_label: "height".into(),
            series: vec![("late node".into(), climb)],
        })
        .add("experiment", "sync")
        .add("seed", common.seed)
        .add("nodes", args.peers + 1)
        .add("peers", args.peers)
        .add("liar", format!("{:?}", args.liar).to_lowercase())
        .add("blocks", args.blocks)
        .add("chain_build_ms", built_ms)
        .add("synced", late_tip.id == target.id)
        .add("late_height", late_tip.height)
        .add("sync_secs", sync_secs.map_or(serde_json::Value::Null, Into::into))
        .add(
            "blocks_per_sec",
            sync_secs.map_or(0.0, |s| args.blocks as f64 / s.max(1e-9)),
        )
        .add(
            "liar_disconnected",
            !sim.is_connected(late, liar) && liar_fault.is_some(),
        )
        .add("liar_fault", liar_fault.unwrap_or_default())
        .add("honest_peers_faulted", honest_faulted)
        .add("blocks_served_by_peer", serde_json::Value::Object(by_peer))
        .add(
            "blocks_served_by_liar",
            served.borrow().get(&liar_index).copied().unwrap_or(0),
        )
        .add("messages_sent", stats.messages_sent)
        .add("bytes_sent", stats.bytes_sent)
        .add("virtual_secs", secs_since(sim.now(), start))
        .footer(stats.events, wall_ms, sim.trace_hash());
    Ok(report)
}
