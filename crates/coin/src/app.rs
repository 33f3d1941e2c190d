//! [`CoinApp`]: gossip, sync and Kademlia composed into one pure protocol, and the work queue that lets
//! each child's events be handled in the step that produced them (its running in [`work`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use meshwork_consensus::sync::{self, MAX_SYNC_MESSAGE};
use meshwork_consensus::{Chain, ChainSync};
use meshwork_gossip::{Broadcast, Gossip, GossipMessage, MessageId, TopicOptions, Verdict};
use meshwork_identity::{Keypair, PeerId};
use meshwork_kad::{Kademlia, PeerRouting};
use meshwork_ledger::{ChainStore, TxId};
use meshwork_wire::{Channel, DropReason, Input, Instant, Links, Output, Protocol, ProtocolId};

use crate::bft::{Engine, Validator};
use crate::config::AppConfig;
use crate::discovery::Seen;
use crate::relay::{RelayFilter, RelayStats};
use crate::types::{
    BFT, CHILDREN, CoinCommand, CoinEvent, CoinMessage, CoinTimer, GOSSIP, KAD, SYNC, final_topic, tx_topic,
};

mod work;

/// `now` as Unix seconds: the node runtime's epoch is the Unix epoch, and simulations start their clock
/// at a realistic Unix time (see `meshwork_consensus::sync`).
pub(crate) fn unix_secs(now: Instant) -> u64 {
    now.as_duration().as_secs()
}

/// Discovery rounds a peer that sent sync bad data stays away from sync (one minute at the default
/// interval).
pub(crate) const SYNC_BENCH_ROUNDS: u64 = 30;

/// The most child steps one input may cause. Every chain of reactions is short (a message, its
/// verdict, the forwards); the bound only guards against a feedback loop written by mistake.
const MAX_STEPS: usize = 100_000;

/// One input for one child, waiting in the step's work queue.
pub(crate) enum Work<S: ChainStore> {
    Gossip(Input<Gossip>),
    /// The verdict on a message gossip asked about, given through [`Broadcast::validated`].
    Verdict(MessageId, Verdict),
    /// An orphan that entered the mempool after its parent, to publish (after the parent's verdict).
    Adopted(TxId),
    Sync(Input<ChainSync<S>>),
    Kad(Input<Kademlia>),
    Bft(Input<Engine>),
}

/// The coin node's logic as one pure [`Protocol`]: see the [crate docs](crate).
pub struct CoinApp<S: ChainStore> {
    /// The node's identity (the BFT engine signs votes with it).
    pub(crate) key: Keypair,
    pub(crate) gossip: Gossip,
    pub(crate) sync: ChainSync<S>,
    pub(crate) kad: Kademlia,
    pub(crate) links: Links,
    pub(crate) config: AppConfig,
    pub(crate) filter: RelayFilter,
    /// Local transactions, for rebroadcast until mined (bounded by `config.max_local_txs`).
    /// Each with its encoding and how many times it was published again.
    pub(crate) local: VecDeque<(TxId, Vec<u8>, u32)>,
    /// Rotates through connected peers when the rebroadcast takes one into gossip's active view.
    pub(crate) diversify_cursor: usize,
    pub(crate) seen: Seen,
    pub(crate) rounds: u64,
    pub(crate) relay_stats: RelayStats,
    /// Peers sync dropped for bad data, and the discovery round until which it is not offered them
    /// again (peers dropped for stalling are offered again on the next round).
    pub(crate) sync_benched: HashMap<PeerId, u64>,
    pub(crate) work: VecDeque<Work<S>>,
    /// Relayed transactions gathered to be judged in one batch (at most `config.validation_batch`).
    pub(crate) validating: Vec<(MessageId, GossipMessage, PeerId)>,
    /// Whether a [`CoinTimer::Validate`] is scheduled.
    pub(crate) validate_timer: bool,
    /// When the last relayed transaction came: one that comes later than the batch's wait after it
    /// finds no batch to join, and is judged at once.
    pub(crate) last_relayed: Option<Instant>,
    /// When a local transaction was last let through while most links were full (one per
    /// `AppConfig::links_full_hold`, so a node on a slow uplink still gets its own out).
    pub(crate) trickled: Option<Instant>,
    /// The BFT engine, on a certified chain's validators ([`CoinApp::with_bft`]).
    pub(crate) bft: Option<Validator>,
    started: bool,
}

