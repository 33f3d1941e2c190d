//! The inbound handshakes in progress, each with its network group and a way to cancel it: what the
//! listener evicts from once [`Limits::max_handshakes`](crate::Limits::max_handshakes) are under way.
//!
//! Past the half-open budget, a source that answered a Retry still gets a handshake (honest peers get
//! in during a flood of Initials), so what bounded those was only the per-address caps: an attacker
//! holding many /24s (or IPv6 /48s) could hold as many stalled handshakes as its networks allow, each
//! a quinn connection's state for the handshake timeout. A ceiling alone would have let such an
//! attacker refuse every honest newcomer; instead a newcomer past it evicts the **oldest handshake of
//! the most crowded network group** (an IPv4 /16 or IPv6 /32, Bitcoin Core's groups: what one
//! operator's networks most likely share), or is refused if its own group is at least as crowded.
//! Unproven sources (their address not validated, so possibly forged) are one group of their own:
//! forged Initials then crowd only each other, and cannot make a victim's group look crowded. A
//! peer over a relay circuit is a group of its own (circuits get virtual addresses in order, so
//! their /16s say nothing of who is behind them).
//! An honest handshake takes a round trip or two, so the oldest are the stalled ones: to evict an
//! honest handshake from a group of its own, an attacker must start more handshakes than the table
//! holds within that round trip (128 per 100 ms by default, each answering a Retry first).
//!
//! A floor on the age a handshake must reach before it may be evicted was tried and dropped: an
//! attacker that starts a table's worth of handshakes a second keeps every one younger than the
//! floor, and every newcomer, honest or not, is then refused.
//!
//! An evicted handshake is cancelled, not its task: the task stops waiting for the handshake and
//! drops quinn's connection (which closes it; its state then drains for three probe timeouts, RFC
//! 9000 §10.2, about 3 s at the initial round-trip estimate, measured in the QUIC test, instead of the
//! 10 s handshake timeout). A handshake that completed is past cancelling: its task has left the table.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use std::net::IpAddr;

use crate::admission::NetGroup;

/// Whom a handshake is counted with when the table looks for the most crowded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Crowd {
    /// A source that has not proven its address: all of them together.
    Unproven,
    /// A peer over a relay circuit: alone, by its circuit's virtual address.
    Relayed(IpAddr),
    /// A proven source: its network group.
    Group(NetGroup),
}

/// One handshake: whom it counts with, and the sender whose drop cancels it.
struct Handshake {
    crowd: Crowd,
    _cancel: oneshot::Sender<()>,
}

/// The handshakes in progress, by the order they began in.
#[derive(Default)]
pub(super) struct Handshakes {
    next: u64,
    live: HashMap<u64, Handshake>,
}

/// A handshake's place in [`Handshakes`]: its task holds it while the handshake runs, and leaves the
/// table when it drops it, however the handshake ended.
pub(super) struct Place {
    table: Arc<Mutex<Handshakes>>,
    id: u64,
}

impl Drop for Place {
    fn drop(&mut self) {
        lock(&self.table).live.remove(&self.id);
    }
}

fn lock(table: &Mutex<Handshakes>) -> MutexGuard<'_, Handshakes> {
    table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What [`Handshakes::admit`] did.
pub(super) enum Admitted {
    /// A place: `cancelled` completes (with an error) if the handshake is evicted. `evicted` says
    /// whether another was evicted to make room.
    Place {
        place: Place,
        cancelled: oneshot::Receiver<()>,
        evicted: bool,
    },
    /// No room, and nothing this newcomer may evict.
    Refused,
}

impl Handshakes {
    /// Takes a handshake counted with `crowd` into the table, evicting one if `max` are under way.
    pub(super) fn admit(table: &Arc<Mutex<Self>>, crowd: Crowd, max: usize) -> Admitted {
        let mut this = lock(table);
        let mut evicted = false;
        if this.live.len() >= max {
            let Some(victim) = this.victim(crowd) else {
                return Admitted::Refused;
            };
            // Dropping its sender cancels it.
            this.live.remove(&victim);
            evicted = true;
        }
        let id = this.next;
        this.next += 1;
        let (cancel, cancelled) = oneshot::channel();
        this.live.insert(
            id,
            Handshake {
                crowd,
                _cancel: cancel,
            },
        );
        let place = Place {
            table: table.clone(),
            id,
        };
        Admitted::Place {
            place,
            cancelled,
            evicted,
        }
    }

