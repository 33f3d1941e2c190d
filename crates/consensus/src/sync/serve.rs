//! Serving peers: `GetHeaders` and `GetBlocks` are answered within a byte budget, at most one answer of
//! each kind in flight per peer, and requests that must wait are answered in turn across peers.
//!
//! A request costs its sender a few bytes and us up to a full answer (172 KB of headers on a long chain,
//! 16 blocks for a `GetBlocks`): the red team's 16 connections sent 123 KB of `GetHeaders` and made the
//! node build 248 MiB of answers. So, in driver time:
//! - each peer has a token bucket of answer bytes ([`SyncConfig::serve_burst_bytes`], refilled at
//!   [`SyncConfig::serve_bytes_per_sec`]), and all peers together one more
//!   ([`SyncConfig::serve_total_burst_bytes`], [`SyncConfig::serve_total_bytes_per_sec`]). An answer is
//!   built only while the buckets hold something; it is never split, so it may overdraw them, and the
//!   overdraft is repaid before the next answer;
//! - an answer of `n` bytes counts as in flight for `n / serve_bytes_per_sec`: a request of the same
//!   kind from the same peer arriving before then waits. Each peer has one waiting slot per kind: a newer
//!   `GetHeaders` replaces the waiting one (its locator supersedes the older), and the ids of a newer
//!   `GetBlocks` join the waiting ones (an honest downloader asks for each block once and keeps several
//!   requests open; replacing would lose blocks it still expects), up to [`MAX_DEFERRED_BLOCKS`], the
//!   oldest dropped first. `GetCompactBlock` and `GetBlockTxs` (compact relay, `compact.rs`) wait in
//!   the same slot as block requests; a newer `GetBlockTxs` replaces a waiting one, and one whose
//!   positions are not strictly increasing within the block is answered `NotFound`, so its answer is
//!   never larger than the block;
//! - waiting peers sit in a round-robin queue: each round answers every waiting peer at most once per
//!   kind, in queue order, until the total budget is spent; a peer answered goes to the back. A
//!   [`Timer::Serve`] runs the next round when a budget or an answer in flight allows.
//!
//! Asking too fast is not a fault. An honest peer asks again after its own timeout, and a flood of
//! requests costs us a decode and the replacement of one slot each (the runtime bounds the bytes a peer
//! may have us decode), so nothing is gained by dropping the peer and an honest one could be punished.

use std::collections::VecDeque;
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_ledger::{BlockId, ChainStore};
use meshwork_wire::{Instant, Output};

use super::message::{MAX_BLOCKS_PER_REQUEST, Message};
use super::{ChainSync, Timer};
use crate::config::SyncConfig;

/// Block ids one peer may have waiting for an answer: four full requests (an honest downloader keeps
/// [`SyncConfig::max_blocks_in_flight_per_peer`], 16 by default, open at once).
pub const MAX_DEFERRED_BLOCKS: usize = 4 * MAX_BLOCKS_PER_REQUEST;

/// Counters of the answers served to peers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServeStats {
    /// Answers sent: a `Headers`, or the blocks, compact blocks, transactions (and `NotFound`) of one
    /// turn of block requests.
    pub answered: u64,
    /// Bytes of those answers, encoded.
    pub bytes: u64,
    /// Requests not answered at once (they waited for a budget or for an answer in flight).
    pub deferred: u64,
    /// Waiting requests dropped: a `GetHeaders` or `GetBlockTxs` replaced by a newer one, or block
    /// requests beyond [`MAX_DEFERRED_BLOCKS`].
    pub superseded: u64,
}

/// A token bucket of bytes in driver time that one answer may overdraw. Starts full.
#[derive(Clone, Copy, Debug)]
pub(super) struct Budget {
    bytes: f64,
    at: Instant,
}

impl Budget {
    fn full(burst: u64, now: Instant) -> Self {
        Self {
            bytes: burst as f64,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant, burst: u64, rate: u64) {
        if now > self.at {
            let secs = (now - self.at).as_secs_f64();
            self.bytes = (self.bytes + secs * rate as f64).min(burst as f64);
            self.at = now;
        }
    }

    /// Whether an answer may start now (anything left after repaying the overdraft).
    fn has_room(&mut self, now: Instant, burst: u64, rate: u64) -> bool {
        self.refill(now, burst, rate);
        self.bytes > 0.0
    }

    fn spend(&mut self, bytes: usize) {
        self.bytes -= bytes as f64;
    }

    /// When an answer may start (`now` if one may now).
    fn room_at(&self, now: Instant, rate: u64) -> Instant {
        if self.bytes > 0.0 {
            return now;
        }
        // One byte more than the overdraft, so the bucket holds something then.
        let secs = (1.0 - self.bytes) / rate.max(1) as f64;
        (self.at + Duration::from_secs_f64(secs.min(1e9))).max(now)
    }
}

/// What one peer is being served: its budget, its answers in flight, its waiting requests.
#[derive(Debug, Default)]
pub(super) struct Serving {
    budget: Option<Budget>,
    /// Until when the last `Headers` answer counts as in flight.
    headers_until: Option<Instant>,
    /// Until when the last blocks answer counts as in flight.
    blocks_until: Option<Instant>,
    /// The waiting `GetHeaders` (locator and stop).
    headers: Option<(Vec<BlockId>, Option<BlockId>)>,
    /// The waiting block requests, oldest first, without duplicates.
    blocks: VecDeque<Want>,
}

/// One block's data a peer asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Want {
    /// The whole block (`GetBlocks`).
    Block(BlockId),
    /// The block as a compact block (`GetCompactBlock`).
    Compact(BlockId),
    /// Some of its transactions, by position (`GetBlockTxs`).
    Txs(BlockId, Vec<u32>),
}

