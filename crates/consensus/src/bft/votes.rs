//! Counting one view's votes: each validator's first vote of each kind counts, a quorum of them becomes
//! a certificate, and a second vote that contradicts the first is kept as [`Evidence`].

use std::collections::HashMap;

use meshwork_identity::{BatchVerifier, Hash, Namespace, PeerId};

use super::evidence::Evidence;
use super::message::{Finalization, Notarization, Nullification, Proposal, Votes};
use crate::certificate::Vote;

/// What became of a vote handed to [`ViewVotes`].
#[derive(Debug)]
pub(crate) struct Tallied<C> {
    /// The certificate, if this vote completed a quorum of verified votes.
    pub(crate) certificate: Option<C>,
    /// Evidence, if the vote contradicts the validator's earlier one (reported once per validator and
    /// view).
    pub(crate) evidence: Option<Box<Evidence>>,
    /// Validators whose votes turned out to be forged when checked (each was its own sender).
    pub(crate) forged: Vec<PeerId>,
}

impl<C> Default for Tallied<C> {
    fn default() -> Self {
        Self {
            certificate: None,
            evidence: None,
            forged: Vec::new(),
        }
    }
}

/// What a ballot did to its kind's count.
#[derive(Debug)]
enum Added {
    /// Nothing new: counted, repeated, or forged.
    Nothing,
    /// The subject has a quorum of verified votes: these.
    Quorum(Vec<Vote>),
    /// It contradicts the validator's first ballot, this one (both signatures verified).
    Conflict(Subject, Vote),
}

/// How to check the signatures of one kind of vote.
pub(crate) struct Check<'a> {
    pub(crate) namespace: Namespace,
    pub(crate) message: &'a dyn Fn(&Subject) -> Vec<u8>,
    pub(crate) quorum: usize,
}

/// What a vote is for: a proposal (notarize, finalize) or a view (nullify).
pub(crate) type Subject = Proposal;

/// One kind of vote in one view: each validator's first ballot and whether its signature was checked.
///
/// Signatures are checked lazily, as commonware's simplex does: a ballot is counted unchecked, and only
/// when a subject has a quorum of ballots are its unchecked ones verified, in one batch; forged ones are
/// dropped (and their senders punished) and the count taken again. Ballots beyond a quorum are never
/// checked unless they contradict an earlier one. Each validator's vote costs a third of a
/// verification less, and those checked cost a batch's share.
#[derive(Debug, Default)]
struct Ballots {
    first: HashMap<PeerId, (Subject, Vote, bool)>,
    count: HashMap<Subject, usize>,
}

impl Ballots {
    /// Counts `vote` for `subject` (`checked` for this validator's own). Returns the evidence or
    /// forgery it reveals, or the verified votes of a quorum it completes.
    fn add(
        &mut self,
        subject: Subject,
        vote: Vote,
        checked: bool,
        check: &Check<'_>,
        forged: &mut Vec<PeerId>,
    ) -> Added {
        let validator = vote.validator;
        if let Some(&(first, first_vote, first_checked)) = self.first.get(&validator) {
            if first == subject {
                return Added::Nothing;
            }
            // A contradiction counts only if both votes are really signed.
            if !checked && !verify(check, &subject, &vote) {
                forged.push(validator);
                return Added::Nothing;
            }
            if !first_checked && !verify(check, &first, &first_vote) {
                self.remove(&validator);
                forged.push(validator);
                return Added::Nothing;
            }
            if let Some(entry) = self.first.get_mut(&validator) {
                entry.2 = true;
            }
            return Added::Conflict(first, first_vote);
        }
        self.first.insert(validator, (subject, vote, checked));
        let count = self.count.entry(subject).or_default();
        *count += 1;
        if *count < check.quorum {
            return Added::Nothing;
        }
        // A quorum of ballots: check the unchecked ones in one batch.
        let unchecked: Vec<Vote> = self
            .first
            .values()
            .filter(|(s, _, ok)| *s == subject && !ok)
            .map(|(_, v, _)| *v)
            .collect();
        let message = (check.message)(&subject);
        let mut batch = BatchVerifier::with_capacity(unchecked.len());
        for vote in &unchecked {
            batch.push(&vote.validator, check.namespace, &message, &vote.signature);
        }
        if batch.verify().is_err() {
            for vote in &unchecked {
                if vote
                    .validator
                    .verify(check.namespace, &message, &vote.signature)
                    .is_err()
                {
                    self.remove(&vote.validator);
                    forged.push(vote.validator);
                }
            }
        }
        for (s, _, ok) in self.first.values_mut() {
            if *s == subject {
                *ok = true;
            }
        }
        if self.count.get(&subject).copied().unwrap_or(0) < check.quorum {
            return Added::Nothing;
        }
        Added::Quorum(
            self.first
                .values()
                .filter(|(s, _, _)| *s == subject)
                .map(|(_, v, _)| *v)
                .collect(),
        )
    }