    /// The handshake a newcomer counted with `newcomer` evicts: the oldest of the most crowded (ties:
    /// the crowd whose oldest began first); none if the newcomer's own crowd is at least as large.
    fn victim(&self, newcomer: Crowd) -> Option<u64> {
        // Per crowd: how many, and the oldest of them.
        let mut crowds: HashMap<Crowd, (usize, u64)> = HashMap::new();
        for (&id, handshake) in &self.live {
            let crowd = crowds.entry(handshake.crowd).or_insert((0, id));
            crowd.0 += 1;
            crowd.1 = crowd.1.min(id);
        }
        let own = crowds.get(&newcomer).map_or(0, |&(count, _)| count);
        let (&crowd, &(count, oldest)) = crowds
            .iter()
            .max_by(|(_, a), (_, b)| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)))?;
        (crowd != newcomer && count > own).then_some(oldest)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::Ipv4Addr;

    use super::*;

    fn group(net: u8) -> Crowd {
        Crowd::Group(NetGroup::of(IpAddr::V4(Ipv4Addr::new(10, net, 0, 1))))
    }

    type Held = Vec<(Place, oneshot::Receiver<()>)>;

    /// A table of at most `max` handshakes from the given /16s, in that order.
    fn handshakes_from(nets: &[u8], max: usize) -> (Arc<Mutex<Handshakes>>, Held) {
        let table = Arc::new(Mutex::new(Handshakes::default()));
        let held = nets
            .iter()
            .map(|&net| match Handshakes::admit(&table, group(net), max) {
                Admitted::Place { place, cancelled, .. } => (place, cancelled),
                Admitted::Refused => panic!("room"),
            })
            .collect();
        (table, held)
    }

    fn cancelled(held: &mut Held) -> Vec<bool> {
        let closed =
            |rx: &mut oneshot::Receiver<()>| rx.try_recv() == Err(oneshot::error::TryRecvError::Closed);
        held.iter_mut().map(|(_, rx)| closed(rx)).collect()
    }

    #[test]
    fn the_oldest_handshake_of_the_most_crowded_group_is_cancelled() {
        let (table, mut held) = handshakes_from(&[1, 2, 2, 3, 2], 5);
        let Admitted::Place {
            evicted,
            place: _newcomer,
            ..
        } = Handshakes::admit(&table, group(9), 5)
        else {
            panic!("evicts");
        };
        assert!(evicted);
        assert_eq!(
            cancelled(&mut held),
            [false, true, false, false, false],
            "group 2's oldest"
        );
        assert_eq!(lock(&table).live.len(), 5, "the newcomer took its place");
    }

    #[test]
    fn a_newcomer_from_the_most_crowded_group_is_refused_instead() {
        let (table, _held) = handshakes_from(&[1, 2, 2], 3);
        assert!(matches!(
            Handshakes::admit(&table, group(2), 3),
            Admitted::Refused
        ));
        // As crowded as the most crowded: refused too; ties between others go to the oldest.
        let (table, mut held) = handshakes_from(&[1, 2, 3], 3);
        assert!(matches!(
            Handshakes::admit(&table, group(1), 3),
            Admitted::Refused
        ));
        assert!(matches!(
            Handshakes::admit(&table, group(4), 3),
            Admitted::Place { evicted: true, .. }
        ));
        assert_eq!(cancelled(&mut held), [true, false, false]);
    }

    #[test]
    fn forged_sources_crowd_only_each_other() {
        // Two unproven handshakes, then proven ones of group 1 and 2: the unproven are the most
        // crowded and go first, though group 1 had as many entries as they once did.
        let unproven = Crowd::Unproven;
        let table = Arc::new(Mutex::new(Handshakes::default()));
        let mut held: Held = Vec::new();
        for crowd in [unproven, unproven, group(1), group(2)] {
            let Admitted::Place { place, cancelled, .. } = Handshakes::admit(&table, crowd, 4) else {
                panic!("room");
            };
            held.push((place, cancelled));
        }
        assert!(matches!(
            Handshakes::admit(&table, group(1), 4),
            Admitted::Place { evicted: true, .. }
        ));
        assert_eq!(cancelled(&mut held), [true, false, false, false]);
    }

    #[test]
    fn a_handshake_that_ends_leaves_the_table() {
        let (table, mut held) = handshakes_from(&[1, 1], 2);
        held.pop();
        assert_eq!(lock(&table).live.len(), 1);
        assert!(matches!(
            Handshakes::admit(&table, group(2), 2),
            Admitted::Place { evicted: false, .. }
        ));
    }
}
