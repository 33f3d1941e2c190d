//! Counting one view's votes: each validator's first vote of each kind counts, a quorum of them becomes
//! a certificate, and a second vote that contradicts the first is kept as [`Evidence`].

use std::collections::HashMap;

use meshwork_identity::{Hash, PeerId};
use serde::{Deserialize, Serialize};

use super::message::{
    Finalization, NOTARIZE_VOTE, NULLIFY_VOTE, Notarization, Nullification, Proposal, Votes, nullify_message,
};
use crate::certificate::{COMMIT_VOTE, Vote};

/// Proof that a validator broke the protocol: two signed votes no honest validator sends together. Anyone
/// who knows the chain can check it ([`Evidence::verify`]); more than a third of the validators must
/// produce such evidence before two conflicting blocks can be final.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Evidence {
    /// Two notarize votes in one view, for different proposals.
    ConflictingNotarize {
        /// The first vote seen.
        first: (Proposal, Vote),
        /// The conflicting one.
        second: (Proposal, Vote),
    },
    /// Two finalize votes in one view, for different proposals.
    ConflictingFinalize {
        /// The first vote seen.
        first: (Proposal, Vote),
        /// The conflicting one.
        second: (Proposal, Vote),
    },
    /// A vote to skip a view and a vote to finalize a proposal of the same view.
    NullifyAndFinalize {
        /// The view.
        view: u64,
        /// The nullify vote.
        nullify: Vote,
        /// The finalize vote.
        finalize: (Proposal, Vote),
    },
}

impl Evidence {
    /// The validator it convicts.
    pub fn validator(&self) -> PeerId {
        match self {
            Self::ConflictingNotarize { first, .. } | Self::ConflictingFinalize { first, .. } => {
                first.1.validator
            }
            Self::NullifyAndFinalize { nullify, .. } => nullify.validator,
        }
    }

    /// The view it happened in.
    pub fn view(&self) -> u64 {
        match self {
            Self::ConflictingNotarize { first, .. } | Self::ConflictingFinalize { first, .. } => first.0.view,
            Self::NullifyAndFinalize { view, .. } => *view,
        }
    }

    /// Whether both votes are signed by the same validator on `chain`, in one view, and contradict.
    pub fn verify(&self, chain: &Hash) -> bool {
        let signed = |namespace, message: &[u8], vote: &Vote| {
            vote.validator.verify(namespace, message, &vote.signature).is_ok()
        };
        match self {
            Self::ConflictingNotarize { first, second } => {
                first.1.validator == second.1.validator
                    && first.0.view == second.0.view
                    && first.0 != second.0
                    && signed(NOTARIZE_VOTE, &first.0.notarize_message(chain), &first.1)
                    && signed(NOTARIZE_VOTE, &second.0.notarize_message(chain), &second.1)
            }
            Self::ConflictingFinalize { first, second } => {
                first.1.validator == second.1.validator
                    && first.0.view == second.0.view
                    && first.0.finalize_message() != second.0.finalize_message()
                    && signed(COMMIT_VOTE, &first.0.finalize_message(), &first.1)
                    && signed(COMMIT_VOTE, &second.0.finalize_message(), &second.1)
            }
            Self::NullifyAndFinalize {
                view,
                nullify,
                finalize,
            } => {
                nullify.validator == finalize.1.validator
                    && finalize.0.view == *view
                    && signed(NULLIFY_VOTE, &nullify_message(chain, *view), nullify)
                    && signed(COMMIT_VOTE, &finalize.0.finalize_message(), &finalize.1)
            }
        }
    }
}

/// What became of a vote handed to [`ViewVotes`].
#[derive(Debug)]
pub(crate) enum Counted<C> {
    /// It counted; with the certificate if it completed a quorum.
    Yes(Option<C>),
    /// The validator already voted the same way: nothing changed.
    Repeat,
    /// It contradicts the validator's earlier vote: the evidence (reported once per validator and view).
    Equivocation(Option<Box<Evidence>>),
}

/// The votes of one view, and the certificates they formed.
#[derive(Debug, Default)]
pub(crate) struct ViewVotes {
    /// The leader's proposal: the first notarize vote of the leader.
    pub(crate) proposal: Option<Proposal>,
    notarizes: HashMap<PeerId, (Proposal, Vote)>,
    notarize_count: HashMap<Proposal, usize>,
    nullifies: HashMap<PeerId, Vote>,
    finalizes: HashMap<PeerId, (Proposal, Vote)>,
    finalize_count: HashMap<Proposal, usize>,
    /// Validators already convicted in this view: one report each.
    convicted: Vec<PeerId>,
    pub(crate) notarization: Option<Notarization>,
    pub(crate) nullification: Option<Nullification>,
    pub(crate) finalization: Option<Finalization>,
}

impl ViewVotes {
    /// Counts a notarize vote whose signature was checked.
    pub(crate) fn notarize(
        &mut self,
        proposal: Proposal,
        vote: Vote,
        quorum: usize,
    ) -> Counted<Notarization> {
        if let Some(first) = self.notarizes.get(&vote.validator) {
            if first.0 == proposal {
                return Counted::Repeat;
            }
            let evidence = Evidence::ConflictingNotarize {
                first: *first,
                second: (proposal, vote),
            };
            return Counted::Equivocation(self.convict(evidence));
        }
        self.notarizes.insert(vote.validator, (proposal, vote));
        let count = self.notarize_count.entry(proposal).or_default();
        *count += 1;
        if *count < quorum || self.notarization.is_some() {
            return Counted::Yes(None);
        }
        let votes = collect(
            self.notarizes
                .values()
                .filter(|(p, _)| *p == proposal)
                .map(|(_, v)| *v),
        );
        let notarization = Notarization { proposal, votes };
        self.notarization = Some(notarization.clone());
        Counted::Yes(Some(notarization))
    }

