//! Blocks: the parallel download within a moving window, serving blocks, processing what arrives, and
//! the application's commands.

use std::collections::BTreeMap;

use meshwork_identity::PeerId;
use meshwork_ledger::mempool::Inserted;
use meshwork_ledger::{Block, BlockId, ChainStore, Transaction};
use meshwork_wire::{BoundedVec, Instant, Output};

use super::message::{CompactBlock, MAX_BLOCKS_PER_REQUEST, Message};
use super::peers::PeerState;
use super::serve::Want;
use super::types::{Command, Event};
use super::{ChainSync, Timer, unix_secs};
use crate::chain::BlockStatus;
use crate::pow::Nakamoto;
use crate::traits::{BlockRelay, Fault, InvalidReason, Verdict};

/// Whether `state`'s peer has block `id` at `height` on its chain, as far as we know.
fn peer_has(engine: &Nakamoto, state: &PeerState, id: &BlockId, height: u64) -> bool {
    let Some((best, best_height)) = state.best else {
        return false;
    };
    if best_height < height || state.not_found.contains(id) {
        return false;
    }
    engine.best_chain_at(best_height) == Some(best) || engine.ancestor(&best, height) == Some(*id)
}

/// The transactions at `indexes` of `block`, if the positions are strictly increasing and within it
/// (so the answer is never larger than the block).
fn block_txs(block: Block, indexes: &[u32]) -> Option<Message> {
    let increasing = indexes.windows(2).all(|pair| pair[0] < pair[1]);
    if !increasing
        || indexes
            .last()
            .is_some_and(|last| *last as usize >= block.txs.len())
    {
        return None;
    }
    let txs = block.txs.into_inner();
    let picked: Vec<Transaction> = indexes.iter().map(|index| txs[*index as usize].clone()).collect();
    Some(Message::BlockTxs {
        block: block.header.id(),
        txs: BoundedVec::try_from(picked).ok()?,
    })
}

impl<S: ChainStore> ChainSync<S> {
    pub(super) fn on_command(&mut self, now: Instant, command: Command, out: &mut Vec<Output<Self>>) {
        match command {
            Command::SubmitBlock { block, from } => self.process_block(now, block, from, false, out),
            Command::SubmitTx { tx, from } => {
                let txid = Transaction::Transfer(tx.clone()).txid();
                let submitted = match from {
                    Some(peer) => self.chain.submit_relayed_tx(tx, peer, unix_secs(now)),
                    None => self.chain.submit_tx(tx, unix_secs(now)),
                };
                let event = match submitted {
                    Ok(Inserted::Orphan { .. }) => Event::TxPending { txid, from },
                    Ok(_) => Event::TxAccepted { txid, from },
                    Err(error) => Event::TxRejected { txid, from, error },
                };
                out.push(Output::Emit(event));
            }
        }
    }

    /// The answer to block requests: what was asked of the blocks we hold (the block, its compact form,
    /// or some of its transactions), and one `NotFound` for the others. A block the store failed to
    /// read is not answered at all: `NotFound` for our own announced tip would be taken for a lie
    /// ([`Fault::DeniedTip`]), where a request that goes unanswered is only a stall.
    pub(super) fn blocks_answer(&self, wants: &[Want]) -> Vec<Message> {
        let mut answer = Vec::new();
        let mut missing = Vec::new();
        for want in wants {
            let id = want.id();
            let stored = self.chain.block(&id);
            if stored.is_err() {
                continue;
            }
            let found = match (stored, want) {
                (Ok(Some(block)), Want::Block(_)) => Some(Message::Block(block)),
                (Ok(Some(block)), Want::Compact(_)) => Some(Message::CompactBlock(CompactBlock::of(&block))),
                (Ok(Some(block)), Want::Txs(_, indexes)) => block_txs(block, indexes),
                _ => None,
            };
            match found {
                Some(msg) => answer.push(msg),
                None => missing.push(id),
            }
        }
        if !missing.is_empty() {
            if let Ok(missing) = BoundedVec::try_from(missing) {
                answer.push(Message::NotFound(missing));
            }
        }
        answer
    }

    pub(super) fn on_block(&mut self, now: Instant, from: PeerId, block: Block, out: &mut Vec<Output<Self>>) {
        self.count_relayed_block(&from, &block);
        self.received_block(now, from, block, out);
    }

    /// A block `from` sent, whole or rebuilt from a compact block.
    pub(super) fn received_block(
        &mut self,
        now: Instant,
        from: PeerId,
        block: Block,
        out: &mut Vec<Output<Self>>,
    ) {
        let id = block.id();
        if let Some(state) = self.peers.get_mut(&from) {
            // Whatever form the block came in, a relay of it from this peer is over.
            state.relay.take_if(|relay| relay.id() == id);
            state.in_flight.remove(&id);
            state.saw(id, block.header.height);
        }
        if self.in_flight.get(&id) == Some(&from) {
            self.in_flight.remove(&id);
        }
        self.process_block(now, block, Some(from), true, out);
    }

