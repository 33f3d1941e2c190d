//! Why something from or for a peer was not carried out: the one vocabulary drivers count drops by.
//!
//! Nothing is lost silently (ARCHITECTURE.md): a protocol that refuses what a peer offers pushes
//! [`Output::Dropped`](crate::Output::Dropped) with one of these reasons, and the node runtime counts
//! the frames it cannot deliver or write under the same names, so one metric
//! (`meshwork_dropped_total{protocol, reason}`) answers "where did my message go?".

use std::fmt;

/// Why a message, a peer or a request was dropped. The label of each variant is stable: dashboards
/// and scripts match on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DropReason {
    /// The peer's send queue was full, or its share of the send budget spent: it reads slower than we
    /// send to it.
    QueueFull,
    /// The connection the message was for (or came on) had closed and no other was open.
    ConnectionClosed,
    /// Writing to the connection failed, and no other connection could take the message.
    WriteFailed,
    /// The bytes did not decode as the protocol's message.
    DecodeFailed,
    /// The peer's IP prefix already fills its share (of a routing table, a view, a bucket).
    PrefixLimit,
    /// The peer is banned, for this protocol, for what it did before.
    Banned,
    /// The peer sent more than its rate allowance.
    RateLimited,
    /// The peer sent something we never asked for (an answer to no request).
    Unsolicited,
    /// The table or view the peer would enter is full and the peer did not displace anyone.
    Full,
    /// The node's send budget across all peers was spent (by peers that read slowly, or not at all),
    /// and the peer had more than its reserved floor queued: no sign that this peer itself is slow.
    BudgetSpent,
}

impl DropReason {
    /// Every reason, in label order (for metrics that list each one).
    pub const ALL: [Self; 10] = [
        Self::QueueFull,
        Self::ConnectionClosed,
        Self::WriteFailed,
        Self::DecodeFailed,
        Self::PrefixLimit,
        Self::Banned,
        Self::RateLimited,
        Self::Unsolicited,
        Self::Full,
        Self::BudgetSpent,
    ];

    /// Whether the send side could not keep up: the peer's queue was full
    /// ([`DropReason::QueueFull`]) or the node's budget spent ([`DropReason::BudgetSpent`]). Such a
    /// message was fine and may be sent again; every other reason is about the peer or the message.
    pub const fn is_congestion(self) -> bool {
        matches!(self, Self::QueueFull | Self::BudgetSpent)
    }

    /// This reason's position in [`DropReason::ALL`] (for counters kept in an array).
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }

    /// The stable label: `queue_full`, `connection_closed`, `write_failed`, `decode_failed`,
    /// `prefix_limit`, `ban`, `rate_limited`, `unsolicited`, `full`, `budget_spent`.
    pub const fn label(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::ConnectionClosed => "connection_closed",
            Self::WriteFailed => "write_failed",
            Self::DecodeFailed => "decode_failed",
            Self::PrefixLimit => "prefix_limit",
            Self::Banned => "ban",
            Self::RateLimited => "rate_limited",
            Self::Unsolicited => "unsolicited",
            Self::Full => "full",
            Self::BudgetSpent => "budget_spent",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_and_all_is_complete() {
        let labels: std::collections::BTreeSet<_> = DropReason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), DropReason::ALL.len());
        // `ALL` is in label order, so a new variant placed anywhere shows up here.
        let mut sorted = DropReason::ALL;
        sorted.sort_by_key(|r| r.label());
        assert_eq!(sorted.len(), 10);
        for (i, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
        }
    }
}
