//! The mempool: valid unconfirmed transactions, ordered by fee rate, and the orphans waiting for a parent.
//!
//! - **Ordering**: by fee rate (fee per 1000 encoded bytes).
//! - **Conflicts**: a transaction spending an outpoint a pool transaction already spends replaces it
//!   (replace-by-fee) only if it pays a higher absolute fee than everything it evicts (the conflicts and
//!   their descendants) together, and a higher fee rate than each direct conflict.
//! - **Size cap**: beyond [`MempoolConfig::max_bytes`](crate::MempoolConfig::max_bytes), the lowest fee
//!   rates are evicted with their descendants.
//! - **Orphans**: a transaction with an unknown input waits in a bounded pool (oldest evicted first) and is
//!   retried when a transaction or block creating its inputs arrives.
//! - **Templates**: [`Mempool::block_template`] takes transactions by fee rate, a child only after all its
//!   in-pool parents (no child-pays-for-parent scoring: a high-rate child of a low-rate parent waits for
//!   its parent's turn).
//! - **Blocks**: [`Mempool::block_connected`] drops confirmed and conflicting transactions;
//!   [`Mempool::block_disconnected`] takes a disconnected block's transactions back.

mod orphans;
mod pool;
mod template;

pub use pool::{Inserted, Mempool};
pub use template::Template;
