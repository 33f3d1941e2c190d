//! Frames from hostile peers: any bytes, through the frame splitter and decoder, never panic, and a frame
//! that decodes re-encodes to the same bytes (one encoding per value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_wire::{BoundedBytes, BoundedVec, frame};
use serde::{Deserialize, Serialize};

const MAX: usize = 4096;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Message {
    Ping(u64),
    Data {
        topic: u16,
        chunks: BoundedVec<BoundedBytes<256>, 8>,
    },
    Peers(BoundedVec<meshwork_identity::PeerId, 4>),
}

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((body, used))) = frame::split(data, MAX) {
        assert!(used <= data.len() && body.len() <= MAX);
    }
    if let Ok(msg) = frame::decode::<Message>(data, MAX) {
        let again = frame::encode(&msg, MAX).expect("a decoded message re-encodes");
        assert_eq!(again, data, "non-canonical encoding accepted");
    }
});
