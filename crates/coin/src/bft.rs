//! The coin under BFT consensus: a chain with [`ChainRule::Certified`](meshwork_consensus::ChainRule)
//! and, on validators, the Simplex engine as a fourth child ([`CoinApp::with_bft`]).
//!
//! **The flow of a block.** The leader of a view builds a block on the proposal's parent (a template
//! from the mempool, the coinbase paying [`BftSetup::coinbase_owner`]), keeps it, sends it to every
//! other validator on the sync channel, and proposes its id. A validator asked to vote follows the
//! parent (its ledger moves there, a skipped branch disconnected through undo data) and checks the
//! block against every ledger rule on it; a notarized block becomes its tip, so the next leader builds
//! on it; a finalization makes it and its ancestors final ([`Chain::finalize`](meshwork_consensus::Chain::finalize)),
//! never to be disconnected. The leader of a final block publishes its certificate on
//! [`final_topic`]; every node of a certified chain validates it (a forged
//! certificate costs the peer that relayed it) and moves its final block, and sync fetches the blocks.
//! So a node outside the validator set follows the final chain only, and a payment is confirmed at
//! finality, not at depth.
//!
//! **Answers in the same step.** The engine asks its [`Application`] for a block and for verdicts and
//! must be answered at once, but the chain lives in the sync child. [`Proposals`] notes each question it
//! cannot answer; after each engine step the app answers it from the chain and hands the engine
//! [`Command::Recheck`], still within the step. A block that has not arrived stays unanswered until it
//! does (each block sync takes in brings a recheck).

use std::collections::HashMap;

use meshwork_consensus::bft::{AnyJournal, Application, BftConfig, Command, Event, Proposal, Simplex};
use meshwork_consensus::{Certificate, ChainError, Verdict as BlockVerdict, sync};
use meshwork_gossip::{Broadcast, GossipMessage, Verdict};
use meshwork_identity::{Hash, PeerId};
use meshwork_ledger::{BlockId, ChainStore};
use meshwork_wire::{Input, Instant, Lifted, Output, Protocol};

use crate::app::{CoinApp, Work, unix_secs};
use crate::types::{BFT, CoinEvent, CoinMessage, CoinTimer, final_topic};

/// The BFT engine as the coin runs it.
pub type Engine = Simplex<Proposals, AnyJournal>;

/// Verdicts remembered at most (they are asked again only within a view or two).
const MAX_VERDICTS: usize = 256;

/// How a coin node takes part in BFT consensus.
#[derive(Debug)]
pub struct BftSetup {
    /// The validator set, timeouts and genesis (the chain's genesis block id).
    pub config: BftConfig,
    /// Where the last vote is kept (a [`FileJournal`](meshwork_consensus::bft::FileJournal) on a
    /// node, so that a restart never votes twice in a view).
    pub journal: AnyJournal,
    /// Who the coinbase of this validator's blocks pays.
    pub coinbase_owner: PeerId,
}

/// The coin's side of the engine's [`Application`]: the answers the app prepared, and the questions
/// still open.
#[derive(Debug, Default)]
pub struct Proposals {
    /// The block built to propose: its view, its parent and its id.
    built: Option<(u64, BlockId, BlockId)>,
    /// Verdicts on proposed blocks, by (parent, block).
    verdicts: HashMap<(BlockId, BlockId), BlockVerdict>,
    /// The engine asked for a block on this parent in this view.
    wants_block: Option<(Proposal, u64)>,
    /// The engine asked for a verdict on this proposal on this parent.
    wants_verdict: Option<(Proposal, Proposal)>,
    /// The last proposed block asked of its leader.
    fetched: Option<BlockId>,
}

impl Application for Proposals {
    fn propose(&mut self, parent: &Proposal, view: u64) -> Option<Hash> {
        match self.built {
            Some((built_view, on, block)) if built_view == view && on == parent.payload => Some(block),
            _ => {
                self.wants_block = Some((*parent, view));
                None
            }
        }
    }

