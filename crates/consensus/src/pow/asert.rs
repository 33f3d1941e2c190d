//! ASERT difficulty adjustment (aserti3-2d).
//!
//! The *absolutely scheduled exponentially rising targets* algorithm of Bitcoin Cash's November 2020
//! upgrade (Mark Lundeberg, Jonathan Toomim et al., *ASERT: absolutely scheduled exponentially rising
//! targets*; specification `aserti3-2d`, bitcoincashresearch.org and `pow.cpp` of Bitcoin Cash Node).
//!
//! Every block's target is computed from one fixed **anchor** block, not from a window of recent blocks:
//!
//! ```text
//! exponent = (time_delta - target_block_time * (height_delta + 1)) / half_life
//! target   = anchor_target * 2^exponent
//! ```
//!
//! where `time_delta` is the parent's timestamp minus the anchor's *parent's* timestamp and
//! `height_delta` the parent's height minus the anchor's height. A chain exactly on schedule keeps the
//! anchor target; every `half_life` seconds the chain is behind schedule halves the difficulty (doubles
//! the target), every `half_life` ahead doubles it. The exponent is fixed-point with 16 fractional bits
//! and `2^frac` is the specification's cubic approximation, so every node computes the same target bit for
//! bit, with integers only.

use super::target::Target;
use super::u256::U256;

/// The block all targets are computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsertAnchor {
    /// The anchor's height.
    pub height: u64,
    /// The timestamp of the anchor's parent. For a chain anchored at its genesis block (which has no
    /// parent), `genesis.timestamp - target_block_time`, so that a first block on schedule keeps the
    /// genesis target.
    pub parent_time: u64,
    /// The anchor's target.
    pub target: Target,
}

/// The ASERT parameters: an anchor, the block time aimed at, the half-life, and the easiest target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asert {
    /// The anchor block.
    pub anchor: AsertAnchor,
    /// The block interval aimed at, in seconds.
    pub target_block_time: u64,
    /// Seconds of schedule deviation that double (behind) or halve (ahead) the target. Bitcoin Cash uses
    /// two days (172,800 s) for 600-second blocks.
    pub half_life: u64,
    /// The easiest target allowed (the proof-of-work limit).
    pub pow_limit: Target,
}

impl Asert {
    /// The target required of the block whose parent has height `parent_height` and timestamp
    /// `parent_time`, clamped to `1..=pow_limit`.
    pub fn next_target(&self, parent_height: u64, parent_time: u64) -> Target {
        let time_delta = i128::from(parent_time) - i128::from(self.anchor.parent_time);
        let height_delta = i128::from(parent_height) - i128::from(self.anchor.height);
        let ideal = i128::from(self.target_block_time);
        let half_life = i128::from(self.half_life.max(1));
        // Signed division truncates toward zero, as the specification's C++ does.
        let exponent = ((time_delta - ideal * (height_delta + 1)) * 65536) / half_life;
        // The integer part by an arithmetic (flooring) shift, the fraction in [0, 1) as 16 bits.
        let shifts = exponent >> 16;
        let frac = (exponent & 0xffff) as u128;
        let factor = 65536
            + ((195_766_423_245_049 * frac
                + 971_821_376 * frac * frac
                + 5127 * frac * frac * frac
                + (1 << 47))
                >> 48);
        let product = self.anchor.target.0.widening_mul_u64(factor as u64);
        // target * factor is 2^16 too large: shift by (shifts - 16) in total.
        let shift = shifts - 16;
        let next = if shift >= 0 {
            if shift >= 320 || leading_zeros(&product) < 64 + shift as u32 {
                return self.pow_limit;
            }
            U256([product[0], product[1], product[2], product[3]]).shl(shift as u32)
        } else {
            let right = (-shift).min(320) as u32;
            let shifted = shr_wide(product, right);
            if shifted[4] != 0 {
                return self.pow_limit;
            }
            U256([shifted[0], shifted[1], shifted[2], shifted[3]])
        };
        if next.is_zero() {
            Target(U256::ONE)
        } else {
            Target(next).min(self.pow_limit)
        }
    }
}

fn leading_zeros(value: &[u64; 5]) -> u32 {
    let mut zeros = 0;
    for limb in value.iter().rev() {
        if *limb != 0 {
            return zeros + limb.leading_zeros();
        }
        zeros += 64;
    }
    zeros
}

fn shr_wide(value: [u64; 5], shift: u32) -> [u64; 5] {
    if shift >= 320 {
        return [0; 5];
    }
    let limbs = (shift / 64) as usize;
    let bits = shift % 64;
    let mut out = [0u64; 5];
    for (i, limb) in out.iter_mut().enumerate().take(5 - limbs) {
        let src = i + limbs;
        *limb = value[src] >> bits;
        if bits > 0 && src + 1 < 5 {
            *limb |= value[src + 1] << (64 - bits);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 600;
    const H: u64 = 172_800;

    fn asert(anchor_target: Target, pow_limit: Target) -> Asert {
        Asert {
            anchor: AsertAnchor {
                height: 0,
                parent_time: 1_000_000 - T,
                target: anchor_target,
            },
            target_block_time: T,
            half_life: H,
            pow_limit,
        }
    }

    fn two_to(n: u32) -> Target {
        Target(U256::ONE.shl(n))
    }

    #[test]
    fn on_schedule_keeps_the_anchor_target() {
        let a = asert(two_to(200), Target::from_exponent(255));
        for height in [0, 1, 10, 5000] {
            assert_eq!(a.next_target(height, 1_000_000 + height * T), two_to(200));
        }
    }

    #[test]
    fn one_half_life_behind_doubles_ahead_halves() {
        let a = asert(two_to(200), Target::from_exponent(255));
        assert_eq!(a.next_target(10, 1_000_000 + 10 * T + H), two_to(201));
        assert_eq!(a.next_target(10, 1_000_000 + 10 * T - H), two_to(199));
        assert_eq!(a.next_target(10, 1_000_000 + 10 * T + 3 * H), two_to(203));
    }

    #[test]
    fn fractional_exponents_use_the_cubic_approximation() {
        // Half a half-life behind: factor = 65536 + ((195766423245049 * 32768 + 971821376 * 32768^2
        // + 5127 * 32768^3 + 2^47) >> 48) = 92674 (computed by hand; 2^0.5 * 65536 = 92681.9).
        let a = asert(two_to(200), Target::from_exponent(255));
        let expected = Target(U256::from_u64(92_674).shl(200 - 16));
        assert_eq!(a.next_target(10, 1_000_000 + 10 * T + H / 2), expected);
        // A quarter: 77938 (2^0.25 * 65536 = 77935.4).
        let expected = Target(U256::from_u64(77_938).shl(200 - 16));
        assert_eq!(a.next_target(10, 1_000_000 + 10 * T + H / 4), expected);
    }

    #[test]
    fn clamped_to_the_pow_limit_and_to_one() {
        let limit = Target::from_exponent(240);
        let a = asert(Target::from_exponent(236), limit);
        // Far behind schedule: never easier than the limit.
        assert_eq!(a.next_target(1, 1_000_000 + 100 * H), limit);
        assert_eq!(a.next_target(1, u64::MAX), limit);
        // Far ahead: the hardest target is 1.
        assert_eq!(a.next_target(1_000_000, 0), Target(U256::ONE));
        // An anchor at the top of the 256-bit range does not overflow.
        let top = asert(Target::MAX, Target::MAX);
        assert_eq!(top.next_target(10, 1_000_000 + 10 * T + H), Target::MAX);
        assert!(top.next_target(10, 1_000_000 + 10 * T - H) < Target::MAX);
    }
}
