//! The capabilities kad provides to other crates: [`PeerRouting`] and [`ContentRouting`].
//!
//! They are small traits, implemented by [`Kademlia`] itself, so an application that embeds Kademlia as
//! a child of its composite protocol (`meshwork_wire::compose`) is written against them rather than
//! against Kademlia's commands. Each call starts a query in the caller's `handle` step, pushes the
//! requests it sends onto `out`, and returns the query's id; the answer is the [`crate::Event`] that
//! carries that id. Ids the protocol picks itself live at and above [`AUTO_QUERY_IDS`], so they never
//! meet ids an application chose for its own [`Command`]s.

use meshwork_identity::PeerId;
use meshwork_wire::{Input, Instant, Output, Protocol};

use crate::{Command, Kademlia, Key, PeerInfo, QueryId, RecordStore};

/// The first query id that [`PeerRouting`] and [`ContentRouting`] hand out (2^63).
pub const AUTO_QUERY_IDS: u64 = 1 << 63;

/// Finding peers.
pub trait PeerRouting: Protocol {
    /// Joins the network through `contacts`; answered by [`crate::Event::Bootstrapped`].
    fn bootstrap(&mut self, now: Instant, contacts: Vec<PeerInfo>, out: &mut Vec<Output<Self>>) -> QueryId;
    /// Starts a lookup of the `k` peers closest to `target`; answered by [`crate::Event::ClosestPeers`].
    fn find_closest_peers(&mut self, now: Instant, target: Key, out: &mut Vec<Output<Self>>) -> QueryId;
    /// Starts a lookup of `peer`'s address; answered by [`crate::Event::FoundPeer`].
    fn find_peer(&mut self, now: Instant, peer: PeerId, out: &mut Vec<Output<Self>>) -> QueryId;
    /// Peers this node knows how to reach (its routing table), candidates for connections.
    fn known_peers(&self) -> Vec<PeerId>;
}

/// Storing and finding content.
pub trait ContentRouting: Protocol {
    /// Publishes a signed record; answered by [`crate::Event::PutValue`].
    fn put_value(&mut self, now: Instant, key: Key, value: Vec<u8>, out: &mut Vec<Output<Self>>) -> QueryId;
    /// Looks a record up; answered by [`crate::Event::GetValue`].
    fn get_value(&mut self, now: Instant, key: Key, out: &mut Vec<Output<Self>>) -> QueryId;
    /// Announces that we provide `key`; answered by [`crate::Event::StartedProviding`].
    fn provide(&mut self, now: Instant, key: Key, out: &mut Vec<Output<Self>>) -> QueryId;
    /// Looks up providers of `key`; answered by [`crate::Event::GetProviders`].
    fn find_providers(&mut self, now: Instant, key: Key, out: &mut Vec<Output<Self>>) -> QueryId;
}

impl<S: RecordStore> Kademlia<S> {
    /// Starts the query `make` builds around a fresh id.
    fn start_query(
        &mut self,
        now: Instant,
        make: impl FnOnce(QueryId) -> Command,
        out: &mut Vec<Output<Self>>,
    ) -> QueryId {
        let query = QueryId(AUTO_QUERY_IDS.wrapping_add(self.next_auto_query));
        self.next_auto_query = self.next_auto_query.wrapping_add(1) % AUTO_QUERY_IDS;
        self.handle(now, Input::Command(make(query)), out);
        query
    }
}

impl<S: RecordStore> PeerRouting for Kademlia<S> {
    fn bootstrap(&mut self, now: Instant, contacts: Vec<PeerInfo>, out: &mut Vec<Output<Self>>) -> QueryId {
        self.start_query(
            now,
            |query| Command::Bootstrap {
                query,
                peers: contacts,
            },
            out,
        )
    }

    fn find_closest_peers(&mut self, now: Instant, target: Key, out: &mut Vec<Output<Self>>) -> QueryId {
        self.start_query(now, |query| Command::FindNode { query, target }, out)
    }

    fn find_peer(&mut self, now: Instant, peer: PeerId, out: &mut Vec<Output<Self>>) -> QueryId {
        self.start_query(now, |query| Command::FindPeer { query, peer }, out)
    }

    fn known_peers(&self) -> Vec<PeerId> {
        self.table.iter().map(|entry| entry.peer).collect()
    }
}

impl<S: RecordStore> ContentRouting for Kademlia<S> {
    fn put_value(&mut self, now: Instant, key: Key, value: Vec<u8>, out: &mut Vec<Output<Self>>) -> QueryId {
        self.start_query(now, |query| Command::PutValue { query, key, value }, out)
    }

    fn get_value(&mut self, now: Instant, key: Key, out: &mut Vec<Output<Self>>) -> QueryId {
        self.start_query(now, |query| Command::GetValue { query, key }, out)
    }

    fn provide(&mut self, now: Instant, key: Key, out: &mut Vec<Output<Self>>) -> QueryId {
        self.start_query(now, |query| Command::StartProviding { query, key }, out)
    }

    fn find_providers(&mut self, now: Instant, key: Key, out: &mut Vec<Output<Self>>) -> QueryId {
        self.start_query(now, |query| Command::GetProviders { query, key }, out)
    }
}
