//! The wire types of `/meshwork/simplex/1`: proposals, the three kinds of vote and the certificates they
//! add up to. Every collection is bounded (ARCHITECTURE.md).

use meshwork_identity::{Hash, Keypair, Namespace};
use meshwork_wire::BoundedVec;
use serde::{Deserialize, Serialize};

use crate::certificate::{COMMIT_VOTE, Certificate, MAX_CERTIFICATE_VOTES, Vote};

/// The signing namespace of notarize votes.
pub const NOTARIZE_VOTE: Namespace = Namespace::new(b"meshwork/consensus/simplex/notarize/1");
/// The signing namespace of nullify votes.
pub const NULLIFY_VOTE: Namespace = Namespace::new(b"meshwork/consensus/simplex/nullify/1");

/// The most views one [`Message::Backfill`] asks for.
pub const MAX_BACKFILL_VIEWS: usize = 32;

/// A leader's proposal: a payload (a block id, for a chain) at `height`, extending the block notarized in
/// view `parent`. Every view from `parent + 1` to `view - 1` must have been nullified (skipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Proposal {
    /// The view the proposal is made in.
    pub view: u64,
    /// The view of the parent proposal (0: the genesis block).
    pub parent: u64,
    /// The parent's height plus one.
    pub height: u64,
    /// What is proposed: the application's digest of the block.
    pub payload: Hash,
}

impl Proposal {
    /// The genesis proposal of a chain whose first block has id `payload`: view 0, height 0, notarized
    /// and final by definition.
    pub fn genesis(payload: Hash) -> Self {
        Self {
            view: 0,
            parent: 0,
            height: 0,
            payload,
        }
    }

    /// The bytes a notarize vote signs: the chain's genesis payload (so a vote counts on one chain only),
    /// then view, parent and height as big-endian `u64`s, then the payload.
    pub fn notarize_message(&self, chain: &Hash) -> [u8; 88] {
        Certificate::vote_message(chain, &self.payload, self.height, self.view, self.parent)
    }

    /// The bytes a finalize vote signs: the same as a notarize vote's (in another namespace), which are
    /// [`Certificate::vote_message`]'s, so a [`Finalization`] is a [`Certificate`]. The parent is signed:
    /// a finalization cannot be re-pointed at another parent.
    pub fn finalize_message(&self, chain: &Hash) -> [u8; 88] {
        self.notarize_message(chain)
    }

    /// `key`'s notarize vote for this proposal on `chain`.
    pub fn sign_notarize(&self, key: &Keypair, chain: &Hash) -> Vote {
        sign(key, NOTARIZE_VOTE, &self.notarize_message(chain))
    }

    /// `key`'s finalize vote for this proposal on `chain`.
    pub fn sign_finalize(&self, key: &Keypair, chain: &Hash) -> Vote {
        sign(key, COMMIT_VOTE, &self.finalize_message(chain))
    }
}

/// The bytes a nullify vote for `view` signs: the chain's genesis payload, then the view.
pub fn nullify_message(chain: &Hash, view: u64) -> [u8; 40] {
    let mut message = [0u8; 40];
    message[..32].copy_from_slice(chain.as_bytes());
    message[32..].copy_from_slice(&view.to_be_bytes());
    message
}

/// `key`'s nullify vote for `view` on `chain`.
pub fn sign_nullify(key: &Keypair, chain: &Hash, view: u64) -> Vote {
    sign(key, NULLIFY_VOTE, &nullify_message(chain, view))
}

fn sign(key: &Keypair, namespace: Namespace, message: &[u8]) -> Vote {
    Vote {
        validator: key.peer_id(),
        signature: key.sign(namespace, message),
    }
}

/// The votes of a certificate, one per validator, more than two thirds of the set.
pub type Votes = BoundedVec<Vote, MAX_CERTIFICATE_VOTES>;

/// More than two thirds of the validators voted to notarize `proposal`: it may be built on, and the
/// view is over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notarization {
    /// The notarized proposal.
    pub proposal: Proposal,
    /// The notarize votes.
    pub votes: Votes,
}

/// More than two thirds of the validators voted to skip `view`: no block of it will be final.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nullification {
    /// The skipped view.
    pub view: u64,
    /// The nullify votes.
    pub votes: Votes,
}

/// More than two thirds of the validators voted to finalize `proposal`: it and every ancestor are final.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finalization {
    /// The final proposal.
    pub proposal: Proposal,
    /// The finalize votes (commit votes, [`COMMIT_VOTE`]).
    pub votes: Votes,
}

