//! Queries: lookups and their follow-ups (store, announce), responses and failed requests.

use meshwork_identity::PeerId;
use meshwork_wire::Instant;
use rand_core::RngCore;

use super::state::{Kademlia, MAX_SEEDS, Out, REJOIN_FIRST, REJOIN_MAX};
use super::stats::QueryStats;
use super::types::{Command, Event, QueryId, Timer};
use crate::message::Request;
use crate::query::{DisjointLookup, LookupConfig, LookupState};
use crate::store::RecordStore;
use crate::{Address, Key, PeerInfo, QueryError, Record};

/// A query's key: the application's ids and internal ones (refresh, republish) never collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Qid {
    User(QueryId),
    Internal(u64),
}

/// Why a request was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Liveness check of a full bucket's oldest entry.
    Liveness,
    /// A peer that asked us something; it enters the table if it answers.
    Inbound,
    /// A lookup step of a query.
    Lookup(Qid),
    /// Storing a record or a provider announcement after a lookup.
    Store(Qid),
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Bootstrap,
    /// A refresh of a bucket no lookup touched for [`crate::Config::refresh_interval`]: a full lookup of
    /// a random key in it, which also finds peers that joined since.
    Refresh,
    /// A refresh of bucket `.0` after joining, which had fewer than `k` peers: it ends as soon as the
    /// bucket holds `k`, since filling it is all it is for (every peer that answers enters the table).
    JoinRefresh(usize),
    FindNode,
    FindPeer(PeerId),
    GetValue,
    PutValue(Record),
    GetProviders(Vec<PeerInfo>),
    AddProvider,
}

#[derive(Clone, Debug)]
pub(crate) struct Query {
    pub(crate) lookup: DisjointLookup,
    pub(crate) kind: Kind,
    /// Store requests still out and accepted, once the lookup is done (PutValue, AddProvider).
    pub(crate) storing: Option<(usize, usize)>,
    /// What the query sent so far, every path and the store phase together.
    pub(crate) stats: QueryStats,
}

impl<S: RecordStore> Kademlia<S> {
    fn lookup_config(&self) -> LookupConfig {
        LookupConfig {
            parallelism: self.config.alpha,
            num_results: self.config.k,
            peer_timeout: self.config.request_timeout,
        }
    }

    pub(crate) fn start_command(&mut self, now: Instant, command: Command, out: &mut Out<S>) {
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
                return self.join(now, Qid::User(query), &accepted, out);
            }
            Command::FindNode { query, target } => (query, target, Kind::FindNode),
            Command::FindPeer { query, peer } => (query, Key::from_peer(&peer), Kind::FindPeer(peer)),
            Command::GetValue { query, key } => {
                if let Some(record) = self.store.get(&key, now) {
                    self.emit(
                        Event::GetValue {
                            query,
                            key,
                            record: Some(record),
                            stats: QueryStats::new(now),
                        },
                        out,
                    );
                    return;
                }
                (query, key, Kind::GetValue)
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
                let _ = self.store.put(record.clone(), now);
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

    fn start(
        &mut self,
        now: Instant,
        qid: Qid,
        target: Key,
        kind: Kind,
        extra: Vec<PeerId>,
        out: &mut Out<S>,
    ) {
        if self.queries.contains_key(&qid) {
            if let Qid::User(query) = qid {
                self.emit(
                    // The statistics of the refused command, not of the query running under that id.
                    Event::Failed {
                        query,
                        error: QueryError::DuplicateId,
                        stats: QueryStats::new(now),
                    },
                    out,
                );
            }
            return;
        }
        let mut seeds: Vec<PeerId> = self
            .table
            .closest(&target, self.config.k)
            .iter()
            .map(|e| e.peer)
            .collect();
        seeds.extend(extra);
        if seeds.is_empty() && !matches!(kind, Kind::Bootstrap | Kind::Refresh | Kind::JoinRefresh(_)) {
            // Nobody to ask: say so, rather than answer "nothing found" without having looked.
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
        let lookup = DisjointLookup::new(target, self.lookup_config(), paths, seeds);
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

    /// After a join (the bootstrap lookup) finished: if nobody answered, try again later through the
    /// bootstrap peers, each time waiting twice as long; once someone has, the wait starts over.
    fn after_join(&mut self, out: &mut Out<S>) {
        if !self.table.is_empty() {
            self.rejoin_delay = REJOIN_FIRST;
            return;
        }
        if self.seeds.is_empty() || self.rejoin_scheduled {
            return;
        }
        self.rejoin_scheduled = true;
        self.schedule(self.rejoin_delay, Timer::Rejoin, out);
        self.rejoin_delay = (self.rejoin_delay * 2).min(REJOIN_MAX);
    }

    /// Joins again through the bootstrap peers (on [`Timer::Rejoin`]), unless a peer has answered
    /// since.
    pub(crate) fn rejoin(&mut self, now: Instant, out: &mut Out<S>) {
        self.rejoin_scheduled = false;
        if !self.table.is_empty() {
            self.rejoin_delay = REJOIN_FIRST;
            return;
        }
        // A copy (at most `MAX_SEEDS`): a join that ends at once must still find the seeds to retry.
        let seeds = self.seeds.clone();
        let qid = Qid::Internal(self.next_internal);
        self.next_internal += 1;
        self.join(now, qid, &seeds, out);
    }

    /// Starts the join, the lookup of our own key, as `qid` through `seeds`, whose addresses it
    /// (re)learns.
    fn join(&mut self, now: Instant, qid: Qid, seeds: &[PeerInfo], out: &mut Out<S>) {
        for info in seeds {
            self.learn_address(info);
        }
        let extra = seeds.iter().map(|info| info.id).collect();
        let target = Key::from_peer(&self.local);
        self.start(now, qid, target, Kind::Bootstrap, extra, out);
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
                ..
            }) = self.queries.get(&qid)
                && self.table.bucket(*bucket).len() >= self.config.k
            {
                return self.finish_lookup(now, qid, out);
            }
            let Some(query) = self.queries.get_mut(&qid) else {
                return;
            };
            if query.storing.is_some() {
                return;
            }
            let target = *query.lookup.target();
            let request = match query.kind {
                Kind::GetValue => Request::GetValue { key: target },
                Kind::GetProviders(_) => Request::GetProviders { key: target },
                _ => Request::FindNode { target },
            };
            match query.lookup.next(now) {
                LookupState::Contact(peer) => self.request(peer, request, Purpose::Lookup(qid), out),
                LookupState::Waiting => return,
                LookupState::Finished => return self.finish_lookup(now, qid, out),
            }
        }
    }