impl Want {
    /// The block asked about.
    pub(super) fn id(&self) -> BlockId {
        match self {
            Self::Block(id) | Self::Compact(id) | Self::Txs(id, _) => *id,
        }
    }
}

impl Serving {
    fn is_waiting(&self) -> bool {
        self.waiting() > 0
    }

    /// Kinds of request waiting: 0, 1 or 2.
    pub(super) fn waiting(&self) -> usize {
        usize::from(self.headers.is_some()) + usize::from(!self.blocks.is_empty())
    }

    /// The peer's own budget, created full at its first request.
    fn budget(&mut self, now: Instant, config: &SyncConfig) -> &mut Budget {
        self.budget
            .get_or_insert_with(|| Budget::full(config.serve_burst_bytes, now))
    }

    /// Whether an answer whose previous one is in flight `until` may go now.
    fn ready(&mut self, until: Option<Instant>, now: Instant, config: &SyncConfig) -> bool {
        until.is_none_or(|until| now >= until)
            && self
                .budget(now, config)
                .has_room(now, config.serve_burst_bytes, config.serve_bytes_per_sec)
    }

    /// Charges an answer of `bytes` and returns until when it counts as in flight.
    fn charge(&mut self, bytes: usize, now: Instant, config: &SyncConfig) -> Instant {
        self.budget(now, config).spend(bytes);
        let secs = bytes as f64 / config.serve_bytes_per_sec.max(1) as f64;
        now + Duration::from_secs_f64(secs.min(1e9))
    }

    /// When the next waiting request may be answered, as far as this peer is concerned.
    fn ready_at(&self, now: Instant, config: &SyncConfig) -> Option<Instant> {
        let room = self
            .budget
            .map_or(now, |budget| budget.room_at(now, config.serve_bytes_per_sec));
        let at = |until: Option<Instant>| until.map_or(room, |until| until.max(room));
        let headers = self.headers.as_ref().map(|_| at(self.headers_until));
        let blocks = (!self.blocks.is_empty()).then(|| at(self.blocks_until));
        headers.into_iter().chain(blocks).min()
    }

    /// Adds the requests of a `GetBlocks`, `GetCompactBlock` or `GetBlockTxs` to the waiting ones;
    /// returns how many old ones were dropped. A newer `GetBlockTxs` replaces a waiting one, so the
    /// positions held per peer stay within one block's.
    fn add_blocks(&mut self, wants: Vec<Want>) -> usize {
        let mut dropped = 0;
        for want in wants {
            if matches!(want, Want::Txs(..)) {
                let before = self.blocks.len();
                self.blocks.retain(|waiting| !matches!(waiting, Want::Txs(..)));
                dropped += before - self.blocks.len();
            }
            if !self.blocks.contains(&want) {
                self.blocks.push_back(want);
            }
        }
        let over = self.blocks.len().saturating_sub(MAX_DEFERRED_BLOCKS);
        self.blocks.drain(..over);
        dropped + over
    }
}

/// The serving state shared by all peers: the total budget, the round-robin queue, the timer.
#[derive(Debug, Default)]
pub(super) struct Server {
    total: Option<Budget>,
    /// Peers with waiting requests, in turn order.
    queue: VecDeque<PeerId>,
    /// When the earliest scheduled [`Timer::Serve`] fires.
    timer: Option<Instant>,
    pub(super) stats: ServeStats,
}

impl Server {
    pub(super) fn forget(&mut self, peer: &PeerId) {
        self.queue.retain(|p| p != peer);
    }
}

impl<S: ChainStore> ChainSync<S> {
    /// A `GetHeaders`: it takes the peer's headers slot (replacing a waiting one) and is answered now if
    /// the budgets allow.
    pub(super) fn on_get_headers(
        &mut self,
        now: Instant,
        from: PeerId,
        locator: Vec<BlockId>,
        stop: Option<BlockId>,
        out: &mut Vec<Output<Self>>,
    ) {
        let Some(state) = self.peers.get_mut(&from) else {
            return;
        };
        if state.serving.headers.replace((locator, stop)).is_some() {
            self.server.stats.superseded += 1;
        }
        self.enqueue(from);
        self.serve_round(now, out);
        if self.peers.get(&from).is_some_and(|s| s.serving.headers.is_some()) {
            self.server.stats.deferred += 1;
        }
    }

