//! A run of skipped views longer than the certificate history: the chain must go on after it.
//!
//! A leader builds on the highest certified proposal with every view since nullified, and a validator
//! votes for a proposal only once it holds those nullifications. Certificates older than
//! [`BftConfig::history_views`] are forgotten; when the run of nullified views is longer than that (the
//! network was slower than the timeouts for a while, as one of ~17 minutes at 1 s a view is, for the
//! default 1,024), the run must still be known to be nullified, or no leader could propose again and
//! no validator vote.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should stop loudly

use meshwork_consensus::bft::mocks::Digests;
use meshwork_consensus::bft::{
    AnyJournal, BftConfig, Command, Event, FileJournal, Journal, MemoryJournal, Message, Notarization,
    Nullification, Proposal, Simplex, Timer, ValidatorSet, sign_nullify,
};
use meshwork_identity::{Hash, Keypair, PeerId};
use meshwork_sim::node_keypair;
use meshwork_wire::{Input, Instant, Output, Protocol};

type Engine = Simplex<Digests, AnyJournal>;

const HISTORY: u64 = 16;

fn keys() -> Vec<Keypair> {
    (0..4).map(|i| node_keypair(3, i)).collect()
}

fn config() -> BftConfig {
    let set = ValidatorSet::new(keys().iter().map(Keypair::peer_id).collect()).unwrap();
    let mut config = BftConfig::new(set, Hash::digest(b"genesis"));
    config.history_views = HISTORY;
    config
}

/// Validator `me`, started and connected to the others.
fn engine(me: usize) -> Engine {
    engine_on(me, AnyJournal::Memory(MemoryJournal::new()))
}

/// Validator `me` on `journal`, started (resumed from it) and connected to the others.
fn engine_on(me: usize, journal: AnyJournal) -> Engine {
    let keys = keys();
    let mut engine = Simplex::new(
        config(),
        keys[me].clone(),
        Digests::new(keys[me].peer_id()),
        journal,
    );
    let mut out = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        if i != me {
            engine.handle(Instant::ZERO, Input::PeerUp(key.peer_id()), &mut out);
        }
    }
    engine.handle(Instant::ZERO, Input::Command(Command::Start), &mut out);
    engine
}

fn receive(engine: &mut Engine, from: PeerId, msg: Message) -> Vec<Output<Engine>> {
    let mut out = Vec::new();
    engine.handle(Instant::ZERO, Input::Message { from, msg }, &mut out);
    out
}

/// The certificate of view `view`'s nullification, signed by validators 1 to 3.
fn nullification(view: u64) -> Message {
    let genesis = config().genesis;
    let votes: Vec<_> = keys()[1..]
        .iter()
        .map(|k| sign_nullify(k, &genesis, view))
        .collect();
    Message::Nullification(Nullification {
        view,
        votes: votes.try_into().unwrap(),
    })
}

/// A notarized (not final) proposal at view 1: the one every later leader builds on.
fn notarized_first_view(engine: &mut Engine) -> Proposal {
    let genesis = config().genesis;
    let proposal = Proposal {
        view: 1,
        parent: 0,
        height: 1,
        payload: Hash::digest(b"block 1"),
    };
    let votes: Vec<_> = keys()[1..]
        .iter()
        .map(|k| proposal.sign_notarize(k, &genesis))
        .collect();
    let cert = Notarization {
        proposal,
        votes: votes.try_into().unwrap(),
    };
    receive(engine, keys()[1].peer_id(), Message::Notarization(cert));
    assert_eq!(engine.view(), 2);
    proposal
}

/// Nullifies views from the engine's current one until it enters one past `at_least` that `leader`
/// leads; returns what entering that view produced.
fn skip_until_led_by(engine: &mut Engine, leader: PeerId, at_least: u64) -> Vec<Output<Engine>> {
    let validators = config().validators;
    // Bounded: a leader comes round every four views.
    for _ in 0..at_least + 8 {
        let view = engine.view();
        let out = receive(engine, keys()[1].peer_id(), nullification(view));
        let entered = engine.view();
        if entered > at_least && validators.leader(entered) == leader {
            return out;
        }
    }
    panic!("never entered a view led by {leader} past {at_least}");
}

fn proposed(out: &[Output<Engine>]) -> Option<Proposal> {
    out.iter().find_map(|o| match o {
        Output::Emit(Event::Proposed(p)) => Some(*p),
        _ => None,
    })
}

