//! Certified chains ([`ChainRule::Certified`](crate::ChainRule::Certified)): the BFT engine moves the
//! tip through sync, so that peers hear of it and downloads head for the certified block.

use meshwork_ledger::{BlockId, ChainStore};
use meshwork_wire::{Instant, Output};

use super::{ChainSync, Event, unix_secs};
use crate::certificate::Certificate;
use crate::chain::{Chain, TipChange};
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
        self.move_tip(out, |chain| chain.follow(id, round, unix_secs(now)))
    }

    /// [`Chain::build_on`](crate::Chain::build_on), then the same as [`ChainSync::follow`].
    pub fn build_on(
        &mut self,
        now: Instant,
        id: BlockId,
        round: u64,
        out: &mut Vec<Output<Self>>,
    ) -> Result<TipChange, ChainError> {
        self.move_tip(out, |chain| chain.build_on(id, round, unix_secs(now)))
    }

    /// [`Chain::finalize`](crate::Chain::finalize), then the same as [`ChainSync::follow`].
    pub fn finalize(
        &mut self,
        now: Instant,
        certificate: Certificate,
        out: &mut Vec<Output<Self>>,
    ) -> Result<TipChange, ChainError> {
        self.move_tip(out, |chain| chain.finalize(certificate, unix_secs(now)))
    }

    /// Runs one of the chain's certified moves and tells peers what changed.
    fn move_tip(
        &mut self,
        out: &mut Vec<Output<Self>>,
        step: impl FnOnce(&mut Chain<S>) -> Result<TipChange, ChainError>,
    ) -> Result<TipChange, ChainError> {
        let change = step(&mut self.chain)?;
        for connected in &change.connected {
            self.sources.remove(connected);
        }
        if change.tip_changed() {
            out.push(Output::Emit(Event::tip_changed(
                &change.tip,
                change.connected.len(),
                change.disconnected.len(),
            )));
            self.after_tip_change(None, out);
        }
        self.schedule_downloads(out);
        Ok(change)
    }
}
