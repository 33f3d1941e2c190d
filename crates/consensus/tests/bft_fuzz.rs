//! Seeded Byzantine fuzzing of the engine's inputs: one honest validator among three that sign anything
//! (valid signatures, for views near the honest one's, for a handful of competing proposals), plus forged
//! and unsigned votes, certificates assembled from those votes, backfill requests, timers firing at any
//! moment and connections dropping. Whatever the others do, the honest validator must never contradict
//! itself: one notarize vote per view, never a nullify and a finalize vote in one view, and final heights
//! one after another. And it must never panic.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should stop loudly

use std::collections::HashMap;
use std::time::Duration;

use meshwork_consensus::bft::mocks::Digests;
use meshwork_consensus::bft::{
    BftConfig, Command, Event, Finalization, MemoryJournal, Message, Notarization, Nullification, Proposal,
    Simplex, Timer, ValidatorSet, sign_nullify,
};
use meshwork_identity::{Hash, Keypair, PeerId};
use meshwork_sim::ChaCha8Rng;
use meshwork_wire::{Input, Instant, Output, Protocol};
use rand::{Rng, SeedableRng};

const SEEDS: u64 = 120;
const STEPS: usize = 1500;

struct Fuzz {
    rng: ChaCha8Rng,
    keys: Vec<Keypair>,
    chain: Hash,
    /// Proposals the Byzantine validators have used, to reuse (and conflict with).
    proposals: Vec<Proposal>,
}

impl Fuzz {
    fn view_near(&mut self, current: u64) -> u64 {
        current.saturating_sub(3) + self.rng.gen_range(0..8)
    }

