//! Where the throughput devnet's CPU time goes, in one run.
//!
//! The nodes, their miners and the wallets all run in this process, so the process CPU clock over the
//! measured window is the whole cost. It is split as follows, each part measured where a clock may be
//! read and counted where it may not:
//!
//! - **mining**: header hashes the miners tried (counted by the miner) × the cost of one hash;
//! - **wallets**: building and signing the submitted transactions, by the submitters' thread clocks;
//! - **the node cores**: the node task's calls into the coin protocol, by the thread clock
//!   ([`Metrics::protocol_cpu`](meshwork_node::Metrics::protocol_cpu)). Within them (except the
//!   signatures the ledger checks on helper threads when it splits a large batch across cores, counted
//!   apart as [`SigStats::off_thread`] and taken from what is left for transport):
//!   - **transaction signatures**: the ledger's batches and signatures ([`SigStats`]) × the cost of a
//!     batch and of a signature in one. The ledger is pure and keeps no clock, so its verification is
//!     costed here, with the same number of distinct signers as the run has wallets (a batch's cost
//!     falls when signatures share a key);
//!   - **gossip signatures**: origin signatures gossip checked alone ([`GossipStats::signatures_verified`]
//!     less those batched) × the cost of one check, and its batches costed as the ledger's;
//!   - **storage**: the CPU time of the ledger's redb calls ([`MeteredStore`]); the wall time,
//!     which adds waiting for the disk, is reported beside it;
//!   - the rest of the cores: gossip and sync logic, the mempool, codecs, hashing of ids;
//! - **transport and runtime**: what is left: QUIC and TLS, tokio, the connection tasks, the node
//!   task's routing, the API calls' plumbing.
//!
//! The costs are measured after the window on one thread with its CPU clock, so the estimate is
//! `count × cost` on the same machine in the same run; it leaves out what contention added during the
//! run (caches shared by five nodes), which therefore shows in "the rest".
//!
//! [`GossipStats::signatures_verified`]: meshwork_gossip::GossipStats::signatures_verified
//! [`MeteredStore`]: crate::store::MeteredStore

use std::time::Duration;

use meshwork_identity::{BatchVerifier, Keypair, Namespace, PeerId, Signature};
use meshwork_ledger::{SigStats, TX_SIGNING};
use meshwork_node::{process_cpu_time, thread_cpu_time};
use meshwork_wire::Protocol;

use super::*;
use crate::node::App;
use crate::store::StoreMeter;

/// Work counted over the devnet's nodes up to one moment.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Work {
    /// The process CPU clock.
    process: Duration,
    /// The node tasks' CPU time in the coin protocol.
    core: Duration,
    store: StoreMeter,
    sigs: SigStats,
    /// Gossip's origin signature checks: all, batches, and the checks made in batches.
    gossip_signatures: u64,
    gossip_batches: u64,
    gossip_batched: u64,
    hashes: u64,
}

impl Work {
    /// The totals now.
    pub(super) async fn read(nodes: &[CoinNode]) -> Result<Self, BenchError> {
        let mut work = Self {
            process: process_cpu_time().unwrap_or_default(),
            ..Self::default()
        };
        for node in nodes {
            let api = node.api();
            let (store, sigs, gossip) = api
                .app()
                .with(|s| {
                    let ledger = s.chain().ledger();
                    (ledger.store().meter(), ledger.sig_stats(), s.gossip().stats())
                })
                .await
                .map_err(ApiError::from)?;
            work.core += api.node().metrics().protocol_cpu(App::ID.as_str());
            work.store.reads += store.reads;
            work.store.writes += store.writes;
            work.store.cpu += store.cpu;
            work.store.wall += store.wall;
            work.sigs.batches += sigs.batches;
            work.sigs.signatures += sigs.signatures;
            work.sigs.off_thread += sigs.off_thread;
            work.sigs.cached += sigs.cached;
            work.gossip_signatures += gossip.signatures_verified;
            work.gossip_batches += gossip.signature_batches;
            work.gossip_batched += gossip.signatures_batched;
            work.hashes += api.hashes_tried();
        }
        Ok(work)
    }

