//! # coin-node: the meshwork showcase
//!
//! A full proof-of-work coin node assembled from the meshwork crates (DESIGN.md §8):
//!
//! - **transport**: QUIC with ed25519-bound certificates (`meshwork-transport`);
//! - **discovery**: Kademlia bootstraps from the `--bootstrap` peers; the node dials peers from its
//!   routing table until it has about eight connections ([`app`]);
//! - **relay**: gossip (HyParView + Plumtree) on a `tx` and a `block` topic, every message validated by
//!   the chain before it is forwarded ([`app`]);
//! - **sync**: headers-first sync and tip announcements (`meshwork-consensus::ChainSync`);
//! - **ledger** on redb, **Nakamoto** proof of work with ASERT difficulty, a [`miner`], a [`wallet`];
//! - a **JSON-RPC** API protected by a cookie file ([`rpc`]) and a CLI (`src/main.rs`).
//!
//! The binary's `devnet` subcommand ([`devnet`]) runs a whole network on 127.0.0.1 in one process;
//! `bench` ([`mod@bench`]) measures confirmed transactions per second, sync speed against the ledger's own
//! connect rate, and a node's idle memory.

pub mod api;
pub mod app;
pub mod bench;
pub mod client;
pub mod config;
pub mod devnet;
pub mod miner;
pub mod node;
pub mod rpc;
pub mod wallet;

pub use api::NodeApi;
pub use config::{DataDir, FileConfig, NetworkParams};
pub use node::{CoinNode, NodeOptions};
