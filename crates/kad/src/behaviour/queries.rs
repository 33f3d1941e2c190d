//! Queries: lookups and their follow-ups (store, announce), responses and failed requests.

use meshwork_identity::PeerId;
use meshwork_wire::Instant;

use super::state::{Kademlia, MAX_SEEDS, Out, REJOIN_FIRST};
use super::stats::QueryStats;
use super::types::{Command, Event, QueryId, Timer};
use super::values::Found;
use crate::message::Request;
use crate::query::{DisjointLookup, Finish, LookupConfig, LookupState};
use crate::store::{RecordStore, Sender};
use crate::{Address, Key, PeerInfo, QueryError, Record};

/// A query's key: the application's ids and internal ones (refresh, republish) never collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Qid {
    User(QueryId),
    Internal(u64),
}

/// Why a request was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Liveness check of a full bucket's oldest entry.
    Liveness,
    /// A ping that keeps an anchor's connection in use, or asks a peer of a far bucket without an
    /// anchor to be its anchor ([`super::anchors`]).
    Keepalive,
    /// A lookup step of a query.
    Lookup(Qid),
    /// Storing a record or a provider announcement after a lookup.
    Store(Qid),
    /// A lookup step of a query that has ended since ([`Kademlia::abandon`]): its answer still
    /// enters the table and its failure still counts against the peer, but no query hears of it, so a
    /// query started later under the same id cannot take it for its own.
    Ended,
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Bootstrap,
    /// A refresh of a bucket no lookup touched for [`crate::Config::refresh_interval`]: a full lookup of
    /// a random key in it, which also finds peers that joined since.
    Refresh,
    /// A refresh of bucket `.0` after joining, which had fewer than [`crate::Config::join_fill`]
    /// peers: it ends as soon as the bucket holds that many, since filling it is all it is for (every
    /// peer that answers enters the table), with no more requests in flight than the bucket has
    /// places left (but `α` at least), and then the join's next refresh starts (`join_refreshes`).
    JoinRefresh(usize),
    FindNode,
    FindPeer(PeerId),
    /// The records met so far ([`Found`]).
    GetValue(Found),
    PutValue(Record),
    GetProviders(Vec<PeerInfo>),
    AddProvider,
}

#[derive(Clone, Debug)]
pub(crate) struct Query {
    /// The lookup, keeping each peer with the address it was named with.
    pub(crate) lookup: DisjointLookup<PeerInfo>,
    pub(crate) kind: Kind,
    /// Store requests still out and accepted, once the lookup is done (PutValue, AddProvider).
    pub(crate) storing: Option<(usize, usize)>,
    /// What the query sent so far, every path and the store phase together.
    pub(crate) stats: QueryStats,
}

impl<S: RecordStore> Kademlia<S> {
    /// The lookup of a query of `kind`. A join's lookups run until the `k` closest have answered: the
    /// lookup of our own key so that our nearest neighbours hear of us, a join's bucket refresh because
    /// only peers that answer enter the table. So does the lookup before a store (`PutValue`,
    /// `StartProviding`), as rust-libp2p's does: a converged lookup's result holds peers only named,
    /// and one hostile answer naming made-up ids near the key would have the record stored at peers
    /// that do not exist. Every other lookup ends once the closest set stops improving
    /// ([`Finish::Converged`]).
    fn lookup_config(&self, kind: &Kind) -> LookupConfig {
        let finish = match kind {
            Kind::Bootstrap | Kind::JoinRefresh(_) | Kind::PutValue(_) | Kind::AddProvider => {
                Finish::AllClosest
            }
            _ => Finish::Converged,
        };
        LookupConfig {
            parallelism: self.config.alpha,
            num_results: self.config.k,
            peer_timeout: self.config.request_timeout,
            finish,
        }
    }

