//! The mempool: valid unconfirmed transactions, ordered by fee rate, and the orphans waiting for a parent.
//!
//! - **Relay fee**: a transaction pays at least
//!   [`min_relay_fee_rate`](crate::MempoolConfig::min_relay_fee_rate) per encoded byte (on by default).
//! - **Ordering**: by fee rate (fee per 1000 encoded bytes).
//! - **Conflicts**: a transaction spending an outpoint a pool transaction already spends replaces it
//!   (replace-by-fee) only if it pays the fees of everything it evicts (the conflicts and their
//!   descendants, at most [`max_replaced`](crate::MempoolConfig::max_replaced)) plus the incremental relay
//!   fee for its own size, and a higher fee rate than each direct conflict (BIP125 rules 3 to 5; see
//!   `policy.rs`).
//! - **Chains**: a transaction with more in-pool ancestors, or that would give an ancestor more in-pool
//!   descendants, than Bitcoin Core's package limits (25 transactions, 101 kB each way) is refused.
//! - **Size cap**: beyond [`MempoolConfig::max_bytes`](crate::MempoolConfig::max_bytes), the lowest fee
//!   rates are evicted with their descendants.
//! - **Orphans**: a transaction with an unknown input is first held to every rule that needs no spent
//!   output (size, shape, amounts, signature encoding), then waits in a pool bounded in count and bytes
//!   and is retried, with every rule, when a transaction or block creating its inputs arrives. Its
//!   signatures themselves cannot be checked before: they commit to the spent outputs' owners and
//!   amounts, which the missing parent holds. The pool is shared out by source (the relaying peer, or
//!   the node itself): when full, the source furthest over its share loses its oldest orphan, so a
//!   peer that floods made-up orphans evicts its own (after Bitcoin Core's orphanage, PR #31829). A
//!   relayed orphan that breaks a rule once its parent comes is reported with its relayer
//!   ([`Mempool::take_invalid_orphans`]), who should have checked it.
//! - **Templates**: [`Mempool::block_template`] takes transactions by fee rate, a child only after all its
//!   in-pool parents (no child-pays-for-parent scoring: a high-rate child of a low-rate parent waits for
//!   its parent's turn).
//! - **Blocks**: [`Mempool::block_connected`] drops confirmed and conflicting transactions and keeps
//!   the orphans they made whole for the driver to publish ([`Mempool::take_adopted_by_blocks`]);
//!   [`Mempool::block_disconnected`] takes a disconnected block's transactions back.

mod blocks;
mod orphans;
mod policy;
mod pool;
mod template;

pub use orphans::InvalidOrphan;
pub use pool::{Inserted, Mempool};
pub use template::Template;
