//! Kademlia messages: decoding hostile bytes never panics, and whatever decodes respects every bound and
//! re-encodes to the same bytes (one encoding per message).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_kad::Message;
use meshwork_kad::message::{MAX_PEERS, MAX_VALUE, Request, Response};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = meshwork_wire::decode::<Message>(data) else {
        return;
    };
    match &msg {
        Message::Request {
            request: Request::PutValue { record },
            ..
        } => assert!(record.value.len() <= MAX_VALUE),
        Message::Response { response, .. } => match response {
            Response::Nodes { closer } => assert!(closer.len() <= MAX_PEERS),
            Response::Value { record, closer } => {
                assert!(closer.len() <= MAX_PEERS);
                assert!(record.as_ref().is_none_or(|r| r.value.len() <= MAX_VALUE));
            }
            Response::Providers { providers, closer } => {
                assert!(providers.len() <= MAX_PEERS && closer.len() <= MAX_PEERS);
            }
            Response::Pong | Response::Stored { .. } => {}
        },
        Message::Request { .. } => {}
    }
    let bytes = meshwork_wire::encode(&msg).expect("a decoded message encodes");
    assert_eq!(bytes, data, "decode accepted a non-canonical encoding");
});
