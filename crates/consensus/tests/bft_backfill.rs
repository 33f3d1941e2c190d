//! A backfill answer is bounded in bytes: a hundred validators' certificates for 32 views, each view
//! both notarized and nullified, are more than one answer holds; the answer keeps within
//! `BACKFILL_ANSWER_BYTES` and still carries a certificate for every view asked.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should stop loudly

use std::collections::HashSet;

use meshwork_consensus::bft::mocks::Digests;
use meshwork_consensus::bft::{
    BACKFILL_ANSWER_BYTES, BftConfig, Command, MemoryJournal, Message, Notarization, Nullification, Proposal,
    Simplex, ValidatorSet, sign_nullify,
};
use meshwork_identity::{Hash, Keypair, PeerId};
use meshwork_sim::node_keypair;
use meshwork_wire::{BoundedVec, Input, Instant, Output, Protocol};

type Engine = Simplex<Digests, MemoryJournal>;

const VALIDATORS: u32 = 100;
const VIEWS: u64 = 32;

fn keys() -> Vec<Keypair> {
    (0..VALIDATORS).map(|i| node_keypair(5, i)).collect()
}

fn receive(engine: &mut Engine, from: PeerId, msg: Message) -> Vec<Output<Engine>> {
    let mut out = Vec::new();
    engine.handle(Instant::ZERO, Input::Message { from, msg }, &mut out);
    out
}

#[test]
fn a_backfill_answer_keeps_within_its_byte_budget_and_serves_every_view() {
    let keys = keys();
    let set = ValidatorSet::new(keys.iter().map(Keypair::peer_id).collect()).unwrap();
    let quorum = set.quorum();
    let config = BftConfig::new(set, Hash::digest(b"genesis"));
    let genesis = config.genesis;
    let mut engine = Simplex::new(
        config,
        keys[0].clone(),
        Digests::new(keys[0].peer_id()),
        MemoryJournal::new(),
    );
    let mut out = Vec::new();
    for key in &keys[1..] {
        engine.handle(Instant::ZERO, Input::PeerUp(key.peer_id()), &mut out);
    }
    engine.handle(Instant::ZERO, Input::Command(Command::Start), &mut out);
    // Every view is notarized and nullified, each certificate signed by a quorum.
    let signers = &keys[1..=quorum];
    let sender = keys[1].peer_id();
    for view in 1..=VIEWS {
        let proposal = Proposal {
            view,
            parent: view - 1,
            height: view,
            payload: Hash::digest(&view.to_be_bytes()),
        };
        let votes: Vec<_> = signers
            .iter()
            .map(|k| proposal.sign_notarize(k, &genesis))
            .collect();
        let votes = votes.try_into().unwrap();
        receive(
            &mut engine,
            sender,
            Message::Notarization(Notarization { proposal, votes }),
        );
        let votes: Vec<_> = signers.iter().map(|k| sign_nullify(k, &genesis, view)).collect();
        let votes = votes.try_into().unwrap();
        receive(
            &mut engine,
            sender,
            Message::Nullification(Nullification { view, votes }),
        );
    }
    assert_eq!(engine.view(), VIEWS + 1);
    // Validator 5 asks for all of them.
    let asked: BoundedVec<u64, 32> = (1..=VIEWS).collect::<Vec<_>>().try_into().unwrap();
    let out = receive(&mut engine, keys[5].peer_id(), Message::Backfill(asked));
    let answer: Vec<&Message> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send { to, msg } if *to == keys[5].peer_id() => Some(msg),
            _ => None,
        })
        .collect();
    let bytes: usize = answer
        .iter()
        .map(|m| meshwork_wire::encoded_len(m).unwrap())
        .sum();
    let held = 2 * VIEWS as usize;
    assert!(answer.len() < held, "all {held} certificates sent, {bytes} bytes");
    assert!(bytes <= BACKFILL_ANSWER_BYTES, "{bytes} bytes");
    let served: HashSet<u64> = answer
        .iter()
        .map(|m| match m {
            Message::Notarization(cert) => cert.proposal.view,
            Message::Nullification(cert) => cert.view,
            Message::Finalization(cert) => cert.proposal.view,
            other => panic!("{other:?} in a backfill answer"),
        })
        .collect();
    assert_eq!(served.len(), VIEWS as usize, "every view gets a certificate");
}
