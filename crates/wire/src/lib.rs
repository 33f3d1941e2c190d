//! # meshwork-wire: what crosses the network, and the contract every protocol keeps
//!
//! This crate does no IO. It holds three things every meshwork protocol needs:
//!
//! 1. **The [`Protocol`] contract** ([`protocol`]): a protocol is a pure state machine. It is handed an
//!    [`Input`] (a message from a peer, a command from the application, a timer it asked for, a peer coming
//!    or going) together with the current time, and answers with [`Output`]s (send this, tell the
//!    application that, wake me in 200 ms, dial that peer). It never reads a clock, opens a socket or draws
//!    from a global RNG, so the very same code runs in the tokio node runtime and in the deterministic
//!    simulator. The shape follows `quinn-proto` and iroh-gossip's `proto` module.
//! 2. **Framing** ([`frame`]): a 4-byte big-endian length, then a postcard body. The length is checked
//!    against the protocol's maximum *before* a buffer is allocated, so a peer announcing a 4 GiB frame costs
//!    us four bytes of reading.
//! 3. **Bounded decoding** ([`codec`], [`bounded`]): [`decode`] rejects trailing bytes, and every collection
//!    in a wire type is a [`BoundedVec`], [`BoundedBytes`] or [`BoundedString`] whose maximum length is
//!    checked while decoding, before anything is allocated for it.
//!
//! Protocols are told apart by a versioned [`ProtocolId`] (`/meshwork/kad/1`), and wire encodings are pinned
//! by golden vectors ([`golden`]) so that changing one is a visible decision.
//!
//! ## Example: a message type, framed and decoded
//!
//! ```
//! use meshwork_wire::{BoundedBytes, BoundedVec, frame};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Chat {
//!     room: u32,
//!     lines: BoundedVec<BoundedBytes<280>, 16>,
//! }
//!
//! let msg = Chat { room: 7, lines: vec![BoundedBytes::try_from(b"hi".to_vec())?].try_into()? };
//! let bytes = frame::encode(&msg, 4096)?;
//! let back: Chat = frame::decode(&bytes, 4096)?;
//! assert_eq!(back, msg);
//!
//! // A frame that announces more than the maximum is refused from its header alone.
//! assert!(frame::decode::<Chat>(&[0xff, 0xff, 0xff, 0xff], 4096).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod bounded;
pub mod codec;
pub mod compose;
mod drop_reason;
mod error;
pub mod frame;
pub mod golden;
mod ip_prefix;
pub mod message;
mod protections;
pub mod protocol;
mod protocol_id;
pub mod relayed;
mod scope;
mod time;

pub use bounded::{BoundedBytes, BoundedString, BoundedVec, LengthError};
pub use codec::{decode, encode, encode_into, encoded_len};
pub use compose::{Lifted, Links};
pub use drop_reason::DropReason;
pub use error::{DecodeError, EncodeError, FrameError, ProtocolIdError};
pub use ip_prefix::IpPrefix;
pub use message::{Channel, WireMessage};
pub use protections::Protections;
pub use protocol::{Input, Output, Protocol};
pub use protocol_id::ProtocolId;
pub use scope::{Scope, dialable, scope};
pub use time::Instant;

/// The README's examples, compiled and run as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// Re-exported so protocol crates name peers the same way the contract does.
pub use meshwork_identity::PeerId;
