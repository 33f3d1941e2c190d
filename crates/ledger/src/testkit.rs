//! Builders for tests, benchmarks and fuzzing (feature `test-utils`): coinbases, blocks with a correct
//! merkle root, and a small deterministic chain.

use meshwork_identity::{Hash, Keypair};

use crate::message::merkle;
use crate::{
    Amount, Block, BlockError, BlockHeader, Coinbase, Ledger, LedgerConfig, MemoryStore, Transaction, TxOut,
};

/// A coinbase at `height` paying `amount` to `owner`.
pub fn coinbase(height: u64, owner: &Keypair, amount: Amount) -> Transaction {
    coinbase_to(height, &[(owner, amount)])
}

/// A coinbase at `height` with one output per `(owner, amount)`.
///
/// # Panics
/// With more than [`MAX_OUTPUTS`](crate::MAX_OUTPUTS) outputs.
pub fn coinbase_to(height: u64, outputs: &[(&Keypair, Amount)]) -> Transaction {
    let outputs: Vec<TxOut> = outputs
        .iter()
        .map(|(owner, amount)| TxOut {
            amount: *amount,
            owner: owner.peer_id(),
        })
        .collect();
    Transaction::Coinbase(Coinbase {
        height,
        outputs: outputs.try_into().expect("at most MAX_OUTPUTS outputs"),
        extra: Default::default(),
    })
}

/// A block on `parent` (`None`: a genesis block) at `timestamp`, with the merkle root of `txs`.
///
/// # Panics
/// With more than [`MAX_BLOCK_TXS`](crate::MAX_BLOCK_TXS) transactions.
pub fn block_on(parent: Option<&BlockHeader>, timestamp: u64, txs: Vec<Transaction>) -> Block {
    let txids: Vec<Hash> = txs.iter().map(Transaction::txid).collect();
    Block {
        header: BlockHeader {
            version: 1,
            parent: parent.map_or(Hash::ZERO, BlockHeader::id),
            merkle_root: merkle::root(&txids),
            timestamp,
            target: 0x207f_ffff,
            nonce: 0,
            height: parent.map_or(0, |parent| parent.height + 1),
        },
        txs: txs.try_into().expect("at most MAX_BLOCK_TXS transactions"),
    }
}

/// Recomputes `block`'s merkle root after its transactions were changed.
pub fn fix_merkle_root(block: &mut Block) {
    block.header.merkle_root = block.compute_merkle_root();
}

/// The genesis timestamp the helpers use.
pub const GENESIS_TIME: u64 = 1_700_000_000;
/// Seconds between blocks made by [`child_block`].
pub const BLOCK_INTERVAL: u64 = 60;

/// The key with seed `[i; 32]`.
pub fn key(i: u8) -> Keypair {
    Keypair::from_seed([i; 32])
}

/// A genesis block whose coinbase pays `outputs` outputs of `each` to `owner`.
pub fn genesis(owner: &Keypair, outputs: usize, each: Amount) -> Block {
    let payees: Vec<(&Keypair, Amount)> = (0..outputs).map(|_| (owner, each)).collect();
    block_on(None, GENESIS_TIME, vec![coinbase_to(0, &payees)])
}

/// A ledger on a memory store with `config`'s rules, except that coinbase outputs mature in one block,
/// holding [`genesis`] (paying `outputs` outputs of `each` to `owner`) connected at `now`: the genesis
/// coins are spendable by the next transactions. Returns the ledger and the genesis block.
pub fn ledger_with_spendable_genesis(
    config: LedgerConfig,
    owner: &Keypair,
    outputs: usize,
    each: Amount,
    now: u64,
) -> Result<(Ledger<MemoryStore>, Block), BlockError> {
    let config = LedgerConfig {
        coinbase_maturity: 1,
        ..config
    };
    let mut ledger = Ledger::new(MemoryStore::new(), config);
    let genesis = genesis(owner, outputs, each);
    ledger.connect_block(&genesis, 1, now)?;
    Ok((ledger, genesis))
}

/// A block on `parent`, [`BLOCK_INTERVAL`] seconds later, whose coinbase pays `subsidy + fees` to `miner`
/// and which then holds `txs`.
pub fn child_block(
    parent: &BlockHeader,
    miner: &Keypair,
    subsidy_and_fees: Amount,
    txs: Vec<Transaction>,
) -> Block {
    let height = parent.height + 1;
    let mut all = vec![coinbase(height, miner, subsidy_and_fees)];
    all.extend(txs);
    block_on(Some(parent), parent.timestamp + BLOCK_INTERVAL, all)
}

/// The outpoints of `tx`'s outputs.
pub fn outpoints(tx: &Transaction) -> Vec<crate::OutPoint> {
    let txid = tx.txid();
    (0u32..)
        .zip(tx.outputs())
        .map(|(index, _)| crate::OutPoint { txid, index })
        .collect()
}

/// A transfer of `amount` from `spends` (outpoint, the amount it holds, its owner's key) to `to` (the rest
/// of the inputs is the fee).
pub fn pay(spends: &[(crate::OutPoint, Amount, &Keypair)], to: &Keypair, amount: Amount) -> crate::Transfer {
    crate::Transfer::signed(
        spends,
        vec![TxOut {
            amount,
            owner: to.peer_id(),
        }],
    )
}
