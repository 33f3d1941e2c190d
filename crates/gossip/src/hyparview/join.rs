//! Joining (HyParView §4.2): `Join` to a contact, which announces the joiner with `ForwardJoin` random
//! walks; the node where a walk ends asks the joiner to be its neighbour, nodes a few hops before the
//! end keep it in their passive views. The joiner is named with the address its contact observed, so
//! the node at the end of the walk can dial it.

use meshwork_wire::{DropReason, PeerId};
use rand_chacha::ChaCha8Rng;

use super::{HvOut, HyParView, MAX_CONTACTS};
use crate::message::{MembershipMessage as Msg, PeerEntry};

impl HyParView {
    /// Joins the overlay through `contact`, and remembers it for join retries.
    pub(crate) fn join(&mut self, contact: PeerId, rng: &mut ChaCha8Rng, out: &mut Vec<HvOut>) {
        if contact == self.me || self.is_banned(&contact) {
            return;
        }
        if !self.contacts.contains(&contact) && self.contacts.len() < MAX_CONTACTS {
            self.contacts.push(contact);
        }
        let joining = self.dialing.get(&contact).is_some_and(|q| q.contains(&Msg::Join));
        if joining {
            return;
        }
        if self.connected.contains(&contact) {
            // Already connected (another protocol of a composite holds the connection): take the
            // contact into the active view now, as `on_peer_up` does for a dialled one (§4.2).
            self.add_active(contact, rng, out);
        }
        self.send(contact, Msg::Join, out);
    }

    pub(super) fn on_forward_join(
        &mut self,
        from: PeerId,
        joiner: PeerEntry,
        ttl: u8,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<HvOut>,
    ) {
        // Walks run over active links: one from anyone else is not a walk (nor is one about a peer we
        // refuse, or at an address we would not dial on the sender's word), and it must not fill our
        // views.
        if !self.is_active(&from) {
            out.push(HvOut::Dropped(from, DropReason::Unsolicited));
            return;
        }
        if joiner.id == self.me || self.is_banned(&joiner.id) || !self.plausible(&joiner, &from) {
            return;
        }
        // No walk is longer than ours: the sender sets the count, and each hop spends the next
        // node's request allowance (a walk of 255 hops drained a small overlay's allowances).
        let ttl = ttl.min(self.arwl);
        let next = self.random_active_except(&[from, joiner.id], rng);
        match next {
            Some(next) if ttl > 0 => {
                if ttl == self.prwl && self.add_passive(joiner.id, Some(from), rng) {
                    self.remember(&joiner);
                }
                out.push(HvOut::Send(next, Msg::ForwardJoin { joiner, ttl: ttl - 1 }));
            }
            _ => {
                if !self.is_active(&joiner.id) {
                    // The one peer this walk makes us dial.
                    self.request(joiner.id, true, out);
                    self.remember(&joiner);
                }
            }
        }
    }
}
