//! Nakamoto proof of work: compact targets and work ([`Target`]), ASERT difficulty adjustment
//! ([`Asert`]), the engine with its header tree and fork choice ([`Nakamoto`]), and the miner ([`mine`]).

mod asert;
mod engine;
mod miner;
mod rules;
mod target;
pub(crate) mod tree;
mod u256;

pub use asert::{Asert, AsertAnchor};
pub use engine::{MAX_FUTURE_HALF_LIVES, Nakamoto};
pub use miner::mine;
pub(crate) use rules::HeaderCheck;
pub use target::Target;
