//! The validator set and the engine's settings.

use std::collections::HashMap;
use std::time::Duration;

use meshwork_identity::{BatchVerifier, Hash, Namespace, PeerId};

use crate::certificate::{Certificate, MAX_CERTIFICATE_VOTES, Vote};
use crate::error::CertificateError;

/// A fixed set of validators, each with one vote. The leader of view `v` is validator `v mod n`
/// (round robin, as in Simplex's paper; a predictable leader lets the next one prepare).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    list: Vec<PeerId>,
    index: HashMap<PeerId, usize>,
}

impl ValidatorSet {
    /// The set of `validators`, in leader order. Fails if it is empty, larger than
    /// [`MAX_CERTIFICATE_VOTES`], or names a key twice.
    pub fn new(validators: Vec<PeerId>) -> Result<Self, CertificateError> {
        if validators.is_empty() {
            return Err(CertificateError::NoValidators);
        }
        if validators.len() > MAX_CERTIFICATE_VOTES {
            return Err(CertificateError::TooManyValidators(validators.len()));
        }
        let mut index = HashMap::with_capacity(validators.len());
        for (i, peer) in validators.iter().enumerate() {
            if index.insert(*peer, i).is_some() {
                return Err(CertificateError::DuplicateVote(*peer));
            }
        }
        Ok(Self {
            list: validators,
            index,
        })
    }

    /// How many validators there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Always false: a set has at least one validator.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The validators, in leader order.
    pub fn iter(&self) -> impl Iterator<Item = &PeerId> {
        self.list.iter()
    }

    /// Whether `peer` is a validator.
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.index.contains_key(peer)
    }

    /// The leader of `view`.
    pub fn leader(&self, view: u64) -> PeerId {
        self.list[(view % self.list.len() as u64) as usize]
    }

    /// Votes that make a certificate: more than two thirds.
    pub fn quorum(&self) -> usize {
        Certificate::quorum(self.list.len())
    }

    /// Checks that `votes` hold a quorum of distinct validators, each signing `message` in `namespace`
    /// (one batch verification).
    pub fn verify_quorum(
        &self,
        namespace: Namespace,
        message: &[u8],
        votes: &[Vote],
    ) -> Result<(), CertificateError> {
        let mut seen = vec![false; self.list.len()];
        let mut batch = BatchVerifier::with_capacity(votes.len());
        for vote in votes {
            let i = *self
                .index
                .get(&vote.validator)
                .ok_or(CertificateError::UnknownValidator(vote.validator))?;
            if std::mem::replace(&mut seen[i], true) {
                return Err(CertificateError::DuplicateVote(vote.validator));
            }
            batch.push(&vote.validator, namespace, message, &vote.signature);
        }
        let need = self.quorum();
        if votes.len() < need {
            return Err(CertificateError::NoQuorum {
                have: votes.len(),
                need,
            });
        }
        batch.verify().map_err(|error| match error {
            meshwork_identity::VerifyError::InvalidInBatch { index } => {
                CertificateError::BadSignature(votes[index].validator)
            }
            _ => CertificateError::BadSignature(votes[0].validator),
        })
    }
}

/// The engine's settings. Timeouts follow commonware's simplex defaults (a leader gets 1 s to propose, a
/// view 2 s to be notarized); they bound how long a crashed or silent leader stalls the chain, not how
/// fast a healthy one finalises, which is three message delays whatever they are.
#[derive(Clone, Debug)]
pub struct BftConfig {
    /// The validators, in leader order.
    pub validators: ValidatorSet,
    /// The genesis block's id: proposals at height 1 extend it, and every vote signs it, so a vote
    /// counts on one chain only.
    pub genesis: Hash,
    /// How long a validator waits for the leader's proposal before voting to skip the view.
    pub leader_timeout: Duration,
    /// How long a validator waits for the view to be notarized before voting to skip it.
    pub notarization_timeout: Duration,
    /// How often a validator stuck in a view sends its nullify vote again (to every validator, with the
    /// certificate that let it enter the view), so validators that lost messages catch up.
    pub retry: Duration,
    /// How long to wait for the answer to a [`Backfill`](super::Message::Backfill) before asking
    /// another validator.
    pub backfill_timeout: Duration,
    /// A peer's backfill requests are answered at most this often (an answer may be many certificates).
    pub backfill_interval: Duration,
    /// How soon to dial a validator again after its connection went down.
    pub redial: Duration,
    /// Votes for views more than this far ahead of ours are ignored (they cannot fill memory);
    /// certificates are accepted from any view, since they prove the network moved on.
    pub max_views_ahead: u64,
    /// Certificates kept behind the last final view, to answer [`Backfill`](super::Message::Backfill)
    /// requests of validators that fell behind.
    pub history_views: u64,
}

impl BftConfig {
    /// The default settings for `validators` on the chain starting at `genesis`.
    pub fn new(validators: ValidatorSet, genesis: Hash) -> Self {
        Self {
            validators,
            genesis,
            leader_timeout: Duration::from_secs(1),
            notarization_timeout: Duration::from_secs(2),
            retry: Duration::from_secs(5),
            redial: Duration::from_secs(1),
            backfill_timeout: Duration::from_secs(1),
            backfill_interval: Duration::from_millis(250),
            max_views_ahead: 64,
            history_views: 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use meshwork_identity::Keypair;

    use super::*;
    use crate::bft::message::{NULLIFY_VOTE, nullify_message, sign_nullify};

    #[test]
    fn quorums_are_checked_in_one_batch_and_name_the_culprit() {
        let keys: Vec<Keypair> = (1..=4).map(|i| Keypair::from_seed([i; 32])).collect();
        let set = ValidatorSet::new(keys.iter().map(Keypair::peer_id).collect()).unwrap();
        assert_eq!(set.quorum(), 3);
        assert_eq!(set.leader(5), keys[1].peer_id());
        let chain = Hash::digest(b"chain");
        let message = nullify_message(&chain, 9);
        let mut votes: Vec<Vote> = keys[..3].iter().map(|k| sign_nullify(k, &chain, 9)).collect();
        assert_eq!(set.verify_quorum(NULLIFY_VOTE, &message, &votes), Ok(()));
        votes[1] = sign_nullify(&keys[1], &chain, 8);
        assert_eq!(
            set.verify_quorum(NULLIFY_VOTE, &message, &votes),
            Err(CertificateError::BadSignature(keys[1].peer_id()))
        );
        assert!(matches!(
            set.verify_quorum(NULLIFY_VOTE, &message, &votes[..2]),
            Err(CertificateError::NoQuorum { have: 2, need: 3 })
        ));
        assert!(ValidatorSet::new(vec![keys[0].peer_id(), keys[0].peer_id()]).is_err());
    }
}
