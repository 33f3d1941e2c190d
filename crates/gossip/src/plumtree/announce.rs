//! Where an accepted message goes: delivered, pushed along the eager links of its tree, and announced
//! on the lazy ones in batched `IHave`s. One announcement per lazy link is enough, since both ends get
//! the message: a neighbour that announced it to us holds it, and is not told back (unless our path is
//! short enough to move its tree link to us, §3.8: [`super::lazy`]'s `on_ihave` decides).

use std::collections::HashMap;

use meshwork_wire::{BoundedVec, Instant, PeerId};

use super::{Plumtree, PtOut};
use crate::cache::Status;
use crate::message::{Announcement, MAX_IHAVE, MessageId, TreeMessage, TreeTag};
use crate::score::Penalty;
use crate::state::{Timer, Verdict};

impl Plumtree {
    /// The application's verdict on a pending message. Returns false if no such message was pending.
    pub(crate) fn validated(&mut self, id: MessageId, verdict: Verdict, out: &mut Vec<PtOut>) -> bool {
        let Some(entry) = self.cache.get_mut(&id) else {
            return false;
        };
        let Status::Pending { from } = entry.status else {
            return false;
        };
        self.pending = self.pending.saturating_sub(1);
        if verdict != Verdict::Accept {
            entry.holders = Vec::new(); // never forwarded: nothing to spare
        }
        let grafters = self.grafted_pending.remove(&id).unwrap_or_default();
        match verdict {
            Verdict::Accept => {
                entry.status = Status::Accepted;
                out.push(PtOut::Deliver {
                    id,
                    message: entry.message.clone(),
                    hops: entry.hops,
                });
                self.forward(id, from, out);
            }
            Verdict::Reject => {
                entry.status = Status::Dropped;
                if let Some(from) = from {
                    out.push(PtOut::Penalty(from, Penalty::Rejected));
                }
            }
            Verdict::Ignore => entry.status = Status::Dropped,
        }
        // Accepted, it went to them with the forwarding (their links turned eager); otherwise
        // nothing will, and they must not wait out their promise for it.
        if verdict != Verdict::Accept {
            for grafter in grafters {
                self.decline(grafter, id, out);
            }
        }
        true
    }

    pub(super) fn forward(&mut self, id: MessageId, except: Option<PeerId>, out: &mut Vec<PtOut>) {
        let Some(entry) = self.cache.get_mut(&id) else {
            return;
        };
        // Needed only until the message is forwarded, which is now.
        let holders = std::mem::take(&mut entry.holders);
        let entry = &*entry;
        let hops = entry.hops.saturating_add(1);
        let origin = entry.tree;
        let own = entry.parent.is_none() && origin == entry.message.origin;
        let seq = (origin == entry.message.origin).then_some(entry.message.seq);
        self.links.relaying(origin, entry.parent.as_ref(), seq);
        let tree = TreeTag::of(&origin);
        // Our own tree with no eager link left here (its links all left, and the neighbours that
        // replaced them join it lazily): the message would go out as announcements only, and every
        // node would wait a graft for it. It floods instead, and the duplicates prune the tree back.
        if own && !self.links.has_eager(&origin) {
            self.links.all_eager(origin);
        }
        for peer in self.links.neighbours() {
            if Some(*peer) == except {
                continue;
            }
            if self.links.is_lazy(&origin, peer) {
                // A neighbour that announced the message to us holds it: telling it back is the
                // second announcement on the link, which only one end needs to send.
                if holders.contains(peer) {
                    self.stats.announcements_spared += 1;
                    continue;
                }
                let announcement = Announcement {
                    id,
                    hops: entry.hops,
                    tree,
                };
                self.lazy_queue.push((*peer, announcement));
            } else if holders.contains(peer) {
                // It announced the message to us, so it holds it, and the copy would only come back
                // as a duplicate. Mostly the link is eager because that announcement moved our tree
                // link to it (§3.8) just now: after half of 1,000 nodes crash, those copies were
                // over half the repair's duplicates.
                self.stats.pushes_spared += 1;
            } else {
                self.stats.gossip_sent += 1;
                out.push(PtOut::Send(*peer, entry.push(hops)));
            }
        }
        self.schedule_flush(out);
    }

    pub(super) fn schedule_flush(&mut self, out: &mut Vec<PtOut>) {
        let queued = !self.lazy_queue.is_empty() || self.offers.owes();
        if queued && !self.flush_scheduled {
            self.flush_scheduled = true;
            out.push(PtOut::Schedule(self.config.ihave_interval, Timer::FlushIHave));
        }
    }

    /// Sends the declines a full queue dropped (owed, see `offers.rs`), then the batched announcements.
    pub(crate) fn flush_ihave(&mut self, now: Instant, out: &mut Vec<PtOut>) {
        self.flush_scheduled = false;
        for (peer, id) in self.offers.take_owed(now) {
            self.stats.declines_resent += 1;
            out.push(PtOut::Send(peer, TreeMessage::Decline { id }));
        }
        let mut by_peer: HashMap<PeerId, Vec<Announcement>> = HashMap::new();
        let told = std::mem::take(&mut self.told);
        for (peer, announcement) in self.lazy_queue.drain(..) {
            if told.contains(&(peer, announcement.id)) {
                self.stats.announcements_spared += 1;
                continue;
            }
            // Remembered as sent: a graft from `peer` for this id is one we owe an answer. Only for
            // neighbours: what a departed one was owed is forgotten with it (`neighbor_down`).
            if self.links.contains(&peer) {
                self.offers.announced(now, peer, announcement.id);
            }
            by_peer.entry(peer).or_default().push(announcement);
        }
        let mut peers: Vec<_> = by_peer.into_iter().collect();
        peers.sort_by_key(|(peer, _)| *peer); // deterministic order
        for (peer, ids) in peers {
            for chunk in ids.chunks(MAX_IHAVE) {
                let Ok(ids) = BoundedVec::try_from(chunk.to_vec()) else {
                    continue;
                };
                self.stats.ihave_sent += 1;
                out.push(PtOut::Send(peer, TreeMessage::IHave { ids }));
            }
        }
    }
}
