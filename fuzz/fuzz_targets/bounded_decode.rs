//! Bounded collections: no input makes a decoder allocate past its bound or accept over-long collections.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_wire::{BoundedBytes, BoundedString, BoundedVec, decode};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = decode::<BoundedVec<(), 16>>(data) {
        assert!(v.len() <= 16);
    }
    if let Ok(v) = decode::<BoundedVec<BoundedVec<u32, 4>, 4>>(data) {
        assert!(v.len() <= 4 && v.iter().all(|inner| inner.len() <= 4));
    }
    if let Ok(b) = decode::<BoundedBytes<32>>(data) {
        assert!(b.len() <= 32);
    }
    if let Ok(s) = decode::<BoundedString<24>>(data) {
        assert!(s.len() <= 24);
    }
});
