//! Certificates: how a notarization or nullification ends a view, how a finalization makes a chain
//! final, and how a validator that fell behind gets the certificates it lacks.

use meshwork_identity::PeerId;
use meshwork_wire::{BoundedVec, Instant, Output};

use super::engine::{Application, Event, Simplex};
use super::journal::Journal;
use super::message::{
    Finalization, Message, NOTARIZE_VOTE, NULLIFY_VOTE, Notarization, Nullification, Proposal,
    nullify_message,
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
        if view >= self.view {
            self.enter_view(now, view + 1, out);
        }
        self.finalize_chain(now, cert, from, out);
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
        let mut chain = vec![cert.proposal];
        let mut at = cert.proposal;
        while at.parent > self.finalized.view {
            let Some(parent) = self.certified(at.parent) else {
                let peer = from.unwrap_or_else(|| self.config.validators.leader(cert.proposal.view));
                let missing = at.parent;
                let higher = self
                    .waiting_final
                    .as_ref()
                    .is_none_or(|(w, _)| w.proposal.view < cert.proposal.view);
                if higher {
                    self.waiting_final = Some((cert, peer));
                }
                self.ask(now, peer, vec![missing], out);
                return;
            };
            chain.push(parent);
            at = parent;
        }
        if at.parent != self.finalized.view || at.height != self.finalized.height + 1 {
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
        if self
            .waiting_final
            .as_ref()
            .is_some_and(|(w, _)| w.proposal.view <= self.finalized.view)
        {
            self.waiting_final = None;
        }
        self.prune();
    }

    fn retry_waiting_final(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        if let Some((cert, from)) = self.waiting_final.take() {
            self.finalize_chain(now, cert, Some(from), out);
        }
    }

    /// Forgets votes of views that are final or far behind, and certificates older than the history.
    pub(super) fn prune(&mut self) {
        let votes_from = (self.finalized.view + 1).max(self.view.saturating_sub(self.config.max_views_ahead));
        self.votes = self.votes.split_off(&votes_from);
        let certs_from = self.view.saturating_sub(self.config.history_views);
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
        let message = cert.proposal.finalize_message();
        match self
            .config
            .validators
            .verify_quorum(COMMIT_VOTE, &message, &cert.votes)
        {
            Ok(()) => self.on_finalization(now, cert, Some(from), out),
            Err(error) => self.punish(from, Fault::BadVote(error), out),
        }
    }

    /// Whether `peer` may be answered now: once per retry interval, or sooner for a higher view than
    /// it was last answered for (answers are certificates of up to 24 KB: a peer must not be able to
    /// make us send them in a loop).
    fn may_answer(&mut self, now: Instant, peer: PeerId, view: u64) -> bool {
        let allow = match self.answered.get(&peer) {
            None => true,
            Some(&(at, highest)) => view > highest || now.saturating_duration_since(at) >= self.config.retry,
        };
        if allow {
            let highest = self.answered.get(&peer).map_or(view, |&(_, h)| h.max(view));
            self.answered.insert(peer, (now, highest));
        }
        allow
    }

    /// A peer voted in `view`, which this validator has left: send it the view's certificate.
    pub(super) fn help(&mut self, now: Instant, peer: PeerId, view: u64, out: &mut Vec<Output<Self>>) {
        if let Some(msg) = self.certificate_of(view) {
            if self.may_answer(now, peer, view) {
                out.push(Output::Send { to: peer, msg });
            }
        }
    }

    pub(super) fn on_backfill(
        &mut self,
        now: Instant,
        from: PeerId,
        views: &[u64],
        out: &mut Vec<Output<Self>>,
    ) {
        let highest = views.iter().copied().max().unwrap_or(0);
        if views.is_empty() || !self.may_answer(now, from, highest) {
            return;
        }
        for view in views {
            if let Some(msg) = self.certificate_of(*view) {
                out.push(Output::Send { to: from, msg });
            }
        }
    }

    /// Asks `peer` for the certificates of `views` not asked for within the retry interval.
    pub(super) fn ask(&mut self, now: Instant, peer: PeerId, views: Vec<u64>, out: &mut Vec<Output<Self>>) {
        if peer == self.me {
            return;
        }
        let retry = self.config.retry;
        let fresh: Vec<u64> = views
            .into_iter()
            .filter(|view| {
                self.asked
                    .get(view)
                    .is_none_or(|at| now.saturating_duration_since(*at) >= retry)
            })
            .collect();
        for view in &fresh {
            self.asked.insert(*view, now);
        }
        if let Ok(views) = BoundedVec::try_from(fresh) {
            if !views.is_empty() {
                out.push(Output::Send {
                    to: peer,
                    msg: Message::Backfill(views),
                });
            }
        }
    }
}