impl Finalization {
    /// The same quorum as the crate's [`Certificate`], the finality proof [`Finality`](crate::Finality)
    /// carries: block, height and round are the proposal's payload, height and view.
    pub fn certificate(&self) -> Certificate {
        Certificate {
            block: self.proposal.payload,
            height: self.proposal.height,
            round: self.proposal.view,
            parent_round: self.proposal.parent,
            votes: self.votes.clone(),
        }
    }
}

/// A message between two validators (or from a validator to an observer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// The sender votes to notarize `proposal`. The leader's own notarize vote is the proposal.
    Notarize {
        /// What the vote is for.
        proposal: Proposal,
        /// The sender's signature over [`Proposal::notarize_message`].
        vote: Vote,
    },
    /// The sender votes to skip `view` (its leader was too slow, or the view did not end in time).
    Nullify {
        /// The view.
        view: u64,
        /// The sender's signature over [`nullify_message`].
        vote: Vote,
    },
    /// The sender saw `proposal` notarized without having voted to skip its view, and votes to finalize
    /// it.
    Finalize {
        /// What the vote is for.
        proposal: Proposal,
        /// The sender's signature over [`Proposal::finalize_message`].
        vote: Vote,
    },
    /// A notarization, sent to a validator that is behind (it voted in a view the sender has left).
    Notarization(Notarization),
    /// A nullification, sent for the same reason.
    Nullification(Nullification),
    /// A finalization, sent for the same reason.
    Finalization(Finalization),
    /// Asks for the certificates the sender lacks to vote on a proposal (its parent's notarization and
    /// the nullifications of the views in between), or to link a finalization to its own last final
    /// block.
    Backfill(BoundedVec<u64, MAX_BACKFILL_VIEWS>),
}

impl Message {
    /// The largest encoded message: a certificate of [`MAX_CERTIFICATE_VOTES`] votes of 96 bytes, its
    /// proposal and the encoding's length prefixes, with room to spare.
    pub const MAX_SIZE: usize = 32 * 1024;
}

#[cfg(test)]
mod tests {
    use meshwork_wire::encode;

    use super::*;

    #[test]
    fn the_largest_certificate_fits_the_message_bound() {
        let key = Keypair::from_seed([1; 32]);
        let proposal = Proposal {
            view: u64::MAX,
            parent: u64::MAX,
            height: u64::MAX,
            payload: Hash::digest(b"p"),
        };
        let vote = proposal.sign_finalize(&key, &Hash::ZERO);
        let votes: Votes = vec![vote; MAX_CERTIFICATE_VOTES].try_into().unwrap();
        let message = Message::Finalization(Finalization { proposal, votes });
        let len = encode(&message).unwrap().len();
        assert!(len <= Message::MAX_SIZE, "{len} bytes");
    }

    #[test]
    fn votes_sign_what_they_name_and_on_one_chain_only() {
        let key = Keypair::from_seed([2; 32]);
        let chain = Hash::digest(b"chain a");
        let proposal = Proposal {
            view: 3,
            parent: 1,
            height: 2,
            payload: Hash::digest(b"block"),
        };
        let vote = proposal.sign_notarize(&key, &chain);
        let peer = key.peer_id();
        assert!(
            peer.verify(NOTARIZE_VOTE, &proposal.notarize_message(&chain), &vote.signature)
                .is_ok()
        );
        let other_chain = Hash::digest(b"chain b");
        assert!(
            peer.verify(
                NOTARIZE_VOTE,
                &proposal.notarize_message(&other_chain),
                &vote.signature
            )
            .is_err()
        );
        let moved = Proposal {
            parent: 2,
            ..proposal
        };
        assert!(
            peer.verify(NOTARIZE_VOTE, &moved.notarize_message(&chain), &vote.signature)
                .is_err()
        );

        let nullify = sign_nullify(&key, &chain, 3);
        assert!(
            peer.verify(NULLIFY_VOTE, &nullify_message(&chain, 3), &nullify.signature)
                .is_ok()
        );
        assert!(
            peer.verify(NULLIFY_VOTE, &nullify_message(&chain, 4), &nullify.signature)
                .is_err()
        );

        // A finalization is a certificate: the same votes verify as commit votes.
        let keys: Vec<Keypair> = (1..=4).map(|i| Keypair::from_seed([i; 32])).collect();
        let validators: Vec<_> = keys.iter().map(Keypair::peer_id).collect();
        let votes: Vec<Vote> = keys[..3]
            .iter()
            .map(|k| proposal.sign_finalize(k, &chain))
            .collect();
        let finalization = Finalization {
            proposal,
            votes: votes.try_into().unwrap(),
        };
        assert_eq!(finalization.certificate().verify(&chain, &validators), Ok(()));
    }
}
