//! A validator's last vote survives `SIGKILL` at random moments, and a validator restarted from it
//! never votes twice in one view.
//!
//! The test re-executes its own binary in "child mode" (selected by an environment variable): the child
//! simulates four validators, one of them silent so that a quarter of the views time out, with validator
//! 0 journalling to a file and printing each record once it is durable. The parent kills the child,
//! reads the journal (it must decode), checks that it holds at least the last printed record, and then
//! restarts validator 0 from it and offers it a conflicting proposal and a notarization: it must vote
//! for neither where its journal says it already voted otherwise in that view.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should stop loudly

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use meshwork_consensus::bft::mocks::{Byzantine, Digests, Misbehaviour};
use meshwork_consensus::bft::{
    BftConfig, Command, FileJournal, Journal, JournalError, LastVote, MemoryJournal, Message, Notarization,
    Proposal, Simplex, ValidatorSet,
};
use meshwork_identity::{Hash, Keypair};
use meshwork_sim::{LinkConfig, Sim, SimConfig, node_keypair};
use meshwork_wire::{Input, Instant, Output, Protocol};

const CHILD_ENV: &str = "MESHWORK_BFT_CRASH_CHILD_JOURNAL";
const SEED: u64 = 7;
const KILLS: usize = 20;

/// Validator 0's journal is a file that reports each durable record on stdout; the others' are memory.
enum TestJournal {
    File(FileJournal),
    Memory(MemoryJournal),
}

impl Journal for TestJournal {
    type Error = JournalError;

    fn load(&self) -> Result<Option<LastVote>, JournalError> {
        match self {
            Self::File(file) => file.load(),
            Self::Memory(memory) => Ok(memory.load().unwrap_or_default()),
        }
    }

    fn record(&mut self, vote: &LastVote) -> Result<(), JournalError> {
        match self {
            Self::File(file) => {
                file.record(vote)?;
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "{}", encode(vote)).unwrap();
                stdout.flush().unwrap();
                Ok(())
            }
            Self::Memory(memory) => {
                let _ = memory.record(vote);
                Ok(())
            }
        }
    }
}

/// A record as one line: view, then N/-, X/-, F/- for notarize, nullify, finalize.
fn encode(vote: &LastVote) -> String {
    let flag = |on: bool, c: char| if on { c } else { '-' };
    format!(
        "{} {}{}{}",
        vote.view,
        flag(vote.notarize.is_some(), 'N'),
        flag(vote.nullify, 'X'),
        flag(vote.finalize.is_some(), 'F')
    )
}

fn keys() -> Vec<Keypair> {
    (0..4).map(|i| node_keypair(SEED, i)).collect()
}

fn config() -> BftConfig {
    let set = ValidatorSet::new(keys().iter().map(Keypair::peer_id).collect()).unwrap();
    let mut config = BftConfig::new(set, Hash::digest(b"genesis"));
    // Short timeouts: the silent validator's views pass quickly.
    config.leader_timeout = Duration::from_millis(200);
    config.notarization_timeout = Duration::from_millis(400);
    config
}

#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // not in child mode: nothing to do
    };
    let config = config();
    let mut sim = Sim::new(SimConfig::new(SEED).with_link(LinkConfig::constant(Duration::from_millis(5))));
    let nodes = sim
        .add_nodes(4, |init| {
            let key = init.keypair.clone();
            let journal = if init.id.index() == 0 {
                TestJournal::File(FileJournal::new(&path))
            } else {
                TestJournal::Memory(MemoryJournal::new())
            };
            let engine = Simplex::new(config.clone(), key.clone(), Digests::new(key.peer_id()), journal);
            let how = if init.id.index() == 3 {
                Misbehaviour::Silent
            } else {
                Misbehaviour::Honest
            };
            Byzantine::new(engine, None, key, how)
        })
        .unwrap();
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            sim.connect(*a, *b).unwrap();
        }
    }
    for node in &nodes {
        sim.command(*node, Command::Start).unwrap();
    }
    // Until killed (bounded all the same: a few hours of virtual time).
    for _ in 0..1_000_000 {
        let until = sim.now() + Duration::from_millis(100);
        sim.run_until(until, |_, _, _| {});
    }
}

/// Whether `held` (the journal after the kill) records at least `printed` (the last durable record the
/// child reported): the same view with every vote of it, or a later view.
fn covers(held: &LastVote, printed: &str) -> bool {
    let (view, flags) = printed.split_once(' ').unwrap();
    let view: u64 = view.parse().unwrap();
    if held.view != view {
        return held.view > view;
    }
    let flags = flags.as_bytes();
    (flags[0] != b'N' || held.notarize.is_some())
        && (flags[1] != b'X' || held.nullify)
        && (flags[2] != b'F' || held.finalize.is_some())
}