    fn proposal(&mut self, current: u64) -> Proposal {
        if !self.proposals.is_empty() && self.rng.gen_bool(0.6) {
            return self.proposals[self.rng.gen_range(0..self.proposals.len())];
        }
        let view = self.view_near(current).max(1);
        let parent = self.rng.gen_range(0..view);
        let proposal = Proposal {
            view,
            parent,
            height: self.rng.gen_range(1..=view),
            payload: Hash::digest(&self.rng.r#gen::<[u8; 4]>()),
        };
        self.proposals.push(proposal);
        proposal
    }

    /// A random input for the honest validator, from Byzantine validator `1..=3`.
    fn input(&mut self, current: u64) -> Input<Simplex<Digests, MemoryJournal>> {
        let signer = self.rng.gen_range(1..4);
        let from = self.keys[signer].peer_id();
        let key = self.keys[signer].clone();
        let msg = match self.rng.gen_range(0..10) {
            0..=2 => {
                let proposal = self.proposal(current);
                let vote = proposal.sign_notarize(&key, &self.chain);
                Message::Notarize { proposal, vote }
            }
            3 => {
                let view = self.view_near(current);
                let vote = sign_nullify(&key, &self.chain, view);
                Message::Nullify { view, vote }
            }
            4 | 5 => {
                let proposal = self.proposal(current);
                let vote = proposal.sign_finalize(&key, &self.chain);
                Message::Finalize { proposal, vote }
            }
            6 => {
                let proposal = self.proposal(current);
                let votes: Vec<_> = self.keys[1..]
                    .iter()
                    .map(|k| proposal.sign_notarize(k, &self.chain))
                    .collect();
                Message::Notarization(Notarization {
                    proposal,
                    votes: votes.try_into().unwrap(),
                })
            }
            7 => {
                let view = self.view_near(current);
                let votes: Vec<_> = self.keys[1..]
                    .iter()
                    .map(|k| sign_nullify(k, &self.chain, view))
                    .collect();
                Message::Nullification(Nullification {
                    view,
                    votes: votes.try_into().unwrap(),
                })
            }
            8 => {
                let proposal = self.proposal(current);
                let votes: Vec<_> = self.keys[1..]
                    .iter()
                    .map(|k| proposal.sign_finalize(k, &self.chain))
                    .collect();
                Message::Finalization(Finalization {
                    proposal,
                    votes: votes.try_into().unwrap(),
                })
            }
            _ => {
                // A vote signed by someone else (forged for `from`), or a backfill request.
                if self.rng.gen_bool(0.5) {
                    let proposal = self.proposal(current);
                    let mut vote = proposal.sign_notarize(&self.keys[0], &self.chain);
                    vote.validator = from;
                    Message::Notarize { proposal, vote }
                } else {
                    let views: Vec<u64> = (0..4).map(|_| self.view_near(current)).collect();
                    Message::Backfill(views.try_into().unwrap())
                }
            }
        };
        match self.rng.gen_range(0..40) {
            0 => Input::Timer(Timer::Leader(self.view_near(current))),
            1 => Input::Timer(Timer::Notarization(self.view_near(current))),
            2 => Input::Timer(Timer::Retry(self.view_near(current))),
            3 => Input::PeerDown(from),
            4 => Input::PeerUp(from),
            _ => Input::Message { from, msg },
        }
    }
}

/// The honest validator's own votes, by view.
#[derive(Default)]
struct OwnVotes {
    notarize: HashMap<u64, Proposal>,
    nullify: HashMap<u64, ()>,
    finalize: HashMap<u64, Proposal>,
}

impl OwnVotes {
    fn check(&mut self, msg: &Message, seed: u64) {
        match msg {
            Message::Notarize { proposal, .. } => {
                let first = *self.notarize.entry(proposal.view).or_insert(*proposal);
                assert_eq!(
                    first, *proposal,
                    "seed {seed}: two notarize votes in view {}",
                    proposal.view
                );
            }
            Message::Nullify { view, .. } => {
                assert!(
                    !self.finalize.contains_key(view),
                    "seed {seed}: nullify after finalize in {view}"
                );
                self.nullify.insert(*view, ());
            }
            Message::Finalize { proposal, .. } => {
                let view = proposal.view;
                assert!(
                    !self.nullify.contains_key(&view),
                    "seed {seed}: finalize after nullify in {view}"
                );
                let first = *self.finalize.entry(view).or_insert(*proposal);
                assert_eq!(first, *proposal, "seed {seed}: two finalize votes in view {view}");
            }
            _ => {}
        }
    }
}

#[test]
fn an_honest_validator_never_contradicts_itself_whatever_the_others_send() {
    let mut finalized_somewhere = 0;
    for seed in 0..SEEDS {
        let keys: Vec<Keypair> = (0..4).map(|i| Keypair::from_seed([i as u8 + 1; 32])).collect();
        let chain = Hash::digest(b"fuzz genesis");
        let set = ValidatorSet::new(keys.iter().map(Keypair::peer_id).collect()).unwrap();
        let config = BftConfig::new(set, chain);
        let me = keys[0].clone();
        let mut engine = Simplex::new(
            config,
            me.clone(),
            Digests::new(me.peer_id()),
            MemoryJournal::new(),
        );
        let mut fuzz = Fuzz {
            rng: ChaCha8Rng::seed_from_u64(seed),
            keys: keys.clone(),
            chain,
            proposals: Vec::new(),
        };
        let mut own = OwnVotes::default();
        let mut height = 0;
        let mut now = Instant::ZERO;
        let mut out = Vec::new();
        let peers: Vec<PeerId> = keys[1..].iter().map(Keypair::peer_id).collect();
        for peer in &peers {
            engine.handle(now, Input::PeerUp(*peer), &mut out);
        }
        engine.handle(now, Input::Command(Command::Start), &mut out);
        for _ in 0..STEPS {
            for output in out.drain(..) {
                match output {
                    Output::Send { msg, .. } => own.check(&msg, seed),
                    Output::Emit(Event::Finalized { proposal, .. }) => {
                        assert_eq!(proposal.height, height + 1, "seed {seed}: heights in order");
                        height = proposal.height;
                    }
                    _ => {}
                }
            }
            now += Duration::from_millis(fuzz.rng.gen_range(0..50));
            let input = fuzz.input(engine.view());
            engine.handle(now, input, &mut out);
        }
        if height > 0 {
            finalized_somewhere += 1;
        }
    }
    // The inputs reach deep states: in many runs the Byzantine quorum drove the honest one to finality.
    assert!(
        finalized_somewhere > SEEDS / 10,
        "{finalized_somewhere} runs finalised anything"
    );
}

#[test]
fn a_finalization_re_pointed_at_another_parent_is_refused_not_followed() {
    // The votes sign the parent: changing it breaks every signature, so the sender is punished and
    // the engine neither halts nor finalises anything.
    let keys: Vec<Keypair> = (0..4).map(|i| Keypair::from_seed([i as u8 + 1; 32])).collect();
    let chain = Hash::digest(b"fuzz genesis");
    let set = ValidatorSet::new(keys.iter().map(Keypair::peer_id).collect()).unwrap();
    let mut engine = Simplex::new(
        BftConfig::new(set, chain),
        keys[0].clone(),
        Digests::new(keys[0].peer_id()),
        MemoryJournal::new(),
    );
    let now = Instant::ZERO;
    let mut out = Vec::new();
    for key in &keys[1..] {
        engine.handle(now, Input::PeerUp(key.peer_id()), &mut out);
    }
    engine.handle(now, Input::Command(Command::Start), &mut out);
    let real = Proposal {
        view: 3,
        parent: 2,
        height: 3,
        payload: Hash::digest(b"x"),
    };
    let votes: Vec<_> = keys[1..].iter().map(|k| real.sign_finalize(k, &chain)).collect();
    let forged = Finalization {
        proposal: Proposal {
            parent: 0,
            height: 1,
            ..real
        },
        votes: votes.try_into().unwrap(),
    };
    out.clear();
    let from = keys[1].peer_id();
    engine.handle(
        now,
        Input::Message {
            from,
            msg: Message::Finalization(forged),
        },
        &mut out,
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Disconnect(p) if *p == from)),
        "{out:?}"
    );
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Emit(Event::Finalized { .. } | Event::Halted { .. }))),
        "{out:?}"
    );
    assert_eq!(engine.finalized().height, 0);
}
