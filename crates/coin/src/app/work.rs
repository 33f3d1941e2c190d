//! The work queue: each child protocol runs within the step that gave it input, and what it leaves
//! for the parent (its events, the peers it dialled or closed) is handled, or queued as another
//! child's input, before the step ends.

use meshwork_consensus::sync;
use meshwork_consensus::{ChainSync, Fault};
use meshwork_gossip::{Broadcast, Gossip};
use meshwork_identity::PeerId;
use meshwork_kad::Kademlia;
use meshwork_ledger::ChainStore;
use meshwork_wire::{Input, Instant, Lifted, Output, Protocol};

use super::{CoinApp, MAX_STEPS, SYNC_BENCH_ROUNDS, Work};
use crate::types::{CoinEvent, CoinMessage, CoinTimer, GOSSIP, KAD, SYNC, tx_topic};

impl<S: ChainStore> CoinApp<S> {
    /// Runs the work queue until it is empty: every child input, and every input the parent gives a child
    /// in answer to its events, within this one step.
    pub(crate) fn run(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        for _ in 0..MAX_STEPS {
            let Some(work) = self.work.pop_front() else {
                // Orphans found invalid in this step are blamed within it, and those its blocks made
                // whole are published.
                if self.blame_invalid_orphans(out) | self.queue_adopted_by_blocks() {
                    continue;
                }
                return;
            };
            match work {
                Work::Gossip(input) => self.gossip_do(now, out, |g, buf| g.handle(now, input, buf)),
                Work::Verdict(id, verdict) => {
                    self.gossip_do(now, out, |g, buf| g.validated(now, id, verdict, buf));
                }
                Work::Adopted(txid) => self.publish_adopted(now, txid, out),
                Work::Sync(input) => self.sync_do(out, |s, buf| s.handle(now, input, buf)),
                Work::Kad(input) => self.kad_do(out, |k, buf| k.handle(now, input, buf)),
                Work::Bft(Input::PeerUp(peer)) if !self.is_validator(&peer) => {
                    self.release_for_bft(peer, out);
                }
                Work::Bft(input) => self.bft_do(now, out, |b, buf| b.handle(now, input, buf)),
            }
        }
        // Never reached by the children as written; dropping the rest beats running forever.
        self.relay_stats.dropped_work += self.work.len() as u64;
        self.work.clear();
    }

    /// Runs `call` on gossip and handles what it leaves for the parent.
    pub(crate) fn gossip_do<R>(
        &mut self,
        now: Instant,
        out: &mut Vec<Output<Self>>,
        call: impl FnOnce(&mut Gossip, &mut Vec<Output<Gossip>>) -> R,
    ) -> R {
        let (answer, left) = self.links.drive(
            GOSSIP,
            &mut self.gossip,
            call,
            CoinMessage::Gossip,
            CoinTimer::Gossip,
            out,
        );
        let events = self.follow(left, |peer| Work::Gossip(Input::PeerUp(peer)));
        // Transactions whose origin signatures gossip checked in one batch come out of one step: they
        // came under load and waited already, so they are judged as one batch at once.
        let burst = events
            .iter()
            .filter(|event| {
                matches!(event, meshwork_gossip::Event::Validate { message, .. } if message.topic == tx_topic())
            })
            .count()
            > 1;
        for event in events {
            self.on_gossip(now, event, burst, out);
        }
        if burst {
            self.validate_gathered(now, out);
        }
        answer
    }

    /// Runs `call` on sync and handles what it leaves for the parent.
    pub(crate) fn sync_do<R>(
        &mut self,
        out: &mut Vec<Output<Self>>,
        call: impl FnOnce(&mut ChainSync<S>, &mut Vec<Output<ChainSync<S>>>) -> R,
    ) -> R {
        let (answer, left) = self.links.drive(
            SYNC,
            &mut self.sync,
            call,
            CoinMessage::Sync,
            CoinTimer::Sync,
            out,
        );
        for event in self.follow(left, |peer| Work::Sync(Input::PeerUp(peer))) {
            if let sync::Event::PeerFaulted { peer, fault } = &event
                && !matches!(fault, Fault::Stalled)
            {
                let until = self.rounds + SYNC_BENCH_ROUNDS;
                self.sync_benched.insert(*peer, until);
            }
            // A block came in: the engine may have been waiting for it to vote or to propose.
            if self.bft.is_some()
                && matches!(
                    event,
                    sync::Event::BlockPending { .. } | sync::Event::BlockAccepted { .. }
                )
            {
                self.work.push_back(Work::Bft(Input::Command(
                    meshwork_consensus::bft::Command::Recheck,
                )));
            }
            out.push(Output::Emit(CoinEvent::Sync(event)));
        }
        answer
    }

    /// Runs `call` on Kademlia and handles what it leaves for the parent.
    pub(crate) fn kad_do<R>(
        &mut self,
        out: &mut Vec<Output<Self>>,
        call: impl FnOnce(&mut Kademlia, &mut Vec<Output<Kademlia>>) -> R,
    ) -> R {
        let (answer, left) =
            self.links
                .drive(KAD, &mut self.kad, call, CoinMessage::Kad, CoinTimer::Kad, out);
        for event in self.follow(left, |peer| Work::Kad(Input::PeerUp(peer))) {
            out.push(Output::Emit(CoinEvent::Kad(event)));
        }
        answer
    }

    /// Queues the `PeerUp`s and `PeerDown`s a child's outputs call for; returns its events.
    pub(crate) fn follow<E>(&mut self, left: Vec<Lifted<E>>, peer_up: fn(PeerId) -> Work<S>) -> Vec<E> {
        let mut events = Vec::new();
        for lifted in left {
            match lifted {
                Lifted::Event(event) => events.push(event),
                Lifted::PeerUp(peer) => self.work.push_back(peer_up(peer)),
                Lifted::Closed(peer) => self.all_children(peer, false),
                Lifted::Done => {}
            }
        }
        events
    }

    /// Queues a peer's coming (`up`) or going for every child.
    pub(crate) fn all_children(&mut self, peer: PeerId, up: bool) {
        fn news<P: Protocol>(peer: PeerId, up: bool) -> Input<P> {
            if up {
                Input::PeerUp(peer)
            } else {
                Input::PeerDown(peer)
            }
        }
        self.work.push_back(Work::Gossip(news(peer, up)));
        self.work.push_back(Work::Sync(news(peer, up)));
        self.work.push_back(Work::Kad(news(peer, up)));
        self.work.push_back(Work::Bft(news(peer, up)));
    }
}
