//! Repair of the active view from the passive view: `Neighbor` requests for free slots, high priority for
//! a node that is alone, a refusal or an unanswered request moving on to the next peer, and join retries.
//! Plus the one check that keeps the two ends of a link agreeing.

use meshwork_wire::PeerId;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{HvOut, HyParView};
use crate::message::MembershipMessage as Msg;

impl HyParView {
    /// Asks passive peers to fill the free slots of the active view.
    ///
    /// A node that is alone sends one high-priority request (it cannot be refused; more would make several
    /// full peers evict a member each). Otherwise one low-priority request per free slot.
    ///
    /// "Alone" is wider than in the paper, which uses high priority only with an empty view: a node with
    /// fewer than half its slots filled counts too. Isolated nodes that find each other first (two evicted
    /// at once, asking each other) otherwise form a closed pair or triangle that no full peer ever accepts.
    /// The eviction it forces leaves the evicted peer with most of its links, so it does not cascade.
    pub(crate) fn fill(&mut self, rng: &mut ChaCha8Rng, out: &mut Vec<HvOut>) {
        let high_priority = self.is_alone();
        let mut wanted = if high_priority {
            usize::from(!self.requested.values().any(|r| r.high_priority))
        } else {
            self.active_cap
                .saturating_sub(self.active.len() + self.requested.len())
        };
        if wanted == 0 {
            return;
        }
        let mut candidates: Vec<PeerId> = self
            .passive
            .iter()
            .filter(|p| self.is_candidate(p))
            .copied()
            .collect();
        candidates.shuffle(rng);
        for peer in candidates {
            if wanted == 0 {
                break;
            }
            wanted -= 1;
            self.request(peer, high_priority, out);
        }
    }

    /// Fewer than half the active slots filled: requests go out with high priority.
    pub(super) fn is_alone(&self) -> bool {
        self.active.len() * 2 < self.active_cap
    }

    /// A peer worth a `Neighbor` request: not us, not already a neighbour or asked, not banned or refusing.
    pub(super) fn is_candidate(&self, peer: &PeerId) -> bool {
        *peer != self.me
            && !self.is_active(peer)
            && !self.requested.contains_key(peer)
            && !self.refused.contains(peer)
            && !self.is_banned(peer)
    }

    /// The start of a shuffle round: refusals are forgotten, a node alone with nobody left to ask joins
    /// again through its contacts, and free slots are filled.
    pub(super) fn new_round(&mut self, rng: &mut ChaCha8Rng, out: &mut Vec<HvOut>) {
        self.refused.clear();
        // A request from before the last round got no answer: drop it, and ask someone else this round.
        let round = self.round;
        let refused = &mut self.refused;
        self.requested.retain(|peer, r| {
            let live = r.round == round;
            if !live {
                refused.insert(*peer);
            }
            live
        });
        self.round += 1;
        self.sweep_limits();
        if self.active.is_empty() && self.requested.is_empty() && self.passive.is_empty() {
            for contact in self.contacts.clone() {
                self.join(contact, rng, out);
            }
        }
        self.fill(rng, out);
    }

    /// Broadcast traffic came from `from`. If it is connected but not in our active view (and not a peer we
    /// asked), its view holds us while ours does not, a state the two views should never be in (messages
    /// that overtake each other on a link can leave it): tell it, so it drops us and refills elsewhere.
    pub(crate) fn on_tree_traffic(&mut self, from: PeerId, out: &mut Vec<HvOut>) {
        if self.connected.contains(&from) && !self.is_active(&from) && !self.requested.contains_key(&from) {
            out.push(HvOut::Send(from, Msg::Disconnect { alternative: None }));
        }
    }
}
