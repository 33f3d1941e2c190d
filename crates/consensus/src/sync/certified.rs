//! Certified chains ([`ChainRule::Certified`](crate::ChainRule::Certified)): the BFT engine moves the
//! tip through sync, so that peers hear of it and downloads head for the certified block.

use meshwork_ledger::{BlockId, ChainStore};
use meshwork_wire::{Instant, Output};

use super::{ChainSync, Event, unix_secs};
use crate::certificate::Certificate;
use crate::chain::TipChange;
use crate::error::ChainError;

impl<S: ChainStore> ChainSync<S> {
    /// [`Chain::follow`](crate::Chain::follow), then what any tip change brings: [`Event::TipChanged`],
    /// [`Message::NewTip`](super::Message::NewTip) to every peer, downloads of what is missing.
    pub fn follow(
        &mut self,
        now: Instant,
        id: BlockId,
        round: u64,
        out: &mut Vec<Output<Self>>,
    ) -> Result<TipChange, ChainError> {
        let change = self.chain.follow(id, round, unix_secs(now))?;
        self.after_certified(&change, out);
        Ok(change)
    }

    /// [`Chain::build_on`](crate::Chain::build_on), then the same as [`ChainSync::follow`].
    pub fn build_on(
        &mut self,
        now: Instant,
        id: BlockId,
        round: u64,
        out: &mut Vec<Output<Self>>,
    ) -> Result<TipChange, ChainError> {
        let change = self.chain.build_on(id, round, unix_secs(now))?;
        self.after_certified(&change, out);
        Ok(change)
    }

    /// [`Chain::finalize`](crate::Chain::finalize), then the same as [`ChainSync::follow`].
    pub fn finalize(
        &mut self,
        now: Instant,
        certificate: Certificate,
        out: &mut Vec<Output<Self>>,
    ) -> Result<TipChange, ChainError> {
        let change = self.chain.finalize(certificate, unix_secs(now))?;
        self.after_certified(&change, out);
        Ok(change)
    }

    fn after_certified(&mut self, change: &TipChange, out: &mut Vec<Output<Self>>) {
        for connected in &change.connected {
            self.sources.remove(connected);
        }
        if change.tip_changed() {
            out.push(Output::Emit(Event::TipChanged {
                id: change.tip.id,
                height: change.tip.height,
                connected: change.connected.len(),
                disconnected: change.disconnected.len(),
            }));
            self.after_tip_change(None, out);
        }
        self.schedule_downloads(out);
    }
}
