//! # meshwork-sim: thousands of protocol nodes in one process, in virtual time
//!
//! This crate drives any [`meshwork_wire::Protocol`] — the same pure state machines the tokio node runtime
//! drives — through a deterministic discrete-event simulation. It has no tokio, reads no clock and draws
//! from no global RNG: one seed gives one run, bit for bit, and the [trace hash](Sim::trace_hash) proves it.
//! The shape follows iroh-gossip's `proto/sim.rs` and the deterministic runtime of commonware.
//!
//! ## The model
//!
//! - **Virtual time** is a [`meshwork_wire::Instant`] that jumps from one event to the next. Events sit in a
//!   binary heap ordered by `(time, sequence number)`, so two events at the same instant run in the order
//!   they were scheduled and a run never depends on heap internals.
//! - **Nodes** are addressed by index ([`NodeId`]); each has a [`PeerId`](meshwork_wire::PeerId) from
//!   [`Keypair::from_seed`](meshwork_identity::Keypair::from_seed) with a seed derived from the run seed, and
//!   a protocol state built by the experiment ([`Sim::add_node`]).
//! - **Protocol outputs** become events: `Send` is delivered as `Input::Message` after the link's delay
//!   (only over a connection: a send to an unconnected peer is dropped and counted), `Schedule` fires
//!   `Input::Timer`, `Dial` connects after one round trip (`PeerUp` on both sides, or `PeerDown` to the
//!   dialer on failure), `Disconnect` closes (`PeerDown` to the other side one latency later), and `Emit`
//!   goes to the experiment's callback together with the time and the node. With
//!   [`Sim::set_round_trip_hook`], each `PeerUp` is followed by a command carrying the link's mean round
//!   trip, as the node runtime follows it with the QUIC handshake's.
//! - **Links** ([`LinkConfig`]): constant, uniform or region-matrix latency ([`RegionMatrix::cloud6`], from
//!   public cloud inter-region RTTs), jitter, random loss, and per-node upload bandwidth, which delays each
//!   message by its encoded size ([`meshwork_wire::encoded_len`]) behind the sender's earlier messages.
//! - **Connections** stay open until a protocol or the experiment closes them, or, with
//!   [`LinkConfig::idle_timeout`], until they carry nothing for that long and neither end protects
//!   them (`Output::Protect`), as the node runtime's connection manager closes them.
//! - **Faults** ([`Control`]): partitions and heals, crashes (a crashed node gets no inputs; events meant
//!   for it are discarded even after a restart) and restarts with a fresh state, [`Churn`], and adversarial
//!   senders ([`Behaviour`]: drop all, drop selected, delay, garbage that fails to decode, rewrite).
//! - **Figures**: [`SimStats`] and [`NodeStats`] count messages and bytes; [`metrics`] turns deliveries into
//!   percentiles, reliability and Relative Message Redundancy.
//!
//! Every run call is bounded: [`Sim::run_until`] stops at a virtual time, [`Sim::run_for`] after a number of
//! events. Per node the simulator keeps about a hundred bytes plus four per connection (twelve with an
//! idle timeout), besides the protocol's own state, so 10,000 nodes and more fit easily.
//!
//! [`flood`] is the reference broadcast (eager push to every neighbour), public so that gossip and other
//! protocols are compared with it; [`topology`] builds the random overlays experiments share.
//!
//! ## Example: flood 200 nodes across a partition, then heal
//!
//! ```
//! use std::time::Duration;
//! use meshwork_sim::flood::{Flood, FloodCommand, FloodEvent};
//! use meshwork_sim::{Control, LinkConfig, NodeId, Sim, SimConfig, topology};
//! use meshwork_wire::Instant;
//!
//! let link = LinkConfig::constant(Duration::from_millis(20)).with_jitter(Duration::from_millis(5));
//! let mut sim = Sim::new(SimConfig::new(42).with_link(link));
//! let nodes = sim.add_nodes(200, |_| Flood::new())?;
//! topology::connect_random_regular(&mut sim, 6)?;
//!
//! // Cut the network in two, and publish on one side.
//! sim.apply_control(Control::Partition(vec![nodes[..100].to_vec()]))?;
//! sim.command(NodeId(0), FloodCommand::publish(1, vec![0; 32])?)?;
//! let mut reached: Vec<NodeId> = Vec::new();
//! sim.run_until(Instant::from_duration(Duration::from_secs(10)), |_, node, _| reached.push(node));
//! assert!(reached.iter().all(|node| node.0 < 100)); // nothing crossed the cut
//!
//! // Heal; a new message reaches everyone.
//! sim.apply_control(Control::Heal)?;
//! sim.command(NodeId(150), FloodCommand::publish(2, vec![0; 32])?)?;
//! let mut count = 0;
//! sim.run_for(1_000_000, |_, _, FloodEvent::Delivered { id, .. }| if id == 2 { count += 1 });
//! assert_eq!(count, 200);
//!
//! // The same seed always gives the same trace.
//! println!("trace {}", sim.trace_hash());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod control;
mod dispatch;
mod engine;
mod error;
mod fast_hash;
mod fault;
pub mod flood;
mod idle;
mod link;
pub mod metrics;
mod node;
mod query;
mod queue;
mod regions;
mod stats;
pub mod topology;
mod trace;

pub use engine::{RestartFactory, RoundTripHook, RunOutcome, Sim, SimConfig, Stop, node_keypair};
pub use error::SimError;
pub use fault::{Behaviour, Churn, Control, Corrupter, DropFilter};
pub use link::{Latency, LinkConfig};
pub use node::{NodeId, NodeInit, NodeStats};
pub use regions::{CLOUD6_NAMES, CLOUD6_RTT_MS, RegionMatrix};
pub use stats::SimStats;

/// The RNG the simulator runs on (re-exported so experiments can name it).
pub use rand_chacha::ChaCha8Rng;