    pub(crate) fn start_command(&mut self, now: Instant, command: Command, out: &mut Out<S>) {
        // An id in use is refused before the command does anything: a `PutValue` must not store or
        // schedule the republishing of a record, nor a `GetValue` answer from our store, under an id
        // the caller already waits on.
        if let Some(query) = command
            .query()
            .filter(|&q| self.queries.contains_key(&Qid::User(q)))
        {
            return self.refuse_duplicate(now, query, out);
        }
        let (query, target, kind) = match command {
            Command::Bootstrap { query, peers } => {
                let accepted: Vec<PeerInfo> = peers
                    .into_iter()
                    .filter(|info| self.acceptable(&info.id))
                    .collect();
                if !accepted.is_empty() {
                    self.seeds = accepted.iter().take(MAX_SEEDS).cloned().collect();
                    self.rejoin_delay = REJOIN_FIRST;
                }
                if !self.refresh_scheduled {
                    self.refresh_scheduled = true;
                    self.schedule(self.config.refresh_interval, Timer::Refresh, out);
                }
                // The far buckets recruit their anchors from a keep-alive period on.
                self.arm_keepalive(now, out);
                return self.join(now, Qid::User(query), &accepted, out);
            }
            Command::FindNode { query, target } => (query, target, Kind::FindNode),
            Command::FindPeer { query, peer } => {
                // Connected already: a lookup would end where it starts ([`Kademlia::reached`]).
                if let Some(info) = self.reachable(&peer) {
                    let stats = QueryStats::new(now).finished(now);
                    return self.found_peer(query, peer, Some(info), stats, out);
                }
                (query, Key::from_peer(&peer), Kind::FindPeer(peer))
            }
            Command::GetValue { query, key } => {
                let mut found = Found::default();
                if let Some(record) = self.store.get(&key, now) {
                    // Our own record is the latest there is. Another's that we store may be stale
                    // (`values.rs`): it counts as one answer.
                    if record.publisher == self.local {
                        let stats = QueryStats::new(now);
                        let record = Some(record);
                        return self.emit(
                            Event::GetValue {
                                query,
                                key,
                                record,
                                stats,
                            },
                            out,
                        );
                    }
                    found.add(record, 1, None);
                }
                (query, key, Kind::GetValue(found))
            }
            Command::PutValue { query, key, value } => {
                let expires = now + self.config.record_ttl;
                let record = match Record::sign(&self.keypair, key, value.clone(), expires) {
                    Ok(record) => record,
                    Err(err) => {
                        return self.emit(
                            Event::Failed {
                                query,
                                error: err.into(),
                                stats: QueryStats::new(now),
                            },
                            out,
                        );
                    }
                };
                // We keep our own record too; a failure here (a conflicting record) is not fatal.
                let _ = self.store.put(record.clone(), Sender::Local, now);
                if self.published.insert(key, value).is_none() {
                    self.schedule(self.config.republish_interval, Timer::Republish(key), out);
                }
                (query, key, Kind::PutValue(record))
            }
            Command::StartProviding { query, key } => {
                if self.provided.insert(key) {
                    self.schedule(self.config.reprovide_interval, Timer::Reprovide(key), out);
                }
                (query, key, Kind::AddProvider)
            }
            Command::GetProviders { query, key } => (query, key, Kind::GetProviders(Vec::new())),
            Command::PeerAddress { .. } => return,
        };
        self.start(now, Qid::User(query), target, kind, Vec::new(), out);
    }

