//! [`Amount`]: a quantity of coin, with checked arithmetic only.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A quantity of coin in its smallest unit. There are [`Amount::COIN`] units to a coin.
///
/// Arithmetic is checked: a sum that overflows is `None`, never a wrapped value, so a block cannot
/// create money by overflowing a total. Range (at most [`Amount::MAX_SUPPLY`]) is a validation rule,
/// checked by the [`Ledger`](crate::Ledger), not a property of the type: a decoded `Amount` may be any `u64`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Amount(u64);

impl Amount {
    /// No coin.
    pub const ZERO: Self = Self(0);
    /// Units per coin.
    pub const COIN: u64 = 100_000_000;
    /// No amount, output or sum of outputs, may exceed this: 21 million coins (the total the default
    /// subsidy schedule ever issues is just under it).
    pub const MAX_SUPPLY: Self = Self(21_000_000 * Self::COIN);

    /// An amount of `units`.
    pub const fn from_units(units: u64) -> Self {
        Self(units)
    }

    /// An amount of whole `coins` (saturating).
    pub const fn from_coins(coins: u64) -> Self {
        Self(coins.saturating_mul(Self::COIN))
    }

    /// The number of units.
    pub const fn units(self) -> u64 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    pub const fn checked_add(self, other: Self) -> Option<Self> {
        match self.0.checked_add(other.0) {
            Some(sum) => Some(Self(sum)),
            None => None,
        }
    }

    /// `self - other`, or `None` if `other` is larger.
    pub const fn checked_sub(self, other: Self) -> Option<Self> {
        match self.0.checked_sub(other.0) {
            Some(diff) => Some(Self(diff)),
            None => None,
        }
    }

    /// Whether the amount is in the valid range `0..=MAX_SUPPLY`.
    pub const fn in_range(self) -> bool {
        self.0 <= Self::MAX_SUPPLY.0
    }

    /// The sum of `amounts`, or `None` if it overflows or leaves the valid range.
    pub fn checked_sum<I: IntoIterator<Item = Self>>(amounts: I) -> Option<Self> {
        let mut total = Self::ZERO;
        for amount in amounts {
            total = total.checked_add(amount).filter(|sum| sum.in_range())?;
        }
        Some(total)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:08}", self.0 / Self::COIN, self.0 % Self::COIN)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_arithmetic_never_wraps() {
        assert_eq!(
            Amount::from_units(u64::MAX).checked_add(Amount::from_units(1)),
            None
        );
        assert_eq!(Amount::ZERO.checked_sub(Amount::from_units(1)), None);
        assert_eq!(
            Amount::checked_sum([Amount::MAX_SUPPLY, Amount::from_units(1)]),
            None
        );
        assert_eq!(Amount::from_units(150_000_000).to_string(), "1.50000000");
    }
}
