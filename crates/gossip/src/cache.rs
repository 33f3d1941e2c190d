//! The seen cache: messages recently received, bounded by count, by bytes and by age.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use meshwork_wire::{Instant, PeerId};

use crate::message::{Announcement, GossipMessage, MessageId, TreeMessage, TreeRef, TreeTag};

/// Where a received message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Waiting for the application's verdict; `from` sent it first.
    Pending { from: Option<PeerId> },
    /// Accepted: delivered, forwarded, and served to grafts.
    Accepted,
    /// Rejected or ignored: never forwarded.
    Dropped,
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) message: GossipMessage,
    pub(crate) hops: u16,
    pub(crate) status: Status,
    /// The peer the first copy came from (`None` for our own messages).
    pub(crate) parent: Option<PeerId>,
    /// The origin whose tree the message follows: its own origin, or the lender whose tree it
    /// borrowed ([`TreeMessage::Borrowed`]).
    pub(crate) tree: PeerId,
    /// Neighbours that announced the message to us before we forwarded it: they hold it, so we do not
    /// announce it back. Emptied once forwarded.
    pub(crate) holders: Vec<PeerId>,
    /// For a borrowed message that came more than once, the neighbours that sent it (its parent
    /// first), at most the parent and one a link (`Plumtree::is_waste`). Empty, and unallocated, for
    /// most entries.
    pub(crate) copies_from: Vec<PeerId>,
}

impl Entry {
    /// The message as pushed to a neighbour, `hops` links from its origin at the receiver: on its
    /// origin's tree, or on the tree it borrowed.
    pub(crate) fn push(&self, hops: u16) -> TreeMessage {
        let message = self.message.clone();
        if self.tree == self.message.origin {
            TreeMessage::Gossip { message, hops }
        } else {
            let tree = TreeRef::of(&self.tree);
            TreeMessage::Borrowed { tree, message, hops }
        }
    }
}

/// What an entry costs besides its payload: the message's fixed fields (origin, topic, signature,
/// sequence), the entry's, the map's and the arrival queue's (an estimate, on the high side).
pub(crate) const ENTRY_OVERHEAD: usize = 320;

/// The bytes an entry for `message` counts for.
fn entry_bytes(message: &GossipMessage) -> usize {
    message.payload.len() + ENTRY_OVERHEAD
}

/// Messages by id, with their arrival order for expiry.
#[derive(Debug)]
pub(crate) struct SeenCache {
    entries: HashMap<MessageId, Entry>,
    order: VecDeque<(Instant, MessageId)>,
    capacity: usize,
    max_bytes: usize,
    /// What the entries count for ([`entry_bytes`]).
    bytes: usize,
    ttl: Duration,
}

impl SeenCache {
    pub(crate) fn new(capacity: usize, max_bytes: usize, ttl: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            max_bytes,
            bytes: 0,
            ttl,
        }
    }

    /// What the entries count for, in bytes.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn get(&self, id: &MessageId) -> Option<&Entry> {
        self.entries.get(id)
    }

    pub(crate) fn get_mut(&mut self, id: &MessageId) -> Option<&mut Entry> {
        self.entries.get_mut(id)
    }

    pub(crate) fn contains(&self, id: &MessageId) -> bool {
        self.entries.contains_key(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Accepted messages that arrived at or after `since`, newest first, at most `max`, as
    /// announcements (with their hops and tree).
    pub(crate) fn recent(&self, since: Instant, max: usize) -> Vec<Announcement> {
        self.order
            .iter()
            .rev()
            .take_while(|(at, _)| *at >= since)
            .filter_map(|(_, id)| {
                let entry = self.entries.get(id)?;
                (entry.status == Status::Accepted).then_some(Announcement {
                    id: *id,
                    hops: entry.hops,
                    tree: TreeTag::of(&entry.tree),
                })
            })
            .take(max)
            .collect()
    }

    /// Inserts a new message, evicting the oldest beyond capacity. Returns the ids of evicted entries that
    /// were still pending (the caller drops their validations).
    pub(crate) fn insert(&mut self, now: Instant, id: MessageId, entry: Entry) -> Vec<MessageId> {
        let bytes = entry_bytes(&entry.message);
        if let Some(old) = self.entries.insert(id, entry) {
            // Callers insert only unseen ids; a replaced entry is not counted twice all the same.
            self.bytes = self.bytes.saturating_sub(entry_bytes(&old.message));
        }
        self.bytes += bytes;
        self.order.push_back((now, id));
        self.expire(now)
    }

    /// Forgets entries older than the time to live, or the oldest beyond the count or the bytes.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<MessageId> {
        let mut dropped_pending = Vec::new();
        while let Some(&(at, id)) = self.order.front() {
            let within = self.order.len() <= self.capacity && self.bytes <= self.max_bytes;
            if within && now - at < self.ttl {
                break;
            }
            self.order.pop_front();
            if let Some(entry) = self.entries.remove(&id) {
                self.bytes = self.bytes.saturating_sub(entry_bytes(&entry.message));
                if matches!(entry.status, Status::Pending { .. }) {
                    dropped_pending.push(id);
                }
            }
        }
        dropped_pending
    }
}

#[cfg(test)]
mod tests {
    use meshwork_identity::Keypair;

    use super::*;
    use crate::TopicId;

    fn entry(seq: u64, payload: usize) -> (MessageId, Entry) {
        let key = Keypair::from_seed([1; 32]);
        let payload = vec![0; payload].try_into().unwrap_or_default();
        let message = GossipMessage::sign(&key, TopicId::from_name("t"), seq, payload);
        let entry = Entry {
            tree: message.origin,
            message,
            hops: 1,
            status: Status::Accepted,
            parent: None,
            holders: Vec::new(),
            copies_from: Vec::new(),
        };
        (entry.message.id(), entry)
    }

    #[test]
    fn the_oldest_messages_go_once_the_bytes_are_spent() {
        let per_entry = 1024 + ENTRY_OVERHEAD;
        let mut cache = SeenCache::new(1_000, 10 * per_entry, Duration::from_secs(120));
        let now = Instant::from_duration(Duration::from_secs(1));
        let ids: Vec<MessageId> = (0..25)
            .map(|seq| {
                let (id, entry) = entry(seq, 1024);
                cache.insert(now, id, entry);
                id
            })
            .collect();
        assert_eq!(
            cache.len(),
            10,
            "the count bound (1,000) did not bind; the bytes did"
        );
        assert_eq!(cache.bytes(), 10 * per_entry);
        assert!(!cache.contains(&ids[14]) && cache.contains(&ids[15]) && cache.contains(&ids[24]));
    }

    #[test]
    fn expiry_gives_the_bytes_back() {
        let mut cache = SeenCache::new(1_000, usize::MAX, Duration::from_secs(10));
        let start = Instant::from_duration(Duration::from_secs(1));
        for seq in 0..5 {
            let (id, entry) = entry(seq, 100);
            cache.insert(start, id, entry);
        }
        assert_eq!(cache.bytes(), 5 * (100 + ENTRY_OVERHEAD));
        cache.expire(start + Duration::from_secs(11));
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
    }
}
