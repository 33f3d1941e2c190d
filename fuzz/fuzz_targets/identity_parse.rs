//! PeerId, Signature and Hash parsing from text and bytes: never panics, and what parses round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_identity::{Hash, Namespace, PeerId, Signature};

const NS: Namespace = Namespace::new(b"meshwork/fuzz/1");

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(peer) = text.parse::<PeerId>() {
            assert_eq!(peer.to_string().parse::<PeerId>(), Ok(peer));
        }
        if let Ok(sig) = text.parse::<Signature>() {
            assert_eq!(sig.to_string().to_lowercase(), text.to_lowercase());
        }
        let _ = text.parse::<Hash>();
    }
    if data.len() >= 96 {
        if let (Ok(peer), Ok(sig)) = (
            PeerId::from_slice(&data[..32]),
            Signature::from_slice(&data[32..96]),
        ) {
            // Random signatures must not verify; and verifying must never panic.
            let _ = peer.verify(NS, &data[96..], &sig);
        }
    }
    let _ = meshwork_wire::decode::<PeerId>(data);
    let _ = meshwork_wire::decode::<Signature>(data);
});