    fn verify(&mut self, parent: &Proposal, proposal: &Proposal) -> BlockVerdict {
        if let Some(verdict) = self.verdicts.get(&(parent.payload, proposal.payload)) {
            return verdict.clone();
        }
        self.wants_verdict = Some((*parent, *proposal));
        BlockVerdict::NotYetKnown
    }
}

/// A validator's engine and what it pays.
pub(crate) struct Validator {
    pub(crate) engine: Engine,
    coinbase_owner: PeerId,
}

impl<S: ChainStore> CoinApp<S> {
    /// Runs the BFT engine on this node (a validator if its key is in `setup`'s set, else an observer
    /// that follows certificates). The chain must be certified
    /// ([`ChainRule::Certified`](meshwork_consensus::ChainRule)) with the same validators.
    pub fn with_bft(mut self, setup: BftSetup) -> Self {
        let engine = Simplex::new(
            setup.config,
            self.key.clone(),
            Proposals::default(),
            setup.journal,
        );
        self.bft = Some(Validator {
            engine,
            coinbase_owner: setup.coinbase_owner,
        });
        self
    }

    /// The BFT engine, on a node that runs one.
    pub fn bft(&self) -> Option<&Engine> {
        self.bft.as_ref().map(|validator| &validator.engine)
    }

    /// Whether `peer` is one of the validators this node runs consensus with.
    pub(crate) fn is_validator(&self, peer: &PeerId) -> bool {
        self.bft
            .as_ref()
            .is_some_and(|validator| validator.engine.config().validators.contains(peer))
    }

    /// Runs `call` on the engine, handles its events, and answers its open questions.
    pub(crate) fn bft_do(
        &mut self,
        now: Instant,
        out: &mut Vec<Output<Self>>,
        call: impl FnOnce(&mut Engine, &mut Vec<Output<Engine>>),
    ) {
        let Some(validator) = self.bft.as_mut() else {
            return;
        };
        let ((), left) = self.links.drive(
            BFT,
            &mut validator.engine,
            call,
            CoinMessage::Bft,
            CoinTimer::Bft,
            out,
        );
        for event in self.follow(left, |peer| Work::Bft(Input::PeerUp(peer))) {
            self.on_bft_event(now, event, out);
        }
        self.answer_engine(now, out);
    }

    /// A peer outside the validator set: the engine has nothing to say to it, so it releases it at
    /// once (the connection closes when every child has).
    pub(crate) fn release_for_bft(&mut self, peer: PeerId, out: &mut Vec<Output<Self>>) {
        let lifted = self.links.lift::<Engine, Self>(
            BFT,
            Output::Disconnect(peer),
            CoinMessage::Bft,
            CoinTimer::Bft,
            out,
        );
        if let Lifted::Closed(peer) = lifted {
            self.all_children(peer, false);
        }
    }

    fn on_bft_event(&mut self, now: Instant, event: Event, out: &mut Vec<Output<Self>>) {
        match &event {
            Event::Notarized(proposal) => self.follow_block(now, proposal.payload, proposal.view, out),
            Event::Finalized { proposal, by_view } if proposal.view == *by_view => {
                self.finalized(now, out);
            }
            Event::Jumped { .. } => self.finalized(now, out),
            _ => {}
        }
        out.push(Output::Emit(CoinEvent::Bft(event)));
    }

    /// The engine's latest finalization makes blocks final; its leader tells the network.
    fn finalized(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        let Some(validator) = &self.bft else {
            return;
        };
        let Some(certificate) = validator
            .engine
            .last_finalization()
            .map(|finalization| finalization.certificate())
        else {
            return;
        };
        let publish = validator.engine.config().validators.leader(certificate.round) == self.gossip.peer_id();
        // Encoded only by the validator that publishes it: this runs for every final block.
        let bytes = publish.then(|| meshwork_wire::encode(&certificate));
        if let Err(error) = self.finalize_chain(now, certificate, out) {
            out.push(Output::Emit(CoinEvent::Consensus(error)));
        }
        if let Some(Ok(bytes)) = bytes {
            let _ = self.gossip_do(now, out, |gossip, buf| {
                gossip.publish(now, final_topic(), bytes, buf)
            });
        }
    }

