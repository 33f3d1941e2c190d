//! Lookups of one peer ([`FindPeer`]): answered as soon as our connection to the peer comes up, or
//! at once if we hold one already.
//!
//! [`FindPeer`]: crate::Command::FindPeer

use meshwork_identity::PeerId;
use meshwork_wire::Instant;

use super::queries::{Kind, Qid};
use super::state::{Kademlia, Out};
use super::stats::QueryStats;
use super::types::{Event, QueryId};
use crate::PeerInfo;
use crate::store::RecordStore;

impl<S: RecordStore> Kademlia<S> {
    /// Answers the [`FindPeer`](crate::Command::FindPeer) `query` of `peer`.
    pub(crate) fn found_peer(
        &self,
        query: QueryId,
        peer: PeerId,
        found: Option<PeerInfo>,
        stats: QueryStats,
        out: &mut Out<S>,
    ) {
        let event = Event::FoundPeer {
            query,
            peer,
            found,
            stats,
        };
        self.emit(event, out);
    }

    /// `peer` as a [`FindPeer`](crate::Command::FindPeer) may report it found: we hold a connection
    /// to it, the driver told us the address that connection came from
    /// ([`PeerAddress`](crate::Command::PeerAddress)), and it solves the puzzle a lookup would have
    /// asked of it. The address is the driver's observation only, never
    /// what a peer named (a hostile one may name anyone anywhere): without one, the lookup runs to
    /// its end.
    pub(crate) fn reachable(&self, peer: &PeerId) -> Option<PeerInfo> {
        if !self.is_connected(peer) || !self.acceptable(peer) {
            return None;
        }
        let addr = self.observed(peer)?.clone();
        Some(PeerInfo { id: *peer, addr })
    }

    /// Our connection to `peer` is up: every [`FindPeer`](crate::Command::FindPeer) of `peer` under
    /// way is answered now, with the address the driver observed the connection at
    /// ([`Kademlia::reachable`]). The handshake proved that the peer holds its key there, which is
    /// all a lookup of a peer is for; waiting for its answer, and for its neighbours' as the
    /// converged rule does, would cost a round trip more and tell nothing more of where it is.
    /// go-libp2p-kad-dht's `FindPeer` stops the same way, once connected. Measured with `meshsim
    /// kad-lookup` (the `find_peer_` keys) beside lookups of random nodes' keys
    /// ([`FindNode`](crate::Command::FindNode)): see the crate docs, "Connections". The requests
    /// the lookup still has out go on ([`Kademlia::abandon`]): the peer's answer puts it in our
    /// table.
    pub(crate) fn reached(&mut self, now: Instant, peer: PeerId, out: &mut Out<S>) {
        let Some(found) = self.reachable(&peer) else {
            return;
        };
        let mut done: Vec<Qid> = self
            .queries
            .iter()
            .filter(|(_, query)| matches!(query.kind, Kind::FindPeer(p) if p == peer))
            .map(|(qid, _)| *qid)
            .collect();
        // In query order, not the map's: the simulator replays a seed exactly.
        done.sort_unstable();
        for qid in done {
            let Some(query) = self.queries.remove(&qid) else {
                continue;
            };
            self.abandon(qid);
            if let Qid::User(id) = qid {
                let stats = query.stats.finished(now);
                self.found_peer(id, peer, Some(found.clone()), stats, out);
            }
        }
    }
}
