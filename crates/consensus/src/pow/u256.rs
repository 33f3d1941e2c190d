//! A small unsigned 256-bit integer: just what targets, work and ASERT need.

use std::cmp::Ordering;

/// An unsigned 256-bit integer, four 64-bit limbs, least significant first.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct U256(pub(crate) [u64; 4]);

impl Ord for U256 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.iter().rev().cmp(other.0.iter().rev())
    }
}

impl PartialOrd for U256 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Debug for U256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x")?;
        for byte in self.to_be_bytes() {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl U256 {
    pub(crate) const ZERO: Self = Self([0; 4]);
    pub(crate) const ONE: Self = Self([1, 0, 0, 0]);
    pub(crate) const MAX: Self = Self([u64::MAX; 4]);

    pub(crate) const fn from_u64(value: u64) -> Self {
        Self([value, 0, 0, 0])
    }

    /// Reads 32 bytes as a big-endian number.
    pub(crate) fn from_be_bytes(bytes: &[u8; 32]) -> Self {
        let mut limbs = [0u64; 4];
        for (i, chunk) in bytes.chunks_exact(8).enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            limbs[3 - i] = u64::from_be_bytes(word);
        }
        Self(limbs)
    }

    /// The big-endian bytes.
    pub(crate) fn to_be_bytes(self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&self.0[3 - i].to_be_bytes());
        }
        bytes
    }

    pub(crate) fn is_zero(self) -> bool {
        self == Self::ZERO
    }

    /// The number of significant bits (0 for zero).
    pub(crate) fn bits(self) -> u32 {
        for i in (0..4).rev() {
            if self.0[i] != 0 {
                return 64 * i as u32 + (64 - self.0[i].leading_zeros());
            }
        }
        0
    }

    pub(crate) fn low_u64(self) -> u64 {
        self.0[0]
    }

    /// The value as a `u128`, or `u128::MAX` if it does not fit.
    pub(crate) fn saturating_u128(self) -> u128 {
        if self.0[2] != 0 || self.0[3] != 0 {
            return u128::MAX;
        }
        (u128::from(self.0[1]) << 64) | u128::from(self.0[0])
    }

    /// `self << shift`; bits shifted past 256 are lost.
    pub(crate) fn shl(self, shift: u32) -> Self {
        if shift >= 256 {
            return Self::ZERO;
        }
        let limbs = (shift / 64) as usize;
        let bits = shift % 64;
        let mut out = [0u64; 4];
        for i in (limbs..4).rev() {
            let src = i - limbs;
            out[i] = self.0[src] << bits;
            if bits > 0 && src > 0 {
                out[i] |= self.0[src - 1] >> (64 - bits);
            }
        }
        Self(out)
    }

    /// `self >> shift`.
    pub(crate) fn shr(self, shift: u32) -> Self {
        if shift >= 256 {
            return Self::ZERO;
        }
        let limbs = (shift / 64) as usize;
        let bits = shift % 64;
        let mut out = [0u64; 4];
        for (i, limb) in out.iter_mut().enumerate().take(4 - limbs) {
            let src = i + limbs;
            *limb = self.0[src] >> bits;
            if bits > 0 && src + 1 < 4 {
                *limb |= self.0[src + 1] << (64 - bits);
            }
        }
        Self(out)
    }

    /// `self + other`, wrapping modulo 2^256.
    pub(crate) fn wrapping_add(self, other: Self) -> Self {
        let mut out = [0u64; 4];
        let mut carry = false;
        for (i, limb) in out.iter_mut().enumerate() {
            let (sum, c1) = self.0[i].overflowing_add(other.0[i]);
            let (sum, c2) = sum.overflowing_add(u64::from(carry));
            *limb = sum;
            carry = c1 || c2;
        }
        Self(out)
    }

    /// `self - other`, wrapping modulo 2^256.
    pub(crate) fn wrapping_sub(self, other: Self) -> Self {
        let mut out = [0u64; 4];
        let mut borrow = false;
        for (i, limb) in out.iter_mut().enumerate() {
            let (diff, b1) = self.0[i].overflowing_sub(other.0[i]);
            let (diff, b2) = diff.overflowing_sub(u64::from(borrow));
            *limb = diff;
            borrow = b1 || b2;
        }
        Self(out)
    }

    /// The bitwise complement.
    pub(crate) fn not(self) -> Self {
        Self(self.0.map(|limb| !limb))
    }

    /// `self * factor` as a 320-bit number (five limbs, least significant first).
    pub(crate) fn widening_mul_u64(self, factor: u64) -> [u64; 5] {
        let mut out = [0u64; 5];
        let mut carry = 0u128;
        for (limb, value) in out.iter_mut().zip(self.0) {
            let product = u128::from(value) * u128::from(factor) + carry;
            *limb = product as u64;
            carry = product >> 64;
        }
        out[4] = carry as u64;
        out
    }

    /// `self / divisor` (binary long division; `divisor` must not be zero, else `MAX`).
    pub(crate) fn div(self, divisor: Self) -> Self {
        if divisor.is_zero() {
            return Self::MAX;
        }
        let mut quotient = Self::ZERO;
        let mut remainder = Self::ZERO;
        for bit in (0..self.bits()).rev() {
            remainder = remainder.shl(1);
            if self.bit(bit) {
                remainder.0[0] |= 1;
            }
            if remainder >= divisor {
                remainder = remainder.wrapping_sub(divisor);
                quotient.0[(bit / 64) as usize] |= 1 << (bit % 64);
            }
        }
        quotient
    }

    fn bit(self, index: u32) -> bool {
        (self.0[(index / 64) as usize] >> (index % 64)) & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_and_bytes_round_trip() {
        let one = U256::ONE;
        assert_eq!(one.shl(255).bits(), 256);
        assert_eq!(one.shl(255).shr(255), one);
        assert_eq!(one.shl(256), U256::ZERO);
        assert_eq!(one.shl(70).0, [0, 1 << 6, 0, 0]);
        let value = U256([1, 2, 3, 4]);
        assert_eq!(U256::from_be_bytes(&value.to_be_bytes()), value);
        assert_eq!(value.to_be_bytes()[31], 1);
        assert_eq!(value.to_be_bytes()[7], 4);
    }

    #[test]
    fn division_matches_small_numbers_and_powers_of_two() {
        assert_eq!(U256::from_u64(1000).div(U256::from_u64(7)), U256::from_u64(142));
        let big = U256::ONE.shl(200);
        assert_eq!(big.div(U256::ONE.shl(100)), U256::ONE.shl(100));
        assert_eq!(U256::MAX.div(U256::MAX), U256::ONE);
        assert_eq!(U256::from_u64(3).div(U256::from_u64(4)), U256::ZERO);
    }

    #[test]
    fn add_sub_and_wide_multiply() {
        let a = U256([u64::MAX, 0, 0, 0]);
        assert_eq!(a.wrapping_add(U256::ONE), U256([0, 1, 0, 0]));
        assert_eq!(U256([0, 1, 0, 0]).wrapping_sub(U256::ONE), a);
        assert_eq!(
            U256::MAX.widening_mul_u64(2),
            [u64::MAX - 1, u64::MAX, u64::MAX, u64::MAX, 1]
        );
    }
}