    fn remove(&mut self, validator: &PeerId) {
        if let Some((subject, _, _)) = self.first.remove(validator) {
            if let Some(count) = self.count.get_mut(&subject) {
                *count -= 1;
            }
        }
    }

    /// The validator's first ballot, if it is checked (or checks now). One that fails its check is
    /// removed and its validator reported in `forged`: kept, it would be checked again at every
    /// later vote of the validator, each a signature verification the forger gets for free.
    fn checked(
        &mut self,
        validator: &PeerId,
        check: &Check<'_>,
        forged: &mut Vec<PeerId>,
    ) -> Option<(Subject, Vote)> {
        let (subject, vote, ok) = *self.first.get(validator)?;
        if !ok {
            if !verify(check, &subject, &vote) {
                self.remove(validator);
                forged.push(*validator);
                return None;
            }
            if let Some(entry) = self.first.get_mut(validator) {
                entry.2 = true;
            }
        }
        Some((subject, vote))
    }
}

fn verify(check: &Check<'_>, subject: &Subject, vote: &Vote) -> bool {
    vote.validator
        .verify(check.namespace, &(check.message)(subject), &vote.signature)
        .is_ok()
}

/// The votes of one view, and the certificates they formed.
#[derive(Debug, Default)]
pub(crate) struct ViewVotes {
    /// The leader's proposal: the first notarize vote of the leader.
    pub(crate) proposal: Option<Proposal>,
    notarizes: Ballots,
    nullifies: Ballots,
    finalizes: Ballots,
    /// Validators already convicted in this view: one report each.
    convicted: Vec<PeerId>,
    pub(crate) notarization: Option<Notarization>,
    pub(crate) nullification: Option<Nullification>,
    pub(crate) finalization: Option<Finalization>,
}

impl ViewVotes {
    /// Counts a notarize vote (`checked`: its signature is known good).
    pub(crate) fn notarize(
        &mut self,
        proposal: Proposal,
        vote: Vote,
        checked: bool,
        check: &Check<'_>,
    ) -> Tallied<Notarization> {
        let mut out = Tallied::default();
        match self
            .notarizes
            .add(proposal, vote, checked, check, &mut out.forged)
        {
            Added::Conflict(first, first_vote) => {
                out.evidence = self.convict(Evidence::ConflictingNotarize {
                    first: (first, first_vote),
                    second: (proposal, vote),
                });
            }
            Added::Quorum(votes) if self.notarization.is_none() => {
                let notarization = Notarization {
                    proposal,
                    votes: collect(votes.into_iter()),
                };
                self.notarization = Some(notarization.clone());
                out.certificate = Some(notarization);
            }
            _ => {}
        }
        out
    }

    /// Counts a nullify vote (`checked`: its signature is known good). The subject of a nullify vote is
    /// the view, as a proposal with nothing else in it.
    pub(crate) fn nullify(
        &mut self,
        view: u64,
        vote: Vote,
        checked: bool,
        nullify: &Check<'_>,
        finalize: &Check<'_>,
    ) -> Tallied<Nullification> {
        let mut out = Tallied::default();
        if let Some(finalized) = self.finalizes.checked(&vote.validator, finalize, &mut out.forged) {
            if checked || verify(nullify, &view_subject(view), &vote) {
                out.evidence = self.convict(Evidence::NullifyAndFinalize {
                    view,
                    nullify: vote,
                    finalize: finalized,
                });
            } else {
                out.forged.push(vote.validator);
            }
            return out;
        }
        let added = self
            .nullifies
            .add(view_subject(view), vote, checked, nullify, &mut out.forged);
        if let (Added::Quorum(votes), None) = (added, &self.nullification) {
            let nullification = Nullification {
                view,
                votes: collect(votes.into_iter()),
            };
            self.nullification = Some(nullification.clone());
            out.certificate = Some(nullification);
        }
        out
    }

