//! What a connection carried at the transport level, and how connections ended.

use std::time::Duration;

use crate::CloseReason;

/// What one connection has carried below the streams, as its transport counts it
/// ([`Connection::stats`](crate::Connection::stats)). Every count only grows while the connection lives,
/// and a closed connection keeps answering with its final figures.
///
/// - **QUIC** ([`QuicConnection`](crate::QuicConnection)): read from quinn's connection statistics.
///   Datagrams and bytes are UDP payloads as quinn sends and receives them: QUIC packet headers, the TLS
///   handshake, acknowledgements, retransmissions, keep-alives and the close all count (IP and UDP headers
///   do not). Bytes the application wrote are a part of it; the rest is the price of the transport. The
///   accepting side does not count the dialer's first datagram (quinn reads it before the connection
///   exists; it is padded to 1,200 bytes), so its `bytes_received` is that much short of the dialer's
///   `bytes_sent`.
/// - **Memory** ([`MemoryConnection`](crate::MemoryConnection)): there are no packets. Each write that
///   moves bytes into a stream's pipe counts as one "datagram" of that many bytes: frames (header and
///   body) and the stream-header exchange. A write counts as received by the peer as soon as it is in
///   the pipe (the pipe is the peer's receive buffer), so one side's sent figures equal the other side's
///   received ones. Nothing is lost and there is no round trip: `packets_lost`, `bytes_lost`,
///   `congestion_events` and `rtt` stay zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// UDP datagrams sent (memory: writes into a stream pipe).
    pub datagrams_sent: u64,
    /// Bytes sent in those datagrams (UDP payload).
    pub bytes_sent: u64,
    /// UDP datagrams received (memory: the peer's writes to us).
    pub datagrams_received: u64,
    /// Bytes received in those datagrams (UDP payload).
    pub bytes_received: u64,
    /// Packets declared lost. QUIC sends their frames again in new packets, so a loss costs a
    /// retransmission rather than data. PMTU probes are not counted (quinn keeps them apart).
    pub packets_lost: u64,
    /// Bytes of the packets declared lost: about what had to be sent again.
    pub bytes_lost: u64,
    /// How many times loss or congestion made the sender shrink its congestion window.
    pub congestion_events: u64,
    /// The smoothed round-trip time now (QUIC's estimate, before the first sample its initial 333 ms).
    pub rtt: Duration,
}

impl ConnectionStats {
    /// Adds `other`'s counts to ours (the round-trip time is not a count: ours is kept).
    pub(crate) fn accumulate(&mut self, other: &Self) {
        self.datagrams_sent += other.datagrams_sent;
        self.bytes_sent += other.bytes_sent;
        self.datagrams_received += other.datagrams_received;
        self.bytes_received += other.bytes_received;
        self.packets_lost += other.packets_lost;
        self.bytes_lost += other.bytes_lost;
        self.congestion_events += other.congestion_events;
    }
}

/// How many connections of a transport ended, by [`CloseReason`]; each connection is counted once, by the
/// reason its transport saw when it closed (the same on both sides for a close the peer sent).
///
/// Application codes (the node runtime's `CLOSE_PROTOCOL_VIOLATION`, `CLOSE_REQUESTED`, `CLOSE_STALLED`,
/// ...) below [`ClosedByReason::APPLICATION_CODES`] are counted one by one, larger ones together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClosedByReason {
    /// [`CloseReason::Normal`]: an orderly close with nothing to report.
    pub normal: u64,
    /// [`CloseReason::Duplicate`]: another connection to the same peer was kept.
    pub duplicate: u64,
    /// [`CloseReason::Shutdown`]: this transport or the peer's shut down.
    pub shutdown: u64,
    /// [`CloseReason::Evicted`]: closed to make room for a newcomer (here or at the peer).
    pub evicted: u64,
    /// [`CloseReason::TimedOut`]: nothing heard within the idle timeout.
    pub timed_out: u64,
    /// [`CloseReason::Lost`]: failed without a close (reset, protocol violation, unknown code).
    pub lost: u64,
    /// [`CloseReason::Application`]`(code)`, indexed by `code`, for codes below
    /// [`ClosedByReason::APPLICATION_CODES`].
    pub application: [u64; Self::APPLICATION_CODES],
    /// [`CloseReason::Application`] with a code of [`ClosedByReason::APPLICATION_CODES`] or more.
    pub application_other: u64,
}

impl ClosedByReason {
    /// How many application codes are counted one by one (0 to 7): the node runtime's codes fit, and the
    /// snapshot stays a few machine words.
    pub const APPLICATION_CODES: usize = 8;

    /// The count in the bucket `reason` falls in (every `Lost` reason shares one; so do application codes
    /// from [`ClosedByReason::APPLICATION_CODES`] up).
    pub fn of(&self, reason: &CloseReason) -> u64 {
        // A copy is 15 words; it lets one match (`slot`) say where every reason is counted.
        let mut copy = *self;
        *copy.slot(reason)
    }

    /// Every closed connection, whatever the reason.
    pub fn total(&self) -> u64 {
        self.normal
            + self.duplicate
            + self.shutdown
            + self.evicted
            + self.timed_out
            + self.lost
            + self.application.iter().sum::<u64>()
            + self.application_other
    }

    /// Counts one connection closed for `reason`.
    pub(crate) fn record(&mut self, reason: &CloseReason) {
        *self.slot(reason) += 1;
    }

    /// The counter `reason` is counted in.
    fn slot(&mut self, reason: &CloseReason) -> &mut u64 {
        match reason {
            CloseReason::Normal => &mut self.normal,
            CloseReason::Duplicate => &mut self.duplicate,
            CloseReason::Shutdown => &mut self.shutdown,
            CloseReason::Evicted => &mut self.evicted,
            CloseReason::TimedOut => &mut self.timed_out,
            CloseReason::Lost(_) => &mut self.lost,
            CloseReason::Application(code) => match usize::try_from(*code) {
                Ok(code) if code < Self::APPLICATION_CODES => &mut self.application[code],
                _ => &mut self.application_other,
            },
        }
    }
}
