//! The event queue: a binary heap of `(time, sequence)` keys over a slab of pending events.
//!
//! Heap entries are 24 bytes, so sifting stays cheap whatever the protocol's message size; the payloads sit
//! still in a slab whose free slots are reused in the order they were freed. Ties in time are broken by the sequence number, which grows
//! by one for every scheduled event: two events at the same instant run in the order they were scheduled,
//! which is what makes a run reproducible.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use meshwork_wire::Protocol;

use crate::fault::Control;

/// Something that will happen at a given instant.
pub(crate) enum Pending<P: Protocol> {
    /// A message arrives at `to`.
    Deliver {
        to: u32,
        epoch: u32,
        from: u32,
        digest: u64,
        /// The engine's count of closed connections when it was sent.
        unlinks: u64,
        /// `None`: garbage that will fail to decode.
        msg: Option<P::Message>,
    },
    /// A timer `node` asked for fires.
    Timer { node: u32, epoch: u32, timer: P::Timer },
    /// The experiment's command reaches `node` (whatever incarnation is alive then).
    Command { node: u32, cmd: P::Command },
    /// Tell `node` that the connection to `peer` is up.
    PeerUp { node: u32, epoch: u32, peer: u32 },
    /// Tell `node` that the connection to `peer` is gone.
    PeerDown { node: u32, epoch: u32, peer: u32 },
    /// A dial from `a` to `b` completes its handshake (or fails).
    Connect {
        a: u32,
        a_epoch: u32,
        b: u32,
        b_epoch: u32,
    },
    /// A fault or topology change scheduled by the experiment.
    Control(Control),
}

#[derive(PartialEq, Eq)]
struct Entry {
    time: u64,
    seq: u64,
    slot: u32,
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: `BinaryHeap` is a max-heap and we want the earliest event first.
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

pub(crate) struct Queue<P: Protocol> {
    heap: BinaryHeap<Entry>,
    slab: Vec<Option<Pending<P>>>,
    /// Free slots, reused first-freed first: with a constant latency events are popped in the order they
    /// were pushed, so slots are then visited in order too, which the CPU's prefetcher rewards.
    free: VecDeque<u32>,
    seq: u64,
}

impl<P: Protocol> Queue<P> {
    pub(crate) fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: VecDeque::new(),
            seq: 0,
        }
    }

    pub(crate) fn push(&mut self, time: u64, pending: Pending<P>) {
        let slot = match self.free.pop_front() {
            Some(slot) => {
                self.slab[slot as usize] = Some(pending);
                slot
            }
            None => {
                self.slab.push(Some(pending));
                // More than 4 billion events in flight at once would exhaust memory long before this.
                u32::try_from(self.slab.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.heap.push(Entry {
            time,
            seq: self.seq,
            slot,
        });
        self.seq += 1;
    }

    /// The time of the next event, if any.
    pub(crate) fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|entry| entry.time)
    }

    pub(crate) fn pop(&mut self) -> Option<(u64, Pending<P>)> {
        let entry = self.heap.pop()?;
        let pending = self.slab.get_mut(entry.slot as usize)?.take()?;
        self.free.push_back(entry.slot);
        Some((entry.time, pending))
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}
