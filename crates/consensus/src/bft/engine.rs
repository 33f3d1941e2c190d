//! [`Simplex`]: the engine as a [`Protocol`]. This file holds the state and the input dispatch; what a
//! validator does in a view (propose, vote, time out) is in `view.rs`, how certificates end views and
//! finalise chains in `finality.rs`.

use std::collections::{BTreeMap, HashMap, HashSet};

use meshwork_identity::{Hash, Keypair, PeerId};
use meshwork_wire::{Input, Instant, Output, Protocol, ProtocolId};

use super::config::BftConfig;
use super::evidence::Evidence;
use super::journal::{Journal, LastVote, SkippedRun};
use super::message::{Finalization, Message, Notarization, Nullification, Proposal};
use super::votes::ViewVotes;
use crate::traits::{Fault, InvalidReason, Verdict};

/// What the engine asks of the application: blocks to propose, and a verdict on the leaders' proposals.
/// Both are answered in the same step (ARCHITECTURE.md: an answer, not an event).
pub trait Application {
    /// The payload (block id) to propose in `view` on top of `parent`, or `None` if there is nothing to
    /// propose yet (the view then times out and is skipped).
    fn propose(&mut self, parent: &Proposal, view: u64) -> Option<Hash>;
    /// Whether `proposal` is a valid child of `parent`. [`Verdict::NotYetKnown`] (the block has not
    /// arrived) keeps it waiting until [`Command::Recheck`].
    fn verify(&mut self, parent: &Proposal, proposal: &Proposal) -> Verdict;
}

/// What the application asks of the engine.
#[derive(Clone, Debug)]
pub enum Command {
    /// Start (or resume, from the journal's last vote): dial the validators and enter the first view.
    Start,
    /// A payload the engine was waiting for may have arrived: check the current view's proposal again,
    /// and, if this validator leads the view and had nothing to propose, ask the application again.
    Recheck,
}

/// What the engine tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The validator entered `view`.
    ViewEntered {
        /// The view.
        view: u64,
        /// Its leader.
        leader: PeerId,
    },
    /// This validator, as leader, proposed.
    Proposed(Proposal),
    /// A proposal was notarized: it may be built on.
    Notarized(Proposal),
    /// A view was skipped: more than two thirds voted to nullify it.
    Nullified {
        /// The view.
        view: u64,
    },
    /// A proposal is final, with every ancestor (each announced once, in height order).
    Finalized {
        /// The final proposal.
        proposal: Proposal,
        /// The view of the finalization certificate that made it final (its own, or a descendant's).
        by_view: u64,
    },
    /// The validator was too far behind to link a finalization to its last final block (the
    /// certificates in between are older than any validator keeps): it takes the finalization's block
    /// as final without announcing the blocks between. The application must sync them (with the
    /// chain's own sync protocol).
    Jumped {
        /// The last block announced final before.
        from: Proposal,
        /// The block now final.
        to: Proposal,
    },
    /// A leader's proposal was refused by the application.
    InvalidProposal {
        /// The proposal.
        proposal: Proposal,
        /// Why.
        reason: InvalidReason,
    },
    /// A peer misbehaved: a bad signature or certificate, or provable equivocation
    /// ([`Fault::Equivocation`]). Hand it to a [`FaultReporter`](crate::FaultReporter).
    Fault {
        /// The peer (for equivocation, the convicted validator).
        peer: PeerId,
        /// What it did.
        fault: Fault,
    },
    /// A finalization certificate conflicts with a block this engine already holds as final: more than
    /// a third of the validators are faulty. The engine stops.
    ConflictingFinalization {
        /// The block this engine finalised at or above the fork.
        ours: Proposal,
        /// The certificate that conflicts with it.
        theirs: Finalization,
    },
    /// The journal failed to record a vote: the engine stops voting (it might otherwise vote twice after
    /// a restart).
    Halted {
        /// The journal's error.
        error: String,
    },
}

/// A timer the engine set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Timer {
    /// The leader of this view had its time to propose.
    Leader(u64),
    /// This view had its time to be notarized.
    Notarization(u64),
    /// Still stuck in this view: send the nullify vote and the entry certificate again.
    Retry(u64),
    /// Dial this validator again if it is still down.
    Redial(PeerId),
}

