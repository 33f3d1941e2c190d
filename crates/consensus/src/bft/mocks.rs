//! Faulty validators and a stand-in application, for tests and the simulator (as commonware's simplex
//! `mocks` ship conflicters and nullers): [`Byzantine`] runs honest [`Simplex`] engines and misbehaves
//! on the way out; [`Digests`] proposes opaque digests and accepts every proposal.
//!
//! Each misbehaviour is one the engine must survive with up to `f < n/3` such validators: the honest ones
//! must never finalise two different blocks at one height, must keep finalising, and must collect
//! [`Evidence`](super::Evidence) against the equivocators.

use meshwork_identity::{Hash, Keypair, PeerId};
use meshwork_wire::{Input, Instant, Output, Protocol, ProtocolId};

use super::engine::{Application, Command, Event, Simplex, Timer};
use super::journal::Journal;
use super::message::{Message, Proposal, sign_nullify};
use crate::traits::Verdict;

/// An application whose blocks are opaque digests: it proposes `blake3(parent, view, proposer)` and
/// accepts every proposal. For simulations of the engine alone.
#[derive(Clone, Copy, Debug)]
pub struct Digests {
    proposer: PeerId,
}

impl Digests {
    /// The application of validator `proposer`.
    pub fn new(proposer: PeerId) -> Self {
        Self { proposer }
    }
}

impl Application for Digests {
    fn propose(&mut self, parent: &Proposal, view: u64) -> Option<Hash> {
        Some(Hash::digest_parts(&[
            parent.payload.as_bytes(),
            &view.to_be_bytes(),
            self.proposer.as_bytes(),
        ]))
    }

    fn verify(&mut self, _parent: &Proposal, _proposal: &Proposal) -> Verdict {
        Verdict::Valid
    }
}

/// How a [`Byzantine`] validator behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// It does not misbehave (so one simulation can hold honest and faulty validators of one type).
    Honest,
    /// As leader, it proposes two different blocks: one to half the validators, one to the other half.
    Equivocate,
    /// Every notarize and finalize vote goes out for the real proposal to half the validators and for a
    /// conflicting one to the rest, and every finalize vote comes with a nullify vote for the same view.
    Conflict,
    /// It sends nothing at all (a crash that keeps its connections open).
    Silent,
    /// Twins (S. Bano et al., *Twins: BFT Systems Made Robust*, OPODIS 2021): two honest engines with the
    /// same key, each talking to one half of the validators only and unaware of the other. Each twin
    /// is honest; together they are one validator voting twice.
    Twins,
}

/// A validator that runs an honest engine (two for [`Misbehaviour::Twins`]) and misbehaves on the way
/// out. Its timers carry which twin set them.
pub struct Byzantine<A, J> {
    engines: [Option<Simplex<A, J>>; 2],
    key: Keypair,
    how: Misbehaviour,
}

impl<A: Application, J: Journal> Byzantine<A, J> {
    /// `engine`, behaving as `how`; `key` must be the engine's (it signs the extra votes). For
    /// [`Misbehaviour::Twins`], `twin` is the second engine (same key); otherwise it is ignored.
    pub fn new(engine: Simplex<A, J>, twin: Option<Simplex<A, J>>, key: Keypair, how: Misbehaviour) -> Self {
        let twin = twin.filter(|_| how == Misbehaviour::Twins);
        Self {
            engines: [Some(engine), twin],
            key,
            how,
        }
    }

    /// The first engine inside (the one facing the first half of the validators, for twins).
    pub fn engine(&self) -> &Simplex<A, J> {
        self.engines[0]
            .as_ref()
            .unwrap_or_else(|| unreachable!("the first engine is always there"))
    }

    /// How it behaves.
    pub fn misbehaviour(&self) -> Misbehaviour {
        self.how
    }

    fn validators(&self) -> &super::ValidatorSet {
        &self.engine().config().validators
    }

    /// Whether `peer` is a validator of the second half (who get the conflicting votes, and talk to
    /// the second twin).
    fn second_half(&self, peer: &PeerId) -> bool {
        let set = self.validators();
        set.iter()
            .position(|p| p == peer)
            .is_some_and(|i| i * 2 >= set.len())
    }

