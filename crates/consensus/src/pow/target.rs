//! [`Target`]: the 256-bit number a block id must not exceed, its compact (`nBits`) form, and its work.

use std::fmt;

use meshwork_ledger::BlockId;

use super::u256::U256;
use crate::error::CompactError;

/// A proof-of-work target: a block is valid work if its id, read as a **big-endian** 256-bit number, is
/// at most the target. A smaller target is harder to meet.
///
/// Headers carry the target in Bitcoin's compact `nBits` form ([`Target::from_compact`],
/// [`Target::to_compact`]): one byte of size `e` and a 23-bit mantissa `m`, the target being
/// `m * 256^(e - 3)`. The sign bit (`0x0080_0000`) must be clear, and the value must fit in 256 bits and
/// not be zero.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target(pub(crate) U256);

impl Target {
    /// The easiest possible target, `2^256 - 1`: every id meets it.
    pub const MAX: Self = Self(U256::MAX);

    /// Decodes a compact (`nBits`) target.
    pub fn from_compact(bits: u32) -> Result<Self, CompactError> {
        let size = bits >> 24;
        let word = bits & 0x007f_ffff;
        if bits & 0x0080_0000 != 0 && word != 0 {
            return Err(CompactError::Negative(bits));
        }
        let overflow = word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32));
        if overflow {
            return Err(CompactError::Overflow(bits));
        }
        let value = if size <= 3 {
            U256::from_u64(u64::from(word >> (8 * (3 - size))))
        } else {
            U256::from_u64(u64::from(word)).shl(8 * (size - 3))
        };
        if value.is_zero() {
            return Err(CompactError::Zero(bits));
        }
        Ok(Self(value))
    }

    /// The canonical compact form (the same encoding Bitcoin's `GetCompact` produces). Precision beyond
    /// the 23-bit mantissa is dropped (rounded down), so the compact target is never easier.
    pub fn to_compact(self) -> u32 {
        let mut size = self.0.bits().div_ceil(8);
        let mut compact = if size <= 3 {
            (self.0.low_u64() << (8 * (3 - size))) as u32
        } else {
            self.0.shr(8 * (size - 3)).low_u64() as u32
        };
        if compact & 0x0080_0000 != 0 {
            compact >>= 8;
            size += 1;
        }
        compact | (size << 24)
    }

    /// The target from its 32 big-endian bytes (`None` for zero, which no id can meet but zero).
    pub fn from_be_bytes(bytes: [u8; 32]) -> Option<Self> {
        let value = U256::from_be_bytes(&bytes);
        (!value.is_zero()).then_some(Self(value))
    }

    /// The 32 big-endian bytes.
    pub fn to_be_bytes(self) -> [u8; 32] {
        self.0.to_be_bytes()
    }

    /// `2^exponent - 1`: a target met by one id in `2^(256 - exponent)` on average (`exponent` ≤ 256).
    pub fn from_exponent(exponent: u32) -> Self {
        if exponent >= 256 {
            return Self::MAX;
        }
        Self(U256::ONE.shl(exponent).wrapping_sub(U256::ONE).max(U256::ONE))
    }

    /// Whether `id` (read big-endian) is at most this target.
    pub fn is_met_by(self, id: &BlockId) -> bool {
        U256::from_be_bytes(id.as_bytes()) <= self.0
    }

    /// The expected number of hashes to meet this target, `2^256 / (target + 1)`: the **work** a block
    /// with this target proves. Computed exactly in 256 bits as `!target / (target + 1) + 1` (Bitcoin's
    /// `GetBlockProof`), then **saturated to `u128`**: a target below `2^128` (work above `2^128` hashes per
    /// block, far beyond any real network) counts as `u128::MAX`. Cumulative work adds saturating too.
    pub fn work(self) -> u128 {
        if self.0 == U256::MAX {
            return 1;
        }
        let denominator = self.0.wrapping_add(U256::ONE);
        self.0
            .not()
            .div(denominator)
            .wrapping_add(U256::ONE)
            .saturating_u128()
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({:#010x})", self.to_compact())
    }
}

#[cfg(test)]
mod tests {
    use meshwork_identity::Hash;

    use super::*;

    #[test]
    fn bitcoin_genesis_bits_round_trip() {
        // Bitcoin's genesis target 0x00000000ffff0000...0000.
        let target = Target::from_compact(0x1d00_ffff).unwrap();
        let mut expected = [0u8; 32];
        expected[4] = 0xff;
        expected[5] = 0xff;
        assert_eq!(target.to_be_bytes(), expected);
        assert_eq!(target.to_compact(), 0x1d00_ffff);
        // Bitcoin's work of the genesis block: 0x100010001.
        assert_eq!(target.work(), 0x1_0001_0001);
    }

    #[test]
    fn compact_edge_cases() {
        assert!(matches!(
            Target::from_compact(0x0480_0001),
            Err(CompactError::Negative(_))
        ));
        assert!(matches!(
            Target::from_compact(0xff12_3456),
            Err(CompactError::Overflow(_))
        ));
        assert!(matches!(
            Target::from_compact(0x0100_0000),
            Err(CompactError::Zero(_))
        ));
        assert!(matches!(Target::from_compact(0), Err(CompactError::Zero(_))));
        // Small sizes shift the mantissa right.
        assert_eq!(Target::from_compact(0x0112_3456).unwrap().0, U256::from_u64(0x12));
        assert_eq!(Target::from_compact(0x0200_8000).unwrap().0, U256::from_u64(0x80));
        assert_eq!(
            Target::from_compact(0x0200_8000).unwrap().to_compact(),
            0x0200_8000
        );
        // A mantissa with the sign bit set is renormalised into one more byte of size.
        assert_eq!(Target(U256::from_u64(0x80)).to_compact(), 0x0200_8000);
        // The easiest compact targets.
        assert_eq!(
            Target::from_compact(0x207f_ffff).unwrap().to_compact(),
            0x207f_ffff
        );
        assert_eq!(Target::MAX.to_compact(), 0x2100_ffff);
    }

    #[test]
    fn work_of_easy_targets() {
        assert_eq!(Target::MAX.work(), 1);
        // 2^255 - 1: one hash in two.
        assert_eq!(Target::from_exponent(255).work(), 2);
        assert_eq!(Target::from_exponent(252).work(), 16);
        // Below 2^128 the work saturates.
        assert_eq!(Target::from_exponent(100).work(), u128::MAX);
    }

    #[test]
    fn ids_are_read_big_endian() {
        let target = Target::from_exponent(248); // top byte must be zero
        let mut low = [0xffu8; 32];
        low[0] = 0;
        assert!(target.is_met_by(&Hash::from_bytes(low)));
        let mut high = [0u8; 32];
        high[0] = 1;
        assert!(!target.is_met_by(&Hash::from_bytes(high)));
    }
}
