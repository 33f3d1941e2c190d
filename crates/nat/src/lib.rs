//! Reaching peers behind NATs, as pure state machines: a node learns its external address, registers
//! with a rendezvous, finds other peers there, and opens direct connections to them by hole punching;
//! where a punch cannot work, a public relay carries the connection ([`relay`]).
//!
//! # The model: hybrid where it helps, peer to peer where it can
//!
//! Most peers sit behind a NAT: their packets leave from the router's public address, at a port the
//! router picks, and packets from outside get in only on a mapping an inside packet opened towards
//! their source. Two such peers cannot dial each other directly. A publicly reachable node helps them
//! meet, and the data then flows peer to peer:
//!
//! 1. **Observed addresses** ([`observed`]). When a connection comes up, each side tells the other the
//!    address the connection comes from (`Observed`), as libp2p's identify does. An address is
//!    *confirmed* once peers of `confirmations` distinct networks (the /24 or /48 their connection
//!    comes from) report it within `observation_ttl` ([`NatEvent::AddressConfirmed`]); it expires
//!    when the reports stop.
//! 2. **Rendezvous** ([`registry`]). A public node in the rendezvous role ([`NatConfig::rendezvous`])
//!    registers peers under a namespace at the address *it observes* for their connection (their NAT's
//!    mapping), with a TTL, and answers `Discover` with the registrations in peer-id order, a page at a
//!    time. This follows libp2p's rendezvous protocol; the registry is bounded per peer, per namespace
//!    and in all ([`RegistryLimits`]). Clients renew at three quarters of the TTL the rendezvous
//!    granted, keep the rendezvous connection protected from the connection manager, and dial it again
//!    with backoff if it is lost, registering again on the new connection: a registration ends with
//!    its connection (the address it names was that connection's mapping). The rendezvous protects
//!    its side too while the peer holds a registration (it cannot dial a peer behind a NAT back to
//!    tell it to punch), within the registry's bounds. A `Discover` that will get no answer (the
//!    rendezvous is gone, or silent for 30 s) is reported ([`NatEvent::DiscoverFailed`]).
//! 3. **Hole punching** ([`NatCommand::Connect`]). A peer asks the rendezvous to connect it to a target
//!    registered there. The rendezvous sends both a `Punch` naming the other and the address it
//!    observes for it, and both dial at once. Each side's first packets open its own NAT's mapping
//!    towards the other, so the other's packets (QUIC retransmits its first flight) get in, and one
//!    handshake completes; the node runtime keeps one connection if both do. This is the coordination
//!    of libp2p's DCUtR (Seemann et al., "Decentralized Hole Punching", 2022), with the rendezvous as
//!    the coordinator, and the simultaneous-open idea of Ford, Srisuresh and Kegel, "Peer-to-Peer
//!    Communication Across Network Address Translators" (USENIX ATC 2005). Both sides then protect the
//!    punched connection from the connection manager while it lasts (the last
//!    [`NatConfig::max_punched_kept`] of each kind, asked for by us or by others): it cost a
//!    coordinated punch, and another may not get through.
//!
//! It works through **endpoint-independent** mappings, where one socket appears at one external port
//! whatever the destination. Through a **symmetric** NAT, which picks a new port per destination, the
//! port the rendezvous saw is not the one the peer will send from, the punch fails
//! ([`PunchFailure::DialsFailed`] or [`PunchFailure::TimedOut`]), and only a relay connects the two
//! ([`relay`]: a circuit through a public node, with the QUIC session still end to end).
//! Seemann et al. measured 70% ± 7.1% success for DCUtR across 4.4 million attempts in the wild.
//!
//! 4. **Upgrade.** A punch may also start while the two are connected through a relay circuit (a NAT
//!    changed its mind, or the first punch was unlucky): `Connect` goes ahead, the node runtime dials
//!    beside the relayed connection, and when a direct connection comes up every layer prefers it (the
//!    transport's registry and the runtime keep a direct connection over a relayed one, on both
//!    sides). The relayed one retires gracefully, nothing in flight lost, and its circuit closes once
//!    unused. The protocols keep the peer throughout; they hear no `PeerDown`, only the new address.
//!    DCUtR upgrades this way too, with the relayed connection as its coordinator; here the rendezvous
//!    coordinates.
//!
//! # Hostile peers
//!
//! - Only a rendezvous we registered with, or asked for this punch, may send `Punch`, once per punch,
//!   and never to an address no peer can have (unspecified, multicast, a relay circuit's): anyone else
//!   could make us send packets to an address of its choosing. Punches others ask for take at most
//!   half our places. Other answers nobody asked for are dropped and counted
//!   (`DropReason::Unsolicited`).
//! - Identities are free, networks are not: confirming an address needs reports from distinct
//!   networks, one network holds one report, and a rendezvous budgets the punches it coordinates and
//!   the discoveries it answers per network (token buckets that outlive connections). A host with
//!   addresses in several networks still could move our address; a dial-back check (libp2p's
//!   AutoNAT v2) is the stronger test, not built yet. On loopback each peer counts for itself.
//! - Everything is bounded: reporters, punches in flight, pending discoveries (each with a deadline),
//!   the registry, the rendezvous's budgets, and the relay's reservations and circuits per peer, per
//!   dialer network and target, and per network ([`RelayLimits`]).
//!
//! # Wiring it into a node
//!
//! The driver must say where each connection comes from: register with the node runtime's hooks
//! `on_connected: Some(Nat::on_connected)` (the rendezvous role needs it) and
//! `address_of: Some(Nat::address_of)` (so a punch dials the address the rendezvous gave).
//!
//! ```
//! use meshwork_identity::Keypair;
//! use meshwork_nat::{Nat, NatCommand, NatConfig, NatMessage};
//! use meshwork_wire::{Input, Instant, Output, Protocol};
//!
//! let client = Keypair::from_seed([1; 32]).peer_id();
//! let mut server = Nat::new(NatConfig::rendezvous());
//! let mut out = Vec::new();
//! // The client connects; the runtime reports the address its connection comes from.
//! server.handle(Instant::ZERO, Input::PeerUp(client), &mut out);
//! let addr = "192.0.2.7:4000".parse().unwrap();
//! server.handle(Instant::ZERO, Input::Command(NatCommand::Connected { peer: client, addr }), &mut out);
//! let namespace = "coin".try_into().unwrap();
//! server.handle(
//!     Instant::ZERO,
//!     Input::Message { from: client, msg: NatMessage::Register { namespace, ttl_secs: 60 } },
//!     &mut out,
//! );
//! assert!(out.iter().any(|o| matches!(o, Output::Send { msg: NatMessage::Registered { .. }, .. })));
//! assert_eq!(server.registry().map(|r| r.len()), Some(1));
//! ```

mod api;
#[cfg(feature = "driver")]
pub mod bridge;
mod client;
mod discover;
pub mod message;
pub mod observed;
mod prefix;
mod protocol;
mod punch;
pub mod registry;
pub mod relay;
mod server;

pub use api::{NatCommand, NatConfig, NatEvent, NatTimer, PunchFailure};
pub use message::{MAX_DISCOVERED, MAX_NAMESPACE, Namespace, NatMessage, Refusal, Registration};
pub use observed::{AddressChange, ObservedAddresses};
pub use protocol::Nat;
pub use registry::{Registry, RegistryLimits};
pub use relay::{Relay, RelayCommand, RelayConfig, RelayEvent, RelayLimits, RelayStats};