    /// A proposal like `proposal` with another payload.
    fn conflicting(proposal: &Proposal) -> Proposal {
        Proposal {
            payload: Hash::digest_parts(&[b"conflicting", proposal.payload.as_bytes()]),
            ..*proposal
        }
    }

    fn send(&self, twin: usize, to: PeerId, msg: Message, out: &mut Vec<Output<Self>>) {
        let second = self.second_half(&to);
        let chain = self.engine().config().genesis;
        let msg = match (self.how, msg) {
            (Misbehaviour::Silent, _) => return,
            (Misbehaviour::Twins, msg) => {
                if second != (twin == 1) {
                    return;
                }
                msg
            }
            (Misbehaviour::Equivocate, Message::Notarize { proposal, .. })
                if second && self.validators().leader(proposal.view) == self.key.peer_id() =>
            {
                let proposal = Self::conflicting(&proposal);
                let vote = proposal.sign_notarize(&self.key, &chain);
                Message::Notarize { proposal, vote }
            }
            (Misbehaviour::Conflict, Message::Notarize { proposal, .. }) if second => {
                let proposal = Self::conflicting(&proposal);
                let vote = proposal.sign_notarize(&self.key, &chain);
                Message::Notarize { proposal, vote }
            }
            (Misbehaviour::Conflict, Message::Finalize { proposal, vote }) => {
                let nullify = Message::Nullify {
                    view: proposal.view,
                    vote: sign_nullify(&self.key, &chain, proposal.view),
                };
                out.push(Output::Send { to, msg: nullify });
                if second {
                    let proposal = Self::conflicting(&proposal);
                    let vote = proposal.sign_finalize(&self.key, &chain);
                    Message::Finalize { proposal, vote }
                } else {
                    Message::Finalize { proposal, vote }
                }
            }
            (_, msg) => msg,
        };
        out.push(Output::Send { to, msg });
    }

    fn drive(&mut self, twin: usize, now: Instant, input: Input<Simplex<A, J>>, out: &mut Vec<Output<Self>>) {
        let Some(engine) = self.engines[twin].as_mut() else {
            return;
        };
        let mut inner = Vec::new();
        engine.handle(now, input, &mut inner);
        for output in inner {
            match output {
                Output::Send { to, msg } => self.send(twin, to, msg, out),
                Output::Emit(event) => out.push(Output::Emit(event)),
                Output::Schedule { after, timer } => out.push(Output::Schedule {
                    after,
                    timer: (twin == 1, timer),
                }),
                Output::Dial(peer) => out.push(Output::Dial(peer)),
                Output::Disconnect(peer) => out.push(Output::Disconnect(peer)),
                Output::Protect { peer, protect } => out.push(Output::Protect { peer, protect }),
                Output::Dropped { peer, reason } => out.push(Output::Dropped { peer, reason }),
            }
        }
    }
}

impl<A: Application, J: Journal> Protocol for Byzantine<A, J> {
    type Message = Message;
    type Command = Command;
    type Event = Event;
    /// The engine's timer, and whether the second twin set it.
    type Timer = (bool, Timer);

    const ID: ProtocolId = <Simplex<A, J> as Protocol>::ID;
    const MAX_MESSAGE_SIZE: usize = Message::MAX_SIZE;

    fn handle(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        let twins = self.how == Misbehaviour::Twins;
        match input {
            Input::Message { from, msg } => {
                let twin = usize::from(twins && self.second_half(&from));
                self.drive(twin, now, Input::Message { from, msg }, out);
            }
            Input::Timer((second, timer)) => self.drive(usize::from(second), now, Input::Timer(timer), out),
            Input::Command(command) => {
                self.drive(0, now, Input::Command(command.clone()), out);
                self.drive(1, now, Input::Command(command), out);
            }
            Input::PeerUp(peer) => {
                self.drive(0, now, Input::PeerUp(peer), out);
                self.drive(1, now, Input::PeerUp(peer), out);
            }
            Input::PeerDown(peer) => {
                self.drive(0, now, Input::PeerDown(peer), out);
                self.drive(1, now, Input::PeerDown(peer), out);
            }
        }
    }
}
