//! The pure core: the UTXO model (coins, undo data, the set commitment), validation rules, batched and
//! cached signature checking, and the [`Ledger`](chain::Ledger) that applies blocks to a
//! [`ChainStore`](crate::ChainStore).

pub(crate) mod chain;
mod connect;
mod preverify;
pub(crate) mod sigcheck;
pub(crate) mod utxo;
pub(crate) mod validation;
