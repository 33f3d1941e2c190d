//! Attacks on a running coin node over real QUIC on 127.0.0.1, each staged by a hostile client built
//! from the crates (a `QuicTransport` speaking the node's sync channel, raw HTTP for the RPC). The node
//! must stay up, hold a bounded amount of memory, keep its honest peers and keep growing its chain.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod eclipse;
mod memory;
mod orphans;
mod relay;
mod rpc;
mod sync;

use meshwork_consensus::ChainSync;
use meshwork_identity::Keypair;
use meshwork_ledger::RedbStore;
use meshwork_transport::{Config, ProtocolSpec, QuicStream, QuicTransport};

/// A stream of the hostile client.
pub(crate) type SyncStream = QuicStream;

/// The memory an attack may add to the process, over its idle resident size.
pub(crate) const RSS_BOUND: u64 = 64 * 1024 * 1024;

/// This process's resident set size, from `/proc/self/status`.
pub(crate) fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// A hostile client speaking the node's sync channel, with tiny receive windows: it never reads what
/// the node sends, and buffers almost none of it itself.
pub(crate) async fn hostile(n: u8) -> QuicTransport {
    let sync = ProtocolSpec::of::<ChainSync<RedbStore>>();
    let mut config = Config::new([sync]);
    config.limits.max_queued_bytes_per_peer = 64 * 1024;
    config.limits.max_queued_bytes_per_stream = 16 * 1024;
    let key = Keypair::from_seed([n; 32]);
    QuicTransport::bind(&key, "127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}
