//! What a validator does within a view: enter it, propose if it leads, vote for the leader's proposal
//! once its ancestry is certified, count the votes it receives, and vote to skip the view when time
//! runs out.

use meshwork_wire::{Instant, Output};

use super::engine::{Application, Event, Simplex, Timer};
use super::journal::{Journal, LastVote};
use super::message::{Message, Proposal, sign_nullify};
use crate::traits::Verdict;

/// Whether a proposal can be voted on now.
pub(super) enum Ancestry {
    /// Its parent is certified and every view in between nullified: here is the parent.
    Ready(Proposal),
    /// Certificates of these views are missing.
    Missing(Vec<u64>),
    /// It can never be voted for (its parent is not final-compatible, or its height is wrong).
    Invalid,
}

impl<A: Application, J: Journal> Simplex<A, J> {
    /// Moves to `view` (never back), sets its timers, proposes if this validator leads it, and votes if
    /// the leader's proposal is already here.
    pub(super) fn enter_view(&mut self, now: Instant, view: u64, out: &mut Vec<Output<Self>>) {
        if view <= self.view {
            return;
        }
        self.view = view;
        self.prune();
        let leader = self.config.validators.leader(view);
        out.push(Output::Emit(Event::ViewEntered { view, leader }));
        out.push(Output::Schedule {
            after: self.config.leader_timeout,
            timer: Timer::Leader(view),
        });
        out.push(Output::Schedule {
            after: self.config.notarization_timeout,
            timer: Timer::Notarization(view),
        });
        if leader == self.me && self.voter && self.mine.view < view {
            self.propose(now, view, out);
        }
        self.try_vote(now, out);
    }

    /// Proposes in the current view if this validator leads it, has not proposed and has not voted to
    /// skip it: the application had nothing when the view began (its parent's block was still on the
    /// way, say) and may have now.
    pub(super) fn propose_again(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        let view = self.view;
        let proposed = self
            .votes
            .get(&view)
            .is_some_and(|votes| votes.proposal.is_some());
        if self.started
            && self.voter
            && !proposed
            && self.mine.view < view
            && self.config.validators.leader(view) == self.me
        {
            self.propose(now, view, out);
        }
    }

    fn propose(&mut self, now: Instant, view: u64, out: &mut Vec<Output<Self>>) {
        if self.halted {
            return;
        }
        let Some(parent) = self.parent_for(view) else {
            return;
        };
        let Some(payload) = self.app.propose(&parent, view) else {
            return;
        };
        let proposal = Proposal {
            view,
            parent: parent.view,
            height: parent.height + 1,
            payload,
        };
        self.view_votes(view).proposal = Some(proposal);
        out.push(Output::Emit(Event::Proposed(proposal)));
        self.cast_notarize(now, proposal, out);
    }

    /// The proposal a leader of `view` builds on: the highest notarized one below it with every view in
    /// between nullified.
    fn parent_for(&self, view: u64) -> Option<Proposal> {
        let mut at = view.checked_sub(1)?;
        loop {
            if at <= self.finalized.view {
                return (at == self.finalized.view).then_some(self.finalized);
            }
            if let Some(proposal) = self.certified(at) {
                return Some(proposal);
            }
            if !self.is_nullified(at) {
                return None;
            }
            at = self.below(at);
        }
    }

    /// Checks what voting for `proposal` needs: its parent's certificate, the nullifications between.
    pub(super) fn ancestry(&self, proposal: &Proposal) -> Ancestry {
        if proposal.parent >= proposal.view || proposal.parent < self.finalized.view {
            return Ancestry::Invalid;
        }
        let parent = self.certified(proposal.parent);
        let mut missing = self.not_nullified(
            proposal.parent + 1,
            proposal.view,
            super::message::MAX_BACKFILL_VIEWS,
        );
        match parent {
            Some(parent) if missing.is_empty() => {
                if parent.height + 1 == proposal.height {
                    Ancestry::Ready(parent)
                } else {
                    Ancestry::Invalid
                }
            }
            Some(_) => Ancestry::Missing(missing),
            None => {
                missing.insert(0, proposal.parent);
                missing.truncate(super::message::MAX_BACKFILL_VIEWS);
                Ancestry::Missing(missing)
            }
        }
    }

