//! [`Evidence`]: two signed votes of one validator that no honest validator sends together, kept
//! when a view's votes are counted ([`super::votes`]) and checkable by anyone who knows the chain.

use meshwork_identity::{Hash, Namespace, PeerId};
use serde::{Deserialize, Serialize};

use super::message::{NOTARIZE_VOTE, NULLIFY_VOTE, Proposal, nullify_message};
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
        match self {
            Self::ConflictingNotarize { first, second } => {
                conflicting(first, second, chain, NOTARIZE_VOTE, Proposal::notarize_message)
            }
            Self::ConflictingFinalize { first, second } => {
                conflicting(first, second, chain, COMMIT_VOTE, Proposal::finalize_message)
            }
            Self::NullifyAndFinalize {
                view,
                nullify,
                finalize,
            } => {
                nullify.validator == finalize.1.validator
                    && finalize.0.view == *view
                    && signed(NULLIFY_VOTE, &nullify_message(chain, *view), nullify)
                    && signed(COMMIT_VOTE, &finalize.0.finalize_message(chain), &finalize.1)
            }
        }
    }
}

/// Whether `vote` signs `message` in `namespace`.
fn signed(namespace: Namespace, message: &[u8], vote: &Vote) -> bool {
    vote.validator.verify(namespace, message, &vote.signature).is_ok()
}

/// Whether two votes of one kind (signed in `namespace` over `message` of their proposal on `chain`)
/// contradict: one validator, one view, two proposals, both signatures valid.
fn conflicting(
    first: &(Proposal, Vote),
    second: &(Proposal, Vote),
    chain: &Hash,
    namespace: Namespace,
    message: fn(&Proposal, &Hash) -> [u8; 88],
) -> bool {
    first.1.validator == second.1.validator
        && first.0.view == second.0.view
        && first.0 != second.0
        && signed(namespace, &message(&first.0, chain), &first.1)
        && signed(namespace, &message(&second.0, chain), &second.1)
}
