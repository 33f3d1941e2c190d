//! How much of a store each peer and each sender's IP prefix holds, and how much they may.

use std::collections::HashMap;
use std::hash::Hash;

use meshwork_identity::PeerId;

use super::Sender;
use crate::RecordError;

/// Counts kept beside a store, not scanned, so that a store of any size costs the same per record or
/// announcement.
#[derive(Clone, Debug, Default)]
pub(super) struct Shares {
    by_peer: HashMap<PeerId, usize>,
    /// By sender; [`Sender::Local`] is never counted.
    by_sender: HashMap<Sender, usize>,
    pub(super) max_per_peer: usize,
    pub(super) max_per_prefix: usize,
}

impl Shares {
    pub(super) fn new(max_per_peer: usize, max_per_prefix: usize) -> Self {
        Self {
            max_per_peer: max_per_peer.max(1),
            max_per_prefix: max_per_prefix.max(1),
            ..Self::default()
        }
    }

    /// Why one more entry of `peer`, sent by `from`, would not fit, if it would not.
    pub(super) fn refuses(&self, peer: &PeerId, from: Sender) -> Option<RecordError> {
        if self.by_peer.get(peer).copied().unwrap_or(0) >= self.max_per_peer {
            return Some(RecordError::ShareFull);
        }
        self.sender_full(from).then_some(RecordError::PrefixShareFull)
    }

    /// Whether `from`'s prefix holds its share already.
    pub(super) fn sender_full(&self, from: Sender) -> bool {
        from != Sender::Local && self.by_sender.get(&from).copied().unwrap_or(0) >= self.max_per_prefix
    }

    /// One more (`added`) or one fewer entry of `peer`, counted against `from`.
    pub(super) fn count(&mut self, peer: PeerId, from: Sender, added: bool) {
        count(&mut self.by_peer, peer, added);
        if from != Sender::Local {
            count(&mut self.by_sender, from, added);
        }
    }
}

/// One more (`added`) or one fewer entry of `who` in `counts`; one of none is forgotten.
fn count<K: Hash + Eq + Copy>(counts: &mut HashMap<K, usize>, who: K, added: bool) {
    let n = counts.entry(who).or_insert(0);
    if added {
        *n += 1;
    } else {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(&who);
        }
    }
}
