//! Block headers and blocks.

use meshwork_identity::Hash;
use meshwork_wire::BoundedVec;
use serde::{Deserialize, Serialize};

use super::merkle;
use super::tx::canonical_bytes;
use crate::{Transaction, TxId};

/// The most transactions a block may hold (checked while decoding; the byte-size limit of
/// [`crate::LedgerConfig::max_block_bytes`] usually binds first).
pub const MAX_BLOCK_TXS: usize = 16_384;

const BLOCK_ID_DOMAIN: &str = "meshwork ledger 2026 block id v1";

/// A block id: the blake3 hash (in its own domain) of the header's canonical encoding.
pub type BlockId = Hash;

/// A block header: what links blocks into a chain and what proof of work is computed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockHeader {
    /// The header format version (1).
    pub version: u32,
    /// The previous block's id; [`Hash::ZERO`] for the genesis block.
    pub parent: BlockId,
    /// The [merkle root](merkle::root) of the block's transaction ids.
    pub merkle_root: Hash,
    /// Seconds since the Unix epoch, as claimed by the block's producer.
    pub timestamp: u64,
    /// The proof-of-work target in compact form (Bitcoin's `nBits` encoding). The ledger stores it but
    /// does not check it: work is the consensus engine's business.
    pub target: u32,
    /// The value a miner varies.
    pub nonce: u64,
    /// The number of blocks before this one (the genesis block has height 0).
    pub height: u64,
}

impl BlockHeader {
    /// The block id.
    pub fn id(&self) -> BlockId {
        Hash::derive(BLOCK_ID_DOMAIN, &canonical_bytes(self))
    }
}

/// A block: a header and its transactions, the first of which is the coinbase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions, coinbase first.
    pub txs: BoundedVec<Transaction, MAX_BLOCK_TXS>,
}

impl Block {
    /// The block id (its header's).
    pub fn id(&self) -> BlockId {
        self.header.id()
    }

    /// The ids of the transactions, in order.
    pub fn txids(&self) -> Vec<TxId> {
        self.txs.iter().map(Transaction::txid).collect()
    }

    /// The merkle root the transactions actually have (compare with `header.merkle_root`).
    pub fn compute_merkle_root(&self) -> Hash {
        merkle::root(&self.txids())
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical_bytes(self)
    }

    /// The encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        meshwork_wire::encoded_len(self).unwrap_or(usize::MAX)
    }
}
