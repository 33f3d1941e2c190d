//! What relaying costs: the replacement rules and the limits on chains of unconfirmed transactions.
//!
//! A node that relays a transaction spends bandwidth on it, and so do its peers. Without a price an
//! attacker could replace a transaction again and again for one unit more each time, or hang a long chain
//! of children on one parent and make every change to it expensive to track. The rules below follow
//! Bitcoin Core's (BIP125 and `policy/policy.h`); the figures are in [`MempoolConfig`](crate::MempoolConfig).

use std::collections::HashSet;

use super::pool::Mempool;
use crate::{Amount, MempoolError, Transfer, TxId};

/// Which way [`Mempool::walk`] follows the pool's links.
#[derive(Clone, Copy)]
enum Direction {
    /// To the transactions whose outputs it spends.
    Parents,
    /// To the transactions that spend its outputs.
    Children,
}

impl Mempool {
    /// The pool transactions `tx` would evict (its direct conflicts and their descendants), once it has
    /// passed the replacement rules:
    ///
    /// - at most [`max_replaced`](crate::MempoolConfig::max_replaced) evicted (BIP125 rule 5);
    /// - it spends no output of a transaction it evicts (its own input would vanish);
    /// - its fee rate is above each direct conflict's (Bitcoin Core's `PaysMoreThanConflicts`), so a
    ///   replacement never lowers the rate miners are offered;
    /// - its fee is at least the evicted transactions' fees plus the incremental relay fee for its own
    ///   size (BIP125 rules 3 and 4): every replacement pays for the bandwidth it uses again, so a chain
    ///   of replacements costs the attacker the relay fee at every step, not one unit.
    pub(super) fn check_replacement(
        &self,
        tx: &Transfer,
        fee: Amount,
        size: usize,
        fee_rate: u64,
    ) -> Result<HashSet<TxId>, MempoolError> {
        let direct: HashSet<TxId> = tx
            .inputs
            .iter()
            .filter_map(|input| self.spent_by.get(&input.prevout).copied())
            .collect();
        if direct.is_empty() {
            return Ok(direct);
        }
        let replaced = self.with_descendants(direct.iter().copied());
        if replaced.len() > self.config.max_replaced {
            return Err(MempoolError::TooManyReplacements {
                count: replaced.len(),
                max: self.config.max_replaced,
            });
        }
        if let Some(input) = tx
            .inputs
            .iter()
            .find(|input| replaced.contains(&input.prevout.txid))
        {
            return Err(MempoolError::ReplacementSpendsConflict {
                txid: input.prevout.txid,
            });
        }
        let conflict_fee_rate = direct
            .iter()
            .filter_map(|id| self.entries.get(id))
            .map(|entry| entry.fee_rate)
            .max()
            .unwrap_or(0);
        if fee_rate <= conflict_fee_rate {
            return Err(MempoolError::ReplacementFeeRateTooLow {
                fee_rate,
                conflict_fee_rate,
            });
        }
        let relay = Amount::from_units(self.config.incremental_relay_fee_rate.saturating_mul(size as u64));
        // An overflowing sum cannot be paid: the largest amount stands for it.
        let required = replaced
            .iter()
            .filter_map(|id| self.entries.get(id))
            .try_fold(relay, |sum, entry| sum.checked_add(entry.fee))
            .unwrap_or(Amount::from_units(u64::MAX));
        if fee < required {
            return Err(MempoolError::ReplacementTooCheap { fee, required });
        }
        Ok(replaced)
    }

