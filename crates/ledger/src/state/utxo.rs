//! The UTXO model: coins, undo data and the commitment to the set.

use std::collections::HashMap;

use meshwork_identity::Hash;
use serde::{Deserialize, Serialize};

use crate::{OutPoint, TxOut};

const COIN_DOMAIN: &str = "meshwork ledger 2026 utxo entry v1";
const COMMITMENT_DOMAIN: &str = "meshwork ledger 2026 utxo set v1";

/// An unspent output with what validation needs to know about where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Coin {
    /// The output.
    pub output: TxOut,
    /// The height of the block that created it.
    pub height: u64,
    /// Whether a coinbase created it (it then matures before it can be spent).
    pub coinbase: bool,
}

/// What disconnecting a block needs and cannot recompute: the coins its transactions spent, in the
/// order they were spent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockUndo {
    /// The spent outpoints and the coins they held.
    pub spent: Vec<(OutPoint, Coin)>,
}

/// An order-independent commitment to a UTXO set: the number of coins and the sum, modulo 2^256, of
/// a blake3 hash of every `(outpoint, coin)` pair.
///
/// Adding and removing a coin are O(1), so the store keeps it up to date with every change and any two
/// sets with the same coins have the same commitment, however they were reached. Connecting then
/// disconnecting a block gives the commitment back exactly. It is a consistency check, not an
/// adversarial accumulator (a sum of hashes is open to generalised-birthday attacks; MuHash would not be).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UtxoCommitment {
    sum: [u64; 4],
    count: u64,
}

impl UtxoCommitment {
    /// The commitment to the empty set.
    pub const EMPTY: Self = Self {
        sum: [0; 4],
        count: 0,
    };

    fn entry_limbs(outpoint: &OutPoint, coin: &Coin) -> [u64; 4] {
        let bytes = crate::message_bytes(&(outpoint, coin));
        let hash = Hash::derive(COIN_DOMAIN, &bytes);
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().zip(hash.as_bytes().chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            *limb = u64::from_le_bytes(word);
        }
        limbs
    }

    /// Adds a coin to the committed set.
    pub fn insert(&mut self, outpoint: &OutPoint, coin: &Coin) {
        let add = Self::entry_limbs(outpoint, coin);
        let mut carry = false;
        for (limb, value) in self.sum.iter_mut().zip(add) {
            let (partial, c1) = limb.overflowing_add(value);
            let (total, c2) = partial.overflowing_add(u64::from(carry));
            *limb = total;
            carry = c1 || c2;
        }
        self.count = self.count.wrapping_add(1);
    }

    /// Removes a coin from the committed set (the inverse of [`UtxoCommitment::insert`]).
    pub fn remove(&mut self, outpoint: &OutPoint, coin: &Coin) {
        let sub = Self::entry_limbs(outpoint, coin);
        let mut borrow = false;
        for (limb, value) in self.sum.iter_mut().zip(sub) {
            let (partial, b1) = limb.overflowing_sub(value);
            let (total, b2) = partial.overflowing_sub(u64::from(borrow));
            *limb = total;
            borrow = b1 || b2;
        }
        self.count = self.count.wrapping_sub(1);
    }

    /// The commitment of the coins in `coins`.
    pub fn of<'a, I: IntoIterator<Item = (&'a OutPoint, &'a Coin)>>(coins: I) -> Self {
        let mut commitment = Self::EMPTY;
        for (outpoint, coin) in coins {
            commitment.insert(outpoint, coin);
        }
        commitment
    }

    /// The number of coins in the set.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// A 32-byte digest of the commitment, to print or compare.
    pub fn digest(&self) -> Hash {
        Hash::derive(COMMITMENT_DOMAIN, &crate::message_bytes(self))
    }
}

/// Read access to a UTXO set.
pub trait UtxoView {
    /// The coin at `outpoint`, if it is unspent.
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, crate::StoreError>;
}

impl UtxoView for HashMap<OutPoint, Coin> {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, crate::StoreError> {
        Ok(self.get(outpoint).copied())
    }
}