/// The Simplex consensus engine (see the [module docs](super)). `A` builds and checks blocks; `J` keeps
/// the last vote durable.
pub struct Simplex<A, J> {
    pub(super) config: BftConfig,
    pub(super) key: Keypair,
    pub(super) me: PeerId,
    /// Whether this node is one of the validators (an observer only follows certificates).
    pub(super) voter: bool,
    pub(super) app: A,
    pub(super) journal: J,
    pub(super) started: bool,
    pub(super) halted: bool,
    /// The current view.
    pub(super) view: u64,
    /// This validator's votes in the latest view it voted in (the journal's copy).
    pub(super) mine: LastVote,
    pub(super) votes: BTreeMap<u64, ViewVotes>,
    pub(super) notarized: BTreeMap<u64, Notarization>,
    pub(super) nullified: BTreeMap<u64, Nullification>,
    /// The run of nullified views older than the certificate history, if one ends at its edge; after
    /// a restart, the run the journal kept (it may reach into the history).
    pub(super) skip: Option<SkippedRun>,
    pub(super) finalizations: BTreeMap<u64, Finalization>,
    /// The last final proposal (genesis at first).
    pub(super) finalized: Proposal,
    /// A finalization whose ancestors are not all known yet, and who sent it.
    pub(super) waiting_final: Option<(Finalization, PeerId)>,
    /// Connected peers.
    pub(super) up: HashSet<PeerId>,
    /// When each view's certificates were last asked for, and how many times.
    pub(super) asked: BTreeMap<u64, (Instant, u32)>,
    /// For each peer that voted in a view we had left: when we last sent it a certificate, and the
    /// highest view we sent.
    pub(super) helped: HashMap<PeerId, (Instant, u64)>,
    /// When each peer's last backfill request was answered.
    pub(super) served: HashMap<PeerId, Instant>,
}

impl<A: Application, J: Journal> Simplex<A, J> {
    /// An engine for `key` (a validator if its peer id is in the set, else an observer).
    pub fn new(config: BftConfig, key: Keypair, app: A, journal: J) -> Self {
        let me = key.peer_id();
        Self {
            voter: config.validators.contains(&me),
            finalized: Proposal::genesis(config.genesis),
            config,
            key,
            me,
            app,
            journal,
            started: false,
            halted: false,
            view: 0,
            mine: LastVote::default(),
            votes: BTreeMap::new(),
            notarized: BTreeMap::new(),
            nullified: BTreeMap::new(),
            skip: None,
            finalizations: BTreeMap::new(),
            waiting_final: None,
            up: HashSet::new(),
            asked: BTreeMap::new(),
            helped: HashMap::new(),
            served: HashMap::new(),
        }
    }

    /// The current view.
    pub fn view(&self) -> u64 {
        self.view
    }

    /// The last final proposal.
    pub fn finalized(&self) -> &Proposal {
        &self.finalized
    }

