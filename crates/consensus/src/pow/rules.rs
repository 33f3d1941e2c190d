//! The header rules of the proof-of-work engine: height, ASERT target, proof of work, timestamps.

use meshwork_ledger::{BlockHeader, BlockId};

use super::engine::Nakamoto;
use super::target::Target;
use super::tree::median;
use crate::traits::InvalidReason;

/// What the engine thinks of a header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HeaderCheck {
    /// Follows the header rules; the chain ending at it has this much cumulative work.
    Valid { work: u128 },
    /// Breaks a header rule.
    Invalid(InvalidReason),
    /// Its timestamp is too far ahead of `now`: it may be valid later.
    TooNew,
}

/// What header validation needs to know about a parent.
#[derive(Clone, Debug)]
pub(crate) struct Context {
    pub(crate) height: u64,
    pub(crate) timestamp: u64,
    pub(crate) work: u128,
    /// Timestamps of the parent and its ancestors, oldest first, at most the median-time span.
    times: Vec<u64>,
}

impl Context {
    /// The context a child of this context's block sees, once `header` (a child) checked valid.
    pub(crate) fn child(&self, header: &BlockHeader, work: u128, span: usize) -> Self {
        let mut times = self.times.clone();
        times.push(header.timestamp);
        if times.len() > span {
            times.remove(0);
        }
        Self {
            height: header.height,
            timestamp: header.timestamp,
            work,
            times,
        }
    }
}

impl Nakamoto {
    /// The context for checking a child of `parent`.
    pub(crate) fn context(&self, parent: &BlockId) -> Option<Context> {
        let node = self.tree.get(parent)?;
        Some(Context {
            height: node.header.height,
            timestamp: node.header.timestamp,
            work: node.work,
            times: self.tree.recent_times(parent, self.median_time_span),
        })
    }

    /// Whether `id` or its parent is known invalid.
    pub(crate) fn known_invalid(&self, header: &BlockHeader) -> Option<InvalidReason> {
        if self.invalid.contains(&header.id()) {
            Some(InvalidReason::KnownInvalid)
        } else if self.invalid.contains(&header.parent) {
            Some(InvalidReason::InvalidAncestor)
        } else {
            None
        }
    }

    /// The header rules, cheapest first, for `header` on the parent described by `parent`.
    pub(crate) fn check_with(&self, header: &BlockHeader, parent: &Context, now_secs: u64) -> HeaderCheck {
        if header.height != parent.height + 1 {
            return HeaderCheck::Invalid(InvalidReason::BadHeight {
                expected: parent.height + 1,
                got: header.height,
            });
        }
        let target = match Target::from_compact(header.target) {
            Ok(target) => target,
            Err(error) => return HeaderCheck::Invalid(InvalidReason::BadCompactTarget(error)),
        };
        // Certified chains: the target is fixed at the limit and the hash is not checked, since
        // certificates, not work, pick the chain (each block weighs the same).
        let required = if self.certified {
            self.asert.pow_limit.to_compact()
        } else {
            self.asert
                .next_target(parent.height, parent.timestamp)
                .to_compact()
        };
        if header.target != required {
            return HeaderCheck::Invalid(InvalidReason::WrongTarget {
                expected: required,
                got: header.target,
            });
        }
        if !self.certified && !target.is_met_by(&header.id()) {
            return HeaderCheck::Invalid(InvalidReason::HighHash);
        }
        let median = median(&parent.times);
        if header.timestamp < median || header.timestamp == median && !self.may_equal_median {
            return HeaderCheck::Invalid(InvalidReason::TimestampTooOld {
                timestamp: header.timestamp,
                median,
            });
        }
        if header.timestamp > now_secs.saturating_add(self.max_future_secs) {
            return HeaderCheck::TooNew;
        }
        HeaderCheck::Valid {
            work: parent.work.saturating_add(target.work()),
        }
    }

    /// The median-time span the header rules use.
    pub(crate) fn median_time_span(&self) -> usize {
        self.median_time_span
    }
}