impl<S: ChainStore> std::fmt::Debug for CoinApp<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoinApp")
            .field("peer", &self.gossip.peer_id())
            .field("tip", &self.sync.chain().tip().height)
            .field("peers", &self.links.len())
            .finish_non_exhaustive()
    }
}

impl<S: ChainStore> CoinApp<S> {
    /// A node with identity `keypair` over `chain`, subscribed to the transaction topic (validated
    /// before forwarding), with RNGs seeded from `seed`.
    pub fn new(keypair: Keypair, chain: Chain<S>, config: AppConfig, seed: u64) -> Self {
        let mut gossip = Gossip::new(keypair.clone(), config.gossip_config(), seed);
        gossip.subscribe(
            tx_topic(),
            // Transactions come many at a time under load: their origin signatures too are checked in
            // batches (`Config::verify_batch`), as their own are (`gather`), unless batches are off.
            TopicOptions::default()
                .with_validation()
                .with_batch_verify(config.validation_batch > 1),
        );
        if chain.is_certified() {
            gossip.subscribe(final_topic(), TopicOptions::default().with_validation());
        }
        let kad = Kademlia::new(keypair.clone(), config.kad_config(), seed.wrapping_add(1));
        Self {
            key: keypair,
            bft: None,
            gossip,
            sync: ChainSync::new(chain, config.sync.clone()),
            kad,
            links: Links::new(CHILDREN),
            seen: Seen::new(config.max_seen_peers),
            config,
            filter: Arc::new(|_| true),
            local: VecDeque::new(),
            diversify_cursor: 0,
            rounds: 0,
            relay_stats: RelayStats::default(),
            sync_benched: HashMap::new(),
            work: VecDeque::new(),
            validating: Vec::new(),
            validate_timer: false,
            last_relayed: None,
            trickled: None,
            started: false,
        }
    }

    /// Relay only the transactions `filter` accepts (a censoring node, for tests and experiments).
    pub fn with_relay_filter(mut self, filter: RelayFilter) -> Self {
        self.filter = filter;
        self
    }

    /// The chain: tip, blocks, balances, mempool.
    pub fn chain(&self) -> &Chain<S> {
        self.sync.chain()
    }

    /// The sync child.
    pub fn sync(&self) -> &ChainSync<S> {
        &self.sync
    }

    /// The gossip child.
    pub fn gossip(&self) -> &Gossip {
        &self.gossip
    }

    /// The Kademlia child.
    pub fn kad(&self) -> &Kademlia {
        &self.kad
    }

    /// The connected peers, and which children hold each.
    pub fn links(&self) -> &Links {
        &self.links
    }

    /// The relay policy's counters.
    pub fn relay_stats(&self) -> RelayStats {
        self.relay_stats
    }

    /// The configuration.
    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    fn start(&mut self, out: &mut Vec<Output<Self>>) {
        if !self.started {
            self.started = true;
            if self.bft.is_some() {
                self.work
                    .push_back(Work::Bft(Input::Command(meshwork_consensus::bft::Command::Start)));
            }
            out.push(Output::Schedule {
                after: self.config.discovery_interval,
                timer: CoinTimer::Discover,
            });
            out.push(Output::Schedule {
                after: self.config.rebroadcast_interval,
                timer: CoinTimer::Rebroadcast,
            });
        }
    }

    /// Gossip's events: a question is answered now, or gathered into a batch (`burst`: with the others
    /// of this step); overlay news goes to the application.
    fn on_gossip(
        &mut self,
        now: Instant,
        event: meshwork_gossip::Event,
        burst: bool,
        out: &mut Vec<Output<Self>>,
    ) {
        use meshwork_gossip::Event;
        match event {
            Event::Validate { id, message, from } => self.gather(now, id, message, from, burst, out),
            // Our own and accepted messages: already in the mempool.
            Event::Delivered { .. } | Event::Published { .. } => {}
            other => out.push(Output::Emit(CoinEvent::Gossip(other))),
        }
    }

