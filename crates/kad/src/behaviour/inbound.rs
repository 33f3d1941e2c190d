//! Requests peers send us: answered from the table and the store, and the asker pinged back so it can
//! enter the table once it answers (S/Kademlia).

use meshwork_identity::PeerId;
use meshwork_wire::{BoundedVec, Instant};

use super::queries::Purpose;
use super::state::{Kademlia, Out};
use crate::message::{MAX_PEERS, Message, Peers, Request, RequestId, Response};
use crate::routing_table::RefuseReason;
use crate::store::{ProviderRecord, RecordStore};
use crate::{Address, Key, PeerInfo};

impl<S: RecordStore> Kademlia<S> {
    fn closest_infos(&self, target: &Key, except: &PeerId) -> Peers {
        let list: Vec<PeerInfo> = self
            .table
            .closest(target, self.config.k + 1)
            .into_iter()
            .filter(|e| e.peer != *except)
            .take(self.config.k.min(MAX_PEERS))
            .map(|e| e.info())
            .collect();
        BoundedVec::try_from(list).unwrap_or_default()
    }

    pub(crate) fn on_request(
        &mut self,
        now: Instant,
        from: PeerId,
        id: RequestId,
        request: Request,
        out: &mut Out<S>,
    ) {
        let response = match request {
            Request::Ping => Response::Pong,
            Request::FindNode { target } => Response::Nodes {
                closer: self.closest_infos(&target, &from),
            },
            Request::GetValue { key } => Response::Value {
                record: self.store.get(&key, now),
                closer: self.closest_infos(&key, &from),
            },
            Request::PutValue { record } => {
                let ok = record.verify(now, self.config.max_record_ttl).is_ok()
                    && self.store.put(record, now).is_ok();
                Response::Stored { ok }
            }
            Request::AddProvider { key, addr } => {
                let addr = self.observed.get(&from).cloned().unwrap_or(addr);
                let provider = ProviderRecord {
                    provider: PeerInfo { id: from, addr },
                    expires: now + self.config.provider_ttl,
                };
                Response::Stored {
                    ok: self.store.add_provider(key, provider).is_ok(),
                }
            }
            Request::GetProviders { key } => {
                let list: Vec<PeerInfo> = self
                    .store
                    .providers(&key, now)
                    .into_iter()
                    .take(MAX_PEERS)
                    .map(|p| p.provider)
                    .collect();
                Response::Providers {
                    providers: BoundedVec::try_from(list).unwrap_or_default(),
                    closer: self.closest_infos(&key, &from),
                }
            }
        };
        self.send(from, Message::Response { id, response }, out);
        self.maybe_ping_inbound(now, from, out);
    }

    /// A peer that asked us something may enter our table once it answers a ping of ours.
    fn maybe_ping_inbound(&mut self, now: Instant, from: PeerId, out: &mut Out<S>) {
        if !self.config.ping_inbound || self.table.contains(&from) || !self.acceptable(&from) {
            return;
        }
        let addr = self.address_of(&from).cloned().unwrap_or_else(Address::unknown);
        let index = match self.table.check(&from, &addr) {
            Ok(index) => index,
            Err(RefuseReason::BucketPrefixLimit | RefuseReason::TablePrefixLimit) => {
                return self.refused_for_prefix(from, out);
            }
            Err(_) => return,
        };
        let already = self
            .requests
            .values()
            .any(|p| p.peer == from && matches!(p.purpose, Purpose::Inbound));
        if !self.table.wants_candidate(index, now) || already {
            return;
        }
        self.request(from, Request::Ping, Purpose::Inbound, out);
    }
}
