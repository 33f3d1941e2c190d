//! Origin signatures checked in batches under load.
//!
//! Every new message's origin signature is checked before anything else looks at the message: a forged
//! copy must never reach the seen cache ahead of the real one. One Ed25519 check alone costs about what
//! four do in a batch (`coin-node bench` measures both on its machine: `cost_signature_single_us` and
//! `cost_signature_batched_us`, 37 and 8.5 µs there), and at a coin's transaction rates these checks
//! were the largest CPU cost of a node (18% of `coin-node bench`'s CPU time, `cpu_gossip_signatures_secs`).
//!
//! On a topic that asks for it ([`TopicOptions::batch_verify`](crate::TopicOptions::batch_verify)), a
//! message that comes within [`Config::verify_wait`](crate::Config::verify_wait) (2 ms) of the one before
//! it waits here, unseen, until [`Config::verify_batch`](crate::Config::verify_batch) (64) have come or the
//! wait is over. Then their signatures are checked in one batch, and the messages are handled in the order
//! they came, as if each had been checked on arrival. A message that comes alone is checked at once, so
//! sparse traffic waits for nothing. Exact copies of a waiting message are checked once. If the batch
//! fails, it names its first bad signature (found by checking its signatures one by one): the messages
//! before it are good, and from it on each meets its own check, so the forged ones are refused and
//! their senders penalised ([`Penalty::InvalidMessage`](crate::Penalty::InvalidMessage), two of which
//! ban) while the others go through; the forger's later messages in the batch are dropped unchecked,
//! as its ban would drop them. Messages from a peer banned while they waited are dropped before the
//! batch. A forged message costs a batch and single checks of the messages after it from others: at
//! most about 1.25 times what checking them alone would have.
//! What waits is bounded: at most `verify_batch` messages, each within its topic's `max_payload`.

use std::collections::HashSet;
use std::time::Duration;

use meshwork_identity::{BatchVerifier, Signature, VerifyError};
use meshwork_wire::{Instant, PeerId};

use crate::message::{GossipMessage, MessageId};
use crate::plumtree::PtOut;
use crate::score::Penalty;
use crate::state::{Gossip, Timer};

/// A pushed message waiting for its signature check, with what its handling needs.
#[derive(Debug)]
pub(crate) struct Pushed {
    pub(crate) from: PeerId,
    /// Whether `from` was in our active view when the message came (a neighbour that left while
    /// the message waited sent it as a neighbour).
    pub(crate) active: bool,
    pub(crate) id: MessageId,
    pub(crate) message: GossipMessage,
    pub(crate) hops: u16,
    pub(crate) tree: PeerId,
    pub(crate) lends: bool,
}

/// What a message added to the batch asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Waiting {
    /// It is the batch's first: the wait's timer must be set.
    pub(crate) schedule: bool,
    /// The batch is full: check it now.
    pub(crate) full: bool,
}

/// The messages waiting for a batch check.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    waiting: Vec<Pushed>,
    /// When the last message on a batching topic came.
    last: Option<Instant>,
    /// Whether a timer for the waiting batch is set.
    timer: bool,
}