    pub(crate) fn start(
        &mut self,
        now: Instant,
        qid: Qid,
        target: Key,
        kind: Kind,
        extra: Vec<PeerInfo>,
        out: &mut Out<S>,
    ) {
        if self.queries.contains_key(&qid) {
            if let Qid::User(query) = qid {
                self.refuse_duplicate(now, query, out);
            }
            return;
        }
        let mut seeds: Vec<PeerInfo> = self
            .table
            .closest(&target, self.config.k)
            .iter()
            .map(|e| PeerInfo {
                id: e.peer,
                addr: e.addr.clone(),
            })
            .collect();
        seeds.extend(extra);
        if seeds.is_empty() && !matches!(kind, Kind::Bootstrap | Kind::Refresh | Kind::JoinRefresh(_)) {
            // Nobody to ask: say so, rather than answer "nothing found" without having looked; but
            // a record our own store holds is an answer.
            if let (Qid::User(query), Kind::GetValue(found)) = (qid, &kind)
                && let Some(record) = found.clone().best()
            {
                let (record, stats) = (Some(record), QueryStats::new(now));
                return self.emit(
                    Event::GetValue {
                        query,
                        key: target,
                        record,
                        stats,
                    },
                    out,
                );
            }
            if let Qid::User(query) = qid {
                let error = QueryError::NoPeers;
                let stats = QueryStats::new(now);
                self.emit(Event::Failed { query, error, stats }, out);
            }
            return;
        }
        if let Some(index) = self.table.bucket_index(&target) {
            self.table.touch_bucket(index, now);
        }
        // A bucket refresh only seeds the routing table, whose own admission rules (the puzzle, the
        // per-prefix caps, the ping of an unknown peer) guard it; one path halves what joining costs.
        let paths = if matches!(kind, Kind::Refresh | Kind::JoinRefresh(_)) {
            1
        } else {
            self.config.disjoint_paths
        };
        let config = self.lookup_config(&kind);
        let mut lookup = DisjointLookup::new(target, config, paths, seeds);
        // A lookup that ends as soon as it converges ends a round trip earlier if its first hop needs
        // no handshake; a join's lookups ask every one of the `k` closest anyway.
        if config.finish == Finish::Converged {
            lookup.ask_first(|peer| self.is_connected(peer));
        }
        self.queries.insert(
            qid,
            Query {
                lookup,
                kind,
                storing: None,
                stats: QueryStats::new(now),
            },
        );
        self.advance(now, qid, out);
    }

    /// Answers a command whose query id is in use with [`QueryError::DuplicateId`].
    fn refuse_duplicate(&mut self, now: Instant, query: QueryId, out: &mut Out<S>) {
        // The statistics of the refused command, not of the query running under that id.
        let stats = QueryStats::new(now);
        let error = QueryError::DuplicateId;
        self.emit(Event::Failed { query, error, stats }, out);
    }

    pub(crate) fn start_internal(&mut self, now: Instant, target: Key, kind: Kind, out: &mut Out<S>) {
        let qid = Qid::Internal(self.next_internal);
        self.next_internal += 1;
        self.start(now, qid, target, kind, Vec::new(), out);
    }

    /// Sends the lookup's next requests, or finishes it.
    pub(crate) fn advance(&mut self, now: Instant, qid: Qid, out: &mut Out<S>) {
        loop {
            if let Some(Query {
                kind: Kind::JoinRefresh(bucket),
                lookup,
                ..
            }) = self.queries.get(&qid)
            {
                // Filling the bucket is all a join's refresh is for: it ends once the bucket holds
                // `join_fill` peers, and never has more requests in flight than answers could still
                // fit, nor fewer than `α` (so a peer that never answers cannot hold up the join
                // alone).
                let room = self
                    .config
                    .join_fill
                    .saturating_sub(self.table.bucket(*bucket).len());
                if room == 0 {
                    return self.finish_lookup(now, qid, out);
                }
                if lookup.num_waiting() >= room.max(self.config.alpha) {
                    return;
                }
            }
            let Some(query) = self.queries.get_mut(&qid) else {
                return;
            };
            if query.storing.is_some() {
                return;
            }
            let target = *query.lookup.target();
            let request = match query.kind {
                Kind::GetValue(_) => Request::GetValue { key: target },
                Kind::GetProviders(_) => Request::GetProviders { key: target },
                _ => Request::FindNode { target },
            };
            // A join's lookups are for meeting peers: the `k` closest to us must hear of us, and a
            // refresh fills a bucket with the peers that answer it. A peer already in our table has
            // met us (it answered a request of ours, or sent us one), so once the lookup has names to
            // go on such a peer is skipped: asking it again would add nobody and tell it nothing. It
            // counts as having answered. Where a bucket cannot fill (fewer than `k` peers live in it,
            // as in the buckets nearest us) the refresh then ends once the first answers name nobody
            // new, instead of asking every one of the `k` closest again; and a node that joins a
            // second time asks only the neighbours it has not met.
            let skip_known =
                matches!(query.kind, Kind::Bootstrap | Kind::JoinRefresh(_)) && query.stats.successes > 0;
            match query.lookup.next(now) {
                LookupState::Contact(peer) if skip_known && self.table.contains(&peer) => {
                    query.lookup.skip(&peer);
                }
                LookupState::Contact(peer) => self.request(now, peer, request, Purpose::Lookup(qid), out),
                LookupState::Waiting => return,
                LookupState::Finished => return self.finish_lookup(now, qid, out),
            }
        }
    }

