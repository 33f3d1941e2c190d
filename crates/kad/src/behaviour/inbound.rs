//! Requests peers send us: answered from the table and the store, and the asker admitted to the table
//! as an answering peer would be (Kademlia §2.2; [`crate::Config::admit_inbound`]).

use meshwork_identity::PeerId;
use meshwork_wire::{BoundedVec, Instant};

use super::state::{Kademlia, Out};
use crate::message::{MAX_PEERS, Message, Peers, Request, RequestId, Response};
use crate::routing_table::InsertOutcome;
use crate::store::{ProviderRecord, RecordStore, Sender};
use crate::{Key, PeerInfo};

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
                // Counted against the prefix we see the sender at, not one it names.
                let sender = Sender::observed(self.observed(&from));
                let ok = record.verify(now, self.config.max_record_ttl).is_ok()
                    && self.store.put(record, sender, now).is_ok();
                Response::Stored { ok }
            }
            Request::AddProvider { key, addr } => {
                let addr = self.observed(&from).cloned().unwrap_or_else(|| addr.named());
                let provider = ProviderRecord {
                    provider: PeerInfo { id: from, addr },
                    expires: now + self.config.provider_ttl,
                };
                let sender = Sender::observed(self.observed(&from));
                Response::Stored {
                    ok: self.store.add_provider(key, provider, sender).is_ok(),
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
        self.send(now, from, Message::Response { id, response }, out);
        self.admit_inbound(now, from, out);
    }

    /// A peer that asked us something enters (or refreshes its place in) our table, as if it had
    /// answered a request of ours.
    fn admit_inbound(&mut self, now: Instant, from: PeerId, out: &mut Out<S>) {
        if !self.config.admit_inbound || !self.acceptable(&from) {
            return;
        }
        if self.on_answer(from, now, out) == InsertOutcome::Inserted {
            self.totals.admitted_inbound += 1;
        }
    }
}
