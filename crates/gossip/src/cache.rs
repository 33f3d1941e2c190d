//! The seen cache: messages recently received, bounded by count and by age.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use meshwork_wire::{Instant, PeerId};

use crate::message::{GossipMessage, MessageId};

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
}

/// Messages by id, with their arrival order for expiry.
#[derive(Debug)]
pub(crate) struct SeenCache {
    entries: HashMap<MessageId, Entry>,
    order: VecDeque<(Instant, MessageId)>,
    capacity: usize,
    ttl: Duration,
}

impl SeenCache {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            ttl,
        }
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

    /// Accepted messages that arrived at or after `since`, newest first, at most `max`, with their hops.
    pub(crate) fn recent(&self, since: Instant, max: usize) -> Vec<(MessageId, u16)> {
        self.order
            .iter()
            .rev()
            .take_while(|(at, _)| *at >= since)
            .filter_map(|(_, id)| {
                let entry = self.entries.get(id)?;
                (entry.status == Status::Accepted).then_some((*id, entry.hops))
            })
            .take(max)
            .collect()
    }

    /// Inserts a new message, evicting the oldest beyond capacity. Returns the ids of evicted entries that
    /// were still pending (the caller drops their validations).
    pub(crate) fn insert(&mut self, now: Instant, id: MessageId, entry: Entry) -> Vec<MessageId> {
        self.entries.insert(id, entry);
        self.order.push_back((now, id));
        self.expire(now)
    }

    /// Forgets entries older than the time to live or beyond capacity.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<MessageId> {
        let mut dropped_pending = Vec::new();
        while let Some(&(at, id)) = self.order.front() {
            if self.order.len() <= self.capacity && now - at < self.ttl {
                break;
            }
            self.order.pop_front();
            if let Some(entry) = self.entries.remove(&id)
                && matches!(entry.status, Status::Pending { .. })
            {
                dropped_pending.push(id);
            }
        }
        dropped_pending
    }
}