    fn on_command(&mut self, now: Instant, command: CoinCommand, out: &mut Vec<Output<Self>>) {
        match command {
            CoinCommand::Join(contacts) => {
                let ids = contacts.iter().map(|contact| contact.id).collect();
                self.kad_do(out, |kad, buf| kad.bootstrap(now, contacts, buf));
                self.work
                    .push_back(Work::Gossip(Input::Command(meshwork_gossip::Command::Join(ids))));
            }
            CoinCommand::SubmitTx(tx) => {
                // The outcome is for callers that ask (`submit_local_tx`); a command has no answer, so
                // it is not held back while the links are full either: a refusal would be silent.
                let _ = self.take_local_tx(now, tx, out);
            }
            CoinCommand::SubmitBlock(block) => {
                let submit = sync::Command::SubmitBlock { block, from: None };
                self.work.push_back(Work::Sync(Input::Command(submit)));
            }
            CoinCommand::PeerAddress { peer, addr } => self.peer_address(peer, addr),
            CoinCommand::PeerRoundTrip { peer, rtt } => {
                self.gossip_command(meshwork_gossip::Command::PeerRoundTrip { peer, rtt });
            }
        }
    }

    /// Offers sync every connected peer it released, unless it dropped the peer for bad data in the last
    /// [`SYNC_BENCH_ROUNDS`] rounds. Blocks travel by sync alone, so a connection without sync (a peer
    /// that stalled behind a partition, say) would cut the block relay there while gossip and Kademlia
    /// keep the connection alive.
    pub(crate) fn reengage_sync(&mut self) {
        let round = self.rounds;
        self.sync_benched.retain(|_, until| *until > round);
        let released: Vec<PeerId> = self
            .links
            .peers()
            .filter(|peer| !self.links.holds(peer, SYNC) && !self.sync_benched.contains_key(peer))
            .copied()
            .collect();
        for peer in released {
            if self.links.engage(&peer, SYNC) {
                self.work.push_back(Work::Sync(Input::PeerUp(peer)));
            }
        }
    }

    /// Closes the connection to `peer` for every child.
    pub(crate) fn close(&mut self, peer: PeerId, out: &mut Vec<Output<Self>>) {
        if self.links.down(&peer) {
            out.push(Output::Disconnect(peer));
            self.all_children(peer, false);
        }
    }

    /// Queues a command for Kademlia (discovery uses it).
    pub(crate) fn kad_command(&mut self, command: meshwork_kad::Command) {
        self.work.push_back(Work::Kad(Input::Command(command)));
    }

    /// Tells Kademlia and gossip where `peer` connects from: both hold peers to per-prefix limits, and
    /// gossip names the peer with it to others.
    fn peer_address(&mut self, peer: PeerId, addr: meshwork_kad::Address) {
        if let Some(addr) = addr.socket_addr() {
            self.gossip_command(meshwork_gossip::Command::PeerAddress { peer, addr });
        }
        self.kad_command(meshwork_kad::Command::PeerAddress { peer, addr });
    }

    /// Queues a command for gossip (discovery uses it).
    pub(crate) fn gossip_command(&mut self, command: meshwork_gossip::Command) {
        self.work.push_back(Work::Gossip(Input::Command(command)));
    }
}

impl<S: ChainStore> Protocol for CoinApp<S> {
    type Message = CoinMessage;
    type Command = CoinCommand;
    type Event = CoinEvent;
    type Timer = CoinTimer;

    const ID: ProtocolId = ProtocolId::new("/meshwork/coin-app/1");
    const MAX_MESSAGE_SIZE: usize = MAX_SYNC_MESSAGE;

