//! Which of an origin's messages is newer than the last one its tree carried here.
//!
//! A copy grafted after a wait for the parent makes the node prune that parent (`receive.rs`'s
//! `leave_silent_parent`), since the parent failed to push it. That judgement holds only for a
//! message the parent owed us: one newer than the tree's last. An old message a neighbour replays
//! once it has left our seen cache was never the parent's to push, and must not prune it. Nor does
//! it make the replayer the tree's parent ([`Links::relaying`]): the next message would wait for a
//! neighbour that may withhold it, then cost a graft.
//!
//! Sequence numbers are the origin's, raised with every message (an honest node uses its clock's
//! nanoseconds, so the whole 64 bits are kept: 8 bytes a tree). [`Links::relaying`] records them.

use meshwork_wire::PeerId;

use super::Links;

impl Links {
    /// Whether `origin`'s message `seq` is newer than the newest its tree relayed here (false
    /// without a tree: nothing was owed).
    pub(crate) fn is_newer(&self, origin: &PeerId, seq: u64) -> bool {
        self.trees.get(origin).is_some_and(|tree| seq > tree.newest)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::peers;
    use super::*;
    use crate::config::Trees;

    #[test]
    fn only_a_message_past_the_newest_relayed_is_newer() {
        let p = peers(2);
        let mut links = Links::new(16, Trees::PerOrigin);
        assert!(!links.is_newer(&p[0], 7), "no tree: nothing was owed");
        links.relaying(p[0], None, Some(7));
        links.relaying(p[0], None, Some(5)); // an older one relayed late does not move it back
        assert!(links.is_newer(&p[0], 8));
        assert!(!links.is_newer(&p[0], 7) && !links.is_newer(&p[0], 6));
    }

    #[test]
    fn only_a_newer_message_moves_the_parent() {
        let p = peers(3);
        let mut links = Links::new(16, Trees::PerOrigin);
        links.up(p[1]);
        links.up(p[2]);
        links.relaying(p[0], Some(&p[1]), Some(7));
        assert_eq!(links.recorded_parent(&p[0]), Some(p[1]));
        links.relaying(p[0], Some(&p[2]), Some(6)); // an old one, replayed
        links.relaying(p[0], Some(&p[2]), Some(7)); // the same one again
        assert_eq!(links.recorded_parent(&p[0]), Some(p[1]));
        links.relaying(p[0], Some(&p[2]), Some(8));
        assert_eq!(links.recorded_parent(&p[0]), Some(p[2]));
        // A message that borrowed the tree has no sequence number of the tree's origin: it moves it.
        links.relaying(p[0], Some(&p[1]), None);
        assert_eq!(links.recorded_parent(&p[0]), Some(p[1]));
    }
}
