//! Submitting headers (headers-first sync): linkage, proof of work, targets and timestamps are checked
//! for the whole batch, and the batch is stored only if its chain carries enough work.

use meshwork_ledger::{BlockHeader, BlockId, ChainStore};

use super::Chain;
use crate::error::ChainError;
use crate::pow::HeaderCheck;
use crate::traits::InvalidReason;

/// What [`Chain::submit_headers`] did with a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeadersOutcome {
    /// Every header is valid and the chain they end has enough work: they are indexed (`new` of them were
    /// not known before). `last` is the batch's last id (`None` for an empty batch), or under the
    /// certified rule the last one below the horizon (the rest was not taken).
    Accepted {
        /// Headers added to the index.
        new: usize,
        /// The last header's id.
        last: Option<BlockId>,
    },
    /// Header `index` breaks a rule; nothing was stored. The sender sent invalid data.
    Invalid {
        /// Its position in the batch.
        index: usize,
        /// The rule.
        reason: InvalidReason,
    },
    /// The first header's parent is unknown: ask the sender for headers from a locator.
    Unconnected {
        /// The unknown parent.
        parent: BlockId,
    },
    /// The headers are valid but their chain carries less work than our tip (or the minimum chain
    /// work): not stored. A longer batch from the same peer may carry enough.
    InsufficientWork {
        /// The cumulative work at the batch's last header.
        work: u128,
        /// The least work accepted.
        required: u128,
    },
    /// Header `index` has a timestamp too far ahead of `now`, or (certified chains) is further above the
    /// final block than [`UNCERTIFIED_HORIZON`](crate::UNCERTIFIED_HORIZON); nothing was stored
    /// (not a fault).
    TooNew {
        /// Its position in the batch.
        index: usize,
    },
}

impl<S: ChainStore> Chain<S> {
    /// Checks a batch of headers, each the parent of the next, and indexes them if all are valid and the
    /// chain they end carries at least [`Chain::work_floor`] work (the defence against floods of cheap
    /// headers: a header chain that could not become our best chain is not stored). Headers already
    /// known are skipped. Nothing is connected: blocks follow with [`Chain::submit_block`].
    pub fn submit_headers(
        &mut self,
        headers: &[BlockHeader],
        now_secs: u64,
    ) -> Result<HeadersOutcome, ChainError> {
        let ids: Vec<BlockId> = headers.iter().map(BlockHeader::id).collect();
        for index in 1..headers.len() {
            if headers[index].parent != ids[index - 1] {
                return Ok(HeadersOutcome::Invalid {
                    index,
                    reason: InvalidReason::NotContinuous { index },
                });
            }
        }
        for (index, header) in headers.iter().enumerate() {
            if let Some(reason) = self.engine.known_invalid(header) {
                self.remember_invalid_from(&ids[index..]);
                return Ok(HeadersOutcome::Invalid { index, reason });
            }
        }
        let Some(first_new) = ids.iter().position(|id| self.engine.header(id).is_none()) else {
            return Ok(HeadersOutcome::Accepted {
                new: 0,
                last: ids.last().copied(),
            });
        };
        // Beyond a certified chain's horizon: not yet, and not unconnecting either (announcements of the
        // validators' tips race far ahead of a node that has not heard a certificate yet).
        if self.beyond_horizon(headers[first_new].height) {
            return Ok(HeadersOutcome::TooNew { index: first_new });
        }
        let Some(mut context) = self.engine.context(&headers[first_new].parent) else {
            return Ok(HeadersOutcome::Unconnected {
                parent: headers[first_new].parent,
            });
        };
        let span = self.engine.median_time_span();
        let mut checked = Vec::with_capacity(headers.len() - first_new);
        let mut last = ids.last().copied();
        for (index, header) in headers.iter().enumerate().skip(first_new) {
            // The part below a certified chain's horizon is taken; the rest waits for a certificate.
            if self.beyond_horizon(header.height) {
                last = Some(ids[index - 1]);
                break;
            }
            match self.engine.check_with(header, &context, now_secs) {
                HeaderCheck::Valid { work } => {
                    context = context.child(header, work, span);
                    checked.push((*header, work));
                }
                HeaderCheck::Invalid(reason) => {
                    // A header without its work costs one hash to check again: remembered, a stream
                    // of them would push out what took real checking to find invalid.
                    if !matches!(
                        reason,
                        InvalidReason::HighHash | InvalidReason::BadCompactTarget(_)
                    ) {
                        self.remember_invalid_from(&ids[index..]);
                    }
                    return Ok(HeadersOutcome::Invalid { index, reason });
                }
                HeaderCheck::TooNew => return Ok(HeadersOutcome::TooNew { index }),
            }
        }
        let required = self.work_floor();
        if context.work < required {
            return Ok(HeadersOutcome::InsufficientWork {
                work: context.work,
                required,
            });
        }
        let new = checked.len();
        for (header, work) in checked {
            self.engine.insert(header, work);
        }
        Ok(HeadersOutcome::Accepted { new, last })
    }

    /// Submits one header (a new-tip announcement, say); see [`Chain::submit_headers`].
    pub fn submit_header(
        &mut self,
        header: BlockHeader,
        now_secs: u64,
    ) -> Result<HeadersOutcome, ChainError> {
        self.submit_headers(&[header], now_secs)
    }

    /// Remembers the first of `ids` as invalid. Not the rest: the header after it names it as parent
    /// and is refused for it ([`InvalidReason::InvalidAncestor`]), and those after that connect to
    /// nothing we store. Remembering every id after it let one message of 2,000 headers, the first
    /// one bad, push 2,000 ids out of the bounded memory, real invalid blocks among them.
    fn remember_invalid_from(&mut self, ids: &[BlockId]) {
        if let Some(first) = ids.first() {
            self.engine.remember_invalid(*first);
        }
    }
}
