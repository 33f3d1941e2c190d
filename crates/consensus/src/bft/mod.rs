//! # Simplex: BFT consensus with finality in three message delays
//!
//! [`Simplex`] is a Byzantine fault tolerant engine for a fixed, known set of `n` validators of which at
//! most `f < n/3` are faulty. It follows **Simplex consensus** (B. Y. Chan and R. Pass, *Simplex
//! Consensus: A Simple and Fast Consensus Protocol*, TCC 2023), in the form commonware ships as
//! `consensus::simplex` (a proposal names its parent's view, so skipped views need no dummy blocks).
//! We chose it over Tendermint and HotStuff-2 because it finalises in three message delays in the common
//! case (HotStuff-2: five; Tendermint: three, but with a locking rule and a view change that waits for
//! the maximum delay), and because its view change is one message: a vote to skip the view.
//!
//! ## The model
//!
//! Time is cut into **views** 1, 2, 3, …; the leader of view `v` is validator `v mod n`
//! ([`ValidatorSet::leader`]). In each view:
//!
//! 1. The leader **proposes** a payload (a block id) extending a *certified* parent: the genesis block, or
//!    a proposal notarized in an earlier view `p`, with every view between `p` and `v` nullified. Its own
//!    notarize vote carries the proposal ([`Message::Notarize`]).
//! 2. Each validator that has the parent's certificate, the nullifications between, and the
//!    application's [`Verdict::Valid`](crate::Verdict::Valid) sends everyone a **notarize** vote for the
//!    first proposal it saw from the leader.
//! 3. More than `2n/3` notarize votes for one proposal form a [`Notarization`]. A validator that sees one
//!    sends everyone a **finalize** vote for it, unless it voted to skip the view, and enters `v + 1`.
//! 4. More than `2n/3` finalize votes form a [`Finalization`]: the proposal and every ancestor are
//!    final ([`Event::Finalized`], in height order). A finalization is a
//!    [`Certificate`](crate::Certificate) ([`Finalization::certificate`]), the proof
//!    [`Finality`](crate::Finality) carries.
//! 5. If the leader's proposal does not arrive within [`BftConfig::leader_timeout`], or the view is not
//!    notarized within [`BftConfig::notarization_timeout`], a validator votes to **nullify** (skip) the
//!    view. More than `2n/3` nullify votes form a [`Nullification`], and everyone moves on.
//!
//! A healthy view thus costs two message delays (proposal, notarize votes) before the next leader can
//! propose, and a block is final one delay later: three message delays from proposal to finality.
//!
//! **Why it is safe.** Two quorums of more than `2n/3` share more than `n/3` validators, hence an honest
//! one. An honest validator notarizes one proposal per view, so two proposals cannot both be notarized
//! in a view. It sends a finalize vote only if it did not vote to skip the view, and never votes to skip
//! a view it has left; so if a proposal is finalised in view `v`, `v` cannot be nullified, and every
//! later proposal's ancestry (notarized parent, nullified views in between) must pass through it.
//!
//! ## What the engine adds to the paper
//!
//! - **Evidence.** Two contradicting votes by one validator (two notarize or two finalize votes in one
//!   view for different proposals, or a nullify and a finalize vote in one view) become an [`Evidence`]
//!   that anyone can check ([`Evidence::verify`]), reported as
//!   [`Fault::Equivocation`](crate::Fault::Equivocation) in [`Event::Fault`]. A bad signature or
//!   certificate is [`Fault::BadVote`](crate::Fault::BadVote) and costs the sender its connection.
//! - **A durable last vote.** Before any vote leaves, the engine records it in its [`Journal`]
//!   ([`FileJournal`]: one file replaced atomically); a validator restarted after a crash resumes in that
//!   view with those votes, so it never votes twice in one view. If the journal fails, the engine halts.
//!   The record also keeps the run of nullified views below the vote ([`SkippedRun`]), whose
//!   certificates every validator prunes after the history: restarted, a validator still votes on the
//!   run's parent.
//! - **Catching up.** A validator that sees a vote for a view it has left answers with the view's
//!   certificate; one stuck in a view sends its nullify vote and the certificate that let it enter the
//!   view again every [`BftConfig::retry`]; one that lacks a proposal's ancestry or a finalization's
//!   chain asks for it ([`Message::Backfill`]). Answers are rate-limited per peer.
//! - **Faulty validators** for tests and the simulator ([`mocks`]): [`mocks::Byzantine`] wraps honest
//!   engines and equivocates as leader, sends conflicting votes, goes silent, or runs as Twins
//!   ([`mocks::Misbehaviour`]).
//! - **Bounds.** Votes count only from their signer, for views from the last final one to
//!   [`BftConfig::max_views_ahead`] ahead; certificates are kept for [`BftConfig::history_views`] views
//!   (a longer run of nullified views is kept as a range, so the chain can go on after it);
//!   a message is at most [`Message::MAX_SIZE`] bytes.
//!
//! ## Example: four validators in a loop
//!
//! Any driver works (the simulator, the node runtime); here messages go round a queue by hand.
//!
//! ```
//! use std::collections::VecDeque;
//! use meshwork_consensus::bft::{
//!     Application, BftConfig, Command, Event, MemoryJournal, Proposal, Simplex, ValidatorSet,
//! };
//! use meshwork_consensus::Verdict;
//! use meshwork_identity::{Hash, Keypair};
//! use meshwork_wire::{Input, Instant, Output, Protocol};
//!
//! /// Proposes the hash of the view; accepts anything.
//! struct Blocks;
//! impl Application for Blocks {
//!     fn propose(&mut self, parent: &Proposal, view: u64) -> Option<Hash> {
//!         Some(Hash::digest_parts(&[parent.payload.as_bytes(), &view.to_be_bytes()]))
//!     }
//!     fn verify(&mut self, _parent: &Proposal, _proposal: &Proposal) -> Verdict {
//!         Verdict::Valid
//!     }
//! }
//!
//! let keys: Vec<Keypair> = (1..=4).map(|i| Keypair::from_seed([i; 32])).collect();
//! let peers: Vec<_> = keys.iter().map(Keypair::peer_id).collect();
//! let config = BftConfig::new(ValidatorSet::new(peers.clone())?, Hash::digest(b"genesis"));
//! let mut nodes: Vec<_> = keys
//!     .iter()
//!     .map(|key| Simplex::new(config.clone(), key.clone(), Blocks, MemoryJournal::new()))
//!     .collect();
//!
//! // Connect everyone, start everyone; then deliver messages until node 0 has three final blocks.
//! let now = Instant::ZERO;
//! let mut queue = VecDeque::new();
//! let mut finals: Vec<Vec<Proposal>> = vec![Vec::new(); 4];
//! for i in 0..4 {
//!     let mut out = Vec::new();
//!     for peer in peers.iter().filter(|p| **p != peers[i]) {
//!         nodes[i].handle(now, Input::PeerUp(*peer), &mut out);
//!     }
//!     nodes[i].handle(now, Input::Command(Command::Start), &mut out);
//!     queue.extend(out.into_iter().map(|o| (i, o)));
//! }
//! for _ in 0..10_000 {
//!     let Some((i, output)) = queue.pop_front() else { break };
//!     match output {
//!         Output::Send { to, msg } => {
//!             let j = peers.iter().position(|p| *p == to).unwrap();
//!             let mut out = Vec::new();
//!             nodes[j].handle(now, Input::Message { from: peers[i], msg }, &mut out);
//!             queue.extend(out.into_iter().map(|o| (j, o)));
//!         }
//!         Output::Emit(Event::Finalized { proposal, .. }) => finals[i].push(proposal),
//!         _ => {} // timers never fire here: nobody is slow
//!     }
//!     if finals[0].len() >= 3 {
//!         break;
//!     }
//! }
//! assert_eq!(finals[0].iter().map(|p| p.height).collect::<Vec<_>>(), [1, 2, 3]);
//! // Everyone who finalised a height finalised the same block.
//! for node in &finals[1..] {
//!     assert!(node.iter().zip(&finals[0]).all(|(a, b)| a == b));
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backfill;
mod config;
mod engine;
mod evidence;
mod finality;
mod journal;
mod message;
pub mod mocks;
mod receive;
mod skip;
mod view;
mod votes;

pub use backfill::BACKFILL_ANSWER_BYTES;
pub use config::{BftConfig, ValidatorSet};
pub use engine::{Application, Command, Event, Simplex, Timer};
pub use evidence::Evidence;
pub use journal::{AnyJournal, FileJournal, Journal, JournalError, LastVote, MemoryJournal, SkippedRun};
pub use message::{
    Finalization, MAX_BACKFILL_VIEWS, Message, NOTARIZE_VOTE, NULLIFY_VOTE, Notarization, Nullification,
    Proposal, Votes, nullify_message, sign_nullify,
};
