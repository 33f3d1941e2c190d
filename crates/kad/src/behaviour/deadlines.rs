//! Deadlines: when requests time out and lookups end at [`crate::Config::query_timeout`], on one
//! timer ([`Timer::Deadlines`]) whatever the number of requests.

use std::time::Duration;

use meshwork_wire::Instant;

use super::queries::Qid;
use super::state::{Kademlia, Out};
use super::stats::Outcome;
use super::types::Timer;
use crate::message::RequestId;
use crate::store::RecordStore;

/// Request deadlines are checked on whole multiples of this: a request times out up to this much
/// after [`crate::Config::request_timeout`], and a node busy with requests has at most one deadline
/// timer pending a tick. A timer per request made a simulated network's event queue a third of its
/// memory (every request's timer waited out its ten seconds, answered or not) and a sixth of its
/// events.
pub(crate) const DEADLINE_TICK: Duration = Duration::from_secs(1);

impl<S: RecordStore> Kademlia<S> {
    /// Makes sure a [`Timer::Deadlines`] fires by `deadline` (rounded up to a [`DEADLINE_TICK`]).
    pub(crate) fn arm_deadlines(&mut self, now: Instant, deadline: Instant, out: &mut Out<S>) {
        let tick = DEADLINE_TICK.as_nanos().max(1);
        let at = deadline.as_duration().as_nanos().div_ceil(tick) * tick;
        let at = Instant::from_nanos(u64::try_from(at).unwrap_or(u64::MAX));
        if self.deadline_timer.is_some_and(|pending| pending <= at) {
            return;
        }
        self.deadline_timer = Some(at);
        self.schedule(at.saturating_duration_since(now), Timer::Deadlines, out);
    }

    /// On [`Timer::Deadlines`]: every request past its deadline times out, in request order (the
    /// simulator replays a seed exactly), every lookup past [`crate::Config::query_timeout`] ends with
    /// what it has, in query order, and the timer is set again for the earliest deadline left.
    pub(crate) fn deadlines_due(&mut self, now: Instant, out: &mut Out<S>) {
        if self.deadline_timer.is_some_and(|pending| pending <= now) {
            self.deadline_timer = None;
        }
        let mut due: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, p)| p.sent && p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        due.sort_unstable();
        for id in due {
            self.request_failed(id, now, Outcome::TimedOut, out);
        }
        let query_timeout = self.config.query_timeout;
        let mut overdue: Vec<Qid> = self
            .queries
            .iter()
            .filter(|(_, q)| q.storing.is_none() && q.stats.started + query_timeout <= now)
            .map(|(qid, _)| *qid)
            .collect();
        overdue.sort_unstable();
        for qid in overdue {
            self.finish_lookup(now, qid, out);
        }
        let lookups = self
            .queries
            .values()
            .filter(|q| q.storing.is_none())
            .map(|q| q.stats.started + query_timeout);
        let next = self
            .requests
            .values()
            .filter(|p| p.sent)
            .map(|p| p.deadline)
            .chain(lookups)
            .min();
        if let Some(next) = next {
            self.arm_deadlines(now, next, out);
        }
    }
}
