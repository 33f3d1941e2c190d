//! [`Certificate`]: a quorum of validator votes committing a block, the finality proof of a BFT engine.
//!
//! No BFT engine ships yet; this is the type one fills (ARCHITECTURE.md: fixed validator set, certificates,
//! finality in a few message delays). A certificate for block `B` at `height` in `round` holds the
//! signatures of more than two thirds of a fixed validator set over the same commit message, so two
//! conflicting certificates for one height need more than a third of the validators to sign twice.

use std::collections::HashSet;

use meshwork_identity::{Keypair, Namespace, PeerId, Signature};
use meshwork_ledger::BlockId;
use meshwork_wire::BoundedVec;
use serde::{Deserialize, Serialize};

use crate::error::CertificateError;

/// The most votes one certificate carries (so the largest validator set is this many).
pub const MAX_CERTIFICATE_VOTES: usize = 256;

/// The signing namespace of commit votes.
pub const COMMIT_VOTE: Namespace = Namespace::new(b"meshwork/consensus/commit-vote/1");

/// One validator's signed vote to commit a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The validator.
    pub validator: PeerId,
    /// Its signature over [`Certificate::vote_message`] in [`COMMIT_VOTE`].
    pub signature: Signature,
}

/// A quorum of commit votes for one block: BFT finality.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// The committed block.
    pub block: BlockId,
    /// Its height.
    pub height: u64,
    /// The consensus round (view) in which it was committed.
    pub round: u64,
    /// The round of its parent block (votes sign it: a certificate cannot be re-pointed at another
    /// parent).
    pub parent_round: u64,
    /// The votes, one per validator.
    pub votes: BoundedVec<Vote, MAX_CERTIFICATE_VOTES>,
}

impl Certificate {
    /// The bytes every vote signs: the chain's genesis id (so a vote counts on one chain only), then
    /// round, parent round and height as big-endian `u64`s, then the block id.
    pub fn vote_message(
        chain: &BlockId,
        block: &BlockId,
        height: u64,
        round: u64,
        parent_round: u64,
    ) -> [u8; 88] {
        let mut message = [0u8; 88];
        message[..32].copy_from_slice(chain.as_bytes());
        message[32..40].copy_from_slice(&round.to_be_bytes());
        message[40..48].copy_from_slice(&parent_round.to_be_bytes());
        message[48..56].copy_from_slice(&height.to_be_bytes());
        message[56..].copy_from_slice(block.as_bytes());
        message
    }

    /// `key`'s vote to commit `block` at `height` in `round`, on the block of `parent_round`, on `chain`.
    pub fn sign_vote(
        key: &Keypair,
        chain: &BlockId,
        block: &BlockId,
        height: u64,
        round: u64,
        parent_round: u64,
    ) -> Vote {
        Vote {
            validator: key.peer_id(),
            signature: key.sign(
                COMMIT_VOTE,
                &Self::vote_message(chain, block, height, round, parent_round),
            ),
        }
    }

    /// The bytes this certificate's votes sign on `chain`.
    pub fn message(&self, chain: &BlockId) -> [u8; 88] {
        Self::vote_message(chain, &self.block, self.height, self.round, self.parent_round)
    }

    /// Votes needed among `validators` validators: more than two thirds.
    pub fn quorum(validators: usize) -> usize {
        validators * 2 / 3 + 1
    }

    /// Checks that more than two thirds of `validators` signed this certificate's commit message on
    /// `chain`, each once, with valid signatures.
    pub fn verify(&self, chain: &BlockId, validators: &[PeerId]) -> Result<(), CertificateError> {
        if validators.is_empty() {
            return Err(CertificateError::NoValidators);
        }
        let set: HashSet<&PeerId> = validators.iter().collect();
        let message = self.message(chain);
        let mut voted = HashSet::new();
        for vote in self.votes.iter() {
            if !set.contains(&vote.validator) {
                return Err(CertificateError::UnknownValidator(vote.validator));
            }
            if !voted.insert(vote.validator) {
                return Err(CertificateError::DuplicateVote(vote.validator));
            }
            vote.validator
                .verify(COMMIT_VOTE, &message, &vote.signature)
                .map_err(|_| CertificateError::BadSignature(vote.validator))?;
        }
        let need = Self::quorum(set.len());
        if voted.len() < need {
            return Err(CertificateError::NoQuorum {
                have: voted.len(),
                need,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use meshwork_identity::Hash;

    use super::*;

    const CHAIN: Hash = Hash::ZERO;

    #[test]
    fn a_quorum_verifies_and_anything_less_does_not() {
        let keys: Vec<Keypair> = (1..=4).map(|i| Keypair::from_seed([i; 32])).collect();
        let validators: Vec<PeerId> = keys.iter().map(Keypair::peer_id).collect();
        let block = Hash::digest(b"block");
        let votes: Vec<Vote> = keys[..3]
            .iter()
            .map(|key| Certificate::sign_vote(key, &CHAIN, &block, 7, 0, 0))
            .collect();
        let mut cert = Certificate {
            block,
            height: 7,
            round: 0,
            parent_round: 0,
            votes: votes.clone().try_into().unwrap(),
        };
        assert_eq!(cert.verify(&CHAIN, &validators), Ok(()));

        cert.votes = votes[..2].to_vec().try_into().unwrap();
        assert_eq!(
            cert.verify(&CHAIN, &validators),
            Err(CertificateError::NoQuorum { have: 2, need: 3 })
        );

        cert.votes = vec![votes[0], votes[1], votes[0]].try_into().unwrap();
        assert_eq!(
            cert.verify(&CHAIN, &validators),
            Err(CertificateError::DuplicateVote(validators[0]))
        );

        // A vote for another round does not count for this one.
        let mut wrong = votes.clone();
        wrong[2] = Certificate::sign_vote(&keys[2], &CHAIN, &block, 7, 1, 0);
        cert.votes = wrong.try_into().unwrap();
        assert_eq!(
            cert.verify(&CHAIN, &validators),
            Err(CertificateError::BadSignature(validators[2]))
        );

        let outsider = Keypair::from_seed([9; 32]);
        let mut foreign = votes;
        foreign[2] = Certificate::sign_vote(&outsider, &CHAIN, &block, 7, 0, 0);
        cert.votes = foreign.try_into().unwrap();
        assert_eq!(
            cert.verify(&CHAIN, &validators),
            Err(CertificateError::UnknownValidator(outsider.peer_id()))
        );
    }
}
