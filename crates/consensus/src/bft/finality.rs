//! Certificates: how a notarization or nullification ends a view, how a finalization makes a chain
//! final, and how a validator seen voting in a view we left is sent the certificate that moves it on
//! (what it asks for itself is answered in `backfill.rs`).

use meshwork_identity::PeerId;
use meshwork_wire::{Instant, Output};

use super::engine::{Application, Event, Simplex};
use super::journal::Journal;
use super::message::{
    Finalization, MAX_BACKFILL_VIEWS, Message, NOTARIZE_VOTE, NULLIFY_VOTE, Notarization, Nullification,
    Proposal, nullify_message,
};
use crate::certificate::COMMIT_VOTE;
use crate::traits::Fault;

impl<A: Application, J: Journal> Simplex<A, J> {
    /// A proposal that may be built on in `view`: notarized, or final.
    pub(super) fn certified(&self, view: u64) -> Option<Proposal> {
        if view == self.finalized.view {
            return Some(self.finalized);
        }
        self.notarized
            .get(&view)
            .map(|n| n.proposal)
            .or_else(|| self.finalizations.get(&view).map(|f| f.proposal))
            .or_else(|| self.skip.map(|s| s.parent).filter(|p| p.view == view))
    }

    /// The strongest certificate held for `view`, as a message.
    pub(super) fn certificate_of(&self, view: u64) -> Option<Message> {
        if let Some(cert) = self.finalizations.get(&view) {
            return Some(Message::Finalization(cert.clone()));
        }
        if let Some(cert) = self.notarized.get(&view) {
            return Some(Message::Notarization(cert.clone()));
        }
        self.nullified
            .get(&view)
            .map(|cert| Message::Nullification(cert.clone()))
    }

    /// `proposal` was notarized: if it ends the current view (or a later one), vote to finalize it and
    /// enter the next view.
    pub(super) fn on_notarization(&mut self, now: Instant, cert: Notarization, out: &mut Vec<Output<Self>>) {
        let view = cert.proposal.view;
        if view <= self.finalized.view || self.notarized.contains_key(&view) {
            return;
        }
        let proposal = cert.proposal;
        self.notarized.insert(view, cert);
        out.push(Output::Emit(Event::Notarized(proposal)));
        if view >= self.view {
            // Finalize before leaving: the journal then holds this view's votes, and the validator,
            // which never returns to a view, can no longer vote to skip it.
            self.cast_finalize(now, proposal, out);
            self.enter_view(now, view + 1, out);
        } else {
            self.try_vote(now, out);
        }
        self.retry_waiting_final(now, out);
    }

    /// `view` was skipped.
    pub(super) fn on_nullification(
        &mut self,
        now: Instant,
        cert: Nullification,
        out: &mut Vec<Output<Self>>,
    ) {
        let view = cert.view;
        if view <= self.finalized.view || self.nullified.contains_key(&view) {
            return;
        }
        self.nullified.insert(view, cert);
        out.push(Output::Emit(Event::Nullified { view }));
        if view >= self.view {
            self.enter_view(now, view + 1, out);
        } else {
            self.try_vote(now, out);
        }
    }

    /// `cert` finalises its proposal and every ancestor. `from` sent it (`None`: assembled here).
    pub(super) fn on_finalization(
        &mut self,
        now: Instant,
        cert: Finalization,
        from: Option<PeerId>,
        out: &mut Vec<Output<Self>>,
    ) {
        let view = cert.proposal.view;
        if view <= self.finalized.view || self.finalizations.contains_key(&view) {
            return;
        }
        self.finalizations.insert(view, cert.clone());
        // Finality is sent on to observers (full nodes that do not vote).
        for peer in &self.up {
            if !self.config.validators.contains(peer) {
                out.push(Output::Send {
                    to: *peer,
                    msg: Message::Finalization(cert.clone()),
                });
            }
        }
        // Link first: the next view's leader builds on what is final.
        self.finalize_chain(now, cert, from, out);
        if view >= self.view {
            self.enter_view(now, view + 1, out);
        }
    }

    /// Walks from `cert`'s proposal back to the last final one and announces the chain in height order;
    /// if a link is missing, keeps `cert` waiting and asks for the link.
    fn finalize_chain(
        &mut self,
        now: Instant,
        cert: Finalization,
        from: Option<PeerId>,
        out: &mut Vec<Output<Self>>,
    ) {
        if cert.proposal.view <= self.finalized.view {
            // A descendant was finalised first (this one waited for a link, or both formed in one step).
            return;
        }
        let mut chain = vec![cert.proposal];
        let mut at = cert.proposal;
        let mut linked = true;
        while at.parent > self.finalized.view {
            let Some(parent) = self.certified(at.parent) else {
                let peer = from.unwrap_or_else(|| self.config.validators.leader(cert.proposal.view));
                let missing = at.parent;
                if missing < self.view.saturating_sub(self.config.history_views) {
                    // No validator keeps certificates that old: the chain cannot be linked. The quorum
                    // vouches for `cert`; take it as the new anchor and let the application sync.
                    return self.jump(cert, out);
                }
                let higher = self
                    .waiting_final
                    .as_ref()
                    .is_none_or(|(w, _)| w.proposal.view < cert.proposal.view);
                if higher {
                    self.waiting_final = Some((cert, peer));
                }
                // Only the missing view is known to be needed, but its ancestors below are likely missing
                // too (this validator was cut off): ask for the views up to it in one request.
                let from_view = missing
                    .saturating_sub(MAX_BACKFILL_VIEWS as u64 - 1)
                    .max(self.finalized.view + 1);
                self.ask(now, peer, (from_view..=missing).rev().collect(), out);
                return;
            };
            if parent.height + 1 != at.height {
                // Certified links whose heights do not add up: only more than a third of faulty
                // validators could have signed them.
                linked = false;
                break;
            }
            chain.push(parent);
            at = parent;
        }
        if !linked || at.parent != self.finalized.view || at.height != self.finalized.height + 1 {
            out.push(Output::Emit(Event::ConflictingFinalization {
                ours: self.finalized,
                theirs: cert,
            }));
            self.halt("a finalization conflicts with the final chain".into(), out);
            return;
        }
        for proposal in chain.into_iter().rev() {
            out.push(Output::Emit(Event::Finalized {
                proposal,
                by_view: cert.proposal.view,
            }));
        }
        self.finalized = cert.proposal;
        self.prune();
        // A finalization that waited for a link above this one may link now.
        self.retry_waiting_final(now, out);
    }

