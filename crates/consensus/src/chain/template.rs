//! Block templates for miners, and the deterministic genesis block.

use meshwork_identity::{Hash, PeerId};
use meshwork_ledger::message::merkle;
use meshwork_ledger::{Block, BlockHeader, ChainStore, Coinbase, MAX_BLOCK_TXS, Transaction, TxOut};

use super::Chain;
use crate::config::ChainConfig;
use crate::error::ChainError;
use crate::pow::mine;
use crate::pow::tree::median;
use crate::traits::BlockValidator;

/// Bytes kept free in a template for the header and the coinbase.
const TEMPLATE_RESERVE: usize = 4096;

/// The tag in the default genesis coinbase's `extra` bytes.
pub const GENESIS_TAG: &[u8] = b"meshwork genesis";

/// The genesis block `config` describes, the same on every call: version 1, no parent, timestamp
/// [`ChainConfig::genesis_time`], one coinbase paying the height-0 subsidy to
/// [`ChainConfig::genesis_owner`] (tagged [`GENESIS_TAG`]), and the smallest nonce from 0 that meets the
/// proof-of-work limit, which is its target (so the limit must be easy enough to mine on the spot; if it
/// does not decode the block is returned unmined and [`Chain::open`] refuses it).
pub fn genesis_block(config: &ChainConfig) -> Block {
    let outputs = vec![TxOut {
        amount: config.ledger.subsidy(0),
        owner: config.genesis_owner,
    }];
    let coinbase = Transaction::Coinbase(Coinbase {
        height: 0,
        outputs: outputs.try_into().unwrap_or_default(),
        extra: GENESIS_TAG.try_into().unwrap_or_default(),
    });
    let header = BlockHeader {
        version: 1,
        parent: Hash::ZERO,
        merkle_root: merkle::root(&[coinbase.txid()]),
        timestamp: config.genesis_time,
        target: config.pow_limit,
        nonce: 0,
        height: 0,
    };
    Block {
        header: mine(header, 1, u64::MAX).unwrap_or(header),
        txs: vec![coinbase].try_into().unwrap_or_default(),
    }
}

impl<S: ChainStore> Chain<S> {
    /// An unmined block on the best tip: the required target, a timestamp of `now_secs` (or just after
    /// the median time past if that is later), the mempool's best transactions that fit, and a coinbase
    /// paying the subsidy plus their fees to `coinbase_owner`. Solve it with [`mine`] and submit it.
    ///
    /// The template is validated against the ledger before it is returned; should a pool transaction
    /// have gone stale, a template with the coinbase alone is returned instead.
    pub fn block_template(&self, coinbase_owner: PeerId, now_secs: u64) -> Result<Block, ChainError> {
        let budget = self
            .config
            .ledger
            .max_block_bytes
            .saturating_sub(TEMPLATE_RESERVE);
        let template = self.mempool.block_template(budget);
        let txs: Vec<Transaction> = template.txs.into_iter().map(Transaction::from).collect();
        let block = self.template_with(coinbase_owner, now_secs, template.fees, txs);
        if self.ledger.validate(&block, now_secs)?.is_valid() {
            return Ok(block);
        }
        Ok(self.template_with(coinbase_owner, now_secs, Default::default(), Vec::new()))
    }

    fn template_with(
        &self,
        owner: PeerId,
        now_secs: u64,
        fees: meshwork_ledger::Amount,
        txs: Vec<Transaction>,
    ) -> Block {
        let tip = self.tip();
        let height = tip.height + 1;
        let subsidy = self.config.ledger.subsidy(height);
        let coinbase = Transaction::Coinbase(Coinbase {
            height,
            outputs: vec![TxOut {
                amount: subsidy.checked_add(fees).unwrap_or(subsidy),
                owner,
            }]
            .try_into()
            .unwrap_or_default(),
            extra: Default::default(),
        });
        let mut all = Vec::with_capacity(txs.len() + 1);
        all.push(coinbase);
        all.extend(txs.into_iter().take(MAX_BLOCK_TXS - 1));
        let txids: Vec<Hash> = all.iter().map(Transaction::txid).collect();
        let median_time = median(
            &self
                .engine
                .tree
                .recent_times(&tip.id, self.engine.median_time_span()),
        );
        Block {
            header: BlockHeader {
                version: 1,
                parent: tip.id,
                merkle_root: merkle::root(&txids),
                timestamp: now_secs.max(
                    median_time.saturating_add(u64::from(!self.config.ledger.timestamp_may_equal_median)),
                ),
                target: self.engine.required_target(&tip.id).unwrap_or(tip.header.target),
                nonce: 0,
                height,
            },
            txs: all.try_into().unwrap_or_default(),
        }
    }
}
