//! Broadcast traffic from a neighbour: tree messages dispatched to the Plumtree, and pushed copies
//! taken through the topic check, the signature check (alone or in a batch, [`super::verify`]) and the
//! waste allowance before the tree sees them.

use meshwork_wire::{DropReason, Instant, PeerId};

use super::Gossip;
use super::verify::Pushed;
use crate::message::{GossipMessage, TreeMessage};
use crate::plumtree::{GraftCheck, PtOut};
use crate::score::Penalty;

impl Gossip {
    pub(super) fn on_tree_message(&mut self, now: Instant, from: PeerId, msg: TreeMessage) {
        match msg {
            TreeMessage::Gossip { message, hops } => {
                let tree = message.origin;
                self.on_pushed(now, from, message, hops, tree, true);
            }
            TreeMessage::Borrowed { tree, message, hops } => {
                let tree = self.tree.tree_of(tree).unwrap_or(message.origin);
                self.on_pushed(now, from, message, hops, tree, false);
            }
            TreeMessage::IHave { ids } => self.tree.on_ihave(now, from, &ids, &mut self.pt_out),
            TreeMessage::Graft { id } => {
                let check = self.tree.on_graft(now, from, id, &mut self.pt_out);
                // A graft for an id we do not remember announcing to the peer is a request for free
                // bytes, or (rarely) for one announced so long ago that we forgot: waste, like a
                // duplicate on a pruned link, and declined within the peer's allowance (an honest
                // grafter is then not left waiting out its promise). Repeats of an announced id are
                // no waste (an honest peer grafts again after a timeout).
                if check == GraftCheck::Unannounced {
                    if self.scores.waste(from, now) {
                        self.tree.decline(from, id, &mut self.pt_out);
                    } else {
                        self.refuse_waste(from);
                    }
                }
            }
            TreeMessage::Prune { origin } => self.tree.on_prune(from, origin),
            TreeMessage::Shortcut { origin } => self.tree.on_shortcut(from, origin),
            TreeMessage::PruneShared => self.tree.on_prune_shared(from),
            TreeMessage::Decline { id } => {
                // A decline of nothing we grafted from the peer costs us a lookup: waste, metered
                // like a graft for an id never announced.
                if !self.tree.on_decline(now, from, id, &mut self.pt_out) && !self.scores.waste(from, now) {
                    self.refuse_waste(from);
                }
            }
        }
    }

    /// A message pushed to us in full (eagerly, or answering a graft), on the tree of `tree`; `lends`
    /// as [`crate::plumtree::Plumtree::on_gossip`] has it.
    fn on_pushed(
        &mut self,
        now: Instant,
        from: PeerId,
        message: GossipMessage,
        hops: u16,
        tree: PeerId,
        lends: bool,
    ) {
        // A topic we did not subscribe to is neither delivered nor relayed, so its signature is
        // not worth a check: one signed message replayed at us would otherwise cost an Ed25519
        // verification each time (it is never cached, so never a known copy), and earn its sender
        // relay credit. Not charged to a neighbour (an honest one on a newer version may carry a
        // topic we do not know yet), but to a stranger, as any message from outside the active view.
        // If we grafted it, its announcer kept its promise.
        if !self.topics.contains_key(&message.topic) {
            self.stats.off_topic += 1;
            if !self.views.is_active(&from) {
                self.over_allowance(from, now);
            }
            self.tree.unwanted(now, from, message.id());
            return;
        }
        let id = message.id();
        let pushed = Pushed {
            from,
            active: self.views.is_active(&from),
            id,
            message,
            hops,
            tree,
            lends,
        };
        // The signature is checked before anything else, except for an exact copy of a message
        // already verified (same content, hence same id, and same signature bytes).
        if self.tree.is_known_copy(&pushed.id, &pushed.message) {
            return self.on_verified(now, pushed);
        }
        if let Some(pushed) = self.offer_to_batch(now, pushed) {
            self.check_alone(now, pushed);
        }
    }

    /// Charges a wasted message to `from`'s allowance. Past it, the message is dropped (returns true)
    /// and costs the peer [`Penalty::Flood`], except copies it pushed before our `Prune` (or the end
    /// of our link) reached it: a busy honest link has a queue of them.
    fn over_allowance(&mut self, from: PeerId, now: Instant) -> bool {
        if self.scores.waste(from, now) {
            return false;
        }
        self.stats.rate_limited += 1;
        self.pt_out.push(PtOut::Dropped(from, DropReason::RateLimited));
        if self.tree.excuse(&from, now) {
            self.stats.in_flight_excused += 1;
        } else {
            self.pt_out.push(PtOut::Penalty(from, Penalty::Flood));
        }
        true
    }

    /// A pushed message whose signature is good.
    pub(super) fn on_verified(&mut self, now: Instant, pushed: Pushed) {
        let Pushed {
            from,
            active,
            id,
            message,
            hops,
            tree,
            lends,
        } = pushed;
        // Only waste draws on the allowance: a first-seen message costs nothing, however fast
        // it comes (relaying is what a neighbour is for; the red team got an honest relay of
        // 700 valid transactions banned when every message was charged).
        let held = self.tree.cached(&id).is_some();
        let waste = !active || (held && self.tree.is_waste(&id, &message, &tree, &from));
        if waste && self.over_allowance(from, now) {
            return;
        }
        if !waste && !held {
            self.scores.relayed(from, now);
            self.tree.relayed_by(&from, now);
        }
        let Some(options) = self.topics.get(&message.topic) else {
            return; // Not our topic: neither delivered nor relayed.
        };
        if message.payload.len() > options.max_payload {
            self.pt_out.push(PtOut::Penalty(from, Penalty::InvalidMessage));
            return;
        }
        self.tree
            .on_gossip(now, from, id, message, hops, tree, lends, &mut self.pt_out);
    }

    /// Waste beyond `from`'s allowance that nothing excuses: dropped, and charged.
    fn refuse_waste(&mut self, from: PeerId) {
        self.stats.rate_limited += 1;
        self.pt_out.push(PtOut::Dropped(from, DropReason::RateLimited));
        self.pt_out.push(PtOut::Penalty(from, Penalty::Flood));
    }
}