    /// Moves the tip to a certified block.
    fn follow_block(&mut self, now: Instant, id: BlockId, round: u64, out: &mut Vec<Output<Self>>) {
        if let Err(error) = self.sync_do(out, |sync, buf| sync.follow(now, id, round, buf)) {
            out.push(Output::Emit(CoinEvent::Consensus(error)));
        }
    }

    /// Moves the tip to the parent the engine builds on (or votes on a proposal on) in `view`, back
    /// below a block of a skipped view if need be.
    fn build_on(&mut self, now: Instant, parent: BlockId, view: u64, out: &mut Vec<Output<Self>>) {
        if let Err(error) = self.sync_do(out, |sync, buf| sync.build_on(now, parent, view, buf)) {
            out.push(Output::Emit(CoinEvent::Consensus(error)));
        }
    }

    /// Accepts a finality certificate: whether it moved the final block.
    fn finalize_chain(
        &mut self,
        now: Instant,
        certificate: Certificate,
        out: &mut Vec<Output<Self>>,
    ) -> Result<bool, ChainError> {
        let before = self.chain().final_certificate().map(|c| c.height);
        self.sync_do(out, |sync, buf| sync.finalize(now, certificate, buf))?;
        let after = self.chain().final_certificate().map(|c| (c.block, c.height));
        let moved = after.map(|(_, height)| height) > before;
        if let Some((block, height)) = after.filter(|_| moved) {
            out.push(Output::Emit(CoinEvent::Finalized { block, height }));
        }
        Ok(moved)
    }

    /// The verdict on a relayed finality certificate: accepted (and forwarded) if it verifies and
    /// moves the final block or is the final block's, rejected if it does not verify or a node outside
    /// the validator set published it, ignored if older.
    pub(crate) fn final_verdict(
        &mut self,
        now: Instant,
        message: &GossipMessage,
        out: &mut Vec<Output<Self>>,
    ) -> Verdict {
        let Ok(certificate) = meshwork_wire::decode::<Certificate>(&message.payload) else {
            return Verdict::Reject;
        };
        // Only validators publish certificates (gossip has checked the origin's signature).
        if !self
            .chain()
            .validators()
            .is_some_and(|set| set.contains(&message.origin))
        {
            return Verdict::Reject;
        }
        // Cheap checks first: an older certificate is dropped unverified; ours again is verified and
        // passed on (validators hear of finality from the engine first, and must still relay it).
        match self.chain().final_certificate().map(|c| (c.height, c.block)) {
            Some((height, _)) if certificate.height < height => return Verdict::Ignore,
            Some((height, block)) if certificate.height == height && certificate.block == block => {
                return match self.chain().verify_certificate(&certificate) {
                    Ok(()) => Verdict::Accept,
                    Err(_) => Verdict::Reject,
                };
            }
            _ => {}
        }
        match self.finalize_chain(now, certificate, out) {
            Ok(true) => Verdict::Accept,
            Ok(false) => Verdict::Ignore,
            Err(ChainError::Certificate(_) | ChainError::NotCertified) => Verdict::Reject,
            Err(error) => {
                out.push(Output::Emit(CoinEvent::Consensus(error)));
                Verdict::Ignore
            }
        }
    }

    /// Answers what the engine asked and could not be told at once, then lets it ask again.
    fn answer_engine(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        let Some(validator) = self.bft.as_mut() else {
            return;
        };
        let app = validator.engine.app_mut();
        let (wants_block, wants_verdict) = (app.wants_block.take(), app.wants_verdict.take());
        let mut answered = false;
        if let Some((parent, view)) = wants_block {
            answered |= self.build_proposal(now, parent, view, out);
        }
        if let Some((parent, proposal)) = wants_verdict {
            answered |= self.judge_proposal(now, parent, proposal, out);
        }
        if answered {
            self.work.push_back(Work::Bft(Input::Command(Command::Recheck)));
        }
    }

