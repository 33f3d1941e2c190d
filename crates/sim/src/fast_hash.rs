//! A small, deterministic hasher for maps keyed by peer ids (already uniformly random bytes).

use std::hash::{BuildHasherDefault, Hasher};

/// Folds 8-byte words with a multiply-rotate (the FxHash step). Not DoS resistant, which does not matter
/// inside a simulator whose keys are public keys it derived itself.
#[derive(Default)]
pub(crate) struct FoldHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(K);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(K);
    }

    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }
}

/// A `HashMap` builder using [`FoldHasher`].
pub(crate) type FoldBuild = BuildHasherDefault<FoldHasher>;