    /// A `GetBlocks`, `GetCompactBlock` or `GetBlockTxs`: its requests join the peer's waiting ones and
    /// are answered now if the budgets allow.
    pub(super) fn on_get_blocks(
        &mut self,
        now: Instant,
        from: PeerId,
        wants: Vec<Want>,
        out: &mut Vec<Output<Self>>,
    ) {
        let Some(state) = self.peers.get_mut(&from) else {
            return;
        };
        self.server.stats.superseded += state.serving.add_blocks(wants) as u64;
        self.enqueue(from);
        self.serve_round(now, out);
        if self
            .peers
            .get(&from)
            .is_some_and(|s| !s.serving.blocks.is_empty())
        {
            self.server.stats.deferred += 1;
        }
    }

    /// The [`Timer::Serve`] fired: answer what the budgets now allow.
    pub(super) fn on_serve_timer(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        if self.server.timer.is_some_and(|at| at <= now) {
            self.server.timer = None;
        }
        self.serve_round(now, out);
    }

    fn enqueue(&mut self, peer: PeerId) {
        if !self.server.queue.contains(&peer) {
            self.server.queue.push_back(peer);
        }
    }

    /// One round: every waiting peer in turn is answered at most once per kind, if its answer of that
    /// kind is no longer in flight and its budget allows, until the total budget is spent. Peers visited
    /// go to the back of the queue; those not reached keep their place at the front.
    fn serve_round(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        let config = self.config.clone();
        let (burst, rate) = (config.serve_total_burst_bytes, config.serve_total_bytes_per_sec);
        let mut visited = VecDeque::new();
        while let Some(peer) = self.server.queue.pop_front() {
            let total = self.server.total.get_or_insert_with(|| Budget::full(burst, now));
            if !total.has_room(now, burst, rate) {
                self.server.queue.push_front(peer);
                break;
            }
            let Some(state) = self.peers.get_mut(&peer) else {
                continue;
            };
            let serving = &mut state.serving;
            let until = serving.headers_until;
            let headers = if serving.headers.is_some() && serving.ready(until, now, &config) {
                serving.headers.take()
            } else {
                None
            };
            let until = serving.blocks_until;
            let blocks: Vec<Want> = if !serving.blocks.is_empty() && serving.ready(until, now, &config) {
                let n = serving.blocks.len().min(MAX_BLOCKS_PER_REQUEST);
                serving.blocks.drain(..n).collect()
            } else {
                Vec::new()
            };
            if let Some((locator, stop)) = headers {
                let answer = self.headers_answer(&locator, stop);
                let bytes = self.send_answer(now, peer, answer, out);
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.serving.headers_until = Some(state.serving.charge(bytes, now, &config));
                }
            }
            if !blocks.is_empty() {
                let answer = self.blocks_answer(&blocks);
                let bytes = self.send_answer(now, peer, answer, out);
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.serving.blocks_until = Some(state.serving.charge(bytes, now, &config));
                }
            }
            if self.peers.get(&peer).is_some_and(|s| s.serving.is_waiting()) {
                visited.push_back(peer);
            }
        }
        self.server.queue.extend(visited);
        self.schedule_serve(now, out);
    }

    /// Sends the messages of one answer to `peer`, counts them against the total budget and returns
    /// their size.
    fn send_answer(
        &mut self,
        now: Instant,
        peer: PeerId,
        answer: Vec<Message>,
        out: &mut Vec<Output<Self>>,
    ) -> usize {
        let bytes: usize = answer
            .iter()
            .map(|msg| meshwork_wire::encoded_len(msg).unwrap_or(0))
            .sum();
        for msg in answer {
            out.push(Output::Send { to: peer, msg });
        }
        let burst = self.config.serve_total_burst_bytes;
        self.server
            .total
            .get_or_insert_with(|| Budget::full(burst, now))
            .spend(bytes);
        self.server.stats.answered += 1;
        self.server.stats.bytes += bytes as u64;
        bytes
    }

    /// Schedules the next round for when the first waiting request may be answered, unless a timer
    /// already fires by then.
    fn schedule_serve(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        let config = &self.config;
        let Some(first) = self
            .server
            .queue
            .iter()
            .filter_map(|peer| self.peers.get(peer))
            .filter_map(|state| state.serving.ready_at(now, config))
            .min()
        else {
            return;
        };
        let total = self
            .server
            .total
            .map_or(now, |total| total.room_at(now, config.serve_total_bytes_per_sec));
        // At least a millisecond ahead: a round that served nothing must not be repeated at once.
        let at = first.max(total).max(now + Duration::from_millis(1));
        if self.server.timer.is_some_and(|timer| timer <= at) {
            return;
        }
        self.server.timer = Some(at);
        out.push(Output::Schedule {
            after: at.saturating_duration_since(now),
            timer: Timer::Serve,
        });
    }
}
