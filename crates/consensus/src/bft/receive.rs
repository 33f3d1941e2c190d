//! Votes from other validators: admitted (their signer sent them, for a view in range), counted with
//! lazily checked signatures ([`ViewVotes`](super::votes)), and turned into certificates, evidence or
//! punishment.

use meshwork_identity::PeerId;
use meshwork_wire::{Instant, Output};

use super::engine::{Application, Simplex};
use super::journal::Journal;
use super::message::{NOTARIZE_VOTE, NULLIFY_VOTE, Proposal, nullify_message};
use super::votes::{Check, Tallied, view_subject};
use crate::certificate::{COMMIT_VOTE, Vote};
use crate::error::CertificateError;
use crate::traits::Fault;

/// Which kind of vote.
#[derive(Clone, Copy)]
enum Kind {
    Notarize,
    Nullify,
    Finalize,
}

impl<A: Application, J: Journal> Simplex<A, J> {
    /// Whether a vote for `view` from `from` is worth counting: it is the signer's own, the signer is a
    /// validator, and the view is neither final nor too far ahead. A vote for a view this validator has
    /// left is answered with a certificate (its sender is behind).
    fn admit(
        &mut self,
        now: Instant,
        from: PeerId,
        view: u64,
        vote: &Vote,
        out: &mut Vec<Output<Self>>,
    ) -> bool {
        if vote.validator != from || !self.config.validators.contains(&from) {
            self.punish(
                from,
                Fault::BadVote(CertificateError::UnknownValidator(vote.validator)),
                out,
            );
            return false;
        }
        if view < self.view {
            self.help(now, from, view, out);
        }
        // The same window `prune` keeps: from the last final view (or `max_views_ahead` behind) to
        // `max_views_ahead` ahead.
        view > self.finalized.view
            && view >= self.view.saturating_sub(self.config.max_views_ahead)
            && view <= self.view.saturating_add(self.config.max_views_ahead)
    }

    pub(super) fn on_notarize(
        &mut self,
        now: Instant,
        from: PeerId,
        proposal: Proposal,
        vote: Vote,
        out: &mut Vec<Output<Self>>,
    ) {
        if !self.admit(now, from, proposal.view, &vote, out) {
            return;
        }
        // The leader's vote is its proposal: checked at once, since this validator may vote for it.
        let is_proposal = from == self.config.validators.leader(proposal.view);
        if is_proposal {
            let message = proposal.notarize_message(&self.config.genesis);
            if from.verify(NOTARIZE_VOTE, &message, &vote.signature).is_err() {
                self.punish(from, Fault::BadVote(CertificateError::BadSignature(from)), out);
                return;
            }
            let votes = self.view_votes(proposal.view);
            if votes.proposal.is_none() {
                votes.proposal = Some(proposal);
            }
        }
        self.count(now, Kind::Notarize, proposal, vote, is_proposal, out);
        if is_proposal && proposal.view == self.view {
            self.try_vote(now, out);
        }
    }

    pub(super) fn on_nullify(
        &mut self,
        now: Instant,
        from: PeerId,
        view: u64,
        vote: Vote,
        out: &mut Vec<Output<Self>>,
    ) {
        if self.admit(now, from, view, &vote, out) {
            self.count(now, Kind::Nullify, view_subject(view), vote, false, out);
        }
    }

    pub(super) fn on_finalize(
        &mut self,
        now: Instant,
        from: PeerId,
        proposal: Proposal,
        vote: Vote,
        out: &mut Vec<Output<Self>>,
    ) {
        if self.admit(now, from, proposal.view, &vote, out) {
            self.count(now, Kind::Finalize, proposal, vote, false, out);
        }
    }

    pub(super) fn count_notarize(
        &mut self,
        now: Instant,
        proposal: Proposal,
        vote: Vote,
        out: &mut Vec<Output<Self>>,
    ) {
        self.count(now, Kind::Notarize, proposal, vote, true, out);
    }

    pub(super) fn count_nullify(&mut self, now: Instant, view: u64, vote: Vote, out: &mut Vec<Output<Self>>) {
        self.count(now, Kind::Nullify, view_subject(view), vote, true, out);
    }

    pub(super) fn count_finalize(
        &mut self,
        now: Instant,
        proposal: Proposal,
        vote: Vote,
        out: &mut Vec<Output<Self>>,
    ) {
        self.count(now, Kind::Finalize, proposal, vote, true, out);
    }

    /// Counts a vote of `kind` for `subject` (`checked`: its signature is known good) and acts on what
    /// it completes.
    fn count(
        &mut self,
        now: Instant,
        kind: Kind,
        subject: Proposal,
        vote: Vote,
        checked: bool,
        out: &mut Vec<Output<Self>>,
    ) {
        let chain = self.config.genesis;
        let quorum = self.config.validators.quorum();
        let notarize_message = |p: &Proposal| p.notarize_message(&chain).to_vec();
        let nullify_message = |p: &Proposal| nullify_message(&chain, p.view).to_vec();
        let finalize_message = |p: &Proposal| p.finalize_message(&chain).to_vec();
        let notarize = Check {
            namespace: NOTARIZE_VOTE,
            message: &notarize_message,
            quorum,
        };
        let nullify = Check {
            namespace: NULLIFY_VOTE,
            message: &nullify_message,
            quorum,
        };
        let finalize = Check {
            namespace: COMMIT_VOTE,
            message: &finalize_message,
            quorum,
        };
        let votes = self.view_votes(subject.view);
        match kind {
            Kind::Notarize => {
                let tallied = votes.notarize(subject, vote, checked, &notarize);
                if let Some(cert) = self.settle(tallied, out) {
                    self.on_notarization(now, cert, out);
                }
            }
            Kind::Nullify => {
                let tallied = votes.nullify(subject.view, vote, checked, &nullify, &finalize);
                if let Some(cert) = self.settle(tallied, out) {
                    self.on_nullification(now, cert, out);
                }
            }
            Kind::Finalize => {
                let tallied = votes.finalize(subject, vote, checked, &finalize, &nullify);
                if let Some(cert) = self.settle(tallied, out) {
                    self.on_finalization(now, cert, None, out);
                }
            }
        }
    }

    /// Reports the evidence and punishes the forgers of a tally; returns its certificate.
    fn settle<C>(&self, tallied: Tallied<C>, out: &mut Vec<Output<Self>>) -> Option<C> {
        self.convict(tallied.evidence, out);
        for peer in tallied.forged {
            self.punish(peer, Fault::BadVote(CertificateError::BadSignature(peer)), out);
        }
        tallied.certificate
    }
}
