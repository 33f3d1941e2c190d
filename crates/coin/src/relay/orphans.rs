//! Orphans on the relay path: those a parent brought into the mempool are published after it, and
//! those it proved invalid are blamed on the peers that relayed them.

use meshwork_ledger::{ChainStore, TxId};
use meshwork_wire::{Instant, Output};

use crate::app::{CoinApp, Work};
use crate::types::CoinEvent;

impl<S: ChainStore> CoinApp<S> {
    /// Blames the relayers of orphans found invalid when their parents came (by a transaction or a
    /// block, in this step): gossip charges each as a rejected message, and the app reports it as
    /// [`CoinEvent::TxRejected`]. Whether any was found.
    pub(crate) fn blame_invalid_orphans(&mut self, out: &mut Vec<Output<Self>>) -> bool {
        let invalid = self.sync.chain_mut().take_invalid_orphans();
        let found = !invalid.is_empty();
        for orphan in invalid {
            let (txid, from, error) = (orphan.txid, orphan.from, orphan.error);
            self.relay_stats.blamed_orphans += 1;
            self.gossip_command(meshwork_gossip::Command::Blame(from));
            out.push(Output::Emit(CoinEvent::TxRejected { txid, from, error }));
        }
        found
    }

    /// Queues for publication the orphans that blocks connected in this step made whole (their parents
    /// came in a block, which does not carry them). Whether any was queued.
    pub(crate) fn queue_adopted_by_blocks(&mut self) -> bool {
        let adopted = self.sync.chain_mut().take_adopted_by_blocks();
        let found = !adopted.is_empty();
        self.work.extend(adopted.into_iter().map(Work::Adopted));
        found
    }

    /// Publishes an orphan that entered the mempool after its parent. Gossip cannot forward it: it was
    /// ignored when it came (a child relayed ahead of its parent, over another connection or path), and
    /// its signed message is gone. Published under our name it follows the parent; a peer that has it
    /// already ignores it without blame.
    pub(crate) fn publish_adopted(&mut self, now: Instant, txid: TxId, out: &mut Vec<Output<Self>>) {
        let bytes = self.sync.chain().mempool().get(&txid).map(meshwork_wire::encode);
        // Gone (a later step replaced or evicted it) or too large to encode: the mempool has the last
        // word, and blocks still carry what it keeps.
        if let Some(Ok(bytes)) = bytes {
            self.relay_stats.adopted += 1;
            let _ = self.publish_tx(now, bytes, out);
        }
    }
}
