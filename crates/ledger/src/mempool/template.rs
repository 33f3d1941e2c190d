//! Block templates: the pool's transactions by fee rate, parents before children.

use std::collections::{HashMap, HashSet};

use super::pool::Mempool;
use crate::{Amount, Transfer, TxId};

/// A block template: transactions by fee rate, parents before children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    /// The transactions, in block order (after the coinbase).
    pub txs: Vec<Transfer>,
    /// Their total fee, for the coinbase to claim.
    pub fees: Amount,
    /// Their total encoded size.
    pub bytes: usize,
}

impl Mempool {
    /// Transactions for a block of at most `max_bytes` of transactions: highest fee rate first, a child only
    /// after all its in-pool parents.
    pub fn block_template(&self, max_bytes: usize) -> Template {
        let mut template = Template::default();
        let mut included: HashSet<TxId> = HashSet::new();
        // Children whose parents are not all in yet, keyed by a missing parent.
        let mut waiting: HashMap<TxId, Vec<TxId>> = HashMap::new();
        for &(_, txid) in self.by_rate.iter().rev() {
            let mut ready = vec![txid];
            while let Some(id) = ready.pop() {
                let Some(entry) = self.entries.get(&id) else {
                    continue;
                };
                if included.contains(&id) {
                    continue;
                }
                if let Some(missing) = entry.parents.iter().find(|parent| !included.contains(parent)) {
                    waiting.entry(*missing).or_default().push(id);
                    continue;
                }
                if template.bytes + entry.size > max_bytes {
                    continue;
                }
                included.insert(id);
                template.bytes += entry.size;
                template.fees = template.fees.checked_add(entry.fee).unwrap_or(template.fees);
                template.txs.push(entry.tx.clone());
                if let Some(children) = waiting.remove(&id) {
                    ready.extend(children);
                }
            }
        }
        template
    }
}