/// `leader` proposes, in the engine's current view, a block on `anchor`: whether validator 0 voted
/// for it, and the backfill requests it sent instead.
fn offer_on(engine: &mut Engine, leader: &Keypair, anchor: &Proposal) -> (bool, Vec<Message>) {
    let proposal = Proposal {
        view: engine.view(),
        parent: anchor.view,
        height: anchor.height + 1,
        payload: Hash::digest(b"block 2"),
    };
    let vote = proposal.sign_notarize(leader, &config().genesis);
    let out = receive(engine, leader.peer_id(), Message::Notarize { proposal, vote });
    let voted = out.iter().any(|o| {
        matches!(o, Output::Send { msg: Message::Notarize { proposal: p, vote }, .. }
            if *p == proposal && vote.validator == keys()[0].peer_id())
    });
    let asked = out
        .into_iter()
        .filter_map(|o| match o {
            Output::Send { msg, .. } if matches!(msg, Message::Backfill { .. }) => Some(msg),
            _ => None,
        })
        .collect();
    (voted, asked)
}

#[test]
fn a_leader_builds_on_the_last_notarized_block_after_more_skipped_views_than_the_history_holds() {
    let me = 0;
    let mut engine = engine(me);
    let anchor = notarized_first_view(&mut engine);
    let out = skip_until_led_by(&mut engine, keys()[me].peer_id(), 3 * HISTORY);
    let proposal = proposed(&out).expect("the leader proposes");
    assert_eq!((proposal.parent, proposal.height), (anchor.view, 2));
}

#[test]
fn a_validator_votes_for_a_proposal_on_the_last_notarized_block_after_more_skipped_views_than_the_history_holds()
 {
    let mut engine = engine(0);
    let anchor = notarized_first_view(&mut engine);
    let leader = keys()[2].clone();
    skip_until_led_by(&mut engine, leader.peer_id(), 3 * HISTORY);
    let (voted, asked) = offer_on(&mut engine, &leader, &anchor);
    assert!(voted, "no notarize vote; backfill asked instead: {asked:?}");
}

#[test]
fn a_skipped_run_broken_by_a_view_never_certified_here_is_not_taken_for_nullified() {
    // The validator jumped over views it holds no certificate for: a proposal on the old block
    // cannot be voted for (those views might have been notarized elsewhere).
    let mut engine = engine(0);
    let anchor = notarized_first_view(&mut engine);
    receive(&mut engine, keys()[1].peer_id(), nullification(2));
    // View 3 is never certified here; the nullification of view 4 moves the validator on.
    receive(&mut engine, keys()[1].peer_id(), nullification(4));
    assert_eq!(engine.view(), 5);
    let leader = keys()[2].clone();
    skip_until_led_by(&mut engine, leader.peer_id(), 3 * HISTORY);
    let (voted, _) = offer_on(&mut engine, &leader, &anchor);
    assert!(!voted);
}

#[test]
fn a_validator_restarted_after_a_run_longer_than_the_history_still_votes_on_the_runs_parent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("votes");
    let mut engine = engine_on(0, AnyJournal::File(FileJournal::new(&path)));
    let anchor = notarized_first_view(&mut engine);
    // Every view times out here too: validator 0 votes to skip each (a journal record each), then
    // sees it nullified.
    for _ in 0..3 * HISTORY {
        let view = engine.view();
        let mut out = Vec::new();
        engine.handle(Instant::ZERO, Input::Timer(Timer::Notarization(view)), &mut out);
        receive(&mut engine, keys()[1].peer_id(), nullification(view));
    }
    let last_vote = FileJournal::new(&path).load().unwrap().unwrap();
    let run = last_vote
        .skipped
        .expect("the record keeps the run below its view");
    assert_eq!((run.parent, run.through), (anchor, last_vote.view - 1));

    // A crash: the certificates held in memory are gone, and every other validator has pruned the
    // run's first views. The restarted validator is sent what the others still hold.
    drop(engine);
    let mut engine = engine_on(0, AnyJournal::File(FileJournal::new(&path)));
    assert_eq!(engine.view(), last_vote.view);
    for view in last_vote.view + 1 - HISTORY..=last_vote.view {
        receive(&mut engine, keys()[1].peer_id(), nullification(view));
    }
    let leader = keys()[2].clone();
    skip_until_led_by(&mut engine, leader.peer_id(), last_vote.view);
    let (voted, asked) = offer_on(&mut engine, &leader, &anchor);
    assert!(voted, "no notarize vote; backfill asked instead: {asked:?}");
}
