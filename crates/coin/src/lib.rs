//! # meshwork-coin: the coin node's logic as one pure protocol
//!
//! [`CoinApp`] is what a coin node *does*, written as a single [`Protocol`](meshwork_wire::Protocol)
//! that owns three children and the policy between them (ARCHITECTURE.md, "the app is a protocol"):
//!
//! | child | channel | what for |
//! |---|---|---|
//! | [`Gossip`](meshwork_gossip::Gossip) | `/meshwork/gossip/4` | transaction relay, validated before forwarding |
//! | [`ChainSync`](meshwork_consensus::ChainSync) | `/meshwork/sync/1` | headers-first sync, and the one block relay path |
//! | [`Kademlia`](meshwork_kad::Kademlia) | `/meshwork/kad/2` | peer discovery |
//! | [`Simplex`](meshwork_consensus::bft::Simplex) | `/meshwork/simplex/1` | BFT consensus, on a certified chain's validators ([`bft`]) |
//!
//! It is composed with `meshwork_wire::compose`: a message arrives on a child's channel and goes to that
//! child; what the child emits comes back to the app **in the same step**. So when gossip asks whether a
//! message is valid, the app hands gossip the verdict before `handle` returns, with one exception (the
//! [`relay`] module): under load, a relayed transaction waits up to [`AppConfig::validation_delay`]
//! (2 ms) for others, so that their signatures are verified in one batch at half the cost or less, and
//! the app's own timer ends the wait (one that comes alone is judged at once). No queue but that one,
//! bounded by [`AppConfig::validation_batch`], sits between them, and the app gives every verdict it is
//! asked for (gossip may still forget a message it waits on, if its cache overflows meanwhile). The app
//! talks to its children through their capabilities: [`Broadcast`](meshwork_gossip::Broadcast) to
//! publish and give verdicts, [`PeerRouting`](meshwork_kad::PeerRouting) to bootstrap and find
//! candidates.
//!
//! Blocks travel by sync alone (`NewTip`, then the body on request), so a block crosses each link once;
//! the body of a new block comes as a compact block that the receiver rebuilds from the transactions
//! gossip already put in its mempool (`meshwork_consensus::sync`, after BIP152).
//! Timers drive the rest: discovery tops up connections every [`AppConfig::discovery_interval`], and
//! local transactions are published again every [`AppConfig::rebroadcast_interval`] until mined.
//! Local transactions wait while the node's links are full: a node whose send queues to most of its
//! gossip neighbours dropped data within [`AppConfig::links_full_hold`] refuses them
//! ([`SubmitError::LinksFull`], to be submitted again shortly; one per hold still goes through), so
//! that its wallets cannot crowd out what it relays for others.
//!
//! The app reads no clock and opens no socket. The node runtime (`examples/coin-node`) runs it over QUIC
//! and adds the disk (redb), mining threads and the RPC server; `meshsim coin` runs the very same type
//! at a thousand nodes in virtual time.
//!
//! ## Example: two nodes, a payment, driven by hand
//!
//! ```
//! use meshwork_coin::{AppConfig, CoinApp, CoinCommand, CoinTimer, Submitted};
//! use meshwork_kad::{Address, PeerInfo};
//! use meshwork_consensus::{Chain, ChainConfig, genesis_block, genesis_key};
//! use meshwork_identity::Keypair;
//! use meshwork_ledger::{Amount, MemoryStore, testkit};
//! use meshwork_wire::{Input, Instant, Output, Protocol};
//!
//! let config = ChainConfig::regtest();
//! let genesis = genesis_block(&config);
//! let now = Instant::from_duration(std::time::Duration::from_secs(genesis.header.timestamp + 60));
//! let node = |seed: u8| {
//!     let secs = now.as_duration().as_secs();
//!     let chain = Chain::open(MemoryStore::default(), config.clone(), genesis.clone(), secs).unwrap();
//!     CoinApp::new(Keypair::from_seed([seed; 32]), chain, AppConfig::default(), seed.into())
//! };
//! let (mut a, mut b) = (node(1), node(2));
//! let (pa, pb) = (a.gossip().peer_id(), b.gossip().peer_id());
//!
//! // Connect them, and a joins the network through b; deliver everything until they are quiet.
//! let contact = PeerInfo { id: pb, addr: Address::V4 { ip: [127, 0, 0, 1], port: 7400 } };
//! let join = Input::Command(CoinCommand::Join(vec![contact]));
//! let mut inbox = vec![(pa, join), (pa, Input::PeerUp(pb)), (pb, Input::PeerUp(pa))];
//! let mut step = |inbox: &mut Vec<_>, a: &mut CoinApp<_>, b: &mut CoinApp<_>| {
//!     for _ in 0..1000 {
//!         let Some((to, input)) = inbox.pop() else { return };
//!         let mut out = Vec::new();
//!         let (me, app) = if to == pa { (pa, &mut *a) } else { (pb, &mut *b) };
//!         app.handle(now, input, &mut out);
//!         for output in out {
//!             match output {
//!                 Output::Send { to, msg } => inbox.insert(0, (to, Input::Message { from: me, msg })),
//!                 // Under load a relayed transaction waits for others to batch with: end it now.
//!                 Output::Schedule { timer: CoinTimer::Validate, .. } => {
//!                     inbox.insert(0, (me, Input::Timer(CoinTimer::Validate)))
//!                 }
//!                 _ => {}
//!             }
//!         }
//!     }
//! };
//! step(&mut inbox, &mut a, &mut b);
//! assert!(a.gossip().active_view().contains(&pb) && b.gossip().active_view().contains(&pa));
//!
//! // The genesis faucet pays b; a submits it, relays it, and b's mempool checks it before forwarding.
//! let faucet = testkit::outpoints(&genesis.txs[0])[0];
//! let held = genesis.txs[0].outputs()[0].amount;
//! let tx = testkit::pay(&[(faucet, held, &genesis_key())], &Keypair::from_seed([2; 32]), Amount::from_coins(1));
//! let mut out = Vec::new();
//! assert!(matches!(a.submit_local_tx(now, tx.clone(), &mut out)?, Submitted::Accepted(_)));
//! for output in out {
//!     if let Output::Send { to, msg } = output { inbox.push((to, Input::Message { from: pa, msg })) }
//! }
//! step(&mut inbox, &mut a, &mut b);
//! assert!(b.chain().mempool().contains(&meshwork_coin::txid_of(&tx)));
//! assert_eq!(b.relay_stats().accepted, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod app;
pub mod bft;
mod config;
mod discovery;
pub mod relay;
mod types;

pub use app::CoinApp;
pub use bft::BftSetup;
pub use config::AppConfig;
pub use relay::{RelayFilter, RelayStats, SubmitError, Submitted, txid_of};
pub use types::{CoinCommand, CoinEvent, CoinMessage, CoinTimer, final_topic, tx_topic};