    /// Counts a finalize vote (`checked`: its signature is known good).
    pub(crate) fn finalize(
        &mut self,
        proposal: Proposal,
        vote: Vote,
        checked: bool,
        finalize: &Check<'_>,
        nullify: &Check<'_>,
    ) -> Tallied<Finalization> {
        let mut out = Tallied::default();
        if let Some((_, nullified)) = self.nullifies.checked(&vote.validator, nullify, &mut out.forged) {
            if checked || verify(finalize, &proposal, &vote) {
                out.evidence = self.convict(Evidence::NullifyAndFinalize {
                    view: proposal.view,
                    nullify: nullified,
                    finalize: (proposal, vote),
                });
            } else {
                out.forged.push(vote.validator);
            }
            return out;
        }
        match self
            .finalizes
            .add(proposal, vote, checked, finalize, &mut out.forged)
        {
            Added::Conflict(first, first_vote) => {
                out.evidence = self.convict(Evidence::ConflictingFinalize {
                    first: (first, first_vote),
                    second: (proposal, vote),
                });
            }
            Added::Quorum(votes) if self.finalization.is_none() => {
                let finalization = Finalization {
                    proposal,
                    votes: collect(votes.into_iter()),
                };
                self.finalization = Some(finalization.clone());
                out.certificate = Some(finalization);
            }
            _ => {}
        }
        out
    }

    fn convict(&mut self, evidence: Evidence) -> Option<Box<Evidence>> {
        let validator = evidence.validator();
        if self.convicted.contains(&validator) {
            return None;
        }
        self.convicted.push(validator);
        Some(Box::new(evidence))
    }
}

/// The subject of a nullify vote for `view`: only the view is set.
pub(crate) fn view_subject(view: u64) -> Subject {
    Proposal {
        view,
        parent: 0,
        height: 0,
        payload: Hash::ZERO,
    }
}