    /// Bitcoin Core's package limits (`DEFAULT_ANCESTOR_LIMIT` and its siblings): with `tx` (of `size`
    /// bytes) in the pool, its in-pool ancestry and every ancestor's in-pool descendancy stay within
    /// [`max_ancestors`](crate::MempoolConfig::max_ancestors),
    /// [`max_ancestor_bytes`](crate::MempoolConfig::max_ancestor_bytes),
    /// [`max_descendants`](crate::MempoolConfig::max_descendants) and
    /// [`max_descendant_bytes`](crate::MempoolConfig::max_descendant_bytes), each counting the
    /// transaction it is about. Transactions in `replaced` are about to leave and do not count.
    pub(super) fn check_package_limits(
        &self,
        tx: &Transfer,
        size: usize,
        replaced: &HashSet<TxId>,
    ) -> Result<(), MempoolError> {
        let parents = tx
            .inputs
            .iter()
            .map(|input| input.prevout.txid)
            .filter(|id| self.entries.contains_key(id) && !replaced.contains(id));
        let config = &self.config;
        let (ancestors, bytes) = self.walk(parents, Direction::Parents, replaced, config.max_ancestors);
        if ancestors.len() + 1 > config.max_ancestors {
            return Err(MempoolError::TooManyAncestors {
                max: config.max_ancestors,
            });
        }
        if bytes.saturating_add(size) > config.max_ancestor_bytes {
            return Err(MempoolError::AncestorsTooLarge {
                max: config.max_ancestor_bytes,
            });
        }
        // In id order, so the ancestor an error names does not depend on hash-set order.
        let mut ancestors: Vec<TxId> = ancestors.into_iter().collect();
        ancestors.sort_unstable();
        for ancestor in ancestors {
            let (descendants, bytes) =
                self.walk([ancestor], Direction::Children, replaced, config.max_descendants);
            if descendants.len() + 1 > config.max_descendants {
                return Err(MempoolError::TooManyDescendants {
                    ancestor,
                    max: config.max_descendants,
                });
            }
            if bytes.saturating_add(size) > config.max_descendant_bytes {
                return Err(MempoolError::DescendantsTooLarge {
                    ancestor,
                    max: config.max_descendant_bytes,
                });
            }
        }
        Ok(())
    }

    /// The pool transactions reachable from `start` (included) along `direction`, leaving out `skip`, and
    /// their total size. Stops once more than `max` are found: enough to know a limit of `max` is broken,
    /// and the cost of the walk stays bounded whatever the pool holds.
    /// Whether `tx` (`size` bytes at fee rate `rate`, replacing `replaced`) fits, once the size cap has
    /// evicted the lowest fee rates with their descendants, as `enforce_size_cap` would
    /// after taking it: without evicting it, nor one of its ancestors (which would take it along).
    /// Checked before anything changes: found out after, the replaced transactions and the honest
    /// children that went with them were gone, though the insert failed.
    pub(super) fn makes_room(&self, tx: &Transfer, size: usize, rate: u64, replaced: &HashSet<TxId>) -> bool {
        let replaced_bytes: usize = replaced
            .iter()
            .filter_map(|id| self.entries.get(id))
            .map(|entry| entry.size)
            .sum();
        let mut excess = (self.bytes + size)
            .saturating_sub(replaced_bytes)
            .saturating_sub(self.config.max_bytes);
        if excess == 0 {
            return true;
        }
        let parents = tx.inputs.iter().map(|input| input.prevout.txid);
        let (ancestors, _) = self.walk(parents, Direction::Parents, replaced, usize::MAX);
        let mut evicted: HashSet<TxId> = HashSet::new();
        for &(lowest_rate, lowest) in &self.by_rate {
            if replaced.contains(&lowest) || evicted.contains(&lowest) {
                continue;
            }
            if lowest_rate >= rate || ancestors.contains(&lowest) {
                return false;
            }
            for id in self.with_descendants([lowest]) {
                if !replaced.contains(&id) && evicted.insert(id) {
                    let bytes = self.entries.get(&id).map_or(0, |entry| entry.size);
                    excess = excess.saturating_sub(bytes);
                }
            }
            if excess == 0 {
                return true;
            }
        }
        false
    }

    fn walk(
        &self,
        start: impl IntoIterator<Item = TxId>,
        direction: Direction,
        skip: &HashSet<TxId>,
        max: usize,
    ) -> (HashSet<TxId>, usize) {
        let mut found = HashSet::new();
        let mut bytes = 0usize;
        let mut stack: Vec<TxId> = start.into_iter().collect();
        while let Some(id) = stack.pop() {
            if found.len() > max {
                break;
            }
            if skip.contains(&id) || found.contains(&id) {
                continue;
            }
            let Some(entry) = self.entries.get(&id) else {
                continue;
            };
            found.insert(id);
            bytes = bytes.saturating_add(entry.size);
            let next = match direction {
                Direction::Parents => &entry.parents,
                Direction::Children => &entry.children,
            };
            stack.extend(next.iter().copied());
        }
        (found, bytes)
    }
}
