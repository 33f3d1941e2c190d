//! The relay policy: what the node forwards, answered within a batch's short wait.
//!
//! A transaction that arrives by gossip waits for a verdict before it is forwarded. The app gathers the
//! transactions that come within [`AppConfig::validation_delay`] (2 ms), or until
//! [`AppConfig::validation_batch`] (64) have come, verifies their signatures in one batch, and then
//! judges each in turn from the mempool (a transaction that comes alone, later than that wait after the
//! one before, is judged at once): accepted → `Accept` (delivered and forwarded), a broken rule → `Reject`
//! (counted against the peer that relayed it), missing inputs or already known → `Ignore`. A
//! [`RelayFilter`] lets a node refuse chosen transactions (tests and `meshsim coin --censor` build
//! censoring nodes with it). Local transactions (wallet, RPC) go into the mempool, are published (an
//! orphan only once its parents come, by relay or in a block),
//! and are published again on a timer until a block takes them.

use std::sync::Arc;

use meshwork_gossip::{Broadcast, GossipMessage, MAX_PAYLOAD, MessageId, PublishError, Verdict};
use meshwork_identity::PeerId;
use meshwork_ledger::mempool::Inserted;
use meshwork_ledger::{ChainStore, MempoolError, Transaction, Transfer, TxId};
use meshwork_wire::{EncodeError, Instant, Output};

#[cfg(doc)]
use crate::AppConfig;
use crate::app::{CoinApp, Work, unix_secs};
use crate::types::{CoinEvent, CoinTimer, final_topic, tx_topic};

mod orphans;

/// Decides whether this node relays a transaction (`true`: validate and relay as usual).
pub type RelayFilter = Arc<dyn Fn(&Transfer) -> bool + Send + Sync>;

/// The id of a transfer.
pub fn txid_of(tx: &Transfer) -> TxId {
    Transaction::Transfer(tx.clone()).txid()
}

/// What became of a local transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// It entered the mempool and was published.
    Accepted(TxId),
    /// It spends outputs the node does not know yet: it waits in the orphan pool, unpublished, and is
    /// published when its parents come (by relay or in a block: in the same step). Its
    /// signatures cannot be checked before, and a neighbour that found them bad once the parent came
    /// would blame us for relaying it.
    Orphan(TxId),
}