    fn info_of(&self, peer: PeerId) -> PeerInfo {
        PeerInfo {
            id: peer,
            addr: self.address_of(&peer).cloned().unwrap_or_else(Address::unknown),
        }
    }

    fn finish_lookup(&mut self, now: Instant, qid: Qid, out: &mut Out<S>) {
        let Some(mut query) = self.queries.remove(&qid) else {
            return;
        };
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
                    self.request(*peer, request.clone(), Purpose::Store(qid), out);
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
                self.after_join(out);
                for index in self.buckets_to_refresh_after_join(&peers) {
                    let target = self.random_key_in_bucket(index);
                    self.start_internal(now, target, Kind::JoinRefresh(index), out);
                }
                if let Some(query) = user {
                    self.emit(
                        Event::Bootstrapped {
                            query,
                            table_size: self.table.len(),
                            stats,
                        },
                        out,
                    );
                }
            }
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
                let found = peers.contains(&peer).then(|| self.info_of(peer));
                self.emit(
                    Event::FoundPeer {
                        query,
                        peer,
                        found,
                        stats,
                    },
                    out,
                );
            }
            (Kind::GetValue, Some(query)) => self.emit(
                Event::GetValue {
                    query,
                    key,
                    record: None,
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

    /// Kademlia's join: after the self-lookup, which found `closest`, refresh every bucket farther
    /// than our nearest neighbour (Maymounkov & Mazières 2002, §2.3) that the self-lookup did not
    /// already cover.
    ///
    /// A bucket is covered when it is full (a refresh could not add to it), or when it lies wholly
    /// nearer to us than the `k`-th peer the self-lookup found: the lookup ended only once the `k`
    /// closest had answered, so it has seen every peer in that radius. Only the buckets out to that
    /// peer's are left: about `log2(N / k)` of them in a network of `N`, not `log2 N`. Measured: a
    /// third fewer requests until 200 nodes joining at once over QUIC settled
    /// (`benches/benches/kad_connections.rs`), and 30% fewer join messages per node at 1,000
    /// simulated nodes (`meshsim kad-lookup`), with the same tables. A self-lookup that found fewer
    /// than `k` (answers lost, or a network that small) covers nothing beyond our nearest
    /// neighbour.
    pub(crate) fn buckets_to_refresh_after_join(&self, closest: &[PeerId]) -> Vec<usize> {
        let Some(nearest) = (0..Key::BITS).rev().find(|&i| !self.table.bucket(i).is_empty()) else {
            return Vec::new();
        };
        let covered_beyond = if closest.len() >= self.config.k {
            // Bucket 0 is the farthest half of the key space: the k-th peer's bucket has the
            // smallest index among the k.
            closest
                .iter()
                .filter_map(|peer| self.table.bucket_index(&Key::from_peer(peer)))
                .min()
                .map_or(nearest, |farthest| (farthest + 1).min(nearest))
        } else {
            nearest
        };
        (0..covered_beyond)
            .filter(|&index| self.table.bucket(index).len() < self.config.k)
            .collect()
    }

    pub(crate) fn random_key_in_bucket(&mut self, index: usize) -> Key {
        let mut random = [0u8; 32];
        self.rng.fill_bytes(&mut random);
        self.table.local_key().random_in_bucket(index, random)
    }
}
