//! Consensus parameters of the ledger and limits of the mempool.

use crate::Amount;

/// The ledger's consensus parameters. Every node of a network must use the same values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerConfig {
    /// Blocks a coinbase output must wait before it can be spent: an output created at height `h` is
    /// spendable in a block of height `h + coinbase_maturity` or later. Default 100.
    pub coinbase_maturity: u64,
    /// The largest encoded block, in bytes. Default 1 MB.
    pub max_block_bytes: usize,
    /// How far a block's timestamp may be ahead of the validating node's clock (`now`), in seconds.
    /// Default 2 hours.
    pub max_future_secs: u64,
    /// How many previous blocks the median-time-past is taken over. Default 11.
    pub median_time_span: usize,
    /// Whether a block may be dated at the median time past itself instead of strictly after it.
    /// Timestamps are whole seconds, and a strict rule makes them climb one second every six blocks or
    /// so: a chain that finalises several blocks a second (BFT) would run its timestamps ahead of the
    /// clock until blocks are refused as too far ahead. Default false (Bitcoin's strict rule).
    pub timestamp_may_equal_median: bool,
    /// The subsidy of the first blocks. Default 50 coins.
    pub initial_subsidy: Amount,
    /// Blocks between two halvings of the subsidy. Default 210,000.
    pub halving_interval: u64,
    /// How many already-verified transactions the signature cache remembers. Default 100,000.
    pub signature_cache_capacity: usize,
    /// Signatures verified per batch and thread at least; smaller batches are not split further.
    /// Default 64.
    pub min_batch_per_thread: usize,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            coinbase_maturity: 100,
            max_block_bytes: 1_000_000,
            max_future_secs: 2 * 60 * 60,
            median_time_span: 11,
            timestamp_may_equal_median: false,
            initial_subsidy: Amount::from_coins(50),
            halving_interval: 210_000,
            signature_cache_capacity: 100_000,
            min_batch_per_thread: 64,
        }
    }
}

impl LedgerConfig {
    /// The subsidy of a block at `height`: the initial subsidy halved every `halving_interval` blocks,
    /// zero after 64 halvings.
    pub fn subsidy(&self, height: u64) -> Amount {
        let halvings = height / self.halving_interval.max(1);
        if halvings >= 64 {
            return Amount::ZERO;
        }
        Amount::from_units(self.initial_subsidy.units() >> halvings)
    }
}

/// Limits of the [`Mempool`](crate::Mempool): what relaying costs, so that filling the pool, replacing
/// transactions or building long chains of them is paid for.
///
/// Fee rates are in amount units per byte of the transaction's encoding (one unit is 10⁻⁸ coin, so the
/// defaults are Bitcoin Core's 1 sat/vB).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MempoolConfig {
    /// The most bytes of transactions held; beyond it the lowest fee rates are evicted. Default 64 MB.
    pub max_bytes: usize,
    /// The largest transaction accepted (orphans too), in bytes. Default 100 kB.
    pub max_tx_bytes: usize,
    /// The most orphans (transactions whose inputs are unknown) held; beyond it the source (relaying
    /// peer, or the node itself) furthest over its share loses its oldest. Default 100 (Bitcoin Core's
    /// `DEFAULT_MAX_ORPHAN_TRANSACTIONS` before v30).
    pub max_orphans: usize,
    /// The most bytes of orphans held; evicted as for `max_orphans` to make room. Default 1 MB: ten
    /// orphans of the largest size, far more of the usual few hundred bytes.
    pub max_orphan_bytes: usize,
    /// The lowest fee rate relayed, in units per encoded byte: a transaction must pay at least
    /// `min_relay_fee_rate × size`. Default 1, Bitcoin Core's `DEFAULT_MIN_RELAY_TX_FEE` (1,000 sat/kvB,
    /// `policy/policy.h`); a one-input, two-output transfer (about 180 bytes) pays about 180 units.
    pub min_relay_fee_rate: u64,
    /// What a replacement pays for its own relay on top of the fees of what it replaces, in units per
    /// encoded byte of the replacement (BIP125 rule 4). Default 1, Bitcoin Core's
    /// `DEFAULT_INCREMENTAL_RELAY_FEE` (1,000 sat/kvB, `policy/policy.h`).
    pub incremental_relay_fee_rate: u64,
    /// The most pool transactions one replacement may evict, its conflicts and their descendants
    /// together. Default 100 (BIP125 rule 5, Bitcoin Core's `MAX_REPLACEMENT_CANDIDATES`).
    pub max_replaced: usize,
    /// The most transactions in a transaction's in-pool ancestry, itself included. Default 25 (Bitcoin
    /// Core's `DEFAULT_ANCESTOR_LIMIT`).
    pub max_ancestors: usize,
    /// The most bytes of a transaction and its in-pool ancestors. Default 101,000 (Bitcoin Core's
    /// `DEFAULT_ANCESTOR_SIZE_LIMIT_KVB`, 101 kvB).
    pub max_ancestor_bytes: usize,
    /// The most transactions in any pool transaction's in-pool descendancy, itself included. Default 25
    /// (Bitcoin Core's `DEFAULT_DESCENDANT_LIMIT`).
    pub max_descendants: usize,
    /// The most bytes of any pool transaction and its in-pool descendants. Default 101,000 (Bitcoin Core's
    /// `DEFAULT_DESCENDANT_SIZE_LIMIT_KVB`, 101 kvB).
    pub max_descendant_bytes: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            max_tx_bytes: 100_000,
            max_orphans: 100,
            max_orphan_bytes: 1_000_000,
            min_relay_fee_rate: 1,
            incremental_relay_fee_rate: 1,
            max_replaced: 100,
            max_ancestors: 25,
            max_ancestor_bytes: 101_000,
            max_descendants: 25,
            max_descendant_bytes: 101_000,
        }
    }
}

impl MempoolConfig {
    /// The least fee a transaction of `size` encoded bytes must pay to be relayed.
    pub fn min_relay_fee(&self, size: usize) -> Amount {
        Amount::from_units(self.min_relay_fee_rate.saturating_mul(size as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsidy_halves_and_total_stays_below_max_supply() {
        let config = LedgerConfig::default();
        assert_eq!(config.subsidy(0), Amount::from_coins(50));
        assert_eq!(config.subsidy(209_999), Amount::from_coins(50));
        assert_eq!(config.subsidy(210_000), Amount::from_coins(25));
        assert_eq!(config.subsidy(64 * 210_000), Amount::ZERO);
        let total: u64 = (0..64)
            .map(|era| config.subsidy(era * 210_000).units() * 210_000)
            .sum();
        assert!(total <= Amount::MAX_SUPPLY.units());
    }
}