/// Restarts validator 0 from `path` and offers it, in its journalled view, a proposal other than the
/// one it voted for and a notarization: returns the votes it sent.
fn votes_after_restart(path: &Path, held: &LastVote) -> Vec<Message> {
    let keys = keys();
    let config = config();
    let mut engine = Simplex::new(
        config.clone(),
        keys[0].clone(),
        Digests::new(keys[0].peer_id()),
        FileJournal::new(path),
    );
    let now = Instant::ZERO;
    let mut out = Vec::new();
    for key in &keys[1..] {
        engine.handle(now, Input::PeerUp(key.peer_id()), &mut out);
    }
    engine.handle(now, Input::Command(Command::Start), &mut out);
    // It resumes in its journalled view, or the next one if it had voted to finalize (it had seen the
    // view's notarization and moved on).
    let resumed = if held.finalize.is_some() {
        held.view + 1
    } else {
        held.view.max(1)
    };
    assert_eq!(engine.view(), resumed, "it resumes where its journal says");
    out.clear();
    let view = held.view;
    let leader = config.validators.leader(view);
    let leader_key = keys.iter().find(|k| k.peer_id() == leader).unwrap();
    // A proposal on the genesis block is out of the question for an old view, so offer one whose
    // ancestry the restarted node cannot check: it must not vote for it either way.
    let other = Proposal {
        view,
        parent: view - 1,
        height: view,
        payload: Hash::digest(b"a proposal it never saw"),
    };
    if leader != keys[0].peer_id() {
        let msg = Message::Notarize {
            proposal: other,
            vote: other.sign_notarize(leader_key, &config.genesis),
        };
        engine.handle(now, Input::Message { from: leader, msg }, &mut out);
    }
    // A notarization of it, signed by the three others.
    let votes: Vec<_> = keys[1..]
        .iter()
        .map(|k| other.sign_notarize(k, &config.genesis))
        .collect();
    let cert = Notarization {
        proposal: other,
        votes: votes.try_into().unwrap(),
    };
    engine.handle(
        now,
        Input::Message {
            from: keys[1].peer_id(),
            msg: Message::Notarization(cert),
        },
        &mut out,
    );
    out.into_iter()
        .filter_map(|o| match o {
            Output::Send { msg, .. } => Some(msg),
            _ => None,
        })
        .filter(|m| {
            matches!(
                m,
                Message::Notarize { .. } | Message::Finalize { .. } | Message::Nullify { .. }
            )
        })
        .collect()
}

#[test]
fn the_last_vote_survives_sigkill_and_a_restarted_validator_never_votes_twice() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut state = 0x5eed_u64;
    let mut views = Vec::new();
    for kill in 0..KILLS {
        let path = dir.path().join(format!("votes-{kill}"));
        let mut child = Process::new(&exe)
            .args(["--exact", "crash_child", "--test-threads=1", "--nocapture"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines, received) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        // splitmix64: a reproducible "random" moment between 50 and 450 ms.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        std::thread::sleep(Duration::from_millis(50 + (z ^ (z >> 31)) % 400));
        child.kill().unwrap(); // SIGKILL on Unix
        assert!(!child.wait().unwrap().success(), "the child runs until killed");
        reader.join().unwrap();
        let printed: Vec<String> = received.try_iter().collect();
        let Some(last) = printed.last() else {
            continue; // killed before its first vote
        };
        let held = FileJournal::new(&path)
            .load()
            .expect("the journal decodes after a kill")
            .unwrap();
        assert!(
            covers(&held, last),
            "journal {held:?} lost the printed record {last}"
        );
        views.push(held.view);
        // Votes in later views (the notarization moves it on) are new; in its journalled view it may
        // only add a finalize vote, and only if it neither skipped the view nor finalized already.
        let votes = votes_after_restart(&path, &held);
        let in_view: Vec<&Message> = votes
            .iter()
            .filter(|m| match m {
                Message::Notarize { proposal, .. } | Message::Finalize { proposal, .. } => {
                    proposal.view == held.view
                }
                Message::Nullify { view, .. } => *view == held.view,
                _ => false,
            })
            .collect();
        let may_finalize = held.notarize.is_some() && !held.nullify && held.finalize.is_none();
        assert!(
            in_view
                .iter()
                .all(|m| may_finalize && matches!(m, Message::Finalize { .. })),
            "voted again in view {} after {held:?}: {in_view:?}",
            held.view
        );
    }
    eprintln!("journalled views at each kill: {views:?}");
    assert!(
        views.len() >= KILLS / 2,
        "most kills landed after the first vote: {views:?}"
    );
    assert!(
        views.iter().any(|v| *v > 10),
        "the child made progress: {views:?}"
    );
}