/// A quorum's votes, in validator order so that every node builds the same certificate.
fn collect(votes: impl Iterator<Item = Vote>) -> Votes {
    let mut votes: Vec<Vote> = votes.collect();
    votes.sort_by_key(|vote| vote.validator);
    // At most one vote per validator, and a validator set is at most as large as a certificate.
    votes.truncate(crate::certificate::MAX_CERTIFICATE_VOTES);
    Votes::try_from(votes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use meshwork_identity::Keypair;

    use super::*;
    use crate::bft::message::{NOTARIZE_VOTE, NULLIFY_VOTE, nullify_message, sign_nullify};
    use crate::certificate::COMMIT_VOTE;

    fn proposal(view: u64, tag: &[u8]) -> Proposal {
        Proposal {
            view,
            parent: view - 1,
            height: view,
            payload: Hash::digest(tag),
        }
    }

    const CHAIN: Hash = Hash::ZERO;

    fn notarize_message(p: &Proposal) -> Vec<u8> {
        p.notarize_message(&CHAIN).to_vec()
    }
    fn nullify_bytes(p: &Proposal) -> Vec<u8> {
        nullify_message(&CHAIN, p.view).to_vec()
    }
    fn finalize_message(p: &Proposal) -> Vec<u8> {
        p.finalize_message(&CHAIN).to_vec()
    }

    fn checks() -> [Check<'static>; 3] {
        [
            Check {
                namespace: NOTARIZE_VOTE,
                message: &notarize_message,
                quorum: 3,
            },
            Check {
                namespace: NULLIFY_VOTE,
                message: &nullify_bytes,
                quorum: 3,
            },
            Check {
                namespace: COMMIT_VOTE,
                message: &finalize_message,
                quorum: 3,
            },
        ]
    }

    #[test]
    fn a_quorum_of_first_votes_forms_one_certificate_and_forgeries_do_not_count() {
        let [notarize, ..] = checks();
        let keys: Vec<Keypair> = (1..=5).map(|i| Keypair::from_seed([i; 32])).collect();
        let a = proposal(1, b"a");
        let mut votes = ViewVotes::default();
        let vote = |k: &Keypair| a.sign_notarize(k, &CHAIN);
        assert!(
            votes
                .notarize(a, vote(&keys[0]), false, &notarize)
                .certificate
                .is_none()
        );
        assert!(
            votes
                .notarize(a, vote(&keys[0]), false, &notarize)
                .certificate
                .is_none()
        );
        // A vote signed for another chain: counted unchecked, found out when the quorum is checked.
        let forged = a.sign_notarize(&keys[1], &Hash::digest(b"elsewhere"));
        let tallied = votes.notarize(a, vote(&keys[2]), false, &notarize);
        assert!(tallied.certificate.is_none() && tallied.forged.is_empty());
        let tallied = votes.notarize(a, forged, false, &notarize);
        assert_eq!(tallied.forged, vec![keys[1].peer_id()]);
        assert!(tallied.certificate.is_none(), "two good votes of three");
        let tallied = votes.notarize(a, vote(&keys[3]), false, &notarize);
        let cert = tallied.certificate.expect("three good votes");
        assert_eq!(cert.votes.len(), 3);
        assert!(!cert.votes.iter().any(|v| v.validator == keys[1].peer_id()));
        // A fifth vote counts but makes no second certificate.
        assert!(
            votes
                .notarize(a, vote(&keys[4]), false, &notarize)
                .certificate
                .is_none()
        );
    }

    #[test]
    fn contradicting_votes_become_evidence_once() {
        let [notarize, nullify, finalize] = checks();
        let key = Keypair::from_seed([1; 32]);
        let (a, b) = (proposal(2, b"a"), proposal(2, b"b"));
        let mut votes = ViewVotes::default();
        votes.notarize(a, a.sign_notarize(&key, &CHAIN), false, &notarize);
        let evidence = votes
            .notarize(b, b.sign_notarize(&key, &CHAIN), false, &notarize)
            .evidence
            .expect("two proposals in one view");
        assert!(evidence.verify(&CHAIN));
        assert!(!evidence.verify(&Hash::digest(b"another chain")));
        let again = votes.notarize(b, b.sign_notarize(&key, &CHAIN), false, &notarize);
        assert!(again.evidence.is_none(), "reported once");

        let mut votes = ViewVotes::default();
        votes.finalize(a, a.sign_finalize(&key, &CHAIN), false, &finalize, &nullify);
        let evidence = votes
            .nullify(2, sign_nullify(&key, &CHAIN, 2), false, &nullify, &finalize)
            .evidence
            .expect("nullify after finalize");
        assert_eq!(evidence.validator(), key.peer_id());
        assert!(evidence.verify(&CHAIN));
    }

    thread_local! {
        /// Finalize messages built for a check: one per signature verified against them.
        static FINALIZE_CHECKS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    fn counted_finalize_message(p: &Proposal) -> Vec<u8> {
        FINALIZE_CHECKS.set(FINALIZE_CHECKS.get() + 1);
        finalize_message(p)
    }

    #[test]
    fn a_forged_ballot_is_checked_once_and_its_validator_reported() {
        let [_, nullify, _] = checks();
        let finalize = Check {
            namespace: COMMIT_VOTE,
            message: &counted_finalize_message,
            quorum: 3,
        };
        let key = Keypair::from_seed([1; 32]);
        let a = proposal(2, b"a");
        let mut votes = ViewVotes::default();
        // A finalize vote signed for another chain, counted unchecked; then a flood of nullify votes,
        // each of which would check it.
        let forged = a.sign_finalize(&key, &Hash::digest(b"elsewhere"));
        votes.finalize(a, forged, false, &finalize, &nullify);
        let mut reported = Vec::new();
        for _ in 0..100 {
            let vote = sign_nullify(&key, &CHAIN, 2);
            reported.extend(votes.nullify(2, vote, false, &nullify, &finalize).forged);
        }
        assert_eq!(FINALIZE_CHECKS.get(), 1, "checked once");
        assert_eq!(reported, vec![key.peer_id()]);
    }
}