    /// Block `id` is stored, whoever brought it: a request for it still out to another peer is over
    /// (its answer, if it comes, is a duplicate). Left out, that peer's timer faulted it as stalled
    /// for a block we no longer wanted, a busy honest server most of all. So is any peer's relay of
    /// it: a rebuild waiting on `BlockTxs` would otherwise outlive the request whose timer bounds it,
    /// holding its transactions, and keep every later block from that peer off compact relay.
    fn arrived(&mut self, id: &BlockId) {
        if let Some(peer) = self.in_flight.remove(id)
            && let Some(state) = self.peers.get_mut(&peer)
        {
            state.in_flight.remove(id);
        }
        for state in self.peers.values_mut() {
            state.relay.take_if(|relay| relay.id() == *id);
        }
    }

    pub(super) fn on_not_found(&mut self, from: PeerId, ids: &[BlockId], out: &mut Vec<Output<Self>>) {
        let Some(state) = self.peers.get_mut(&from) else {
            return;
        };
        // An honest node announces a tip only once it has connected the block, and serves every block
        // it connected: denying its own announcement is a lie (it made us wait a round trip).
        if let Some(block) = state.announced.filter(|announced| ids.contains(announced)) {
            return self.fault(from, Fault::DeniedTip { block }, out);
        }
        for id in ids {
            if state.in_flight.remove(id).is_some() && self.in_flight.get(id) == Some(&from) {
                self.in_flight.remove(id);
            }
            state.relay.take_if(|relay| relay.id() == *id);
            state.note_not_found(*id);
        }
    }

    /// Submits a block to the chain and reports the outcome. A sync peer (`via_sync`) that sent an
    /// invalid block, or a block that later turns out invalid, is dropped.
    fn process_block(
        &mut self,
        now: Instant,
        block: Block,
        from: Option<PeerId>,
        via_sync: bool,
        out: &mut Vec<Output<Self>>,
    ) {
        let id = block.id();
        let height = block.header.height;
        let fresh = match from {
            Some(peer) => self.uncertified_room(&peer, &[block.header]),
            None => Some(Vec::new()),
        };
        // A peer whose allowance of uncertified headers holds none it can give up: not taken now.
        let Some(fresh) = fresh else {
            return;
        };
        let outcome = match self.chain.submit_block(block, unix_secs(now)) {
            Ok(outcome) => outcome,
            Err(error) => return out.push(Output::Emit(Event::StoreFailed(error))),
        };
        if let Some(peer) = from {
            self.charge_uncertified(&peer, &fresh);
            if outcome.status == BlockStatus::Orphan && self.chain.is_certified() {
                self.note_orphan(peer, id);
            }
        }
        self.charge_adopted(&outcome.adopted);
        for connected in &outcome.connected {
            self.sources.remove(connected);
        }
        if matches!(outcome.status, BlockStatus::Active | BlockStatus::SideChain) {
            self.arrived(&id);
        }
        for adopted in &outcome.adopted {
            self.arrived(adopted);
        }
        for (bad, reason) in &outcome.invalidated {
            if let Some(source) = self.sources.remove(bad).filter(|_| *bad != id) {
                self.fault(source, Fault::InvalidData(reason.clone()), out);
            }
        }
        let sync_peer = from.filter(|_| via_sync);
        match (&outcome.status, &outcome.verdict) {
            (BlockStatus::Active, _) => out.push(Output::Emit(Event::BlockAccepted { id, height, from })),
            (BlockStatus::Rejected, verdict) => {
                let reason = match verdict {
                    Verdict::Invalid(reason) => reason.clone(),
                    _ => InvalidReason::KnownInvalid,
                };
                self.sources.remove(&id);
                out.push(Output::Emit(Event::BlockRejected {
                    id,
                    from,
                    reason: reason.clone(),
                }));
                if let Some(peer) = sync_peer {
                    self.fault(peer, Fault::InvalidData(reason), out);
                }
            }
            (status, _) => {
                let status = *status;
                if let Some(peer) = sync_peer {
                    match status {
                        BlockStatus::SideChain => {
                            if self.sources.len() >= 4 * self.config.download_window as usize {
                                self.sources.clear();
                            }
                            self.sources.insert(id, peer);
                        }
                        // Ask the sender where its chain forks from ours, to fetch the missing parents.
                        BlockStatus::Orphan
                            if self.peers.get(&peer).is_some_and(|s| s.headers_request.is_none()) =>
                        {
                            let locator = self.chain.engine().locator();
                            self.send_get_headers(peer, locator, None, out);
                        }
                        _ => {}
                    }
                }
                out.push(Output::Emit(Event::BlockPending { id, from, status }));
            }
        }
        if outcome.tip_changed() {
            out.push(Output::Emit(Event::tip_changed(
                &outcome.tip,
                outcome.connected.len(),
                outcome.disconnected.len(),
            )));
            self.after_tip_change(from, out);
        }
    }

