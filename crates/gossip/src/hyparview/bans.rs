//! Bans as the views see them: whether one is in force, why a peer was refused, and a ban itself
//! (the peer leaves both views, is told, and is released).

use meshwork_wire::{DropReason, PeerId};
use rand_chacha::ChaCha8Rng;

use super::{HvOut, HyParView};
use crate::ban::Ban;
use crate::message::MembershipMessage as Msg;
use crate::score::Penalty;

impl HyParView {
    /// Whether a ban of `peer` is in force (at the time of the last input).
    pub(crate) fn is_banned(&self, peer: &PeerId) -> bool {
        self.bans.is_banned(peer, self.now)
    }

    /// The ban of `peer` in force, if any.
    pub(crate) fn ban_of(&self, peer: &PeerId) -> Option<Ban> {
        self.bans.get(peer, self.now)
    }

    /// Forgets expired bans; returns how many.
    pub(crate) fn expire_bans(&mut self) -> usize {
        self.bans.expire(self.now)
    }

    /// Why `peer` was not taken into the active view.
    pub(super) fn refusal(&self, peer: &PeerId) -> DropReason {
        if self.is_banned(peer) {
            DropReason::Banned
        } else if self.prefix_full_in_active(peer) {
            DropReason::PrefixLimit
        } else {
            DropReason::Full
        }
    }

    /// Removes a misbehaving peer from both views, releases it (gossip's hold on the connection only) and
    /// refuses it until the ban expires.
    pub(crate) fn ban(
        &mut self,
        peer: PeerId,
        penalty: Penalty,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<HvOut>,
    ) -> Ban {
        let ban = self.bans.insert(peer, penalty, self.now);
        // Told, so that its view does not keep us: in a composite the release below leaves the
        // connection to the other protocols, and no `PeerDown` would tell it.
        if self.connected.contains(&peer) {
            out.push(HvOut::Send(peer, Msg::Disconnect { alternative: None }));
        }
        self.remove_passive(&peer);
        self.contacts.retain(|p| *p != peer);
        self.dialing.remove(&peer);
        self.requested.remove(&peer);
        self.remove_active(&peer, out);
        self.close(peer, out);
        self.forget_address(&peer);
        self.fill(rng, out);
        ban
    }
}
