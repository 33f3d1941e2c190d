//! The capabilities kad provides to other crates: [`PeerRouting`] and [`ContentRouting`].
//!
//! They are small traits so an application (the coin node) is written against them rather than against
//! Kademlia itself. Here they are implemented by [`KadHandle`], which turns each call into a
//! [`Command`] with a fresh [`QueryId`]; the driver feeds the commands to [`crate::Kademlia`] and the
//! answer arrives as the [`crate::Event`] carrying that id. Async wrappers belong to the node runtime.

use meshwork_identity::PeerId;

use crate::{Command, Key, PeerInfo, QueryId};

/// Finding peers.
pub trait PeerRouting {
    /// Starts a lookup of the `k` peers closest to `target`; answered by [`crate::Event::ClosestPeers`].
    fn find_closest_peers(&mut self, target: Key) -> QueryId;
    /// Starts a lookup of `peer`'s address; answered by [`crate::Event::FoundPeer`].
    fn find_peer(&mut self, peer: PeerId) -> QueryId;
}

/// Storing and finding content.
pub trait ContentRouting {
    /// Publishes a signed record; answered by [`crate::Event::PutValue`].
    fn put_value(&mut self, key: Key, value: Vec<u8>) -> QueryId;
    /// Looks a record up; answered by [`crate::Event::GetValue`].
    fn get_value(&mut self, key: Key) -> QueryId;
    /// Announces that we provide `key`; answered by [`crate::Event::StartedProviding`].
    fn provide(&mut self, key: Key) -> QueryId;
    /// Looks up providers of `key`; answered by [`crate::Event::GetProviders`].
    fn find_providers(&mut self, key: Key) -> QueryId;
}

/// Turns capability calls into [`Command`]s for the driver to deliver, numbering the queries.
#[derive(Debug, Default)]
pub struct KadHandle {
    next: u64,
    commands: Vec<Command>,
}

impl KadHandle {
    /// A handle whose first query id is 0.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, make: impl FnOnce(QueryId) -> Command) -> QueryId {
        let query = QueryId(self.next);
        self.next += 1;
        self.commands.push(make(query));
        query
    }

    /// Queues a [`Command::Bootstrap`] through `peers`.
    pub fn bootstrap(&mut self, peers: Vec<PeerInfo>) -> QueryId {
        self.push(|query| Command::Bootstrap { query, peers })
    }

    /// Takes the commands queued so far, oldest first.
    pub fn drain(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.commands)
    }
}

impl PeerRouting for KadHandle {
    fn find_closest_peers(&mut self, target: Key) -> QueryId {
        self.push(|query| Command::FindNode { query, target })
    }

    fn find_peer(&mut self, peer: PeerId) -> QueryId {
        self.push(|query| Command::FindPeer { query, peer })
    }
}

impl ContentRouting for KadHandle {
    fn put_value(&mut self, key: Key, value: Vec<u8>) -> QueryId {
        self.push(|query| Command::PutValue { query, key, value })
    }

    fn get_value(&mut self, key: Key) -> QueryId {
        self.push(|query| Command::GetValue { query, key })
    }

    fn provide(&mut self, key: Key) -> QueryId {
        self.push(|query| Command::StartProviding { query, key })
    }

    fn find_providers(&mut self, key: Key) -> QueryId {
        self.push(|query| Command::GetProviders { query, key })
    }
}
