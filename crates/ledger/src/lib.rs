//! # meshwork-ledger: a UTXO ledger as a pure core
//!
//! This crate decides which transactions and blocks are valid and what they do to the set of unspent
//! outputs. It does **no network IO, reads no clock and spawns no tasks**: the time (`now`, seconds since
//! the Unix epoch) and a block's cumulative work are arguments, and storage sits behind the
//! [`ChainStore`] trait ([`MemoryStore`] for tests and simulations, [`RedbStore`] for nodes). The only
//! threads are scoped ones that verify signatures in parallel.
//!
//! ## The model
//!
//! Coin lives in **outputs** ([`TxOut`]): an [`Amount`] and an owner, the owner's ed25519 public key
//! ([`PeerId`](meshwork_identity::PeerId)). A [`Transfer`] spends outputs (each [`TxIn`] names an
//! [`OutPoint`] `(txid, index)` and carries the owner's signature) and creates new ones; what the inputs hold
//! beyond the new outputs is the fee. Every input signs the transaction's [sighash](Transfer::sighash) (the
//! transaction without signatures, and the amount and owner of every output it spends, as in BIP341) in
//! the namespace [`TX_SIGNING`]: a signer told a wrong amount makes a signature that fails, rather than a
//! transaction that burns the difference as fee. A [`Block`] is a [`BlockHeader`] and
//! transactions, the first of which is a [`Coinbase`]: it creates the block subsidy and collects the fees.
//! The header commits to the transactions through a [merkle root](message::merkle) that cannot be mutated
//! by duplicating leaves.
//!
//! The set of unspent outputs ([`Coin`]s) is kept by the store. [Connecting](Ledger::connect_block) a
//! block spends and creates coins in one atomic store batch and returns [`BlockUndo`] (the coins it spent);
//! [disconnecting](Ledger::disconnect_tip) applies the undo data, so a reorg is a series of disconnects and
//! connects. A [`UtxoCommitment`] (an order-independent sum of hashes) summarises the set: connect then
//! disconnect gives the same commitment back, and a store reopened after a crash can be checked against it.
//!
//! ## The rules
//!
//! A **transaction** (a transfer) is valid against a UTXO set when:
//!
//! 1. it has at least one input and one output ([`TxError::NoInputs`], [`TxError::NoOutputs`]), and
//!    every signature's scalar is canonical ([`TxError::MalformedSignature`]; checkable without the
//!    spent outputs, so orphans are held to it);
//! 2. every output amount and the sum of the outputs are at most [`Amount::MAX_SUPPLY`], and so is the
//!    sum of the inputs ([`TxError::AmountOutOfRange`]);
//! 3. no outpoint is spent twice by it ([`TxError::DuplicateInput`]);
//! 4. every input is unspent ([`TxError::UnknownInput`]: *missing data* for a loose transaction);
//! 5. coinbase outputs are spent only [`coinbase_maturity`](LedgerConfig::coinbase_maturity) blocks after
//!    their creation ([`TxError::ImmatureCoinbase`]);
//! 6. the inputs hold at least as much as the outputs ([`TxError::Overspend`]);
//! 7. every input's signature is valid, by the spent output's owner, over the sighash of the transaction
//!    and the outputs it spends, in [`TX_SIGNING`] ([`TxError::BadSignature`]), under ZIP-215 rules so
//!    batch and single verification always agree.
//!
//! A **block** is valid on top of the current tip when:
//!
//! 1. its encoding is at most [`max_block_bytes`](LedgerConfig::max_block_bytes) ([`BlockError::TooLarge`]);
//! 2. its first transaction is a coinbase and no other is ([`BlockError::MissingCoinbase`],
//!    [`BlockError::ExtraCoinbase`]);
//! 3. the header's merkle root is that of its transactions ([`BlockError::BadMerkleRoot`]);
//! 4. its parent is the tip ([`BlockError::UnknownParent`]: *missing data*; [`BlockError::NotOnTip`]:
//!    the caller must reorg first), its height is the parent's plus one ([`BlockError::BadHeight`]) and the
//!    coinbase carries that height ([`BlockError::BadCoinbaseHeight`]);
//! 5. its timestamp is after the median of the last [`median_time_span`](LedgerConfig::median_time_span)
//!    blocks, or at it with [`timestamp_may_equal_median`](LedgerConfig::timestamp_may_equal_median)
//!    ([`BlockError::TimestampTooOld`]), and at most
//!    [`max_future_secs`](LedgerConfig::max_future_secs) after the caller's `now`
//!    ([`BlockError::TimestampTooFarAhead`]);
//! 6. every transaction follows the transaction rules ([`BlockError::Tx`]); an input is spent at most
//!    once in the block ([`BlockError::DoubleSpendInBlock`]) and exists in the parent's UTXO set or earlier
//!    in the block ([`BlockError::MissingOrSpentInput`], final here), and no output is created twice
//!    ([`BlockError::DuplicateTxid`]);
//! 7. the coinbase claims at most the [subsidy](LedgerConfig::subsidy) (halving every
//!    [`halving_interval`](LedgerConfig::halving_interval) blocks) plus the fees
//!    ([`BlockError::CoinbaseTooLarge`], [`BlockError::FeesOutOfRange`]).
//!
//! **Proof of work is not checked here.** The header carries the compact target and a nonce, and the
//! store records the cumulative work the caller supplies, but whether the work is enough (and which chain
//! is best) is the consensus engine's decision. Errors say whether a failure is final
//! (`is_invalid`) or only **missing data** (`is_missing_data`): an unknown parent or input may arrive later.
//!
//! ## Speed
//!
//! Signatures are verified with [`BatchVerifier`](meshwork_identity::BatchVerifier), split into one batch
//! per core with `std::thread::scope`. A bounded [`SigCache`] remembers transactions already verified
//! (by the mempool, say), so a block made of them is not verified twice.
//!
//! ## Example
//!
//! ```
//! use meshwork_identity::Keypair;
//! use meshwork_ledger::{Amount, Ledger, LedgerConfig, MemoryStore, OutPoint, TxOut};
//! use meshwork_ledger::testkit::{block_on, coinbase};
//!
//! let miner = Keypair::from_seed([1; 32]);
//! let config = LedgerConfig { coinbase_maturity: 1, ..LedgerConfig::default() };
//! let mut ledger = Ledger::new(MemoryStore::new(), config);
//!
//! // Genesis: a coinbase paying the subsidy to the miner.
//! let genesis = block_on(None, 1_000, vec![coinbase(0, &miner, Amount::from_coins(50))]);
//! ledger.connect_block(&genesis, 1, 1_000).unwrap();
//!
//! // Block 1 spends it: 49 coins to Bob, 1 coin of fee that the miner collects.
//! let bob = Keypair::from_seed([2; 32]);
//! let spend = meshwork_ledger::Transfer::signed(
//!     &[(OutPoint { txid: genesis.txs[0].txid(), index: 0 }, Amount::from_coins(50), &miner)],
//!     vec![TxOut { amount: Amount::from_coins(49), owner: bob.peer_id() }],
//! );
//! let block = block_on(
//!     Some(&genesis.header),
//!     1_060,
//!     vec![coinbase(1, &miner, Amount::from_coins(51)), spend.into()],
//! );
//! let before = ledger.utxo_commitment().unwrap();
//! ledger.connect_block(&block, 2, 1_060).unwrap();
//! ledger.disconnect_tip().unwrap();
//! assert_eq!(ledger.utxo_commitment().unwrap(), before);
//! ```
#![deny(missing_docs)]

mod config;
mod error;
pub mod mempool;
pub mod message;
mod state;
mod store;
#[cfg(feature = "test-utils")]
pub mod testkit;

pub use config::{LedgerConfig, MempoolConfig};
pub use error::{BlockError, MempoolError, StoreError, TxError};
pub use mempool::Mempool;
pub use message::{
    Amount, Block, BlockHeader, BlockId, COINBASE_EXTRA_MAX, Coinbase, MAX_BLOCK_TXS, MAX_INPUTS,
    MAX_OUTPUTS, OutPoint, TX_SIGNING, Transaction, Transfer, TxId, TxIn, TxOut,
};
pub use state::chain::{CheckedTransfer, Ledger};
pub use state::sigcheck::{SigCache, SigStats};
pub use state::utxo::{BlockUndo, Coin, UtxoCommitment, UtxoView};
pub use store::{
    BlockIndexEntry, ChainStore, ChainTip, MemoryStore, OwnedCoins, RedbReader, RedbStore, StoreBatch,
};

pub(crate) use message::canonical_bytes as message_bytes;

impl From<Transfer> for Transaction {
    fn from(transfer: Transfer) -> Self {
        Self::Transfer(transfer)
    }
}