    /// What was done between `start` and `self`.
    pub(super) fn since(self, start: Self) -> Self {
        Self {
            process: self.process.saturating_sub(start.process),
            core: self.core.saturating_sub(start.core),
            store: StoreMeter {
                reads: self.store.reads - start.store.reads,
                writes: self.store.writes - start.store.writes,
                cpu: self.store.cpu.saturating_sub(start.store.cpu),
                wall: self.store.wall.saturating_sub(start.store.wall),
            },
            sigs: SigStats {
                batches: self.sigs.batches - start.sigs.batches,
                signatures: self.sigs.signatures - start.sigs.signatures,
                off_thread: self.sigs.off_thread - start.sigs.off_thread,
                cached: self.sigs.cached - start.sigs.cached,
            },
            gossip_signatures: self.gossip_signatures - start.gossip_signatures,
            gossip_batches: self.gossip_batches - start.gossip_batches,
            gossip_batched: self.gossip_batched - start.gossip_batched,
            hashes: self.hashes - start.hashes,
        }
    }
}

/// What one unit of each kind of counted work costs on this machine (thread CPU time, medians).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Costs {
    hash: Duration,
    /// A gossip message's origin signature checked alone.
    single: Duration,
    /// A batch of transaction signatures: its fixed cost, and each signature in it.
    batch: BatchCost,
    /// The same for gossip messages' origin signatures (longer signed content).
    gossip_batch: BatchCost,
}

/// What a batch of signatures costs: `fixed + n · each`.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct BatchCost {
    fixed: Duration,
    each: Duration,
}

impl BatchCost {
    /// `batches` batches of `signatures` signatures in all, in seconds.
    fn secs(self, batches: u64, signatures: u64) -> f64 {
        batches as f64 * self.fixed.as_secs_f64() + signatures as f64 * self.each.as_secs_f64()
    }
}

/// Median of `runs` timings of `work` by the thread's CPU clock, divided by `per_run`.
fn median_cost(runs: usize, per_run: u32, mut work: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let start = thread_cpu_time().unwrap_or_default();
            work();
            thread_cpu_time().unwrap_or_default().saturating_sub(start)
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2] / per_run.max(1)
}

/// Signatures over 32-byte sighashes by `keys` keys in turn, as a batch of `n` sees them.
fn signed(keys: &[Keypair], n: usize, namespace: Namespace, len: usize) -> Vec<(PeerId, Vec<u8>, Signature)> {
    (0..n)
        .map(|i| {
            let key = &keys[i % keys.len()];
            let msg: Vec<u8> = (0..len).map(|b| (b * 31 + i) as u8).collect();
            let signature = key.sign(namespace, &msg);
            (key.peer_id(), msg, signature)
        })
        .collect()
}

fn batch_of(namespace: Namespace, sigs: &[(PeerId, Vec<u8>, Signature)]) {
    let mut batch = BatchVerifier::with_capacity(sigs.len());
    for (peer, msg, signature) in sigs {
        batch.push(peer, namespace, msg, signature);
    }
    assert!(
        batch.verify().is_ok(),
        "a calibration batch of valid signatures failed"
    );
}

/// Measures what a batch of signatures by `keys` over `len`-byte messages costs, from batches of 1
/// and of 64: `cost(n) = fixed + n · each`.
fn batch_cost(keys: &[Keypair], namespace: Namespace, len: usize) -> BatchCost {
    const BATCH: usize = 64;
    let ones = signed(keys, 200, namespace, len);
    let one = median_cost(5, ones.len() as u32, || {
        for sig in &ones {
            batch_of(namespace, std::slice::from_ref(sig));
        }
    });
    let full = signed(keys, BATCH * 10, namespace, len);
    let per_full = median_cost(5, 10, || {
        for chunk in full.chunks(BATCH) {
            batch_of(namespace, chunk);
        }
    });
    let each = per_full.saturating_sub(one) / (BATCH as u32 - 1);
    BatchCost {
        fixed: one.saturating_sub(each),
        each,
    }
}

/// Measures [`Costs`] on this thread. `signers`: distinct keys behind the transactions and the gossip
/// messages (the wallets and the nodes); `gossip_bytes`: the size of a gossip message's signed content.
pub(super) fn measure_costs(
    header: meshwork_ledger::BlockHeader,
    signers: usize,
    gossip_bytes: usize,
) -> Costs {
    const HASHES: u32 = 50_000;
    let mut candidate = header;
    let hash = median_cost(5, HASHES, || {
        for _ in 0..HASHES {
            candidate.nonce = candidate.nonce.wrapping_add(1);
            std::hint::black_box(candidate.id());
        }
    });
    let keys: Vec<Keypair> = (0..signers.max(1))
        .map(|i| Keypair::from_seed([i as u8 + 1; 32]))
        .collect();
    let gossip = meshwork_gossip::MESSAGE_NAMESPACE;
    let alone = signed(&keys, 200, gossip, gossip_bytes.max(1));
    let single = median_cost(5, alone.len() as u32, || {
        for (peer, msg, signature) in &alone {
            assert!(
                peer.verify(gossip, msg, signature).is_ok(),
                "a calibration signature failed"
            );
        }
    });
    Costs {
        hash,
        single,
        batch: batch_cost(&keys, TX_SIGNING, 32),
        gossip_batch: batch_cost(&keys, gossip, gossip_bytes.max(1)),
    }
}

