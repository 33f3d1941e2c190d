//! Headers: status, asking for headers, serving them, and checking what peers send.

use meshwork_identity::PeerId;
use meshwork_ledger::{BlockHeader, BlockId, ChainStore};
use meshwork_wire::{BoundedVec, Instant, Output};

use super::message::{MAX_HEADERS, MAX_LOCATOR, Message};
use super::types::Event;
use super::{ChainSync, Timer, unix_secs};
use crate::chain::HeadersOutcome;
use crate::traits::Fault;

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

    /// Starts a header download if none is running and a peer claims more work than our best header:
    /// the peer claiming the most (the first by id among equals).
    pub(super) fn request_headers(&mut self, out: &mut Vec<Output<Self>>) {
        if self.peers.values().any(|state| state.headers_request.is_some()) {
            return;
        }
        let best_work = self.chain.best_header().work;
        let candidate = self
            .peers
            .iter()
            .filter_map(|(peer, state)| state.claimed.map(|(tip, _, work)| (*peer, tip, work)))
            .filter(|(_, tip, work)| *work > best_work && self.chain.header(tip).is_none())
            .fold(None::<(PeerId, u128)>, |best, (peer, _, work)| match best {
                Some((_, most)) if most >= work => best,
                _ => Some((peer, work)),
            });
        if let Some((peer, _)) = candidate {
            let locator = self.chain.engine().locator();
            self.send_get_headers(peer, locator, out);
        }
    }

    pub(super) fn send_get_headers(
        &mut self,
        peer: PeerId,
        mut locator: Vec<BlockId>,
        out: &mut Vec<Output<Self>>,
    ) {
        locator.truncate(MAX_LOCATOR);
        let Ok(locator) = BoundedVec::try_from(locator) else {
            return;
        };
        let seq = self.next_seq();
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        state.headers_request = Some(seq);
        out.push(Output::Send {
            to: peer,
            msg: Message::GetHeaders { locator, stop: None },
        });
        out.push(Output::Schedule {
            after: self.config.headers_timeout,
            timer: Timer::Headers { peer, seq },
        });
    }

    /// Answers with the headers of our best chain after the first locator id on it (genesis if none),
    /// up to [`MAX_HEADERS`] or `stop`.
    pub(super) fn serve_headers(
        &mut self,
        from: PeerId,
        locator: &[BlockId],
        stop: Option<BlockId>,
        out: &mut Vec<Output<Self>>,
    ) {
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
        if let Ok(headers) = BoundedVec::try_from(headers) {
            out.push(Output::Send {
                to: from,
                msg: Message::Headers(headers),
            });
        }
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
        state.headers_request = None;
        if headers.is_empty() {
            // It has nothing after our locator: whatever it claimed, we have heard all it has.
            state.claimed = None;
            state.pending.clear();
            return;
        }
        let full = headers.len() == MAX_HEADERS;
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
        let outcome = match self.chain.submit_headers(&batch, unix_secs(now)) {
            Ok(outcome) => outcome,
            Err(error) => return out.push(Output::Emit(Event::StoreFailed(error))),
        };
        match outcome {
            HeadersOutcome::Accepted { new, last } => {
                if let (Some(state), Some(last)) = (self.peers.get_mut(&from), last) {
                    state.unconnecting = 0;
                    let height = batch.last().map_or(0, |header| header.height);
                    state.saw(last, height);
                    if !full {
                        state.claimed = None;
                    }
                }
                if new > 0 {
                    self.after_new_headers(out);
                }
                if let (true, Some(last)) = (full, last) {
                    let locator = self.chain.engine().locator_from(&last);
                    self.send_get_headers(from, locator, out);
                }
            }
            HeadersOutcome::InsufficientWork { .. } => {
                // They connect: a lighter branch is no sign of a lie, so the unconnecting count restarts.
                if let Some(state) = self.peers.get_mut(&from) {
                    state.unconnecting = 0;
                }
                if batch.len() > self.config.max_pending_headers {
                    let headers = batch.len();
                    return self.fault(from, Fault::LowWorkHeaders { headers }, out);
                }
                if full {
                    // Maybe more of its chain makes it heavier: hold these and ask for the rest.
                    let mut locator = vec![batch[batch.len() - 1].id()];
                    locator.extend(self.chain.engine().locator());
                    if let Some(state) = self.peers.get_mut(&from) {
                        state.pending = batch;
                    }
                    self.send_get_headers(from, locator, out);
                } else if let Some(state) = self.peers.get_mut(&from) {
                    // Its whole chain is lighter than ours: nothing to fetch, nobody's fault.
                    state.claimed = None;
                }
            }
            HeadersOutcome::Unconnected { .. } => self.on_unconnecting(from, out),
            HeadersOutcome::Invalid { reason, .. } => self.fault(from, Fault::InvalidData(reason), out),
            HeadersOutcome::TooNew { .. } => {
                // Not a fault (clocks differ), but do not ask again at once: its next status or new-tip
                // announcement will.
                if let Some(state) = self.peers.get_mut(&from) {
                    state.claimed = None;
                    state.pending.clear();
                }
            }
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
        let outcome = if self.chain.header(&id).is_some() {
            HeadersOutcome::Accepted {
                new: 0,
                last: Some(id),
            }
        } else {
            match self.chain.submit_header(header, unix_secs(now)) {
                Ok(outcome) => outcome,
                Err(error) => return out.push(Output::Emit(Event::StoreFailed(error))),
            }
        };
        match outcome {
            HeadersOutcome::Accepted { new, .. } => {
                if let Some(state) = self.peers.get_mut(&from) {
                    // Only consecutive unconnecting messages count against a peer (as in Bitcoin Core):
                    // announcements that race their parents are normal while blocks come fast.
                    state.unconnecting = 0;
                    state.saw(id, header.height);
                }
                if new > 0 {
                    self.after_new_headers(out);
                }
            }
            HeadersOutcome::Unconnected { .. } => self.on_unconnecting(from, out),
            HeadersOutcome::Invalid { reason, .. } => self.fault(from, Fault::InvalidData(reason), out),
            // A lighter competing tip, or one from our future: nothing to do.
            _ => {}
        }
    }

    /// Headers that connect to nothing we know: ask the peer where its chain forks from ours, and drop
    /// it if this keeps happening.
    fn on_unconnecting(&mut self, from: PeerId, out: &mut Vec<Output<Self>>) {
        let Some(state) = self.peers.get_mut(&from) else {
            return;
        };
        state.unconnecting += 1;
        if state.unconnecting > self.config.max_unconnecting_headers {
            let count = state.unconnecting;
            return self.fault(from, Fault::UnconnectingHeaders { count }, out);
        }
        if state.headers_request.is_none() {
            let locator = self.chain.engine().locator();
            self.send_get_headers(from, locator, out);
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