    /// The latest finalization certificate held.
    pub fn last_finalization(&self) -> Option<&Finalization> {
        self.finalizations.values().next_back()
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The application, to change.
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// The settings.
    pub fn config(&self) -> &BftConfig {
        &self.config
    }

    /// The votes of `view`, created on first use.
    pub(super) fn view_votes(&mut self, view: u64) -> &mut ViewVotes {
        self.votes.entry(view).or_default()
    }

    /// Sends `msg` to every connected validator but this one.
    pub(super) fn broadcast(&self, msg: &Message, out: &mut Vec<Output<Self>>) {
        for peer in self.config.validators.iter() {
            if *peer != self.me && self.up.contains(peer) {
                out.push(Output::Send {
                    to: *peer,
                    msg: msg.clone(),
                });
            }
        }
    }

    /// A validator connected mid-view (the engine started before the link came up, or it reconnected):
    /// it gets this validator's notarize vote of the current view again, which carries the proposal, so
    /// the view need not time out for it. Signatures are deterministic: the same vote, not a second one.
    fn greet(&self, peer: PeerId, out: &mut Vec<Output<Self>>) {
        if !self.voter
            || self.halted
            || !self.config.validators.contains(&peer)
            || self.mine.view != self.view
        {
            return;
        }
        if let Some(proposal) = self.mine.notarize {
            let vote = proposal.sign_notarize(&self.key, &self.config.genesis);
            out.push(Output::Send {
                to: peer,
                msg: Message::Notarize { proposal, vote },
            });
        }
    }

    /// Reports `fault` by `peer` and closes its connection.
    pub(super) fn punish(&self, peer: PeerId, fault: Fault, out: &mut Vec<Output<Self>>) {
        out.push(Output::Emit(Event::Fault { peer, fault }));
        out.push(Output::Disconnect(peer));
    }

    /// Reports equivocation. The evidence is proof enough: the validator's connection stays (it may be
    /// our only path to others), its later votes still count once each.
    pub(super) fn convict(&self, evidence: Option<Box<Evidence>>, out: &mut Vec<Output<Self>>) {
        if let Some(evidence) = evidence {
            out.push(Output::Emit(Event::Fault {
                peer: evidence.validator(),
                fault: Fault::Equivocation(evidence),
            }));
        }
    }

    fn start(&mut self, now: Instant, out: &mut Vec<Output<Self>>) {
        if self.started {
            return;
        }
        self.started = true;
        for peer in self.config.validators.iter() {
            if *peer != self.me {
                out.push(Output::Protect {
                    peer: *peer,
                    protect: true,
                });
                if !self.up.contains(peer) {
                    out.push(Output::Dial(*peer));
                }
            }
        }
        let first = match self.journal.load() {
            Ok(last) => {
                self.mine = last.unwrap_or_default();
                // The run of nullified views it saw below its last vote: their certificates are gone
                // with the restart, and pruned everywhere once the history passes them.
                self.skip = self.mine.skipped;
                // A finalize vote was sent on seeing the view's notarization: the validator had moved on.
                if self.mine.finalize.is_some() {
                    self.mine.view + 1
                } else {
                    self.mine.view.max(1)
                }
            }
            Err(error) => return self.halt(error.to_string(), out),
        };
        self.enter_view(now, first, out);
        if self.mine.nullify {
            // It timed out in this view before the restart: keep asking to skip it.
            out.push(Output::Schedule {
                after: self.config.retry,
                timer: Timer::Retry(first),
            });
        }
    }

    /// Stops voting for good.
    pub(super) fn halt(&mut self, error: String, out: &mut Vec<Output<Self>>) {
        self.halted = true;
        out.push(Output::Emit(Event::Halted { error }));
    }

    fn on_message(&mut self, now: Instant, from: PeerId, msg: Message, out: &mut Vec<Output<Self>>) {
        match msg {
            Message::Notarize { proposal, vote } => self.on_notarize(now, from, proposal, vote, out),
            Message::Nullify { view, vote } => self.on_nullify(now, from, view, vote, out),
            Message::Finalize { proposal, vote } => self.on_finalize(now, from, proposal, vote, out),
            Message::Notarization(cert) => self.on_notarization_message(now, from, cert, out),
            Message::Nullification(cert) => self.on_nullification_message(now, from, cert, out),
            Message::Finalization(cert) => self.on_finalization_message(now, from, cert, out),
            Message::Backfill(views) => self.on_backfill(now, from, &views, out),
        }
    }
}

impl<A: Application, J: Journal> Protocol for Simplex<A, J> {
    type Message = Message;
    type Command = Command;
    type Event = Event;
    type Timer = Timer;

    const ID: ProtocolId = ProtocolId::new("/meshwork/simplex/1");
    const MAX_MESSAGE_SIZE: usize = Message::MAX_SIZE;

    fn handle(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        match input {
            Input::Command(Command::Start) => self.start(now, out),
            Input::Command(Command::Recheck) => {
                self.propose_again(now, out);
                self.try_vote(now, out);
            }
            Input::PeerUp(peer) => {
                if self.up.insert(peer) && self.started {
                    self.greet(peer, out);
                }
            }
            Input::PeerDown(peer) => {
                self.up.remove(&peer);
                // `served` stays: reconnecting must not reset a peer's backfill allowance (it holds
                // validators only, so it is bounded).
                self.helped.remove(&peer);
                if self.started && self.config.validators.contains(&peer) {
                    out.push(Output::Schedule {
                        after: self.config.redial,
                        timer: Timer::Redial(peer),
                    });
                }
            }
            Input::Message { from, msg } => {
                if self.started && !self.halted {
                    self.on_message(now, from, msg, out);
                }
            }
            Input::Timer(timer) => {
                if self.halted {
                    return;
                }
                match timer {
                    Timer::Leader(view) => self.on_leader_timeout(now, view, out),
                    Timer::Notarization(view) => self.on_view_timeout(now, view, out),
                    Timer::Retry(view) => self.on_retry(now, view, out),
                    Timer::Redial(peer) => {
                        if !self.up.contains(&peer) {
                            out.push(Output::Dial(peer));
                        }
                    }
                }
            }
        }
    }
}
