//! Queries: lookups and their follow-ups (store, announce), responses and failed requests.

use meshwork_identity::PeerId;
use meshwork_wire::Instant;
use rand_core::RngCore;

use super::state::{Kademlia, Out};
use super::types::{Command, Event, QueryId, Timer};
use crate::message::{Request, RequestId, Response};
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
    Refresh,
    FindNode,
    FindPeer(PeerId),
    GetValue,
    PutValue(Record),
    GetProviders(Vec<PeerInfo>),
    AddProvider,
}

#[derive(Clone, Debug)]
pub(crate) struct Query {
    lookup: DisjointLookup,
    kind: Kind,
    /// Store requests still out and accepted, once the lookup is done (PutValue, AddProvider).
    storing: Option<(usize, usize)>,
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
                let mut extra = Vec::new();
                for info in peers.iter() {
                    if !self.acceptable(&info.id) {
                        continue;
                    }
                    self.learn_address(info);
                    extra.push(info.id);
                }
                if !self.refresh_scheduled {
                    self.refresh_scheduled = true;
                    self.schedule(self.config.refresh_interval, Timer::Refresh, out);
                }
                let target = Key::from_peer(&self.local);
                return self.start(now, Qid::User(query), target, Kind::Bootstrap, extra, out);
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
                    Event::Failed {
                        query,
                        error: QueryError::DuplicateId,
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
        if let Some(index) = self.table.bucket_index(&target) {
            self.table.touch_bucket(index, now);
        }
        let lookup = DisjointLookup::new(target, self.lookup_config(), self.config.disjoint_paths, seeds);
        self.queries.insert(
            qid,
            Query {
                lookup,
                kind,
                storing: None,
            },
        );
        self.advance(now, qid, out);
    }

    pub(crate) fn start_internal(&mut self, now: Instant, target: Key, kind: Kind, out: &mut Out<S>) {
        let qid = Qid::Internal(self.next_internal);
        self.next_internal += 1;
        self.start(now, qid, target, kind, Vec::new(), out);
    }

    /// Sends the lookup's next requests, or finishes it.
    fn advance(&mut self, now: Instant, qid: Qid, out: &mut Out<S>) {
        loop {
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
                for peer in &peers {
                    self.request(*peer, request.clone(), Purpose::Store(qid), out);
                }
                query.storing = Some((peers.len(), 0));
                self.queries.insert(qid, query);
                return;
            }
            query.storing = Some((0, 0));
            return self.finish_store(qid, query, out);
        }
        let key = *query.lookup.target();
        match (query.kind, user) {
            (Kind::Bootstrap, user) => {
                // Kademlia's join: after the self-lookup, refresh every bucket farther than our neighbours.
                let highest = (0..Key::BITS).rev().find(|&i| !self.table.bucket(i).is_empty());
                for index in 0..highest.unwrap_or(0) {
                    let target = self.random_key_in_bucket(index);
                    self.start_internal(now, target, Kind::Refresh, out);
                }
                if let Some(query) = user {
                    self.emit(
                        Event::Bootstrapped {
                            query,
                            table_size: self.table.len(),
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
                    },
                    out,
                );
            }
            (Kind::FindPeer(peer), Some(query)) => {
                let found = peers.contains(&peer).then(|| self.info_of(peer));
                self.emit(Event::FoundPeer { query, peer, found }, out);
            }
            (Kind::GetValue, Some(query)) => self.emit(
                Event::GetValue {
                    query,
                    key,
                    record: None,
                },
                out,
            ),
            (Kind::GetProviders(providers), Some(query)) => {
                self.emit(
                    Event::GetProviders {
                        query,
                        key,
                        providers,
                    },
                    out,
                );
            }
            _ => {}
        }
    }

    fn finish_store(&mut self, qid: Qid, query: Query, out: &mut Out<S>) {
        let (Qid::User(id), Some((_, ok))) = (qid, query.storing) else {
            return;
        };
        let key = *query.lookup.target();
        match query.kind {
            Kind::PutValue(_) => self.emit(
                Event::PutValue {
                    query: id,
                    key,
                    stored_at: ok,
                },
                out,
            ),
            Kind::AddProvider => self.emit(
                Event::StartedProviding {
                    query: id,
                    key,
                    stored_at: ok,
                },
                out,
            ),
            _ => {}
        }
    }