    /// Builds the block to propose in `view` on `parent`, keeps it and sends it to the validators.
    fn build_proposal(
        &mut self,
        now: Instant,
        parent: Proposal,
        view: u64,
        out: &mut Vec<Output<Self>>,
    ) -> bool {
        self.build_on(now, parent.payload, view, out);
        if self.chain().tip().id != parent.payload {
            return false; // the parent's block is not here yet
        }
        let Some(owner) = self.bft.as_ref().map(|validator| validator.coinbase_owner) else {
            return false;
        };
        let block = match self.chain().block_template(owner, unix_secs(now)) {
            Ok(block) => block,
            Err(error) => {
                out.push(Output::Emit(CoinEvent::Consensus(error)));
                return false;
            }
        };
        let id = block.id();
        let submit = sync::Command::SubmitBlock {
            block: block.clone(),
            from: None,
        };
        self.sync_do(out, |sync, buf| sync.handle(now, Input::Command(submit), buf));
        let me = self.gossip.peer_id();
        let validators: Vec<PeerId> = self
            .bft
            .iter()
            .flat_map(|validator| validator.engine.config().validators.iter().copied())
            .filter(|peer| *peer != me && self.links.is_up(peer))
            .collect();
        for to in validators {
            out.push(Output::Send {
                to,
                msg: CoinMessage::Sync(sync::Message::Block(block.clone())),
            });
        }
        if let Some(validator) = self.bft.as_mut() {
            validator.engine.app_mut().built = Some((view, parent.payload, id));
        }
        true
    }

    /// Still stuck in a view (the engine's retry timer): a proposed block asked for and still missing
    /// (the answer was lost, or evicted before its parent came) may be asked for again.
    pub(crate) fn retry_fetch(&mut self) {
        if let Some(validator) = self.bft.as_mut() {
            validator.engine.app_mut().fetched = None;
            self.work.push_back(Work::Bft(Input::Command(Command::Recheck)));
        }
    }

    /// Asks the leader for a proposed block that has not come (its push raced the connection, say),
    /// once per proposal until the engine's retry timer fires.
    fn fetch_proposal(&mut self, proposal: &Proposal, out: &mut Vec<Output<Self>>) {
        let id = proposal.payload;
        if !matches!(self.chain().block(&id), Ok(None)) {
            return;
        }
        let Some(validator) = self.bft.as_mut() else {
            return;
        };
        let app = validator.engine.app_mut();
        if app.fetched == Some(id) {
            return;
        }
        app.fetched = Some(id);
        let leader = validator.engine.config().validators.leader(proposal.view);
        if let Ok(ids) = vec![id].try_into() {
            out.push(Output::Send {
                to: leader,
                msg: CoinMessage::Sync(sync::Message::GetBlocks(ids)),
            });
        }
    }

    /// Checks a proposed block on its parent: false if it cannot be judged yet.
    fn judge_proposal(
        &mut self,
        now: Instant,
        parent: Proposal,
        proposal: Proposal,
        out: &mut Vec<Output<Self>>,
    ) -> bool {
        self.build_on(now, parent.payload, proposal.view, out);
        let verdict = match self.chain().validate_on_tip(&proposal.payload, unix_secs(now)) {
            Ok(BlockVerdict::NotYetKnown) => {
                self.fetch_proposal(&proposal, out);
                return false;
            }
            Ok(verdict) => verdict,
            Err(error) => {
                out.push(Output::Emit(CoinEvent::Consensus(error)));
                return false;
            }
        };
        if let Some(validator) = self.bft.as_mut() {
            let verdicts = &mut validator.engine.app_mut().verdicts;
            if verdicts.len() >= MAX_VERDICTS {
                verdicts.clear();
            }
            verdicts.insert((parent.payload, proposal.payload), verdict);
        }
        true
    }
}