    /// Takes `cert`'s proposal as final without its ancestors ([`Event::Jumped`]).
    fn jump(&mut self, cert: Finalization, out: &mut Vec<Output<Self>>) {
        out.push(Output::Emit(Event::Jumped {
            from: self.finalized,
            to: cert.proposal,
        }));
        self.finalized = cert.proposal;
        self.prune();
    }

    fn retry_waiting_final(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        if let Some((cert, from)) = self.waiting_final.take() {
            if cert.proposal.view > self.finalized.view {
                self.finalize_chain(now, cert, Some(from), out);
            }
        }
    }

    /// Forgets votes of views that are final or far behind, and certificates older than the history.
    pub(super) fn prune(&mut self) {
        let votes_from = (self.finalized.view + 1).max(self.view.saturating_sub(self.config.max_views_ahead));
        self.votes = self.votes.split_off(&votes_from);
        let certs_from = self.view.saturating_sub(self.config.history_views);
        self.keep_skip(certs_from);
        self.forget_skip_behind_final();
        self.notarized = self.notarized.split_off(&certs_from);
        self.nullified = self.nullified.split_off(&certs_from);
        self.finalizations = self.finalizations.split_off(&certs_from);
        self.asked = self.asked.split_off(&(self.finalized.view + 1));
    }

    /// Whether a certificate for `view` is still of use here.
    fn wanted(&self, view: u64) -> bool {
        view > self.finalized.view && view >= self.view.saturating_sub(self.config.history_views)
    }

    pub(super) fn on_notarization_message(
        &mut self,
        now: Instant,
        from: PeerId,
        cert: Notarization,
        out: &mut Vec<Output<Self>>,
    ) {
        let view = cert.proposal.view;
        if !self.wanted(view) || self.notarized.contains_key(&view) {
            return;
        }
        let message = cert.proposal.notarize_message(&self.config.genesis);
        match self
            .config
            .validators
            .verify_quorum(NOTARIZE_VOTE, &message, &cert.votes)
        {
            Ok(()) => self.on_notarization(now, cert, out),
            Err(error) => self.punish(from, Fault::BadVote(error), out),
        }
    }

    pub(super) fn on_nullification_message(
        &mut self,
        now: Instant,
        from: PeerId,
        cert: Nullification,
        out: &mut Vec<Output<Self>>,
    ) {
        if !self.wanted(cert.view) || self.nullified.contains_key(&cert.view) {
            return;
        }
        let message = nullify_message(&self.config.genesis, cert.view);
        match self
            .config
            .validators
            .verify_quorum(NULLIFY_VOTE, &message, &cert.votes)
        {
            Ok(()) => self.on_nullification(now, cert, out),
            Err(error) => self.punish(from, Fault::BadVote(error), out),
        }
    }

    pub(super) fn on_finalization_message(
        &mut self,
        now: Instant,
        from: PeerId,
        cert: Finalization,
        out: &mut Vec<Output<Self>>,
    ) {
        let view = cert.proposal.view;
        if view <= self.finalized.view || self.finalizations.contains_key(&view) {
            return;
        }
        let message = cert.proposal.finalize_message(&self.config.genesis);
        match self
            .config
            .validators
            .verify_quorum(COMMIT_VOTE, &message, &cert.votes)
        {
            Ok(()) => self.on_finalization(now, cert, Some(from), out),
            Err(error) => self.punish(from, Fault::BadVote(error), out),
        }
    }

    /// A peer voted in `view`, which this validator has left: send it the certificate that let this
    /// validator enter its current view (the peer jumps straight here), and the latest finalization.
    /// Once per view of ours, or again after a retry interval (the first may have been lost).
    pub(super) fn help(&mut self, now: Instant, peer: PeerId, view: u64, out: &mut Vec<Output<Self>>) {
        let current = self.view;
        let due = self.helped.get(&peer).is_none_or(|&(at, helped)| {
            current > helped || now.saturating_duration_since(at) >= self.config.retry
        });
        if view >= current || !due {
            return;
        }
        self.helped.insert(peer, (now, current));
        if let Some(msg) = self.certificate_of(current - 1) {
            out.push(Output::Send { to: peer, msg });
        }
        if let Some(last) = self.finalizations.values().next_back() {
            if last.proposal.view + 1 != current {
                out.push(Output::Send {
                    to: peer,
                    msg: Message::Finalization(last.clone()),
                });
            }
        }
    }
}
