//! A tiny deterministic driver for several `ChainSync` nodes: a FIFO of deliveries, virtual time that
//! only advances to fire timers when nothing else is pending, links that `Disconnect` cuts, and
//! per-node misbehaviour applied to what a node sends.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use meshwork_consensus::sync::{ChainSync, Event, Message, Timer};
use meshwork_identity::PeerId;
use meshwork_ledger::{MemoryStore, Transaction};
use meshwork_wire::{Input, Instant, Output, Protocol};

pub type Node = ChainSync<MemoryStore>;

/// How a dishonest node tampers with what it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lie {
    /// Claims enormous work in `Status` and sends blocks whose bodies do not match their headers.
    CorruptBlocks,
    /// Claims enormous work in `Status` and sends broken header chains.
    CorruptHeaders,
    /// Claims enormous work in `Status`, then never answers for headers or blocks.
    Silent,
    /// Answers `GetBlockTxs` with the transactions asked for in reverse order (its status stays honest).
    WrongBlockTxs,
    /// Sends compact blocks whose prefilled position lies past the block's end (status honest).
    BadCompactBlock,
    /// Sends compact blocks naming the block's first short id at every position but the last, and a
    /// made-up one there (status honest).
    RepeatedShortIds,
    /// Never answers `GetBlockTxs` (status honest).
    SilentBlockTxs,
}

pub struct Net {
    pub nodes: BTreeMap<PeerId, Node>,
    pub now: Instant,
    pub events: BTreeMap<PeerId, Vec<Event>>,
    /// Blocks delivered, by (sender, receiver).
    pub blocks_sent: BTreeMap<(PeerId, PeerId), usize>,
    pub lies: BTreeMap<PeerId, Lie>,
    queue: VecDeque<(PeerId, Input<Node>)>,
    timers: BTreeMap<(Instant, u64), (PeerId, Timer)>,
    timer_seq: u64,
    links: BTreeSet<(PeerId, PeerId)>,
}

fn link(a: PeerId, b: PeerId) -> (PeerId, PeerId) {
    (a.min(b), a.max(b))
}

impl Net {
    /// A network whose clock starts at `unix_secs`.
    pub fn new(unix_secs: u64) -> Self {
        Self {
            nodes: BTreeMap::new(),
            now: Instant::from_duration(Duration::from_secs(unix_secs)),
            events: BTreeMap::new(),
            blocks_sent: BTreeMap::new(),
            lies: BTreeMap::new(),
            queue: VecDeque::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            links: BTreeSet::new(),
        }
    }

    pub fn add(&mut self, id: PeerId, node: Node) {
        self.nodes.insert(id, node);
    }

    pub fn connect(&mut self, a: PeerId, b: PeerId) {
        if self.links.insert(link(a, b)) {
            self.queue.push_back((a, Input::PeerUp(b)));
            self.queue.push_back((b, Input::PeerUp(a)));
        }
    }

    pub fn is_linked(&self, a: PeerId, b: PeerId) -> bool {
        self.links.contains(&link(a, b))
    }

    pub fn command(&mut self, node: PeerId, command: meshwork_consensus::sync::Command) {
        self.queue.push_back((node, Input::Command(command)));
    }

    /// Hands `to` a message from `from` directly (linked or not, untampered).
    pub fn deliver(&mut self, from: PeerId, to: PeerId, msg: Message) {
        self.queue.push_back((to, Input::Message { from, msg }));
    }

    /// Handles what is queued, and what that queues, but fires no timer; returns the steps taken (at
    /// most `max_steps`).
    pub fn settle(&mut self, max_steps: usize) -> usize {
        for step in 0..max_steps {
            if self.queue.is_empty() || !self.step() {
                return step;
            }
        }
        max_steps
    }

    /// Runs until nothing is left to do or `max_steps` inputs were handled; returns the steps taken.
    pub fn run(&mut self, max_steps: usize) -> usize {
        for step in 0..max_steps {
            if !self.step() {
                return step;
            }
        }
        max_steps
    }

