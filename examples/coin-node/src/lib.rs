//! # coin-node: the meshwork showcase
//!
//! A full proof-of-work coin node assembled from the meshwork crates (ARCHITECTURE.md). Its logic is one
//! pure protocol, `meshwork_coin::CoinApp` (gossip, headers-first sync and Kademlia composed, with the
//! relay policy between them); this crate runs it and adds what needs an operating system:
//!
//! - **transport**: QUIC with ed25519-bound certificates (`meshwork-transport`), and the tokio runtime
//!   (`meshwork-node`) that drives the app ([`node`]);
//! - **discovery**: Kademlia bootstraps from the `--bootstrap` peers; the app dials peers from its
//!   routing table until it has about eight connections; peers behind NATs meet at a rendezvous and
//!   connect by hole punching, or through its relay ([`nat`]);
//! - **relay**: transactions by gossip (HyParView + Plumtree), each validated by the mempool before it is
//!   forwarded, in the same step; blocks by sync alone (announced, then fetched);
//! - the **ledger** on redb, **Nakamoto** proof of work with ASERT difficulty, a [`miner`] (nonce grinding
//!   on blocking threads), a [`wallet`];
//! - a **JSON-RPC** API protected by a cookie file ([`rpc`]) and a CLI (`src/main.rs`); metrics gauges
//!   and an event log ([`app`]); a block explorer in the browser ([`explorer`]).
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
pub mod explorer;
pub mod miner;
pub mod nat;
pub mod node;
pub mod rpc;
pub mod store;
pub mod wallet;

pub use api::NodeApi;
pub use config::{DataDir, FileConfig, NetworkParams};
pub use node::{CoinNode, NodeOptions};