    /// Counts a nullify vote whose signature was checked.
    pub(crate) fn nullify(&mut self, view: u64, vote: Vote, quorum: usize) -> Counted<Nullification> {
        if let Some(finalize) = self.finalizes.get(&vote.validator) {
            let evidence = Evidence::NullifyAndFinalize {
                view,
                nullify: vote,
                finalize: *finalize,
            };
            return Counted::Equivocation(self.convict(evidence));
        }
        if self.nullifies.insert(vote.validator, vote).is_some() {
            return Counted::Repeat;
        }
        if self.nullifies.len() < quorum || self.nullification.is_some() {
            return Counted::Yes(None);
        }
        let nullification = Nullification {
            view,
            votes: collect(self.nullifies.values().copied()),
        };
        self.nullification = Some(nullification.clone());
        Counted::Yes(Some(nullification))
    }

    /// Counts a finalize vote whose signature was checked.
    pub(crate) fn finalize(
        &mut self,
        proposal: Proposal,
        vote: Vote,
        quorum: usize,
    ) -> Counted<Finalization> {
        if let Some(nullify) = self.nullifies.get(&vote.validator) {
            let evidence = Evidence::NullifyAndFinalize {
                view: proposal.view,
                nullify: *nullify,
                finalize: (proposal, vote),
            };
            return Counted::Equivocation(self.convict(evidence));
        }
        if let Some(first) = self.finalizes.get(&vote.validator) {
            if first.0 == proposal {
                return Counted::Repeat;
            }
            let evidence = Evidence::ConflictingFinalize {
                first: *first,
                second: (proposal, vote),
            };
            return Counted::Equivocation(self.convict(evidence));
        }
        self.finalizes.insert(vote.validator, (proposal, vote));
        let count = self.finalize_count.entry(proposal).or_default();
        *count += 1;
        if *count < quorum || self.finalization.is_some() {
            return Counted::Yes(None);
        }
        let votes = collect(
            self.finalizes
                .values()
                .filter(|(p, _)| *p == proposal)
                .map(|(_, v)| *v),
        );
        let finalization = Finalization { proposal, votes };
        self.finalization = Some(finalization.clone());
        Counted::Yes(Some(finalization))
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
    use crate::bft::message::sign_nullify;

    fn proposal(view: u64, tag: &[u8]) -> Proposal {
        Proposal {
            view,
            parent: view - 1,
            height: view,
            payload: Hash::digest(tag),
        }
    }

    #[test]
    fn a_quorum_of_first_votes_forms_one_certificate() {
        let chain = Hash::digest(b"chain");
        let keys: Vec<Keypair> = (1..=4).map(|i| Keypair::from_seed([i; 32])).collect();
        let a = proposal(1, b"a");
        let mut votes = ViewVotes::default();
        assert!(matches!(
            votes.notarize(a, a.sign_notarize(&keys[0], &chain), 3),
            Counted::Yes(None)
        ));
        assert!(matches!(
            votes.notarize(a, a.sign_notarize(&keys[0], &chain), 3),
            Counted::Repeat
        ));
        assert!(matches!(
            votes.notarize(a, a.sign_notarize(&keys[1], &chain), 3),
            Counted::Yes(None)
        ));
        let Counted::Yes(Some(cert)) = votes.notarize(a, a.sign_notarize(&keys[2], &chain), 3) else {
            panic!("the third vote makes a quorum of three");
        };
        assert_eq!(cert.votes.len(), 3);
        // A fourth vote counts but makes no second certificate.
        assert!(matches!(
            votes.notarize(a, a.sign_notarize(&keys[3], &chain), 3),
            Counted::Yes(None)
        ));
    }

    #[test]
    fn contradicting_votes_become_evidence_once() {
        let chain = Hash::digest(b"chain");
        let key = Keypair::from_seed([1; 32]);
        let (a, b) = (proposal(2, b"a"), proposal(2, b"b"));
        let mut votes = ViewVotes::default();
        votes.notarize(a, a.sign_notarize(&key, &chain), 3);
        let Counted::Equivocation(Some(evidence)) = votes.notarize(b, b.sign_notarize(&key, &chain), 3)
        else {
            panic!("two proposals in one view");
        };
        assert!(evidence.verify(&chain));
        assert!(!evidence.verify(&Hash::digest(b"another chain")));
        assert!(matches!(
            votes.notarize(b, b.sign_notarize(&key, &chain), 3),
            Counted::Equivocation(None)
        ));

        let mut votes = ViewVotes::default();
        votes.finalize(a, a.sign_finalize(&key), 3);
        let Counted::Equivocation(Some(evidence)) = votes.nullify(2, sign_nullify(&key, &chain, 2), 3) else {
            panic!("nullify after finalize");
        };
        assert_eq!(evidence.validator(), key.peer_id());
        assert!(evidence.verify(&chain));
    }
}