impl Batch {
    /// Whether a message that comes at `now` waits for a batch: it came within `wait` of the one
    /// before, or others wait already. If not, it is checked alone, at once.
    pub(crate) fn waits(&mut self, now: Instant, wait: Duration) -> bool {
        let alone = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= wait);
        self.last = Some(now);
        !alone || !self.waiting.is_empty()
    }

    /// Adds a message that waits; `max`: the most a batch holds.
    pub(crate) fn push(&mut self, pushed: Pushed, max: usize) -> Waiting {
        self.waiting.push(pushed);
        // A timer left from a batch that filled up fires early for this one: harmless.
        let schedule = !self.timer;
        self.timer = true;
        Waiting {
            schedule,
            full: self.waiting.len() >= max,
        }
    }

    /// The wait's timer fired.
    pub(crate) fn timer_fired(&mut self) {
        self.timer = false;
    }

    /// Takes the waiting messages and checks their signatures in one batch (each distinct signature
    /// once). Returns them in the order they came; whether all are valid, or `Err(position)`: those
    /// before `position` are valid, the rest must each be checked alone (the first of them is the
    /// bad signature the batch found, when it could tell); and how many signatures were checked.
    /// Messages from senders `banned` now are dropped unchecked.
    pub(crate) fn check(
        &mut self,
        banned: impl Fn(&PeerId) -> bool,
    ) -> (Vec<Pushed>, Result<(), usize>, u64) {
        let mut waiting = std::mem::take(&mut self.waiting);
        waiting.retain(|pushed| !banned(&pushed.from));
        // Each distinct signature once, with the position of its first message.
        let mut distinct: HashSet<(MessageId, &Signature)> = HashSet::new();
        let mut firsts = Vec::new();
        let mut batch = BatchVerifier::with_capacity(waiting.len());
        for (position, pushed) in waiting.iter().enumerate() {
            let message = &pushed.message;
            if distinct.insert((pushed.id, &message.signature)) {
                firsts.push(position);
                batch.push(
                    &message.origin,
                    crate::message::MESSAGE_NAMESPACE,
                    &message.signed_content(),
                    &message.signature,
                );
            }
        }
        let checked = firsts.len() as u64;
        let verdict = match batch.verify() {
            Ok(()) => Ok(()),
            // The batch names the first bad signature it found checking them one by one.
            Err(VerifyError::InvalidInBatch { index }) => Err(firsts.get(index).copied().unwrap_or(0)),
            Err(_) => Err(0),
        };
        (waiting, verdict, checked)
    }
}

impl Gossip {
    /// Checks a message's signature on its own, then handles it. Returns false if the signature was
    /// bad (and the sender penalised).
    pub(super) fn check_alone(&mut self, now: Instant, pushed: Pushed) -> bool {
        // A copy of a message handled since this one came (in the same batch) is known now.
        if !self.tree.is_known_copy(&pushed.id, &pushed.message) {
            self.stats.signatures_verified += 1;
            if pushed.message.verify().is_err() {
                self.stats.bad_signatures += 1;
                self.pt_out
                    .push(PtOut::Penalty(pushed.from, Penalty::InvalidMessage));
                return false;
            }
        }
        self.on_verified(now, pushed);
        true
    }

    /// Puts a message of a topic that batches its checks into the batch (`verify.rs`); gives it back
    /// when it must be checked now.
    pub(super) fn offer_to_batch(&mut self, now: Instant, pushed: Pushed) -> Option<Pushed> {
        let (wait, max) = (self.config.verify_wait, self.config.verify_batch);
        let batching = self.topics.get(&pushed.message.topic).is_some_and(|options| {
            // An oversized payload is refused after its check, at once: it never waits.
            options.batch_verify && pushed.message.payload.len() <= options.max_payload
        });
        if !batching || max <= 1 || wait.is_zero() {
            return Some(pushed);
        }
        if !self.batch.waits(now, wait) {
            return Some(pushed);
        }
        let Waiting { schedule, full } = self.batch.push(pushed, max);
        if schedule {
            self.pt_out.push(PtOut::Schedule(wait, Timer::Verify));
        }
        if full {
            self.check_batch(now);
        }
        None
    }

    /// Checks the waiting messages' signatures in one batch and handles them in the order they came.
    pub(super) fn check_batch(&mut self, now: Instant) {
        let views = &self.views;
        let (waiting, verdict, checked) = self.batch.check(|peer| views.is_banned(peer));
        if checked > 0 {
            self.stats.signature_batches += 1;
            self.stats.signatures_batched += checked;
            self.stats.signatures_verified += checked;
        }
        let valid = verdict.err().unwrap_or(waiting.len());
        // Senders caught forging in this batch: their penalties take effect when this step ends, so
        // their later messages here are dropped unchecked, as a ban would drop them on arrival (a
        // batch of one forger's messages would otherwise cost a check each).
        let mut forgers: Vec<PeerId> = Vec::new();
        for (position, pushed) in waiting.into_iter().enumerate() {
            if forgers.contains(&pushed.from) {
                continue;
            }
            if position < valid {
                self.on_verified(now, pushed);
            } else {
                let from = pushed.from;
                if !self.check_alone(now, pushed) {
                    forgers.push(from);
                }
            }
        }
    }
}