    fn step(&mut self) -> bool {
        let (node, input) = match self.queue.pop_front() {
            Some(next) => next,
            None => {
                let Some(((due, _), (node, timer))) = self.timers.pop_first() else {
                    return false;
                };
                self.now = self.now.max(due);
                (node, Input::Timer(timer))
            }
        };
        let Some(state) = self.nodes.get_mut(&node) else {
            return true;
        };
        let mut out = Vec::new();
        state.handle(self.now, input, &mut out);
        for output in out {
            self.carry_out(node, output);
        }
        true
    }

    fn carry_out(&mut self, from: PeerId, output: Output<Node>) {
        match output {
            Output::Send { to, msg } => {
                if !self.is_linked(from, to) {
                    return;
                }
                let Some(msg) = self.tamper(from, msg) else {
                    return;
                };

                if matches!(msg, Message::Block(_)) {
                    *self.blocks_sent.entry((from, to)).or_default() += 1;
                }
                self.queue.push_back((to, Input::Message { from, msg }));
            }
            Output::Emit(event) => self.events.entry(from).or_default().push(event),
            Output::Schedule { after, timer } => {
                self.timer_seq += 1;
                self.timers
                    .insert((self.now + after, self.timer_seq), (from, timer));
            }
            Output::Disconnect(peer) => {
                if self.links.remove(&link(from, peer)) {
                    self.queue.push_back((from, Input::PeerDown(peer)));
                    self.queue.push_back((peer, Input::PeerDown(from)));
                }
            }
            Output::Dial(_) | Output::Dropped { .. } | Output::Protect { .. } => {}
        }
    }

    fn tamper(&self, from: PeerId, msg: Message) -> Option<Message> {
        let Some(lie) = self.lies.get(&from) else {
            return Some(msg);
        };
        Some(match (lie, msg) {
            (
                Lie::WrongBlockTxs | Lie::BadCompactBlock | Lie::RepeatedShortIds | Lie::SilentBlockTxs,
                msg @ Message::Status { .. },
            ) => msg,
            (Lie::SilentBlockTxs, Message::BlockTxs { .. }) => return None,
            (Lie::RepeatedShortIds, Message::CompactBlock(mut compact)) => {
                let room = meshwork_ledger::MAX_BLOCK_TXS - compact.prefilled.len();
                let first = *compact.short_ids.first()?;
                let mut short_ids = vec![first; room - 1];
                short_ids.push([0xee; 6]);
                compact.short_ids = short_ids.try_into().ok()?;
                Message::CompactBlock(compact)
            }
            (Lie::WrongBlockTxs, Message::BlockTxs { block, txs }) => {
                // Reversed: the right transactions in the wrong order (two or more are asked for).
                let mut txs = txs.into_inner();
                txs.reverse();
                Message::BlockTxs {
                    block,
                    txs: txs.try_into().ok()?,
                }
            }
            (Lie::BadCompactBlock, Message::CompactBlock(mut compact)) => {
                let mut prefilled = compact.prefilled.into_inner();
                prefilled[0].index = u32::MAX;
                compact.prefilled = prefilled.try_into().ok()?;
                Message::CompactBlock(compact)
            }
            (_, Message::Status { tip, height, .. }) => Message::Status {
                tip,
                height,
                work: u128::MAX / 2,
            },
            (Lie::CorruptBlocks, Message::Block(mut block)) => {
                let mut txs = block.txs.into_inner();
                if let Some(Transaction::Coinbase(coinbase)) = txs.first_mut() {
                    coinbase.extra = b"not what the header says".to_vec().try_into().ok()?;
                }
                block.txs = txs.try_into().ok()?;
                Message::Block(block)
            }
            (Lie::CorruptHeaders, Message::Headers(headers)) if headers.len() >= 2 => {
                let mut headers = headers.into_inner();
                headers[0].nonce ^= 1;
                Message::Headers(headers.try_into().ok()?)
            }
            (Lie::Silent, Message::Headers(_) | Message::Block(_) | Message::NotFound(_)) => return None,
            (_, msg) => msg,
        })
    }

    /// The faults `node` reported, as (peer, fault) pairs.
    pub fn faults(&self, node: PeerId) -> Vec<(PeerId, meshwork_consensus::Fault)> {
        self.events
            .get(&node)
            .into_iter()
            .flatten()
            .filter_map(|event| match event {
                Event::PeerFaulted { peer, fault } => Some((*peer, fault.clone())),
                _ => None,
            })
            .collect()
    }
}