/// Why a local transaction was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The mempool refused it (a broken rule, a conflict without enough fee, a full pool).
    #[error("mempool: {0}")]
    Mempool(#[from] MempoolError),
    /// It cannot be encoded (larger than any message).
    #[error("encoding: {0}")]
    Encode(#[from] EncodeError),
    /// Gossip refused to publish it (larger than the topic allows).
    #[error("publication: {0}")]
    Publish(#[from] PublishError),
    /// Most of the node's gossip neighbours read slower than it sends: data to `full` of its
    /// `neighbours` was dropped by a full send queue within [`AppConfig::links_full_hold`]. The node
    /// relays what it holds before it takes more from its wallets; the same transaction may be
    /// submitted again shortly.
    #[error("busy: the send queues to {full} of {neighbours} gossip neighbours are full; try again shortly")]
    LinksFull {
        /// Neighbours whose send queue dropped data lately.
        full: usize,
        /// Neighbours in gossip's active view.
        neighbours: usize,
    },
}

/// Counters of the relay policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Relayed transactions accepted into the mempool (and forwarded).
    pub accepted: u64,
    /// Relayed transactions that broke a rule.
    pub rejected: u64,
    /// Relayed transactions dropped without blame (known, orphan, off-topic).
    pub ignored: u64,
    /// Relayed transactions this node's [`RelayFilter`] refused.
    pub censored: u64,
    /// Relayed orphans that broke a rule once their parent came (a bad signature): each was blamed on
    /// the peer that relayed it ([`meshwork_gossip::Command::Blame`]), which gossip charges as a
    /// rejected message.
    pub blamed_orphans: u64,
    /// Orphans that entered the mempool when their parent did, and were published then: gossip ignored
    /// each relayed one when it came (its parent unknown), so it went no further until then, and the
    /// node's own waited unpublished.
    pub adopted: u64,
    /// Local publications (first sends and rebroadcasts).
    pub published: u64,
    /// Rebroadcast rounds that took a fresh connected peer into gossip's active view.
    pub diversified: u64,
    /// Sync messages dropped because sync benched their sender for bad data.
    pub benched_sync_messages: u64,
    /// Child inputs dropped because one step went past its bound (never, unless a feedback loop).
    pub dropped_work: u64,
    /// Batches of relayed transactions judged together ([`AppConfig::validation_batch`]).
    pub batches: u64,
    /// Relayed transactions whose signatures a batch verified (the others of a batch were known,
    /// orphans, invalid, or after a bad signature, and met their own checks).
    pub batch_verified: u64,
    /// Local transactions refused because most gossip neighbours' send queues were full
    /// ([`SubmitError::LinksFull`]).
    pub refused_links_full: u64,
}

impl<S: ChainStore> CoinApp<S> {
    /// Gathers a relayed transaction to be judged with the others of its batch; judges it now if
    /// batches are off, it is not a transaction, or it came alone: later than the batch's wait after
    /// the one before it. Transactions that come that sparsely would each make a batch of one and
    /// wait for nothing, so batches form only under load, where they pay. One of a `burst` (gossip
    /// checked its origin signature in a batch) is gathered without a timer: the caller judges the
    /// burst when its step is done.
    pub(crate) fn gather(
        &mut self,
        now: Instant,
        id: MessageId,
        message: GossipMessage,
        from: PeerId,
        burst: bool,
        out: &mut Vec<Output<Self>>,
    ) {
        let (batch, delay) = (self.config.validation_batch, self.config.validation_delay);
        if batch <= 1 || delay.is_zero() || message.topic != tx_topic() {
            return self.validate(now, id, &message, from, out);
        }
        let alone = self
            .last_relayed
            .is_none_or(|last| now.saturating_duration_since(last) >= delay);
        self.last_relayed = Some(now);
        if alone && !burst && self.validating.is_empty() {
            return self.validate(now, id, &message, from, out);
        }
        self.validating.push((id, message, from));
        if burst {
            // Judged when the burst is all in, unless the batch fills first (after a backlog).
            if self.validating.len() >= batch {
                self.validate_gathered(now, out);
            }
            return;
        }
        if self.validating.len() >= batch {
            self.validate_gathered(now, out);
        } else if !self.validate_timer {
            // A timer left from a batch that filled up fires early for this one: harmless.
            self.validate_timer = true;
            out.push(Output::Schedule {
                after: delay,
                timer: CoinTimer::Validate,
            });
        }
    }

    /// Verifies the signatures of the gathered transactions in one batch, then judges each in the
    /// order they came (their verdicts find the signatures cached).
    pub(crate) fn validate_gathered(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        let gathered = std::mem::take(&mut self.validating);
        if gathered.is_empty() {
            return;
        }
        let filter = &self.filter;
        let txs: Vec<Transfer> = gathered
            .iter()
            .filter_map(|(_, message, _)| meshwork_wire::decode::<Transfer>(&message.payload).ok())
            .filter(|tx| filter(tx))
            .collect();
        if txs.len() > 1 {
            self.relay_stats.batches += 1;
            // A store error here meets each transaction's own check again, which reports it.
            let verified = self.sync.chain_mut().preverify_txs(&txs).unwrap_or(0);
            self.relay_stats.batch_verified += verified as u64;
        }
        for (id, message, from) in gathered {
            self.validate(now, id, &message, from, out);
        }
    }

    /// Judges a gossip message waiting for validation, from the mempool, now, and queues the verdict for
    /// gossip; then the orphans the transaction brought into the mempool, to publish after it.
    pub(crate) fn validate(
        &mut self,
        now: Instant,
        id: MessageId,
        message: &GossipMessage,
        from: PeerId,
        out: &mut Vec<Output<Self>>,
    ) {
        let (verdict, adopted) = self.verdict(now, message, from, out);
        self.work.push_back(Work::Verdict(id, verdict));
        self.work.extend(adopted.into_iter().map(Work::Adopted));
    }

    /// The verdict on a relayed message, and the orphans its transaction brought into the mempool.
    fn verdict(
        &mut self,
        now: Instant,
        message: &GossipMessage,
        from: PeerId,
        out: &mut Vec<Output<Self>>,
    ) -> (Verdict, Vec<TxId>) {
        if message.topic == final_topic() && self.sync.chain().is_certified() {
            return (self.final_verdict(now, message, out), Vec::new());
        }
        if message.topic != tx_topic() {
            self.relay_stats.ignored += 1;
            return (Verdict::Ignore, Vec::new());
        }
        let Ok(tx) = meshwork_wire::decode::<Transfer>(&message.payload) else {
            self.relay_stats.rejected += 1;
            return (Verdict::Reject, Vec::new());
        };
        if !(self.filter)(&tx) {
            self.relay_stats.censored += 1;
            return (Verdict::Ignore, Vec::new());
        }
        let txid = txid_of(&tx);
        match self.sync.chain_mut().submit_relayed_tx(tx, from, unix_secs(now)) {
            Ok(Inserted::Accepted { adopted, .. }) => {
                self.relay_stats.accepted += 1;
                out.push(Output::Emit(CoinEvent::TxAccepted { txid, from }));
                (Verdict::Accept, adopted)
            }
            Ok(_) => {
                self.relay_stats.ignored += 1;
                (Verdict::Ignore, Vec::new())
            }
            Err(error) => {
                // A rule broken for good. Not a missing parent, nor an immature coinbase spend that a
                // peer a block ahead of us took honestly.
                let verdict = if error.is_invalid() {
                    self.relay_stats.rejected += 1;
                    Verdict::Reject
                } else {
                    self.relay_stats.ignored += 1;
                    Verdict::Ignore
                };
                out.push(Output::Emit(CoinEvent::TxRejected { txid, from, error }));
                (verdict, Vec::new())
            }
        }
    }

    /// Takes a local transaction (wallet, RPC): into the mempool, then published and remembered for
    /// rebroadcast until a block takes it. Call it inside the node (`Handle::call`) to get the outcome.
    /// Refused, to be submitted again shortly, while most gossip neighbours' send queues are full
    /// ([`SubmitError::LinksFull`]), but for one per [`AppConfig::links_full_hold`].
    pub fn submit_local_tx(
        &mut self,
        now: Instant,
        tx: Transfer,
        out: &mut Vec<Output<Self>>,
    ) -> Result<Submitted, SubmitError> {
        self.check_links(now)?;
        self.take_local_tx(now, tx, out)
    }

    /// [`CoinApp::submit_local_tx`] without the check of the links.
    pub(crate) fn take_local_tx(
        &mut self,
        now: Instant,
        tx: Transfer,
        out: &mut Vec<Output<Self>>,
    ) -> Result<Submitted, SubmitError> {
        let txid = txid_of(&tx);
        let bytes = meshwork_wire::encode(&tx)?;
        // A transaction gossip cannot carry is refused before the mempool takes it: one that is kept
        // must also travel.
        if bytes.len() > MAX_PAYLOAD {
            let (topic, size, max) = (tx_topic(), bytes.len(), MAX_PAYLOAD);
            return Err(PublishError::PayloadTooLarge { topic, size, max }.into());
        }
        let (submitted, adopted) = match self.sync.chain_mut().submit_tx(tx, unix_secs(now))? {
            Inserted::Accepted { adopted, .. } => (Submitted::Accepted(txid), adopted),
            _ => (Submitted::Orphan(txid), Vec::new()),
        };
        if self.local.len() >= self.config.max_local_txs {
            // An orphan goes first: one whose parent never comes would hold its place for as long as
            // the orphan pool keeps it, pushing out transactions that wait for a block.
            let pool = self.sync.chain().mempool();
            let orphan = self.local.iter().position(|(id, ..)| pool.contains_orphan(id));
            self.local.remove(orphan.unwrap_or(0));
        }
        self.local.push_back((txid, bytes.clone(), 0));
        // In the mempool now: a failed publication (none is expected within the size checked above) is
        // retried by the rebroadcast timer rather than reported as a refusal. An orphan is published
        // when its parent comes (`publish_adopted`), and rebroadcast from then on: relayed unchecked, a
        // forged one (an RPC user's) would get us blamed by every neighbour when the parent came.
        if let Submitted::Accepted(_) = submitted {
            self.relay_stats.published += 1;
            let _ = self.publish_tx(now, bytes, out);
        }
        self.work.extend(adopted.into_iter().map(Work::Adopted));
        self.run(now, out);
        Ok(submitted)
    }

    /// Back-pressure on the node's own transactions: refused while data to most gossip neighbours was
    /// dropped by a full send queue within [`AppConfig::links_full_hold`], but for one let through per
    /// hold, so that a node whose uplink is always full (a thin link in a busy network) still gets its
    /// own transactions out, slowly. Relayed transactions are not refused here: the transport's flow
    /// control paces them, and what a peer sent is already paid for.
    fn check_links(&mut self, now: Instant) -> Result<(), SubmitError> {
        let hold = self.config.links_full_hold;
        let neighbours = self.gossip.active_view().len();
        if hold.is_zero() || neighbours == 0 {
            return Ok(());
        }
        let full = self.gossip.full_links(now, hold);
        if full * 2 <= neighbours {
            return Ok(());
        }
        if self
            .trickled
            .is_none_or(|at| now.saturating_duration_since(at) >= hold)
        {
            self.trickled = Some(now);
            return Ok(());
        }
        self.relay_stats.refused_links_full += 1;
        Err(SubmitError::LinksFull { full, neighbours })
    }

    /// Publishes a transaction on the gossip topic, through the [`Broadcast`] capability.
    pub(crate) fn publish_tx(
        &mut self,
        now: Instant,
        bytes: Vec<u8>,
        out: &mut Vec<Output<Self>>,
    ) -> Result<(), PublishError> {
        self.gossip_do(now, out, |gossip, buf| {
            gossip.publish(now, tx_topic(), bytes, buf)
        })
        .map(|_| ())
    }

    /// Publishes again the local transactions still in the mempool; forgets the others.
    pub(crate) fn rebroadcast(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        out.push(Output::Schedule {
            after: self.config.rebroadcast_interval,
            timer: CoinTimer::Rebroadcast,
        });
        let chain = self.sync.chain();
        let pool = chain.mempool();
        // An orphan waits for its parent unpublished (`take_local_tx`).
        self.local
            .retain(|(txid, ..)| pool.contains(txid) || pool.contains_orphan(txid));
        // Held back: unmined for three block times (1 in 20 transactions of an honest network waits
        // that long for a block) and two rebroadcasts.
        let interval = self.config.rebroadcast_interval.as_secs().max(1);
        let stuck_after = (3 * chain.config().target_block_time).div_ceil(interval).max(2);
        let mut stuck = false;
        let mut again = Vec::with_capacity(self.local.len());
        for (txid, bytes, rounds) in &mut self.local {
            if !pool.contains(txid) {
                continue;
            }
            *rounds += 1;
            stuck |= u64::from(*rounds) > stuck_after;
            again.push(bytes.clone());
        }
        if stuck {
            self.diversify();
        }
        for bytes in again {
            // Refusals cannot happen for bytes published before; nothing to do if one did.
            self.relay_stats.published += 1;
            let _ = self.publish_tx(now, bytes, out);
        }
    }

    /// Takes one more connected peer into gossip's active view (gossip evicts one at random), rotating
    /// through the connections. A local transaction that stays unmined for a few rebroadcasts may be
    /// held back by the neighbours it is pushed to: censoring relays and Sybil black holes drop it
    /// without blame, and a HyParView active view is stable by design. A fresh neighbour each round
    /// means such neighbours cannot hold it back for long.
    fn diversify(&mut self) {
        let me = self.gossip.peer_id();
        let active = self.gossip.active_view();
        let mut candidates: Vec<PeerId> = self
            .links
            .peers()
            .filter(|peer| !active.contains(peer))
            .copied()
            .collect();
        if candidates.is_empty() {
            return;
        }
        candidates.sort_unstable_by_key(|peer| crate::discovery::xor(peer, &me));
        let peer = candidates[self.diversify_cursor % candidates.len()];
        self.diversify_cursor = self.diversify_cursor.wrapping_add(1);
        self.relay_stats.diversified += 1;
        self.gossip_command(meshwork_gossip::Command::Join(vec![peer]));
    }
}
