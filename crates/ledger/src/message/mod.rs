//! The wire types of the ledger: amounts, transactions, block headers and blocks, and the merkle tree
//! that binds a block's transactions to its header.

mod amount;
mod block;
pub mod merkle;
mod tx;

pub(crate) use tx::canonical_bytes;

pub use amount::Amount;
pub use block::{Block, BlockHeader, BlockId, MAX_BLOCK_TXS};
pub use tx::{
    COINBASE_EXTRA_MAX, Coinbase, MAX_INPUTS, MAX_OUTPUTS, OutPoint, TX_SIGNING, Transaction, Transfer, TxId,
    TxIn, TxOut,
};
