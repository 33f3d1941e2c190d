//! Why a connection ended, and the codes that carry it on the wire.

use std::fmt;
use std::sync::{Arc, OnceLock};

/// Why a connection ended. Given to [`Connection::close`](crate::Connection::close) and reported to both
/// sides by every later operation on the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// An orderly close with nothing to report.
    Normal,
    /// Another connection to the same peer was kept (simultaneous dials end in one connection: the one
    /// dialed by the smaller `PeerId`).
    Duplicate,
    /// The transport shut down.
    Shutdown,
    /// Every inbound slot was taken: this connection was closed to make room for a newcomer (or, as
    /// the newcomer, found no one it could replace).
    Evicted,
    /// The application's own code.
    Application(u32),
    /// Nothing was heard within the idle timeout.
    TimedOut,
    /// The connection failed without a close: reset, protocol violation, unknown code.
    Lost(String),
}

const CODE_NORMAL: u64 = 0;
const CODE_DUPLICATE: u64 = 1;
const CODE_SHUTDOWN: u64 = 2;
const CODE_EVICTED: u64 = 3;
const CODE_APPLICATION_BASE: u64 = 0x100;

impl CloseReason {
    /// The code sent in a QUIC `CONNECTION_CLOSE` frame.
    pub(crate) fn code(&self) -> u64 {
        match self {
            Self::Normal | Self::TimedOut | Self::Lost(_) => CODE_NORMAL,
            Self::Duplicate => CODE_DUPLICATE,
            Self::Shutdown => CODE_SHUTDOWN,
            Self::Evicted => CODE_EVICTED,
            Self::Application(code) => CODE_APPLICATION_BASE + u64::from(*code),
        }
    }

    /// The reason for a code received from the peer.
    pub(crate) fn from_code(code: u64) -> Self {
        match code {
            CODE_NORMAL => Self::Normal,
            CODE_DUPLICATE => Self::Duplicate,
            CODE_SHUTDOWN => Self::Shutdown,
            CODE_EVICTED => Self::Evicted,
            _ => match u32::try_from(code.wrapping_sub(CODE_APPLICATION_BASE)) {
                Ok(app) if code >= CODE_APPLICATION_BASE => Self::Application(app),
                _ => Self::Lost(format!("unknown close code {code}")),
            },
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Normal => f.write_str("closed"),
            Self::Duplicate => f.write_str("duplicate connection to the same peer"),
            Self::Shutdown => f.write_str("transport shut down"),
            Self::Evicted => f.write_str("evicted: the peer's inbound slots were full"),
            Self::Application(code) => write!(f, "closed by the application (code {code})"),
            Self::TimedOut => f.write_str("idle timeout"),
            Self::Lost(why) => write!(f, "connection lost: {why}"),
        }
    }
}

/// The first close reason of a connection, shared by its handles and streams so every later error names
/// the same cause.
#[derive(Clone, Debug, Default)]
pub(crate) struct CloseCell(Arc<OnceLock<CloseReason>>);

impl CloseCell {
    /// Records `reason` unless a reason is already known; returns the reason in force.
    pub(crate) fn set(&self, reason: CloseReason) -> CloseReason {
        self.0.get_or_init(|| reason).clone()
    }

    /// The reason, if the connection is closed.
    pub(crate) fn get(&self) -> Option<CloseReason> {
        self.0.get().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for reason in [
            CloseReason::Normal,
            CloseReason::Duplicate,
            CloseReason::Shutdown,
            CloseReason::Evicted,
            CloseReason::Application(0),
            CloseReason::Application(u32::MAX),
        ] {
            assert_eq!(CloseReason::from_code(reason.code()), reason);
        }
        assert!(matches!(CloseReason::from_code(7), CloseReason::Lost(_)));
    }
}