    fn channels() -> Vec<Channel> {
        // In the order of `CoinMessage`'s variants.
        vec![
            Channel::of::<Gossip>(),
            Channel::of::<ChainSync<S>>(),
            Channel::of::<Kademlia>(),
            Channel::of::<Engine>(),
        ]
    }

    fn handle(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        self.start(out);
        match input {
            Input::Message { from, msg } => {
                let (child, work, peer_up) = match msg {
                    CoinMessage::Gossip(msg) => (
                        GOSSIP,
                        Work::Gossip(Input::Message { from, msg }),
                        Work::Gossip(Input::PeerUp(from)),
                    ),
                    CoinMessage::Sync(msg) => (
                        SYNC,
                        Work::Sync(Input::Message { from, msg }),
                        Work::Sync(Input::PeerUp(from)),
                    ),
                    CoinMessage::Kad(msg) => (
                        KAD,
                        Work::Kad(Input::Message { from, msg }),
                        Work::Kad(Input::PeerUp(from)),
                    ),
                    // Consensus messages only from validators, and only if we run the engine.
                    CoinMessage::Bft(_) if !self.is_validator(&from) => return,
                    CoinMessage::Bft(msg) => (
                        BFT,
                        Work::Bft(Input::Message { from, msg }),
                        Work::Bft(Input::PeerUp(from)),
                    ),
                };
                // Sync does not hear a peer it dropped for bad data until the bench ends.
                if child == SYNC && self.sync_benched.contains_key(&from) {
                    self.relay_stats.benched_sync_messages += 1;
                    return;
                }
                // The peer opened the stream of a child that had released it: the child takes it back.
                if self.links.engage(&from, child) {
                    self.work.push_back(peer_up);
                }
                self.work.push_back(work);
            }
            Input::Command(command) => self.on_command(now, command, out),
            Input::Timer(timer) => match timer {
                CoinTimer::Gossip(timer) => self.work.push_back(Work::Gossip(Input::Timer(timer))),
                CoinTimer::Sync(timer) => self.work.push_back(Work::Sync(Input::Timer(timer))),
                CoinTimer::Kad(timer) => self.work.push_back(Work::Kad(Input::Timer(timer))),
                CoinTimer::Bft(timer) => {
                    let stuck = matches!(timer, meshwork_consensus::bft::Timer::Retry(_));
                    self.work.push_back(Work::Bft(Input::Timer(timer)));
                    if stuck {
                        self.retry_fetch();
                    }
                }
                CoinTimer::Discover => self.discover(now, out),
                CoinTimer::Rebroadcast => self.rebroadcast(now, out),
                CoinTimer::Validate => {
                    self.validate_timer = false;
                    self.validate_gathered(now, out);
                }
            },
            Input::PeerUp(peer) => {
                if self.links.up(peer) {
                    self.seen.remember(peer);
                    if let Some(address_of) = self.config.address_of {
                        self.peer_address(peer, address_of(&peer));
                    }
                    self.all_children(peer, true);
                }
            }
            Input::PeerDown(peer) => {
                // Told to every child even if the peer was never up (a failed dial of one of theirs).
                self.links.down(&peer);
                self.all_children(peer, false);
            }
        }
        self.run(now, out);
    }

    fn is_control(msg: &CoinMessage) -> bool {
        match msg {
            CoinMessage::Gossip(msg) => Gossip::is_control(msg),
            CoinMessage::Sync(msg) => ChainSync::<S>::is_control(msg),
            CoinMessage::Kad(msg) => <Kademlia>::is_control(msg),
            CoinMessage::Bft(msg) => Engine::is_control(msg),
        }
    }

    /// Only gossip promises answers that another peer waits on without a deadline of its own (sync's
    /// and Kademlia's requests time out); its undelivered messages go back to it.
    fn undelivered(
        &mut self,
        now: Instant,
        to: PeerId,
        msg: CoinMessage,
        reason: DropReason,
        out: &mut Vec<Output<Self>>,
    ) {
        if let CoinMessage::Gossip(msg) = msg {
            self.gossip_do(now, out, |g, buf| g.undelivered(now, to, msg, reason, buf));
            self.run(now, out);
        }
    }
}
