//! Headers: status, asking for headers, serving them, and checking what peers send.

use meshwork_identity::PeerId;
use meshwork_ledger::{BlockHeader, BlockId, ChainStore};
use meshwork_wire::{BoundedVec, Instant, Output};

use super::download::is_final;
use super::message::{MAX_HEADERS, Message};
use super::peers::PeerState;
use super::types::Event;
use super::{ChainSync, unix_secs};
use crate::chain::HeadersOutcome;
use crate::traits::Fault;

/// How many peers' worth of pending headers ([`SyncConfig::max_pending_headers`]) all peers hold at
/// most together.
///
/// [`SyncConfig::max_pending_headers`]: crate::SyncConfig::max_pending_headers
const PENDING_PEERS: usize = 4;

impl<S: ChainStore> ChainSync<S> {
    pub(super) fn on_status(&mut self, from: PeerId, tip: BlockId, height: u64, work: u128) {
        let known = self
            .chain
            .header(&tip)
            .is_some_and(|header| header.height == height);
        if let Some(state) = self.peers.get_mut(&from) {
            state.claimed = Some((tip, height, work));
            if known {
                state.saw(tip, height);
            }
        }
    }

    /// The answer to a `GetHeaders`: the headers of our best chain after the first locator id on it
    /// (genesis if none), up to [`MAX_HEADERS`] or `stop`.
    pub(super) fn headers_answer(&self, locator: &[BlockId], stop: Option<BlockId>) -> Vec<Message> {
        let engine = self.chain.engine();
        let fork = locator
            .iter()
            .find(|id| engine.is_active(id))
            .and_then(|id| engine.header(id))
            .map_or(0, |header| header.height);
        let tip = self.chain.tip().height;
        let mut headers = Vec::new();
        for height in fork + 1..=tip {
            let Some(header) = engine.id_at_height(height).and_then(|id| engine.header(&id)) else {
                break;
            };
            headers.push(*header);
            if headers.len() == MAX_HEADERS || stop == Some(header.id()) {
                break;
            }
        }
        BoundedVec::try_from(headers)
            .map(Message::Headers)
            .into_iter()
            .collect()
    }

    pub(super) fn on_headers(
        &mut self,
        now: Instant,
        from: PeerId,
        headers: Vec<BlockHeader>,
        out: &mut Vec<Output<Self>>,
    ) {
        let Some(state) = self.peers.get_mut(&from) else {
            return;
        };
        // Messages of one peer arrive in order and requests are answered in order: a `Headers` while a
        // request is outstanding is its answer; one without is unsolicited.
        let asked = state.headers_request.take().is_some();
        let reached = state.reached.take();
        if headers.is_empty() {
            // It has nothing after our locator: whatever it claimed, we have heard all it has. Its
            // chain may end with the headers we hold for it, whose work it did deliver (our tip
            // moved past it meanwhile, say).
            let delivered = if state.pending.is_empty() {
                0
            } else {
                state.pending_work
            };
            state.pending.clear();
            if asked {
                self.end_download(from, delivered, out);
            } else {
                state.claimed = None;
            }
            return;
        }
        // A full answer is followed by a request for the rest while it brings something: new headers,
        // headers higher than the last answer's, or the continuation of the headers held for it. A
        // peer that resends one batch (our own headers, or a cheap fork) held a download slot and our
        // header checks for as long as it liked.
        let height = headers.last().map_or(0, |header| header.height);
        let full = !is_final(headers.len());
        let higher = reached.is_none_or(|r| height > r);
        let continues = state
            .pending
            .last()
            .is_some_and(|last| headers[0].parent == last.id());
        let batch = if continues {
            let mut batch = std::mem::take(&mut state.pending);
            batch.extend(headers);
            batch
        } else {
            state.pending.clear();
            headers
        };
        let Some(fresh) = self.uncertified_room(&from, &batch) else {
            // Its allowance of headers no certificate vouches for is full of ones others built on:
            // not taken now, and not asked for more.
            return self.abandon_download(&from);
        };
        let outcome = match self.chain.submit_headers(&batch, unix_secs(now)) {
            Ok(outcome) => outcome,
            Err(error) => return out.push(Output::Emit(Event::StoreFailed(error))),
        };
        self.charge_uncertified(&from, &fresh);
        match outcome {
            HeadersOutcome::Accepted { new, last } => {
                if let (Some(state), Some(last)) = (self.peers.get_mut(&from), last) {
                    // Headers that extend our header chain restart the count. Known ones do not, not
                    // even as the answer to our request: anyone can resend a header, and answering
                    // each unconnecting announcement's request with one reset the count at will.
                    if new > 0 {
                        state.reset_unconnecting();
                    }
                    let height = batch.last().map_or(0, |header| header.height);
                    state.saw(last, height);
                }
                if new > 0 {
                    self.after_new_headers(out);
                }
                match (full && (higher || new > 0), last) {
                    (true, Some(last)) => {
                        let locator = self.chain.engine().locator_from(&last);
                        self.send_get_headers(from, locator, Some(height), out);
                    }
                    _ => {
                        let delivered = last.and_then(|id| self.chain.engine().work(&id)).unwrap_or(0);
                        self.end_download(from, delivered, out);
                    }
                }
            }
            HeadersOutcome::InsufficientWork { work, .. } => {
                // They connect, and each carries its proof of work: a lighter branch we asked for is
                // no sign of a lie (floods of them are bounded by `max_pending_headers`).
                if let (true, Some(state)) = (asked, self.peers.get_mut(&from)) {
                    state.reset_unconnecting();
                }
                if batch.len() > self.config.max_pending_headers {
                    let headers = batch.len();
                    return self.fault(from, Fault::LowWorkHeaders { headers }, out);
                }
                // Peers we did not choose to download from hold their pending headers in one shared
                // pool: each peer's bound alone let every connection hold its own, a few hundred
                // megabytes over a full node's connections. The peers we chose (at most
                // `header_download_peers`, answerable for their claims) are never crowded out.
                let chosen = |state: &PeerState| state.download_claim.is_some();
                let pooled: usize = (self.peers.iter())
                    .filter(|(peer, state)| **peer != from && !chosen(state))
                    .map(|(_, state)| state.pending.len())
                    .sum();
                let pool_full = pooled + batch.len() > PENDING_PEERS * self.config.max_pending_headers;
                let is_chosen = self.peers.get(&from).is_some_and(chosen);
                if full && !higher && !continues {
                    // The same batch again, or another branch no higher: no progress, and no verdict.
                    self.abandon_download(&from);
                } else if full && pool_full && !is_chosen {
                    // No room in the pool now: not held, and not asked for more. Its claim, if it made
                    // one, stays for the download to choose.
                } else if full {
                    // Maybe more of its chain makes it heavier: hold these and ask for the rest.
                    let mut locator = vec![batch[batch.len() - 1].id()];
                    locator.extend(self.chain.engine().locator());
                    if let Some(state) = self.peers.get_mut(&from) {
                        state.pending = batch;
                        state.pending_work = work;
                    }
                    self.send_get_headers(from, locator, Some(height), out);
                } else {
                    // Its whole chain is lighter than ours: nothing to fetch, and nobody's fault
                    // unless it claimed more.
                    self.end_download(from, work, out);
                }
            }
            HeadersOutcome::Unconnected { .. } => self.on_unconnecting(now, from, out),
            HeadersOutcome::Invalid { reason, .. } => self.fault(from, Fault::InvalidData(reason), out),
            // Not a fault (clocks differ), but do not ask again at once: its next status or new-tip
            // announcement will.
            HeadersOutcome::TooNew { .. } => self.abandon_download(&from),
        }
    }

