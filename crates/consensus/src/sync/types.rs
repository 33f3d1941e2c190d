//! What the application asks of [`ChainSync`](super::ChainSync) and what it is told.

use meshwork_identity::PeerId;
use meshwork_ledger::{Block, BlockId, MempoolError, Transfer, TxId};

use crate::chain::{BlockStatus, TipInfo};
use crate::error::ChainError;
use crate::traits::{Fault, InvalidReason};

/// A request from the application.
#[derive(Clone, Debug)]
pub enum Command {
    /// Process a block that did not come through sync: from gossip (`from` is the relaying peer) or
    /// from the local miner (`from` is `None`). If it becomes the tip, sync peers are told.
    SubmitBlock {
        /// The block.
        block: Block,
        /// Who relayed it, if anyone.
        from: Option<PeerId>,
    },
    /// Add a transaction to the mempool (from gossip, RPC or the wallet).
    SubmitTx {
        /// The transaction.
        tx: Transfer,
        /// Who relayed it, if anyone.
        from: Option<PeerId>,
    },
}

/// What the application is told.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A block is on the best chain (tell gossip: accept).
    BlockAccepted {
        /// Its id.
        id: BlockId,
        /// Its height.
        height: u64,
        /// Who sent it (`None`: the local miner).
        from: Option<PeerId>,
    },
    /// A block breaks a rule (tell gossip: reject).
    BlockRejected {
        /// Its id.
        id: BlockId,
        /// Who sent it.
        from: Option<PeerId>,
        /// The rule.
        reason: InvalidReason,
    },
    /// A block was kept or dropped without a verdict (orphan, side branch, too new, too little work):
    /// tell gossip to ignore it.
    BlockPending {
        /// Its id.
        id: BlockId,
        /// Who sent it.
        from: Option<PeerId>,
        /// Where it ended up.
        status: BlockStatus,
    },
    /// The best chain changed.
    TipChanged {
        /// The new tip.
        id: BlockId,
        /// Its height.
        height: u64,
        /// Blocks connected by this change.
        connected: usize,
        /// Blocks disconnected by this change (a reorg if non-zero).
        disconnected: usize,
    },
    /// New headers were indexed: sync is heading for this height.
    HeadersProgress {
        /// The best header's height.
        best_header_height: u64,
    },
    /// The best chain caught up with the best header we know of.
    Synced {
        /// The tip.
        tip: BlockId,
        /// Its height.
        height: u64,
    },
    /// A transaction entered the mempool.
    TxAccepted {
        /// Its id.
        txid: TxId,
        /// Who sent it.
        from: Option<PeerId>,
    },
    /// A transaction spends outputs we do not know: it waits in the mempool's orphan pool.
    TxPending {
        /// Its id.
        txid: TxId,
        /// Who sent it.
        from: Option<PeerId>,
    },
    /// The mempool refused a transaction.
    TxRejected {
        /// Its id.
        txid: TxId,
        /// Who sent it.
        from: Option<PeerId>,
        /// Why.
        error: MempoolError,
    },
    /// A sync peer misbehaved and was disconnected.
    PeerFaulted {
        /// The peer.
        peer: PeerId,
        /// What it did.
        fault: Fault,
    },
    /// The chain's store failed while handling an input; the node should stop and reopen its store.
    StoreFailed(ChainError),
}

impl Event {
    /// [`Event::TipChanged`] to `tip`.
    pub(crate) fn tip_changed(tip: &TipInfo, connected: usize, disconnected: usize) -> Self {
        Self::TipChanged {
            id: tip.id,
            height: tip.height,
            connected,
            disconnected,
        }
    }
}

/// A timeout the protocol scheduled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Timer {
    /// The blocks of request `seq` to `peer` are due.
    Blocks {
        /// The peer asked.
        peer: PeerId,
        /// The request.
        seq: u64,
    },
    /// The answer to header request `seq` to `peer` is due.
    Headers {
        /// The peer asked.
        peer: PeerId,
        /// The request.
        seq: u64,
    },
    /// Requests of peers wait for a serving budget: answer what it now allows.
    Serve,
}
