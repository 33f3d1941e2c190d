//! Gossip wire messages: decoding hostile bytes never panics, and what decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_gossip::Message;
use meshwork_wire::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode::<Message>(data) {
        // Canonical encodings only: a decoded message re-encodes to exactly the input.
        let bytes = encode(&msg).expect("a decoded message encodes");
        assert_eq!(bytes, data);
        use meshwork_gossip::TreeMessage::{Borrowed, Gossip};
        if let Message::Tree(Gossip { message, .. } | Borrowed { message, .. }) = msg {
            let _ = message.verify();
            let _ = message.id();
        }
    }
});
