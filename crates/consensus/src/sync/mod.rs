//! Headers-first block sync, `/meshwork/sync/1`: [`ChainSync`] owns a [`Chain`] and is a complete block
//! relay on its own.
//!
//! - **Status.** When a connection comes up each side sends [`Message::Status`] (tip, height, work).
//! - **Headers first.** We ask the peers claiming the most work beyond our best header for headers
//!   ([`Message::GetHeaders`] with a locator of our best header chain), up to
//!   [`SyncConfig::header_download_peers`] at once. Headers are checked (linkage, proof of work, ASERT
//!   target, timestamps) and stored only when the chain they end carries at least our tip's work; a full
//!   batch that does not yet is held per peer (bounded by [`SyncConfig::max_pending_headers`], and
//!   for peers we did not choose to download from by a pool shared among them) while we ask for more.
//!   Peers that send invalid headers, too many low-work headers, more than
//!   [`SyncConfig::max_unconnecting_headers`] that connect to nothing within
//!   [`SyncConfig::unconnecting_window`], or whose answers end short of the work they claimed
//!   ([`Fault::WorkNotDelivered`], see `download.rs`) are dropped.
//! - **Blocks in parallel.** The bodies on the best header chain are requested from every peer known to
//!   have them, at most [`SyncConfig::max_blocks_in_flight_per_peer`] per peer and within
//!   [`SyncConfig::download_window`] heights above the fork point with our chain, the least loaded peer
//!   first (a peer that stalled in the last ten minutes only when no other has room, `stalls.rs`).
//!   Each request has a timeout ([`Timer::Blocks`]); a peer that stalls or sends an invalid block is
//!   disconnected ([`Output::Disconnect`] and [`Event::PeerFaulted`]) and its requests go to others.
//! - **Serving within budgets.** `GetHeaders` and `GetBlocks` are answered within a byte budget per peer
//!   ([`SyncConfig::serve_bytes_per_sec`], [`SyncConfig::serve_burst_bytes`]) and in total, with one
//!   answer of each kind in flight per peer; a request over them waits in the peer's one slot for that
//!   kind and is answered in turn across peers ([`Timer::Serve`], see `serve.rs`). Asking too fast is
//!   not a fault.
//! - **New tips.** When our tip changes and we are caught up, every peer gets [`Message::NewTip`]; a peer
//!   that lacks the block fetches it (and asks for headers if it cannot connect it). This makes the
//!   protocol a block relay by itself. The block that extends the receiver's tip is fetched as a
//!   [`CompactBlock`] and rebuilt from the mempool (BIP152; `compact.rs`), so a block whose
//!   transactions were relayed already costs its header and six bytes a transaction.
//! - **Free headers on a certified chain.** Headers cost nothing to make there, so each header a peer
//!   brings in or relays that no certificate vouches for (above the final block, off the chosen
//!   block's chain; below it, off the final block's ancestry) is charged to it; past
//!   [`SyncConfig::max_uncertified_headers`] its oldest goes (`uncertified.rs`), and a flood cannot
//!   fill the header index and push honest headers out of it, nor take one another peer relayed
//!   (a later relay is charged too, where its allowance has room).
//!
//! Time: `now.as_duration().as_secs()` is taken as **Unix seconds** (block timestamps are checked
//! against it), so the driver's epoch must be the Unix epoch: the node runtime's is, and simulations
//! start their virtual clock at a realistic Unix time.

mod blocks;
mod certified;
mod compact;
mod download;
mod headers;
mod message;
mod peers;
mod serve;
mod stalls;
mod types;
mod uncertified;

use std::collections::{BTreeMap, HashMap};

use meshwork_identity::PeerId;
use meshwork_ledger::{BlockId, ChainStore};
use meshwork_wire::{Input, Instant, Output, Protocol, ProtocolId};

pub use self::compact::{CompactBlockError, RelayStats, SHORT_ID_DOMAIN, short_id};
pub use self::message::{
    CompactBlock, MAX_BLOCKS_PER_REQUEST, MAX_HEADERS, MAX_LOCATOR, Message, PrefilledTx, ShortId,
};
use self::peers::{Effects, PeerState};
pub use self::serve::{MAX_DEFERRED_BLOCKS, ServeStats};
use self::serve::{Server, Want};
use self::stalls::Stalls;
pub use self::types::{Command, Event, Timer};
use self::uncertified::Charges;
use crate::chain::Chain;
use crate::config::SyncConfig;
use crate::traits::{Fault, FaultReporter};