    /// A peer announced a new tip.
    pub(super) fn on_new_tip(
        &mut self,
        now: Instant,
        from: PeerId,
        header: BlockHeader,
        out: &mut Vec<Output<Self>>,
    ) {
        let id = header.id();
        if let Some(state) = self.peers.get_mut(&from) {
            state.announced = Some(id);
        }
        let outcome = if self.chain.header(&id).is_some() {
            // Known already: if no certificate vouches for it, this relay pays for it too. Without
            // room it is simply not charged (the header is held either way).
            let _ = self.uncertified_room(&from, &[header]);
            HeadersOutcome::Accepted {
                new: 0,
                last: Some(id),
            }
        } else {
            let Some(fresh) = self.uncertified_room(&from, &[header]) else {
                return;
            };
            let outcome = match self.chain.submit_header(header, unix_secs(now)) {
                Ok(outcome) => outcome,
                Err(error) => return out.push(Output::Emit(Event::StoreFailed(error))),
            };
            self.charge_uncertified(&from, &fresh);
            outcome
        };
        match outcome {
            HeadersOutcome::Accepted { new, .. } => {
                if let Some(state) = self.peers.get_mut(&from) {
                    // Only a header that extends our header chain restarts the unconnecting count:
                    // announcements that race their parents are normal while blocks come fast, but
                    // one we already know proves nothing (resending one reset the count at will).
                    if new > 0 {
                        state.reset_unconnecting();
                    }
                    state.saw(id, header.height);
                }
                if new > 0 {
                    self.after_new_headers(out);
                }
            }
            HeadersOutcome::Unconnected { .. } => self.on_unconnecting(now, from, out),
            HeadersOutcome::Invalid { reason, .. } => self.fault(from, Fault::InvalidData(reason), out),
            // A lighter competing tip, or one from our future: nothing to do.
            _ => {}
        }
    }

    /// Headers that connect to nothing we know: ask the peer where its chain forks from ours, and drop
    /// it if more than `max_unconnecting_headers` arrive within `unconnecting_window`.
    fn on_unconnecting(&mut self, now: Instant, from: PeerId, out: &mut Vec<Output<Self>>) {
        let window = self.config.unconnecting_window;
        let Some(state) = self.peers.get_mut(&from) else {
            return;
        };
        let count = state.count_unconnecting(now, window);
        if count > self.config.max_unconnecting_headers {
            return self.fault(from, Fault::UnconnectingHeaders { count }, out);
        }
        if state.headers_request.is_none() {
            let locator = self.chain.engine().locator();
            self.send_get_headers(from, locator, None, out);
        }
    }

    /// New headers were indexed: report progress, learn which peers' claimed tips we now know.
    fn after_new_headers(&mut self, out: &mut Vec<Output<Self>>) {
        let best = self.chain.best_header();
        out.push(Output::Emit(Event::HeadersProgress {
            best_header_height: best.height,
        }));
        if best.id != self.chain.tip().id {
            self.synced = false;
        }
        for state in self.peers.values_mut() {
            if let Some((tip, height, _)) = state.claimed {
                if self.chain.header(&tip).is_some() {
                    state.saw(tip, height);
                }
            }
        }
    }
}
