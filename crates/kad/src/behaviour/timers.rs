//! Kademlia's timers: request deadlines, bucket refresh, joining again, republishing, re-announcing
//! and keeping anchors in use.

use meshwork_wire::Instant;

use super::queries::Kind;
use super::state::{Kademlia, Out};
use super::stats::Outcome;
use super::types::Timer;
use crate::store::{RecordStore, Sender};
use crate::{Key, Record};

impl<S: RecordStore> Kademlia<S> {
    pub(crate) fn on_timer(&mut self, now: Instant, timer: Timer, out: &mut Out<S>) {
        match timer {
            Timer::Request(id) => self.request_failed(id, now, Outcome::TimedOut, out),
            Timer::Deadlines => self.deadlines_due(now, out),
            Timer::Refresh => {
                self.store.expire(now);
                for index in self.table.stale_buckets(now, self.config.refresh_interval) {
                    let target = self.random_key_in_bucket(index);
                    self.start_internal(now, target, Kind::Refresh, out);
                }
                let own = Key::from_peer(&self.local);
                self.start_internal(now, own, Kind::Refresh, out);
                self.schedule(self.config.refresh_interval, Timer::Refresh, out);
            }
            Timer::Republish(key) => {
                let Some(value) = self.published.get(&key).cloned() else {
                    return;
                };
                let expires = now + self.config.record_ttl;
                if let Ok(record) = Record::sign(&self.keypair, key, value, expires) {
                    let _ = self.store.put(record.clone(), Sender::Local, now);
                    self.start_internal(now, key, Kind::PutValue(record), out);
                }
                self.schedule(self.config.republish_interval, Timer::Republish(key), out);
            }
            Timer::Rejoin => self.rejoin(now, out),
            Timer::Keepalive => self.keepalive_due(now, out),
            Timer::Reprovide(key) => {
                if self.provided.contains(&key) {
                    self.start_internal(now, key, Kind::AddProvider, out);
                    self.schedule(self.config.reprovide_interval, Timer::Reprovide(key), out);
                }
            }
        }
    }
}