    /// Votes for the current view's proposal if it has one, this validator has not voted in the view,
    /// its ancestry is certified and the application finds it valid.
    pub(super) fn try_vote(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        let view = self.view;
        if !self.voter || self.halted || self.mine.view >= view {
            return;
        }
        let Some(proposal) = self.votes.get(&view).and_then(|v| v.proposal) else {
            return;
        };
        match self.ancestry(&proposal) {
            Ancestry::Invalid => {}
            Ancestry::Missing(views) => {
                let leader = self.config.validators.leader(view);
                self.ask(now, leader, views, out);
            }
            Ancestry::Ready(parent) => match self.app.verify(&parent, &proposal) {
                Verdict::Valid => self.cast_notarize(now, proposal, out),
                Verdict::Invalid(reason) => {
                    out.push(Output::Emit(Event::InvalidProposal { proposal, reason }))
                }
                Verdict::NotYetKnown => {}
            },
        }
    }

    /// Records a vote in the journal before it is sent; false (and the engine halts) if that failed.
    fn record(&mut self, mut vote: LastVote, out: &mut Vec<Output<Self>>) -> bool {
        vote.skipped = self.run_below(vote.view);
        if let Err(error) = self.journal.record(&vote) {
            self.halt(error.to_string(), out);
            return false;
        }
        self.mine = vote;
        true
    }

    fn cast_notarize(&mut self, now: Instant, proposal: Proposal, out: &mut Vec<Output<Self>>) {
        if self.halted {
            return;
        }
        let vote = LastVote {
            view: proposal.view,
            notarize: Some(proposal),
            ..LastVote::default()
        };
        if !self.record(vote, out) {
            return;
        }
        let vote = proposal.sign_notarize(&self.key, &self.config.genesis);
        self.broadcast(&Message::Notarize { proposal, vote }, out);
        self.count_notarize(now, proposal, vote, out);
    }

    /// Votes to finalize the notarized `proposal`, unless this validator voted to skip its view.
    pub(super) fn cast_finalize(&mut self, now: Instant, proposal: Proposal, out: &mut Vec<Output<Self>>) {
        if !self.voter || self.halted || self.mine.view > proposal.view {
            return;
        }
        let mut vote = if self.mine.view == proposal.view {
            if self.mine.nullify || self.mine.finalize.is_some() {
                return;
            }
            self.mine
        } else {
            LastVote {
                view: proposal.view,
                ..LastVote::default()
            }
        };
        vote.finalize = Some(proposal);
        if !self.record(vote, out) {
            return;
        }
        let vote = proposal.sign_finalize(&self.key, &self.config.genesis);
        self.broadcast(&Message::Finalize { proposal, vote }, out);
        self.count_finalize(now, proposal, vote, out);
    }

    fn cast_nullify(&mut self, now: Instant, view: u64, out: &mut Vec<Output<Self>>) {
        if !self.voter || self.halted || view != self.view || self.mine.view > view {
            return;
        }
        let mut vote = if self.mine.view == view {
            if self.mine.nullify || self.mine.finalize.is_some() {
                return;
            }
            self.mine
        } else {
            LastVote {
                view,
                ..LastVote::default()
            }
        };
        vote.nullify = true;
        if !self.record(vote, out) {
            return;
        }
        let vote = sign_nullify(&self.key, &self.config.genesis, view);
        self.broadcast(&Message::Nullify { view, vote }, out);
        out.push(Output::Schedule {
            after: self.config.retry,
            timer: Timer::Retry(view),
        });
        self.count_nullify(now, view, vote, out);
    }

    pub(super) fn on_leader_timeout(&mut self, now: Instant, view: u64, out: &mut Vec<Output<Self>>) {
        // A validator that already voted for the leader's proposal waits for the view's own timeout.
        if !(self.mine.view == view && self.mine.notarize.is_some()) {
            self.cast_nullify(now, view, out);
        }
    }

    pub(super) fn on_view_timeout(&mut self, now: Instant, view: u64, out: &mut Vec<Output<Self>>) {
        self.cast_nullify(now, view, out);
    }

    /// Still in `view` after voting to skip it: send the nullify vote again, with the certificate that
    /// let this validator enter the view, to every validator (some may have lost either).
    pub(super) fn on_retry(&mut self, _now: Instant, view: u64, out: &mut Vec<Output<Self>>) {
        if view != self.view || !(self.mine.view == view && self.mine.nullify) {
            return;
        }
        if let Some(entry) = self.certificate_of(view - 1) {
            self.broadcast(&entry, out);
        }
        let vote = sign_nullify(&self.key, &self.config.genesis, view);
        self.broadcast(&Message::Nullify { view, vote }, out);
        out.push(Output::Schedule {
            after: self.config.retry,
            timer: Timer::Retry(view),
        });
    }
}
