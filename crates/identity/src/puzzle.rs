//! The S/Kademlia static crypto puzzle: node ids that cost work to create.
//!
//! Baumgart and Mies, "S/Kademlia: A practicable approach towards secure key-based routing" (ICPADS 2007),
//! §4.1: a node id is only accepted if a hash of it has `c` leading zero bits. Creating one valid id costs
//! about `2^c` key generations, checking one costs a single hash, so flooding the DHT with Sybil ids or
//! choosing ids near a target key becomes expensive. We hash the public key in its own blake3 domain, so
//! the puzzle cannot be solved as a side effect of mining or of any other hash in the system.
//!
//! ```
//! use meshwork_identity::{Keypair, puzzle};
//! let mut rng = rand_core::OsRng;
//! let key = Keypair::generate_with_puzzle(&mut rng, 8);
//! assert!(puzzle::solves(&key.peer_id(), 8));
//! ```

use std::sync::LazyLock;

use crate::{Domain, PeerId};

/// The blake3 key-derivation context of the puzzle hash.
const PUZZLE_CONTEXT: &str = "meshwork 2026 s/kademlia static puzzle v1";
/// The puzzle's domain, its context hashed once (Kademlia checks every peer id it is told of).
static PUZZLE_DOMAIN: LazyLock<Domain> = LazyLock::new(|| Domain::new(PUZZLE_CONTEXT));

/// How many leading zero bits the puzzle hash of `peer` has: the difficulty it solves.
pub fn difficulty_of(peer: &PeerId) -> u32 {
    PUZZLE_DOMAIN.derive(peer.as_bytes()).leading_zero_bits()
}

/// Whether `peer` solves the puzzle at `difficulty` bits. Difficulty 0 accepts every peer, without
/// hashing anything.
pub fn solves(peer: &PeerId, difficulty: u32) -> bool {
    difficulty == 0 || difficulty_of(peer) >= difficulty
}