    /// Announces a new tip once caught up with the best header, and reports reaching it.
    pub(super) fn after_tip_change(&mut self, from: Option<PeerId>, out: &mut Vec<Output<Self>>) {
        let tip = self.chain.tip();
        let caught_up = tip.id == self.chain.best_header().id;
        if caught_up {
            // Not to the peer that sent it, nor to those that announced it to us: they have it.
            let announced: Vec<PeerId> = (self.peers.iter())
                .filter(|(_, state)| state.best.is_some_and(|(id, _)| id == tip.id))
                .map(|(peer, _)| *peer)
                .collect();
            let mut effects = self.effects(out);
            effects
                .peers
                .retain(|peer| Some(*peer) != from && !announced.contains(peer));
            effects.announce(&tip.header);
            if !self.synced {
                out.push(Output::Emit(Event::Synced {
                    tip: tip.id,
                    height: tip.height,
                }));
            }
        }
        self.synced = caught_up;
    }

    /// Requests the missing blocks of the best header chain, from the fork point with our chain up to
    /// the download window, spread over the peers that have them (least loaded first).
    pub(super) fn schedule_downloads(&mut self, out: &mut Vec<Output<Self>>) {
        let tip = self.chain.tip();
        let best = self.chain.best_header();
        // Under the certified rule the best header is the chosen block, which may be below the tip.
        let lighter = best.work <= tip.work && !self.chain.is_certified();
        if best.id == tip.id || lighter || self.peers.is_empty() {
            return;
        }
        let engine = self.chain.engine();
        let mut fork = tip.height.min(best.height);
        while fork > 0 && self.chain.best_chain_at(fork) != engine.id_at_height(fork) {
            fork -= 1;
        }
        let end = best.height.min(fork.saturating_add(self.config.download_window));
        let over_budget =
            self.chain.unconnected_blocks().1 >= self.chain.config().max_unconnected_block_bytes;
        let capacity = self.config.max_blocks_in_flight_per_peer;
        let mut load: BTreeMap<PeerId, usize> = self
            .peers
            .iter()
            .map(|(peer, state)| (*peer, state.in_flight.len()))
            .collect();
        if load.values().all(|n| *n >= capacity) {
            return;
        }
        let mut requests: BTreeMap<PeerId, Vec<BlockId>> = BTreeMap::new();
        let mut lowest_missing = true;
        for height in fork + 1..=end {
            let Some(id) = self.chain.best_chain_at(height) else {
                break;
            };
            if engine.has_block(&id) {
                continue;
            }
            // Over the memory budget only the next block to connect is fetched: it drains the others.
            if over_budget && !lowest_missing {
                break;
            }
            lowest_missing = false;
            if self.in_flight.contains_key(&id) {
                continue;
            }
            // A peer that stalled lately is asked only for what no peer that did not has room for
            // (`stalls.rs`).
            let stalls = &self.stalls;
            let chosen = self
                .peers
                .iter()
                .filter(|(peer, state)| load[*peer] < capacity && peer_has(engine, state, &id, height))
                .min_by_key(|(peer, _)| (stalls.stalled(peer), load[*peer]))
                .map(|(peer, _)| *peer);
            if let Some(peer) = chosen {
                *load.entry(peer).or_default() += 1;
                requests.entry(peer).or_default().push(id);
            } else if load.values().all(|n| *n >= capacity) {
                break;
            }
        }
        // The one block we lack extends our tip: it is a new block being relayed, asked for alone
        // (compact if configured, see `compact.rs`).
        let tip_block = (fork == tip.height && best.height == tip.height + 1).then_some(best.id);
        for (peer, ids) in requests {
            for chunk in ids.chunks(MAX_BLOCKS_PER_REQUEST) {
                let seq = self.next_seq();
                if let Some(state) = self.peers.get_mut(&peer) {
                    for id in chunk {
                        state.in_flight.insert(*id, seq);
                        self.in_flight.insert(*id, peer);
                    }
                }
                match (tip_block, chunk) {
                    (Some(tip_block), [id]) if *id == tip_block => self.request_tip_block(peer, *id, out),
                    _ => self.effects(out).request_blocks(peer, chunk),
                }
                out.push(Output::Schedule {
                    after: self.config.block_timeout,
                    timer: Timer::Blocks { peer, seq },
                });
            }
        }
    }
}
