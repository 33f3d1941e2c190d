//! The inbound handshakes in progress, each with its network prefix and a handle to abort it: what the
//! listener evicts from once [`Limits::max_handshakes`](crate::Limits::max_handshakes) are under way.
//!
//! Past the half-open budget, a source that answered a Retry still gets a handshake (honest peers get
//! in during a flood of Initials), so what bounded those was only the per-address caps: an attacker
//! holding many /24s (or IPv6 /32s) could hold as many stalled handshakes as its networks allow, each
//! a quinn connection's state for the handshake timeout. A ceiling alone would have let such an
//! attacker refuse every honest newcomer; instead a newcomer past it evicts the **oldest handshake of
//! the most crowded prefix**, as the listener's connection eviction does for established ones. An
//! honest handshake takes a round trip or two, so the oldest are the stalled ones, and the most
//! crowded prefix is the attacker's; a newcomer whose own prefix is the most crowded is refused instead.
//!
//! Aborting a handshake's task drops quinn's connection, which closes it; its state then drains for
//! three probe timeouts (RFC 9000 §10.2: about 3 s at the initial round-trip estimate, measured in the
//! QUIC test) instead of waiting out the 10 s handshake timeout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use meshwork_wire::IpPrefix;
use tokio::task::AbortHandle;

/// One handshake: its prefix, and its task's abort handle once spawned.
struct Handshake {
    prefix: IpPrefix,
    abort: Option<AbortHandle>,
}

/// The handshakes in progress, by the order they began in.
#[derive(Default)]
pub(super) struct Handshakes {
    next: u64,
    live: HashMap<u64, Handshake>,
}

/// A handshake's place in [`Handshakes`]: the handshake's task holds it, and leaves the table when it
/// ends, however it ends (an abort included).
pub(super) struct Place {
    table: Arc<Mutex<Handshakes>>,
    id: u64,
}

impl Place {
    /// The handshake's number in the table.
    pub(super) fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        lock(&self.table).live.remove(&self.id);
    }
}

fn lock(table: &Mutex<Handshakes>) -> MutexGuard<'_, Handshakes> {
    table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Handshakes {
    /// Registers a handshake from `prefix`; its task is attached with [`Handshakes::attach`].
    pub(super) fn begin(table: &Arc<Mutex<Self>>, prefix: IpPrefix) -> Place {
        let mut this = lock(table);
        let id = this.next;
        this.next += 1;
        this.live.insert(id, Handshake { prefix, abort: None });
        Place {
            table: table.clone(),
            id,
        }
    }

    /// Attaches the task of handshake `id` ([`Place::id`]), unless it ended already.
    pub(super) fn attach(table: &Mutex<Self>, id: u64, abort: AbortHandle) {
        if let Some(handshake) = lock(table).live.get_mut(&id) {
            handshake.abort = Some(abort);
        }
    }

    /// Makes room for a newcomer from `prefix`: aborts the oldest handshake of the most crowded
    /// prefix (ties: the prefix whose oldest began first). False, and nothing aborted, if the
    /// newcomer's own prefix is at least as crowded (it is refused instead) or nothing can be aborted.
    pub(super) fn evict_for(table: &Mutex<Self>, prefix: IpPrefix) -> bool {
        let mut this = lock(table);
        let Some(victim) = this.victim(prefix) else {
            return false;
        };
        let Some(handshake) = this.live.remove(&victim) else {
            return false;
        };
        if let Some(abort) = handshake.abort {
            // Its task drops its half-open slot, its address slot and quinn's connection.
            abort.abort();
        }
        true
    }

    /// The handshake [`Handshakes::evict_for`] aborts, if any.
    fn victim(&self, newcomer: IpPrefix) -> Option<u64> {
        // Per prefix: how many, and the oldest of them.
        let mut crowds: HashMap<IpPrefix, (usize, u64)> = HashMap::new();
        for (&id, handshake) in self.live.iter().filter(|(_, h)| h.abort.is_some()) {
            let crowd = crowds.entry(handshake.prefix).or_insert((0, id));
            crowd.0 += 1;
            crowd.1 = crowd.1.min(id);
        }
        let own = crowds.get(&newcomer).map_or(0, |&(count, _)| count);
        let (&prefix, &(count, oldest)) = crowds
            .iter()
            .max_by(|(_, a), (_, b)| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)))?;
        (prefix != newcomer && count > own).then_some(oldest)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn prefix(net: u8) -> IpPrefix {
        IpPrefix::of(IpAddr::V4(Ipv4Addr::new(10, 0, net, 1)))
    }

    /// A table with handshakes from the given /24s, in that order, each with a task that waits.
    fn handshakes_from(
        nets: &[u8],
    ) -> (
        Arc<Mutex<Handshakes>>,
        Vec<Place>,
        Vec<tokio::task::JoinHandle<()>>,
    ) {
        let table = Arc::new(Mutex::new(Handshakes::default()));
        let mut places = Vec::new();
        let mut tasks = Vec::new();
        for &net in nets {
            let place = Handshakes::begin(&table, prefix(net));
            let task = tokio::spawn(std::future::pending());
            Handshakes::attach(&table, place.id(), task.abort_handle());
            places.push(place);
            tasks.push(task);
        }
        (table, places, tasks)
    }

    #[tokio::test]
    async fn the_oldest_handshake_of_the_most_crowded_prefix_is_aborted() {
        let (table, _places, tasks) = handshakes_from(&[1, 2, 2, 3, 2]);
        assert!(Handshakes::evict_for(&table, prefix(9)));
        let aborted: Vec<bool> = tasks.iter().map(|t| t.is_finished()).collect();
        tokio::task::yield_now().await;
        let finished: Vec<bool> = tasks.iter().map(|t| t.is_finished()).collect();
        assert_eq!(aborted, [false; 5], "aborted, not yet reaped");
        assert_eq!(finished, [false, true, false, false, false], "prefix 2's oldest");
        assert_eq!(lock(&table).live.len(), 4);
    }

    #[tokio::test]
    async fn a_newcomer_from_the_most_crowded_prefix_is_refused_instead() {
        let (table, _places, _tasks) = handshakes_from(&[1, 2, 2]);
        assert!(!Handshakes::evict_for(&table, prefix(2)));
        // As crowded as the most crowded: refused too; ties between others go to the oldest.
        let (table, _places, tasks) = handshakes_from(&[1, 2, 3]);
        assert!(!Handshakes::evict_for(&table, prefix(1)));
        assert!(Handshakes::evict_for(&table, prefix(4)));
        tokio::task::yield_now().await;
        assert!(tasks[0].is_finished() && !tasks[1].is_finished());
    }

    #[tokio::test]
    async fn a_handshake_that_ends_leaves_the_table() {
        let (table, mut places, _tasks) = handshakes_from(&[1, 1]);
        places.pop();
        assert_eq!(lock(&table).live.len(), 1);
        // One attached handshake left, of the newcomer's own prefix: nothing to evict.
        assert!(!Handshakes::evict_for(&table, prefix(1)));
    }
}