/// The CPU time of the throughput window, by where it went (see the module docs). Seconds summed over
/// every thread of the process; the parts in `cpu_node_core_secs` are within it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CpuReport {
    /// The process's CPU time over the window (every node, miner and wallet).
    pub cpu_secs: f64,
    /// The miners' proof of work: `hashes_tried × cost_hash_ns`.
    pub cpu_mining_secs: f64,
    /// The wallets building and signing transactions (measured).
    pub cpu_wallets_secs: f64,
    /// The node tasks in the coin protocol (measured): the four parts below, less the transaction
    /// signatures checked on the ledger's helper threads.
    pub cpu_node_core_secs: f64,
    /// The ledger verifying transaction signatures (batches × `cost_batch_fixed_us` + signatures ×
    /// `cost_signature_batched_us`).
    pub cpu_tx_signatures_secs: f64,
    /// Gossip checking origin signatures: those checked alone × `cost_signature_single_us`, and its
    /// batches as the ledger's (with the cost of batches of gossip messages).
    pub cpu_gossip_signatures_secs: f64,
    /// The ledger's calls into redb (measured).
    pub cpu_store_secs: f64,
    /// The rest of the cores: relay logic (gossip, sync, mempool), codecs, hashing.
    pub cpu_core_other_secs: f64,
    /// What is left of `cpu_secs`: QUIC, TLS, tokio, connection tasks, the API's plumbing.
    pub cpu_transport_secs: f64,
    /// Wall time of the ledger's redb calls (CPU and waiting for the disk), summed over the nodes.
    pub store_wall_secs: f64,
    /// The ledger's redb calls that read.
    pub store_reads: u64,
    /// The ledger's redb calls that wrote (a commit per block connected).
    pub store_writes: u64,
    /// Signature batches the ledgers verified (blocks, loose transactions, relay batches).
    pub tx_signature_batches: u64,
    /// Signatures in them.
    pub tx_signatures_verified: u64,
    /// Of those, the ones checked on the ledger's helper threads (a batch split across cores), whose
    /// time is in `cpu_tx_signatures_secs` but not in `cpu_node_core_secs`.
    pub tx_signatures_off_thread: u64,
    /// Transactions whose signatures the ledgers did not verify because their caches knew them.
    pub tx_signature_cache_hits: u64,
    /// Origin signatures gossip verified.
    pub gossip_signatures_verified: u64,
    /// Batches gossip checked origin signatures in (on the transaction topic, under load).
    pub gossip_signature_batches: u64,
    /// Origin signatures checked in those batches.
    pub gossip_signatures_batched: u64,
    /// Header hashes the miners tried.
    pub hashes_tried: u64,
    /// One header hash (thread CPU, median).
    pub cost_hash_ns: f64,
    /// One signature verified alone.
    pub cost_signature_single_us: f64,
    /// A batch's cost beyond its signatures.
    pub cost_batch_fixed_us: f64,
    /// One transaction signature in a batch of 64 by as many signers as the run has wallets.
    pub cost_signature_batched_us: f64,
    /// One gossip message's origin signature in a batch of 64.
    pub cost_gossip_signature_batched_us: f64,
}

