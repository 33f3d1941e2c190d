//! # meshwork-identity: who a peer is, and proof that it said something
//!
//! A meshwork peer **is** its ed25519 public key. This crate holds the few types every other crate uses to
//! name peers and to sign and check what they say. It is pure: no IO except reading and writing a key file,
//! no clock, no global RNG.
//!
//! - [`Keypair`]: an ed25519 signing key. Generate it from an RNG you pass in, derive it from a seed, or
//!   save and load it from a file that only its owner can read. `Debug` never prints the secret.
//! - [`PeerId`]: the 32-byte public key. Its text form is base58 (`Display`/`FromStr`), short enough to copy
//!   into a config file; parsing rejects anything that is not a canonical, full-order key.
//! - [`Signature`], [`Namespace`]: every signature is **domain separated**. A signature made for one kind of
//!   message (a gossip message, a transaction input, a DHT record) never verifies as another kind, because
//!   the namespace is part of what is signed: `sign(namespace, msg)`, `verify(namespace, msg, sig)`.
//! - [`BatchVerifier`]: check many signatures at once, roughly twice as fast as one by one.
//! - [`Hash`](struct@Hash): a blake3 digest, the content address used for message ids, transaction ids and block ids.
//! - [`puzzle`]: the S/Kademlia static crypto puzzle that makes node ids cost work to create.
//!
//! ## Verification rules (why single and batch always agree)
//!
//! Signing uses `ed25519-dalek` (RFC 8032). Verification follows **ZIP-215** through `ed25519-consensus`:
//! the *cofactored* equation `[8][s]B = [8]R + [8][k]A`, for one signature and for a batch alike. With the
//! cofactorless single check most libraries use, a signature whose `R` carries a small torsion component
//! fails alone but can pass inside a batch; two nodes that batch differently would then disagree about a
//! block. Under ZIP-215 the answer does not depend on how signatures are grouped, which is the property a
//! ledger needs. On top of it, [`PeerId`] is strict: a non-canonical encoding or a small-order ("weak") key is
//! refused at parse time, so it can never sign anything that verifies. Non-canonical `s` scalars are refused
//! by the verifier.
//!
//! ## Example
//!
//! ```
//! use meshwork_identity::{Keypair, Namespace, PeerId};
//!
//! const CHAT: Namespace = Namespace::new(b"example/chat/1");
//! const OTHER: Namespace = Namespace::new(b"example/other/1");
//!
//! let alice = Keypair::from_seed([7; 32]);
//! let sig = alice.sign(CHAT, b"hello");
//! let id: PeerId = alice.peer_id();
//! assert!(id.verify(CHAT, b"hello", &sig).is_ok());
//! assert!(id.verify(OTHER, b"hello", &sig).is_err()); // wrong namespace
//!
//! // The text form round-trips.
//! let text = id.to_string();
//! assert_eq!(text.parse::<PeerId>().unwrap(), id);
//! ```
#![deny(missing_docs)]

mod error;
mod hash;
mod keypair;
mod known_keys;
mod peer_id;
pub mod puzzle;
mod signature;

pub use error::{KeyFileError, ParseError, VerifyError};
pub use hash::{Domain, Hash};
pub use keypair::Keypair;
pub use peer_id::PeerId;
pub use signature::{BatchVerifier, Namespace, Signature};