    /// A peer of a finished lookup's result, at the address we know best: what
    /// [`Kademlia::address_of`] knows (the driver's observation, our table, another lookup under way),
    /// else the one it was named with here.
    fn info_of(&self, named: PeerInfo) -> PeerInfo {
        match self.address_of(&named.id) {
            Some(addr) => PeerInfo {
                id: named.id,
                addr: addr.clone(),
            },
            None => named,
        }
    }

    /// The lookup of `qid` has ended: the requests it still has out are nobody's now
    /// ([`Purpose::Ended`]). Their answers still come, and still teach the table.
    pub(crate) fn abandon(&mut self, qid: Qid) {
        for pending in self.requests.values_mut() {
            if pending.purpose == Purpose::Lookup(qid) {
                pending.purpose = Purpose::Ended;
            }
        }
    }

    pub(crate) fn finish_lookup(&mut self, now: Instant, qid: Qid, out: &mut Out<S>) {
        let Some(mut query) = self.queries.remove(&qid) else {
            return;
        };
        self.abandon(qid);
        let peers = query.lookup.result();
        let user = match qid {
            Qid::User(query) => Some(query),
            Qid::Internal(_) => None,
        };
        let store_request = match &query.kind {
            Kind::PutValue(record) => Some(Request::PutValue {
                record: record.clone(),
            }),
            Kind::AddProvider => Some(Request::AddProvider {
                key: *query.lookup.target(),
                addr: self
                    .config
                    .external_address
                    .clone()
                    .unwrap_or_else(Address::unknown),
            }),
            _ => None,
        };
        if let Some(request) = store_request {
            if !peers.is_empty() {
                query.storing = Some((peers.len(), 0));
                // Back in the map before the requests go out, so each is counted in its statistics.
                self.queries.insert(qid, query);
                for peer in &peers {
                    self.request(now, peer.id, request.clone(), Purpose::Store(qid), out);
                }
                return;
            }
            query.storing = Some((0, 0));
            return self.finish_store(now, qid, query, out);
        }
        let key = *query.lookup.target();
        let stats = query.stats.finished(now);
        match (query.kind, user) {
            (Kind::Bootstrap, user) => {
                let closest: Vec<PeerId> = peers.iter().map(|p| p.id).collect();
                self.joined(now, &closest, user, stats, out);
            }
            (Kind::JoinRefresh(_), _) => self.next_join_refresh(now, out),
            (Kind::FindNode, Some(query)) => {
                let peers = peers.into_iter().map(|p| self.info_of(p)).collect();
                self.emit(
                    Event::ClosestPeers {
                        query,
                        target: key,
                        peers,
                        stats,
                    },
                    out,
                );
            }
            (Kind::FindPeer(peer), Some(query)) => {
                let found = peers.into_iter().find(|p| p.id == peer).map(|p| self.info_of(p));
                self.found_peer(query, peer, found, stats, out);
            }
            (Kind::GetValue(found), Some(query)) => self.emit(
                Event::GetValue {
                    query,
                    key,
                    record: found.best(),
                    stats,
                },
                out,
            ),
            (Kind::GetProviders(providers), Some(query)) => {
                self.emit(
                    Event::GetProviders {
                        query,
                        key,
                        providers,
                        stats,
                    },
                    out,
                );
            }
            _ => {}
        }
    }

    pub(crate) fn finish_store(&mut self, now: Instant, qid: Qid, query: Query, out: &mut Out<S>) {
        let (Qid::User(id), Some((_, ok))) = (qid, query.storing) else {
            return;
        };
        let key = *query.lookup.target();
        let stats = query.stats.finished(now);
        match query.kind {
            Kind::PutValue(_) => self.emit(
                Event::PutValue {
                    query: id,
                    key,
                    stored_at: ok,
                    stats,
                },
                out,
            ),
            Kind::AddProvider => self.emit(
                Event::StartedProviding {
                    query: id,
                    key,
                    stored_at: ok,
                    stats,
                },
                out,
            ),
            _ => {}
        }
    }
}
