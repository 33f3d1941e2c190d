//! Repair of the active view from the passive view: `Neighbor` requests for free slots, high priority for
//! a node two slots short, a refusal or an unanswered request moving on to the next peer, and join retries.
//! Plus the checks that keep the two ends of a link agreeing.

use meshwork_wire::PeerId;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{HvOut, HyParView};
use crate::message::{MembershipMessage as Msg, PeerEntry};

/// Refused peers remembered for referrals at most.
const MAX_SEEKERS: usize = 8;

/// Former neighbours remembered for the link check at most: more than leave a view of five in a
/// round but in an attack, when a missed check only delays a repair.
const MAX_FORMER: usize = 16;

/// Rounds a former neighbour that is not connected stays watched (it may dial us again, its view
/// still holding us, after our side of the connection closed first).
const FORMER_ROUNDS: u64 = 6;

impl HyParView {
    /// Asks passive peers to fill the free slots of the active view.
    ///
    /// A node that is short (two slots free or more) sends one high-priority request (it cannot be
    /// refused; more would make several full peers evict a member each). Otherwise one low-priority
    /// request per free slot.
    ///
    /// "Short" is wider than in the paper, which uses high priority only with an empty view. Isolated
    /// nodes that find each other first (two evicted at once, asking each other) otherwise form a closed
    /// pair or triangle that no full peer ever accepts; and a node two short in an overlay where every
    /// other view is full is refused by everyone for good (the gossip-only test of fifty nodes left one
    /// at three neighbours for over a minute). The eviction it forces costs nobody a link: the evicted
    /// peer is told who took its slot and takes the requester's other free slot.
    pub(crate) fn fill(&mut self, rng: &mut ChaCha8Rng, out: &mut Vec<HvOut>) {
        let high_priority = self.is_short();
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

    /// The refusal of `from`'s `Neighbor` request, naming a peer we refused shortly before (it has a free
    /// slot, and so has `from`); `from` is remembered to be named in turn.
    ///
    /// Without this a settled overlay keeps a few views one short for minutes: the nodes with a free
    /// slot ask their passive peers, every one of them full, and two such nodes pair only once a
    /// shuffle has put each in the other's passive view (two of fifty nodes stayed one short for over
    /// a minute in the gossip-only test). Both ask most of the overlay each round, so a full node
    /// asked by both pairs them. Each seeker is named once, to one peer, so a seeker gets at most one
    /// request per refusal it caused.
    ///
    /// Referrals are a shared good, so an IP prefix takes them within an allowance
    /// ([`AdmissionConfig::prefix_referrals_burst`](crate::AdmissionConfig)): fresh identities of one
    /// subnet, each asking to be refused, drained the seekers that honest nodes left and put
    /// themselves in their place. Past its allowance a requester is refused plainly, and not
    /// remembered as a seeker. A request that would get neither (nobody else to name, and its
    /// sender remembered already) is refused without charge: an honest node asks again every
    /// repair round, and nodes behind one NAT share their prefix's allowance.
    pub(super) fn refer(&mut self, from: PeerId) -> Msg {
        let (now, ttl) = (self.now, self.repair_interval);
        self.seekers
            .retain(|(_, at)| now.saturating_duration_since(*at) < ttl);
        let remembered = self.seekers.iter().any(|(s, _)| s.id == from);
        let to_name = self.seekers.iter().any(|(s, _)| s.id != from);
        let nothing_to_give = remembered && !to_name;
        if nothing_to_give || self.is_banned(&from) || !self.takes_referral(&from) {
            let alternative = None;
            return Msg::NeighborReply {
                accepted: false,
                alternative,
            };
        }
        let alternative = self
            .seekers
            .iter()
            .rposition(|(seeker, _)| seeker.id != from)
            .and_then(|at| self.seekers.remove(at))
            .map(|(seeker, _)| seeker);
        if !remembered {
            self.seekers.push_back((self.entry(from), now));
            if self.seekers.len() > MAX_SEEKERS {
                self.seekers.pop_front();
            }
        }
        Msg::NeighborReply {
            accepted: false,
            alternative,
        }
    }

    /// A refusal of our request named `peer` as having room: ask it (the one peer this reply makes us
    /// dial), if we would on `from`'s word.
    ///
    /// If `peer` is our neighbour already, the last free slots are on the two ends of one link, and no
    /// low-priority request fills them: we ask the referrer again with high priority (once: not after
    /// a refused high-priority request). It evicts a neighbour to take us, and the free slot moves
    /// there, to pair with `peer` by a later referral (one of fifty nodes' tests stayed with two linked
    /// nodes one short for over 45 s before).
    pub(super) fn follow_referral(
        &mut self,
        from: PeerId,
        peer: PeerEntry,
        asked_low_priority: bool,
        out: &mut Vec<HvOut>,
    ) {
        if self.is_active(&peer.id) && asked_low_priority && !self.is_active(&from) {
            self.refused.remove(&from);
            self.request(from, true, out);
            return;
        }
        if self.is_candidate(&peer.id) && self.plausible(&peer, &from) {
            let high_priority = self.is_short();
            self.request(peer.id, high_priority, out);
            self.remember(&peer);
        }
    }

    /// Two active slots free or more (or none filled): requests go out with high priority.
    pub(super) fn is_short(&self) -> bool {
        self.active.is_empty() || self.active.len() + 2 <= self.active_cap
    }

    /// A peer worth a `Neighbor` request: not us, not already a neighbour or asked, not banned or refusing.
    pub(super) fn is_candidate(&self, peer: &PeerId) -> bool {
        *peer != self.me
            && !self.is_active(peer)
            && !self.requested.contains_key(peer)
            && !self.refused.contains(peer)
            && !self.is_banned(peer)
    }

    /// The start of a repair round: refusals are forgotten, a node with no neighbour and nobody left to ask joins
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
        let ended = self.round;
        self.round += 1;
        self.sweep_limits();
        if self.active.is_empty() && self.requested.is_empty() && self.passive.is_empty() {
            for contact in self.contacts.clone() {
                self.join(contact, rng, out);
            }
        }
        self.fill(rng, out);
        // After the requests of this round: a former neighbour asked again is not told to go. One that
        // left a moment ago may be told twice (our eviction's `Disconnect` is on its way): it ignores
        // the second.
        self.check_former_links(ended, out);
    }

