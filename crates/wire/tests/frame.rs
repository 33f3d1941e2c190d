//! Framing: golden bytes, hostile headers, truncation, trailing bytes.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use meshwork_wire::{BoundedBytes, EncodeError, FrameError, frame};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Msg {
    Ping(u64),
    Blob(BoundedBytes<1024>),
}

#[test]
fn golden_frame_vectors() {
    // Header: body length as u32 big-endian. Body: postcard (variant index varint, then the fields).
    assert_eq!(
        hex::encode(frame::encode(&Msg::Ping(300), 64).unwrap()),
        "0000000300ac02"
    );
    let blob = Msg::Blob(BoundedBytes::try_from(&b"abc"[..]).unwrap());
    assert_eq!(
        hex::encode(frame::encode(&blob, 64).unwrap()),
        "000000050103616263"
    );
    assert_eq!(
        frame::decode::<Msg>(&hex::decode("0000000300ac02").unwrap(), 64).unwrap(),
        Msg::Ping(300)
    );
}

#[test]
fn oversized_header_is_refused_from_the_header_alone() {
    let four_gib = [0xff, 0xff, 0xff, 0xff];
    assert_eq!(
        frame::parse_header(four_gib, 1 << 20),
        Err(FrameError::TooLarge {
            announced: u64::from(u32::MAX),
            max: 1 << 20
        })
    );
    assert!(matches!(
        frame::decode::<Msg>(&four_gib, 1 << 20),
        Err(FrameError::TooLarge { .. })
    ));
    assert!(matches!(
        frame::split(&four_gib, 1 << 20),
        Err(FrameError::TooLarge { .. })
    ));
    // Even a protocol that allows everything is capped by the absolute maximum.
    assert!(frame::parse_header(four_gib, usize::MAX).is_err());
    let msg = format!("{}", frame::parse_header([0, 0, 1, 0], 16).unwrap_err());
    assert_eq!(msg, "frame announces 256 bytes, over the maximum of 16 bytes");
}

#[test]
fn truncated_frames_are_refused() {
    let bytes = frame::encode(&Msg::Ping(7), 64).unwrap();
    for cut in 0..bytes.len() {
        let err = frame::decode::<Msg>(&bytes[..cut], 64).unwrap_err();
        assert!(matches!(err, FrameError::Truncated { .. }), "cut at {cut}: {err}");
        assert_eq!(frame::split(&bytes[..cut], 64), Ok(None));
    }
}

#[test]
fn trailing_bytes_are_refused_in_the_frame_and_in_the_body() {
    let mut bytes = frame::encode(&Msg::Ping(7), 64).unwrap();
    bytes.push(0);
    assert_eq!(
        frame::decode::<Msg>(&bytes, 64),
        Err(FrameError::TrailingBytes { count: 1 })
    );
    // A body that holds a whole message plus a junk byte, with a header that covers both.
    let body = [0x00, 0x07, 0x99];
    let mut framed = (body.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(&body);
    assert!(matches!(
        frame::decode::<Msg>(&framed, 64),
        Err(FrameError::Body(_))
    ));
}

#[test]
fn sender_gets_a_clear_error_for_an_oversized_message() {
    let blob = Msg::Blob(BoundedBytes::try_from(vec![0u8; 100]).unwrap());
    let err = frame::encode(&blob, 50).unwrap_err();
    assert_eq!(
        err,
        FrameError::Encode(EncodeError::TooLarge { size: 102, max: 50 })
    );
}

#[test]
fn split_takes_one_frame_off_a_stream() {
    let mut stream = frame::encode(&Msg::Ping(1), 64).unwrap();
    stream.extend(frame::encode(&Msg::Ping(2), 64).unwrap());
    let (body, used) = frame::split(&stream, 64).unwrap().unwrap();
    assert_eq!(meshwork_wire::decode::<Msg>(body).unwrap(), Msg::Ping(1));
    let (body, rest_used) = frame::split(&stream[used..], 64).unwrap().unwrap();
    assert_eq!(meshwork_wire::decode::<Msg>(body).unwrap(), Msg::Ping(2));
    assert_eq!(used + rest_used, stream.len());
}

proptest! {
    #[test]
    fn frames_round_trip(n in any::<u64>(), blob in proptest::collection::vec(any::<u8>(), 0..1024)) {
        for msg in [Msg::Ping(n), Msg::Blob(BoundedBytes::try_from(blob).unwrap())] {
            let bytes = frame::encode(&msg, 2048).unwrap();
            prop_assert_eq!(frame::decode::<Msg>(&bytes, 2048).unwrap(), msg);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = frame::decode::<Msg>(&bytes, 32);
        let _ = frame::split(&bytes, 32);
    }
}
