//! Copies a neighbour pushed before it heard that we pruned its link (or that the link ended, or
//! that we grafted it): in flight, so dropped without blame for a while ([`Plumtree::excuse_pushes`]),
//! and up to a bounded count, so that what a peer may waste unpunished stays bounded by what it relays.

use meshwork_wire::{Instant, PeerId};

use super::{MAX_IN_FLIGHT_WINDOWS, Plumtree};

/// Copies excused in one in-flight window, at most: the default seen cache's capacity. Under a
/// congested link that keeps being grafted and pruned, honest copies ran past a budget of 4,096 (four
/// runtime send queues) in most uncapped `coin-node bench` runs; a bound is kept so that a peer that
/// holds its window open (by relaying first-seen messages) still cannot waste without end.
const MAX_EXCUSED: u32 = 65_536;

/// An open in-flight window of a peer ([`Plumtree::excuse_pushes`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct InFlight {
    pub(super) until: Instant,
    left: u32,
}

impl Plumtree {
    /// We told `peer` to stop pushing to us (a `Prune` on a link that was eager), its link ended, or we
    /// grafted it (which makes it push an origin we cannot name yet, so our side of the link may still
    /// be lazy for it): what it pushes until it hears of it may arrive for twice its link's measured
    /// delay (the slowest recent answer to our grafts), at least [`crate::Config::graft_promise`] and
    /// at most [`crate::Config::graft_promise_max`]. A window still open is extended, but its count of
    /// excused copies is not refilled.
    pub(super) fn excuse_pushes(&mut self, now: Instant, peer: PeerId) {
        let lag = self.answer_lag.get(&peer).copied().unwrap_or_default();
        let until = now
            + (lag * 2)
                .max(self.config.graft_promise)
                .min(self.config.graft_promise_max);
        if let Some(window) = self.in_flight.get_mut(&peer)
            && window.until > now
        {
            window.until = window.until.max(until);
            return;
        }
        if self.in_flight.len() >= MAX_IN_FLIGHT_WINDOWS {
            self.in_flight.retain(|_, window| window.until > now);
        }
        if self.in_flight.len() < MAX_IN_FLIGHT_WINDOWS || self.in_flight.contains_key(&peer) {
            let left = MAX_EXCUSED;
            self.in_flight.insert(peer, InFlight { until, left });
        }
    }

    /// We pruned `peer` again: an open in-flight window lasts as long from now as a new one would. Its
    /// count is not refilled, and a closed one is not reopened, so a peer that keeps pushing on a pruned
    /// link gets no more copies excused than [`Plumtree::excuse_pushes`] allows.
    pub(super) fn keep_excusing(&mut self, now: Instant, peer: PeerId) {
        if self.in_flight.get(&peer).is_some_and(|window| window.until > now) {
            self.excuse_pushes(now, peer);
        }
    }

    /// `from` relayed a first-seen message: an open window excuses one more copy (up to
    /// [`MAX_EXCUSED`]). A busy honest link that keeps being grafted and pruned keeps its window open
    /// for as long as the congestion lasts, and its copies grow with what it relays.
    pub(crate) fn relayed_by(&mut self, from: &PeerId, now: Instant) {
        if let Some(window) = self.in_flight.get_mut(from)
            && now < window.until
        {
            window.left = (window.left + 1).min(MAX_EXCUSED);
        }
    }

    /// Whether a wasted message from `from` may be one it pushed before it heard that we pruned its
    /// link (or dropped it), or one our graft asked for: such copies are dropped but not charged, up
    /// to [`MAX_EXCUSED`] a window and one more per first-seen message it relays meanwhile. A peer
    /// can refill a window only by letting it close (a first-seen message of its own makes the link
    /// eager again, and the next copy prunes it, which extends the window but does not refill it), so
    /// what it may waste unpunished stays bounded by what it relays.
    pub(crate) fn excuse(&mut self, from: &PeerId, now: Instant) -> bool {
        match self.in_flight.get_mut(from) {
            Some(window) if now < window.until && window.left > 0 => {
                window.left -= 1;
                true
            }
            _ => false,
        }
    }
}
