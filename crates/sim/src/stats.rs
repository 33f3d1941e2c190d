//! Counters over a whole run.

/// What the simulator counted over a run. Every message handed to the network ends up in exactly one of
/// `delivered`, the `dropped_*` counters, `decode_failures`, or is still in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Events taken from the queue and processed.
    pub events: u64,
    /// Messages protocols sent that reached the network (after adversaries, before loss).
    pub messages_sent: u64,
    /// Their encoded size in bytes.
    pub bytes_sent: u64,
    /// The same bytes by the channel that carried them (a composite's children: index `i` is channel
    /// `i` of [`Protocol::channels`](meshwork_wire::Protocol::channels); channels past the last slot are
    /// counted in it).
    pub bytes_by_channel: [u64; 4],
    /// Of those bytes, the ones of control messages
    /// ([`Protocol::is_control`](meshwork_wire::Protocol::is_control)): a broadcast protocol's
    /// membership and repair traffic, beside its data.
    pub control_bytes: u64,
    /// Messages handed to their recipient.
    pub delivered: u64,
    /// Lost to the link's random loss.
    pub dropped_loss: u64,
    /// Dropped because a partition separated sender and recipient (at send or on arrival).
    pub dropped_partition: u64,
    /// Dropped because the recipient was down, or restarted, before it arrived.
    pub dropped_dead: u64,
    /// Dropped because there was no connection (never dialled, or closed before arrival).
    pub dropped_no_link: u64,
    /// Addressed to a peer id the simulator does not know.
    pub dropped_unknown: u64,
    /// Dropped by an adversarial sender.
    pub dropped_adversary: u64,
    /// Garbage that reached its recipient and failed to decode.
    pub decode_failures: u64,
    /// What protocols refused ([`Output::Dropped`](meshwork_wire::Output::Dropped)), by reason: index
    /// `i` counts [`DropReason::ALL`](meshwork_wire::DropReason::ALL)`[i]`.
    pub refused: [u64; meshwork_wire::DropReason::ALL.len()],
    /// Messages that failed to encode (a protocol bug); dropped.
    pub encode_failures: u64,
    /// Timers fired.
    pub timers: u64,
    /// Connections established (by dial or by the experiment).
    pub connections: u64,
    /// Dials that failed (peer down or unreachable).
    pub failed_dials: u64,
    /// Crashes (including churn departures).
    pub crashes: u64,
    /// Restarts.
    pub restarts: u64,
    /// Connections closed for carrying nothing for the idle timeout
    /// ([`LinkConfig::idle_timeout`](crate::LinkConfig::idle_timeout)).
    pub idle_closed: u64,
}

impl SimStats {
    /// How many times protocols refused something for `reason`.
    pub fn refused(&self, reason: meshwork_wire::DropReason) -> u64 {
        self.refused[reason.index()]
    }
}