    /// Broadcast traffic came from `from`. If it is connected but not in our active view (and not a
    /// peer we asked), its view holds us while ours does not, a state the two views should never be
    /// in: tell it, so it drops us and refills elsewhere.
    ///
    /// The two ends of a link can disagree: messages overtake each other when a connection is
    /// replaced (what a retired connection could not write is sent again on the next), and one end may
    /// see its connection close while the other, already redialling, never does. A node whose view
    /// holds a peer that dropped it has no free slot to repair, and the peer's is the overlay's one
    /// odd slot that no request fills (the fifty-node gossip-only test once left one node a
    /// neighbour short for 45 s, the other 49 views full).
    ///
    /// Walks (`ForwardJoin`, `Shuffle`) are not checked so: one often overtakes the acceptance that
    /// made its link (the simulator's jitter reorders messages on a link, as a replaced connection
    /// does), and while an overlay forms, telling its sender to go broke good links: `meshsim gossip`
    /// seed 11 split 47 of 1,000 nodes off the overlay. Broadcast traffic runs on links long formed.
    pub(crate) fn on_tree_traffic(&mut self, from: PeerId, out: &mut Vec<HvOut>) {
        if self.connected.contains(&from) && !self.is_active(&from) && !self.requested.contains_key(&from) {
            out.push(HvOut::Send(from, Msg::Disconnect { alternative: None }));
        }
    }

    /// Remembers that `peer` left the active view, for [`Self::check_former_links`].
    pub(super) fn remember_former(&mut self, peer: PeerId) {
        self.former.retain(|(p, _)| *p != peer);
        self.former.push_back((peer, self.round));
        if self.former.len() > MAX_FORMER {
            self.former.pop_front();
        }
    }

    /// The link check when no traffic runs: a peer that left our active view by the end of the round
    /// that just `ended`, connected now while neither a neighbour nor asked, is told `Disconnect`, in
    /// case its view still holds us ([`Self::on_tree_traffic`] says how that happens).
    /// An idle overlay sends no broadcast traffic that would tell it, and a settled node walks only
    /// once a minute. One not connected is watched for [`FORMER_ROUNDS`] rounds: our side of the
    /// connection may have closed first, and it may dial us again later.
    ///
    /// In a gossip-only node the connection closes once neither side's gossip wants it, so a peer
    /// still connected is one that dialled us again; in a composite, where other protocols hold
    /// connections, this costs one message per neighbour that left, which the peer ignores if it
    /// dropped us too.
    fn check_former_links(&mut self, ended: u64, out: &mut Vec<HvOut>) {
        for (peer, left) in std::mem::take(&mut self.former) {
            let due = left <= ended;
            if due && (self.is_active(&peer) || self.requested.contains_key(&peer)) {
                // Back in a role: nothing to tell.
            } else if due && self.connected.contains(&peer) {
                // Not released here: the peer may have dialled us for a request of its own, which its
                // answer should reach. It lets go once told, if it still held us.
                out.push(HvOut::Send(peer, Msg::Disconnect { alternative: None }));
            } else if ended.saturating_sub(left) <= FORMER_ROUNDS {
                self.former.push_back((peer, left));
            }
        }
    }
}
