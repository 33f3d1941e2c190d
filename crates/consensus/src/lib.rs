//! # meshwork-consensus: which chain is the chain
//!
//! This crate decides which blocks make up the chain and moves them between peers. Like every meshwork
//! protocol crate it does **no IO, reads no clock and draws no global randomness**: time comes in as an
//! argument (`now_secs`, Unix seconds, or the driver's [`Instant`](meshwork_wire::Instant)), storage sits
//! behind the ledger's [`ChainStore`](meshwork_ledger::ChainStore), and the only threads are the miner's
//! scoped ones.
//!
//! ## The model: four roles
//!
//! Consensus is split the way strong engines split it (ARCHITECTURE.md), one trait per role
//! ([`traits`](crate::Consensus)):
//!
//! - the **engine** ([`Consensus`]) orders block ids: it checks headers, picks the best chain (fork choice)
//!   and says how [final](Finality) a block is;
//! - the **relay** ([`BlockRelay`]) moves full blocks between peers;
//! - the **validator** ([`BlockValidator`], implemented for the ledger) checks a block's contents and
//!   applies it to the UTXO set, or takes it back off;
//! - the **reporter** ([`FaultReporter`]) hears which peers misbehave.
//!
//! Every verdict is three-valued ([`Verdict`]): *valid*, *invalid forever* (with an [`InvalidReason`]), or
//! *not yet known* (an unknown parent, a timestamp ahead of our clock, a side branch whose contents are
//! only checked if it ever becomes best). Only *invalid* is held against whoever sent it.
//!
//! ## Nakamoto proof of work
//!
//! The engine shipped here is Nakamoto consensus (S. Nakamoto, *Bitcoin: A Peer-to-Peer Electronic Cash
//! System*, 2008): a block is valid work if its id, read as a big-endian 256-bit number, is at most the
//! target its header names ([`pow::Target`], carried in Bitcoin's compact `nBits` form); a block of
//! target `t` proves `2^256 / (t + 1)` hashes of **work**; and the valid chain with the most cumulative
//! work is the chain, the first seen winning ties. A longer chain does not beat a heavier one.
//!
//! - **Difficulty** follows ASERT, `aserti3-2d` of Bitcoin Cash's November 2020 upgrade (M. Lundeberg,
//!   J. Toomim et al., *ASERT: absolutely scheduled exponentially rising targets*): each block's target
//!   is computed from one anchor block (our genesis block) by how far the chain is ahead of or behind the
//!   schedule of [`ChainConfig::target_block_time`], doubling per [`ChainConfig::half_life`] behind and
//!   halving per half-life ahead, never easier than [`ChainConfig::pow_limit`] ([`pow::Asert`]). A header
//!   must carry exactly the required target.
//! - **Timestamps** must be after the median of the previous eleven and at most two hours ahead of `now`
//!   (the ledger's rules, checked on headers already).
//! - **Reorganisations**: when another branch carries more work, the ledger disconnects down to the fork
//!   point (returning those transactions to the mempool) and connects the branch; a branch block that
//!   turns out invalid drops out of fork choice with its descendants and the best valid chain is restored.
//! - **Orphans**: a block whose parent is unknown waits in a bounded pool until the parent arrives.
//! - **Floods**: a header chain is stored only if it carries at least our tip's work (and
//!   [`ChainConfig::min_chain_work`]); the header index is bounded ([`ChainConfig::max_headers`]).
//! - **Finality** is confirmation depth ([`FinalityProof::Depth`]); the [`Certificate`] of the BFT engine
//!   is the other kind of proof the same enum carries.
//!
//! ## Simplex BFT
//!
//! The [`bft`] module is the second engine: Simplex consensus (Chan & Pass, 2023) for a fixed validator
//! set, finalising in three message delays, with equivocation evidence, a durable last vote and
//! Byzantine validators for simulations. It is a [`Protocol`](meshwork_wire::Protocol) of its own
//! (`/meshwork/simplex/1`); `meshsim bft` runs it at 50 validators.
//!
//! Swapping engines is a choice of [`ChainRule`] in [`ChainConfig::rule`]: the same [`Chain`], ledger,
//! mempool and sync run either. Under [`ChainRule::Certified`] headers carry no proof of work, the tip
//! follows the blocks the engine notarizes ([`Chain::follow`], reorganising off a skipped view through
//! the ledger's undo data), a [`Certificate`] makes a block and its ancestors final
//! ([`Chain::finalize`]; [`FinalityProof::Certificate`]) and nothing final is ever disconnected. Headers
//! more than [`UNCERTIFIED_HORIZON`] above the final block wait for a certificate. `meshwork-coin` runs
//! the engine inside the coin's protocol (`CoinApp::with_bft`).
//!
//! [`Chain`] puts the ledger, the mempool and the engine together with the methods a coin node calls
//! (submit blocks, headers and transactions, block templates, balances); [`pow::mine`] searches nonces.
//!
//! ## Headers-first sync
//!
//! [`ChainSync`] is the [`Protocol`](meshwork_wire::Protocol) `/meshwork/sync/1` over a [`Chain`]: peers
//! exchange their tips, a node behind asks for headers, checks them, and downloads the blocks in parallel
//! from several peers within a moving window, dropping peers that stall or lie. New tips are announced, so
//! the protocol alone relays blocks across a network; a new block is fetched as a
//! [`CompactBlock`](sync::CompactBlock) and rebuilt from the mempool (BIP152), which costs its receiver
//! about 7% of the block on the 5-node devnet. See the [`sync`] module.
//!
//! ## Example
//!
//! ```
//! use meshwork_consensus::pow::mine;
//! use meshwork_consensus::{BlockStatus, Chain, ChainConfig, Finality, genesis_block};
//! use meshwork_identity::Keypair;
//! use meshwork_ledger::MemoryStore;
//!
//! // A test network: proof of work at one hash in two, 60-second blocks.
//! let config = ChainConfig::regtest();
//! let genesis = genesis_block(&config);
//! let mut now = genesis.header.timestamp;
//! let mut chain = Chain::open(MemoryStore::new(), config, genesis, now)?;
//!
//! // Mine three blocks paying the miner.
//! let miner = Keypair::from_seed([1; 32]).peer_id();
//! for _ in 0..3 {
//!     now += 60;
//!     let template = chain.block_template(miner, now)?;
//!     let header = mine(template.header, 2, 1 << 20).expect("an easy target");
//!     let block = meshwork_ledger::Block { header, ..template };
//!     let outcome = chain.submit_block(block, now)?;
//!     assert_eq!(outcome.status, BlockStatus::Active);
//! }
//! assert_eq!(chain.tip().height, 3);
//! assert_eq!(chain.balance(&miner)?, meshwork_ledger::Amount::from_coins(150));
//! // Three confirmations are not final yet at the default depth of six.
//! let first = chain.block_id_at_height(1).unwrap();
//! assert_eq!(chain.finality(&first), Finality::Pending);
//! # Ok::<(), meshwork_consensus::ChainError>(())
//! ```
//!
//! ## Limits
//!
//! - Blocks received but not connected yet (ahead of the tip during sync, or on a side branch) wait **in
//!   memory**, bounded by [`ChainConfig::max_unconnected_block_bytes`]: the ledger has no way to store a
//!   block without connecting it. A restarted node forgets them (and its side branches) and fetches again.
//! - Work is a `u128`: a block with a target below `2^128` counts as `u128::MAX` work (see
//!   [`pow::Target::work`]); cumulative work saturates.
//! - [`Chain::balance`] scans the whole UTXO set.
#![deny(missing_docs)]

pub mod bft;
mod certificate;
mod chain;
mod config;
mod error;
pub mod pow;
pub mod sync;
mod traits;

pub use certificate::{COMMIT_VOTE, Certificate, MAX_CERTIFICATE_VOTES, Vote};
pub use chain::{
    BlockOutcome, BlockStatus, Chain, GENESIS_TAG, HeadersOutcome, TipChange, TipInfo, UNCERTIFIED_HORIZON,
    genesis_block,
};
pub use config::{ChainConfig, ChainRule, SyncConfig, genesis_key};
pub use error::{CertificateError, ChainError, CompactError};
pub use pow::Nakamoto;
pub use sync::{ChainSync, Command, Event, Message, Timer};
pub use traits::{
    BlockRelay, BlockValidator, Consensus, Fault, FaultReporter, Finality, FinalityProof, InvalidReason,
    Verdict,
};