/// The largest sync message: a block of up to 4 MiB (the ledger's default block limit is 1 MB; a
/// network with larger blocks must stay below this).
pub const MAX_SYNC_MESSAGE: usize = 4 * 1024 * 1024;

/// Headers-first sync and block relay over a [`Chain`]; see the [module docs](self).
#[derive(Debug)]
pub struct ChainSync<S: ChainStore> {
    chain: Chain<S>,
    config: SyncConfig,
    peers: BTreeMap<PeerId, PeerState>,
    /// Which peer each requested block is expected from.
    in_flight: HashMap<BlockId, PeerId>,
    /// Which sync peer delivered each block not yet connected (to blame it if the block fails later).
    sources: HashMap<BlockId, PeerId>,
    next_seq: u64,
    synced: bool,
    /// Answering peers' requests within budgets (`serve.rs`).
    server: Server,
    /// What relaying new blocks cost us (`compact.rs`).
    relay_stats: RelayStats,
    /// Peers that stalled lately (`stalls.rs`).
    stalls: Stalls,
    /// The books of uncertified headers: those charged to nobody connected, who sent the orphans,
    /// how many allowances hold each (`uncertified.rs`).
    charges: Charges,
}

/// `now` as Unix seconds (see the module docs).
fn unix_secs(now: Instant) -> u64 {
    now.as_duration().as_secs()
}

impl<S: ChainStore> ChainSync<S> {
    /// Sync over `chain`.
    pub fn new(chain: Chain<S>, config: SyncConfig) -> Self {
        Self {
            chain,
            config,
            peers: BTreeMap::new(),
            in_flight: HashMap::new(),
            sources: HashMap::new(),
            next_seq: 0,
            synced: true,
            server: Server::default(),
            relay_stats: RelayStats::default(),
            stalls: Stalls::default(),
            charges: Charges::default(),
        }
    }

    /// The chain.
    pub fn chain(&self) -> &Chain<S> {
        &self.chain
    }

    /// The chain, to mine on or query. Blocks submitted directly are not announced to peers: prefer
    /// [`Command::SubmitBlock`].
    pub fn chain_mut(&mut self) -> &mut Chain<S> {
        &mut self.chain
    }

    /// Gives the chain back.
    pub fn into_chain(self) -> Chain<S> {
        self.chain
    }