    pub(crate) fn random_key_in_bucket(&mut self, index: usize) -> Key {
        let mut random = [0u8; 32];
        self.rng.fill_bytes(&mut random);
        self.table.local_key().random_in_bucket(index, random)
    }

    pub(crate) fn on_response(
        &mut self,
        now: Instant,
        from: PeerId,
        id: RequestId,
        response: Response,
        out: &mut Out<S>,
    ) {
        // Only the peer we asked may answer, and only once.
        match self.requests.get(&id) {
            Some(pending) if pending.peer == from => {}
            _ => return,
        }
        let Some(pending) = self.requests.remove(&id) else {
            return;
        };
        self.on_answer(from, now, out);
        match pending.purpose {
            Purpose::Liveness => {
                self.table.on_ping_result(&from, true, now);
            }
            Purpose::Inbound => {}
            Purpose::Store(qid) => {
                let ok = matches!(response, Response::Stored { ok: true });
                self.store_answer(qid, ok, out);
            }
            Purpose::Lookup(qid) => self.lookup_answer(now, qid, from, response, out),
        }
    }

    fn store_answer(&mut self, qid: Qid, accepted: bool, out: &mut Out<S>) {
        let Some(query) = self.queries.get_mut(&qid) else {
            return;
        };
        let Some((outstanding, ok)) = query.storing.as_mut() else {
            return;
        };
        *outstanding = outstanding.saturating_sub(1);
        *ok += usize::from(accepted);
        if *outstanding == 0 {
            if let Some(query) = self.queries.remove(&qid) {
                self.finish_store(qid, query, out);
            }
        }
    }

    fn lookup_answer(&mut self, now: Instant, qid: Qid, from: PeerId, response: Response, out: &mut Out<S>) {
        let (closer, record, providers) = match response {
            Response::Nodes { closer } => (closer, None, None),
            Response::Value { record, closer } => (closer, record, None),
            Response::Providers { providers, closer } => (closer, None, Some(providers)),
            Response::Pong | Response::Stored { .. } => {
                // A confused or hostile peer: count it as a failure.
                if let Some(query) = self.queries.get_mut(&qid) {
                    query.lookup.on_failure(&from);
                }
                return self.advance(now, qid, out);
            }
        };
        let mut ids = Vec::with_capacity(closer.len());
        for info in &closer {
            if self.acceptable(&info.id) {
                self.learn_address(info);
                ids.push(info.id);
            }
        }
        let Some(query) = self.queries.get_mut(&qid) else {
            return;
        };
        let target = *query.lookup.target();
        if let (Kind::GetValue, Some(record)) = (&query.kind, record) {
            if record.key == target && record.verify(now, self.config.max_record_ttl).is_ok() {
                self.queries.remove(&qid);
                if let Qid::User(query) = qid {
                    self.emit(
                        Event::GetValue {
                            query,
                            key: target,
                            record: Some(record),
                        },
                        out,
                    );
                }
                return;
            }
        }
        if let (Kind::GetProviders(found), Some(providers)) = (&mut query.kind, providers) {
            for info in providers {
                if found.len() < self.config.k && !found.iter().any(|f| f.id == info.id) {
                    found.push(info);
                }
            }
        }
        query.lookup.on_success(&from, ids);
        self.advance(now, qid, out);
    }

    /// A request failed (timed out, or the connection dropped).
    pub(crate) fn request_failed(&mut self, id: RequestId, now: Instant, out: &mut Out<S>) {
        let Some(pending) = self.requests.remove(&id) else {
            return;
        };
        let peer = pending.peer;
        self.forget_dial(&peer);
        match pending.purpose {
            Purpose::Liveness => {
                self.table.on_ping_result(&peer, false, now);
            }
            Purpose::Inbound => {}
            Purpose::Store(qid) => self.store_answer(qid, false, out),
            Purpose::Lookup(qid) => {
                // An unresponsive peer leaves the table (its bucket's pending candidate may take its place).
                self.table.remove(&peer);
                if let Some(query) = self.queries.get_mut(&qid) {
                    query.lookup.on_failure(&peer);
                }
                self.advance(now, qid, out);
            }
        }
    }
}
