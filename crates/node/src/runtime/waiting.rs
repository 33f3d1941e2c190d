//! Messages to a peer whose every connection is retiring: they wait for the next connection instead of
//! being dropped.
//!
//! When a connection manager trims a connection (ours or the peer's), the peer is still up for the
//! protocols until the connection has drained, and they keep sending to it: an answer to a request that
//! was read during the drain, say. No connection takes new messages then, so such a message used to be
//! dropped, and a requester waited for an answer that never came. Now it waits here, within the
//! peer's send budget; the peer is dialled again once its old connections have closed (or its own new
//! connection arrives first), and what waited is queued to that connection, in order, before any
//! protocol hears `PeerUp`. A dial that fails drops what waited, counted as
//! [`DropReason::ConnectionClosed`]: the wait is bounded by the drain deadline plus the dial timeout.

use meshwork_identity::PeerId;
use meshwork_transport::Transport;
use meshwork_wire::DropReason;
use tracing::debug;

use super::Runtime;
use crate::send_budget::{Held, SendBudget, SendLimits};

/// What waits for one peer's next connection.
pub(crate) struct Waiting {
    /// The peer's budget while it has no connection that takes messages (it shares the node's total).
    budget: SendBudget,
    /// The messages, in the order they were sent: route, bytes, whether a control message, and their
    /// reservation.
    frames: Vec<(usize, Vec<u8>, bool, Held)>,
}

impl<T: Transport> Runtime<T> {
    /// Keeps `bytes` for `to`, whose connections are all retiring, until its next connection; counts a
    /// drop if the peer's budget or queue is full.
    pub(super) fn wait_for_connection(
        &mut self,
        to: PeerId,
        route: usize,
        (bytes, control): (Vec<u8>, bool),
        limits: SendLimits,
    ) {
        let mut max_frames = self.config.send_queue_per_peer;
        if control {
            max_frames += self.config.control_queue_per_peer;
        }
        let waiting = self.waiting.entry(to).or_insert_with(|| Waiting {
            budget: SendBudget::new(&self.send_bytes, &self.metrics.send_queue_bytes()),
            frames: Vec::new(),
        });
        let held = if waiting.frames.len() < max_frames {
            waiting.budget.reserve(bytes.capacity(), limits)
        } else {
            Err(DropReason::QueueFull)
        };
        let held = match held {
            Ok(held) => held,
            Err(reason) => return self.undelivered(to, route, &bytes, reason),
        };
        waiting.frames.push((route, bytes, control, held));
        // Dialled again once the old connections have closed, unless the peer comes back first.
        self.redial.insert(to);
    }

    /// `to` has a connection that takes messages again: what waited for it goes to it, in order.
    pub(super) fn flush_waiting(&mut self, to: PeerId) {
        let Some(waiting) = self.waiting.remove(&to) else {
            return;
        };
        debug!(peer = %to, frames = waiting.frames.len(), "sending what waited for a new connection");
        for (route, bytes, control, held) in waiting.frames {
            // The reservation moves to the new connection's budget.
            drop(held);
            self.send(to, route, bytes, control);
        }
    }

    /// No new connection to `to` is coming (the dial failed, or there is no address to dial): what
    /// waited for one is dropped, and counted.
    pub(super) fn drop_waiting(&mut self, to: PeerId) {
        let Some(waiting) = self.waiting.remove(&to) else {
            return;
        };
        for (route, bytes, ..) in waiting.frames {
            self.undelivered(to, route, &bytes, DropReason::ConnectionClosed);
        }
    }
}