    /// The connected sync peers.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.peers.keys()
    }

    /// Blocks requested and not yet received.
    pub fn blocks_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether headers or blocks are being fetched from `peer`: closing the connection now would send
    /// those requests elsewhere.
    pub fn is_fetching_from(&self, peer: &PeerId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|state| state.headers_request.is_some() || !state.in_flight.is_empty())
    }

    /// Protects the connection of every peer we fetch from (headers or blocks it owes us) from the
    /// driver's connection manager, and stops protecting the others.
    fn protect_fetching(&mut self, out: &mut Vec<Output<Self>>) {
        for (peer, state) in &mut self.peers {
            let fetching = state.headers_request.is_some() || !state.in_flight.is_empty();
            if fetching != state.protected {
                state.protected = fetching;
                out.push(Output::Protect {
                    peer: *peer,
                    protect: fetching,
                });
            }
        }
    }

    /// Counters of the answers served to peers.
    pub fn serve_stats(&self) -> ServeStats {
        self.server.stats
    }

    /// What relaying new blocks to us cost, in bytes against their size (see [`RelayStats`]).
    pub fn relay_stats(&self) -> RelayStats {
        self.relay_stats
    }

    /// Requests of `peer` waiting for a serving budget: 0, 1 or 2 (at most one `GetHeaders` and one
    /// set of block ids).
    pub fn deferred_requests(&self, peer: &PeerId) -> usize {
        self.peers.get(peer).map_or(0, |state| state.serving.waiting())
    }

    /// Whether our tip is the best header we know of.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    fn status(&self) -> Message {
        let tip = self.chain.tip();
        Message::Status {
            tip: tip.id,
            height: tip.height,
            work: tip.work,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn effects<'a>(&self, out: &'a mut Vec<Output<Self>>) -> Effects<'a, S> {
        Effects {
            out,
            peers: self.peers.keys().copied().collect(),
        }
    }

    /// Reports `fault`, disconnects `peer` and forgets it.
    fn fault(&mut self, peer: PeerId, fault: Fault, out: &mut Vec<Output<Self>>) {
        if self.peers.contains_key(&peer) {
            self.effects(out).report(peer, fault);
            self.drop_peer(&peer, out);
        }
    }

    /// Forgets `peer`; its requested blocks become free to ask of others, and its connection is no
    /// longer protected for us (a faulted peer's protection otherwise outlived it, and the connection
    /// manager never closed it).
    fn drop_peer(&mut self, peer: &PeerId, out: &mut Vec<Output<Self>>) {
        if let Some(state) = self.peers.remove(peer) {
            if state.protected {
                out.push(Output::Protect {
                    peer: *peer,
                    protect: false,
                });
            }
            for id in state.in_flight.keys() {
                if self.in_flight.get(id) == Some(peer) {
                    self.in_flight.remove(id);
                }
            }
            self.release_uncertified(state.uncertified);
        }
        self.sources.retain(|_, source| source != peer);
        self.server.forget(peer);
    }

    fn on_message(&mut self, now: Instant, from: PeerId, msg: Message, out: &mut Vec<Output<Self>>) {
        // What a block's relay brings us counts toward `RelayStats` (`compact.rs`; a whole block is
        // counted there only if it was the relayed one).
        let relay_bytes = match &msg {
            Message::NewTip(_) | Message::CompactBlock(_) | Message::BlockTxs { .. } => {
                compact::message_len(&msg)
            }
            _ => 0,
        };
        match msg {
            Message::Status { tip, height, work } => self.on_status(from, tip, height, work),
            Message::GetHeaders { locator, stop } => {
                self.on_get_headers(now, from, locator.into_inner(), stop, out)
            }
            Message::Headers(headers) => self.on_headers(now, from, headers.into_inner(), out),
            Message::NewTip(header) => {
                self.relay_stats.relay_bytes += relay_bytes;
                self.relay_stats.announce_bytes += relay_bytes;
                self.on_new_tip(now, from, header, out);
            }
            Message::GetBlocks(ids) => {
                let wants = ids.into_iter().map(Want::Block).collect();
                self.on_get_blocks(now, from, wants, out);
            }
            Message::Block(block) => self.on_block(now, from, block, out),
            Message::NotFound(ids) => self.on_not_found(from, &ids, out),
            Message::GetCompactBlock(id) => self.on_get_blocks(now, from, vec![Want::Compact(id)], out),
            Message::GetBlockTxs { block, indexes } => {
                self.on_get_blocks(now, from, vec![Want::Txs(block, indexes.into_inner())], out);
            }
            Message::CompactBlock(compact) => self.on_compact_block(now, from, compact, relay_bytes, out),
            Message::BlockTxs { block, txs } => {
                self.on_block_txs(now, from, block, txs.into_inner(), relay_bytes, out);
            }
        }
    }

    fn on_timer(&mut self, now: Instant, timer: Timer, out: &mut Vec<Output<Self>>) {
        let stalled = match &timer {
            Timer::Serve => return self.on_serve_timer(now, out),
            Timer::Blocks { peer, seq } => self
                .peers
                .get(peer)
                .is_some_and(|state| state.in_flight.values().any(|s| s == seq)),
            Timer::Headers { peer, seq } => self
                .peers
                .get(peer)
                .is_some_and(|state| state.headers_request == Some(*seq)),
        };
        if stalled {
            if let Timer::Blocks { peer, .. } | Timer::Headers { peer, .. } = timer {
                self.stalls.record(peer, now);
                self.fault(peer, Fault::Stalled, out);
            }
        }
    }
}

impl<S: ChainStore> Protocol for ChainSync<S> {
    type Message = Message;
    type Command = Command;
    type Event = Event;
    type Timer = Timer;

    const ID: ProtocolId = ProtocolId::new("/meshwork/sync/1");
    const MAX_MESSAGE_SIZE: usize = MAX_SYNC_MESSAGE;

    fn handle(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        self.stalls.tick(now);
        match input {
            Input::PeerUp(peer) => {
                self.peers.entry(peer).or_default();
                out.push(Output::Send {
                    to: peer,
                    msg: self.status(),
                });
                return;
            }
            Input::PeerDown(peer) => self.drop_peer(&peer, out),
            Input::Message { from, msg } => {
                // Only peers announced by `PeerUp` (and not dropped since) are listened to.
                if !self.peers.contains_key(&from) {
                    return;
                }
                self.on_message(now, from, msg, out);
            }
            Input::Command(command) => self.on_command(now, command, out),
            Input::Timer(timer) => self.on_timer(now, timer, out),
        }
        self.request_headers(out);
        self.schedule_downloads(out);
        self.protect_fetching(out);
    }
}