impl CpuReport {
    /// Splits `work` (the window's) with `costs`; `wallets` is the submitters' measured CPU time.
    pub(super) fn new(work: Work, wallets: Duration, costs: Costs) -> Self {
        let secs = Duration::as_secs_f64;
        let times = |count: u64, cost: Duration| count as f64 * cost.as_secs_f64();
        let cpu = secs(&work.process);
        let mining = times(work.hashes, costs.hash);
        let core = secs(&work.core);
        let tx_signatures = costs.batch.secs(work.sigs.batches, work.sigs.signatures);
        // Signatures the ledger checked on helper threads are not in the node task's clock: their
        // share comes out of what is left over for transport, not out of the core.
        let off_thread = times(work.sigs.off_thread, costs.batch.each);
        let alone = work.gossip_signatures.saturating_sub(work.gossip_batched);
        let gossip_signatures =
            times(alone, costs.single) + costs.gossip_batch.secs(work.gossip_batches, work.gossip_batched);
        let store = secs(&work.store.cpu);
        Self {
            cpu_secs: cpu,
            cpu_mining_secs: mining,
            cpu_wallets_secs: secs(&wallets),
            cpu_node_core_secs: core,
            cpu_tx_signatures_secs: tx_signatures,
            cpu_gossip_signatures_secs: gossip_signatures,
            cpu_store_secs: store,
            cpu_core_other_secs: (core - (tx_signatures - off_thread) - gossip_signatures - store).max(0.0),
            cpu_transport_secs: (cpu - mining - secs(&wallets) - core - off_thread).max(0.0),
            tx_signatures_off_thread: work.sigs.off_thread,
            store_wall_secs: secs(&work.store.wall),
            store_reads: work.store.reads,
            store_writes: work.store.writes,
            tx_signature_batches: work.sigs.batches,
            tx_signatures_verified: work.sigs.signatures,
            tx_signature_cache_hits: work.sigs.cached,
            gossip_signatures_verified: work.gossip_signatures,
            gossip_signature_batches: work.gossip_batches,
            gossip_signatures_batched: work.gossip_batched,
            hashes_tried: work.hashes,
            cost_hash_ns: costs.hash.as_secs_f64() * 1e9,
            cost_signature_single_us: costs.single.as_secs_f64() * 1e6,
            cost_batch_fixed_us: costs.batch.fixed.as_secs_f64() * 1e6,
            cost_signature_batched_us: costs.batch.each.as_secs_f64() * 1e6,
            cost_gossip_signature_batched_us: costs.gossip_batch.each.as_secs_f64() * 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_parts_add_up_to_the_process_and_the_core() {
        let work = Work {
            process: 1000 * MS,
            core: 600 * MS,
            store: StoreMeter {
                reads: 10,
                writes: 2,
                cpu: 50 * MS,
                wall: 80 * MS,
            },
            sigs: SigStats {
                batches: 10,
                signatures: 100,
                off_thread: 20,
                cached: 7,
            },
            gossip_signatures: 14,
            gossip_batches: 1,
            gossip_batched: 10,
            hashes: 1000,
        };
        let costs = Costs {
            hash: Duration::from_micros(100),
            single: 10 * MS,
            batch: BatchCost {
                fixed: 2 * MS,
                each: MS,
            },
            gossip_batch: BatchCost {
                fixed: 3 * MS,
                each: 2 * MS,
            },
        };
        let report = CpuReport::new(work, 40 * MS, costs);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(report.cpu_mining_secs, 0.1));
        assert!(
            close(report.cpu_tx_signatures_secs, 0.12),
            "10 batches, 100 signatures"
        );
        assert!(
            close(report.cpu_gossip_signatures_secs, 0.04 + 0.003 + 0.02),
            "4 alone, 10 in a batch"
        );
        assert!(close(report.cpu_store_secs, 0.05));
        // 20 of the 100 signatures (20 ms) ran on helper threads: outside the core's clock.
        assert!(close(
            report.cpu_core_other_secs,
            0.6 - (0.12 - 0.02) - 0.063 - 0.05
        ));
        assert!(close(report.cpu_transport_secs, 1.0 - 0.1 - 0.04 - 0.6 - 0.02));
        assert_eq!((report.tx_signature_cache_hits, report.store_writes), (7, 2));
    }

    #[test]
    fn a_window_is_the_difference_of_two_readings() {
        let at = |n: u64| Work {
            process: MS * n as u32,
            core: MS * n as u32,
            store: StoreMeter {
                reads: n,
                writes: n,
                cpu: MS * n as u32,
                wall: MS * n as u32,
            },
            sigs: SigStats {
                batches: n,
                signatures: 2 * n,
                off_thread: n,
                cached: n,
            },
            gossip_signatures: n,
            gossip_batches: n,
            gossip_batched: n,
            hashes: 3 * n,
        };
        let window = at(10).since(at(4));
        assert_eq!(window.core, 6 * MS);
        assert_eq!(window.store.reads, 6);
        assert_eq!(window.sigs.signatures, 12);
        assert_eq!(window.hashes, 18);
    }

    #[test]
    fn unit_costs_are_measured() {
        let params = NetworkParams::devnet(1_700_000_000);
        let header = genesis_block(&params.chain_config()).header;
        let costs = measure_costs(header, 5, 300);
        assert!(
            costs.hash > Duration::ZERO && costs.single > Duration::ZERO,
            "{costs:?}"
        );
        assert!(
            costs.batch.each > Duration::ZERO && costs.gossip_batch.each > Duration::ZERO,
            "{costs:?}"
        );
    }
}
