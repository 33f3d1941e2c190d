//! Bounded decoding, protocol ids, time, and round trips of every public wire type.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use std::time::Duration;

use meshwork_wire::{
    BoundedBytes, BoundedString, BoundedVec, DecodeError, Instant, ProtocolId, ProtocolIdError, decode,
    encode, encoded_len, golden,
};
use proptest::prelude::*;

#[test]
fn over_long_collections_are_refused_with_their_bound() {
    let five: BoundedVec<u8, 5> = vec![1, 2, 3, 4, 5].try_into().unwrap();
    let bytes = encode(&five).unwrap();
    assert_eq!(
        decode::<BoundedVec<u8, 4>>(&bytes),
        Err(DecodeError::OverBound { max: 4, len: 5 })
    );
    let blob: BoundedBytes<10> = vec![7u8; 10].try_into().unwrap();
    assert_eq!(
        decode::<BoundedBytes<9>>(&encode(&blob).unwrap()),
        Err(DecodeError::OverBound { max: 9, len: 10 })
    );
    let text: BoundedString<5> = "hello".try_into().unwrap();
    assert_eq!(
        decode::<BoundedString<4>>(&encode(&text).unwrap()),
        Err(DecodeError::OverBound { max: 4, len: 5 })
    );
    // Zero-sized elements cost no input, so only the bound stops a huge announced count: decoding stops at
    // the first element past the bound.
    assert_eq!(
        decode::<BoundedVec<(), 8>>(&[0x80, 0x80, 0x04]),
        Err(DecodeError::OverBound { max: 8, len: 9 })
    );
    // Local construction is bounded the same way.
    assert!(BoundedVec::<u8, 2>::try_from(vec![1, 2, 3]).is_err());
    let mut v = BoundedVec::<u8, 1>::new();
    assert_eq!(v.push(1), Ok(()));
    assert_eq!(v.push(2), Err(2));
}

#[test]
fn trailing_and_truncated_bodies_are_refused() {
    assert_eq!(
        decode::<u16>(&[0x05, 0x00]),
        Err(DecodeError::TrailingBytes { count: 1 })
    );
    assert_eq!(decode::<(u8, u8)>(&[0x05]), Err(DecodeError::Truncated));
    // A failure for one reason must not leak a stale bound violation into the next error.
    let _ = decode::<BoundedVec<u8, 1>>(&[0x02, 1, 2]);
    assert_eq!(decode::<(u8, u8)>(&[0x05]), Err(DecodeError::Truncated));
}

#[test]
fn overlong_varints_are_refused() {
    // 0x7f as a one-byte varint is canonical; `ff 00` encodes the same value in two bytes.
    assert_eq!(decode::<u32>(&[0x7f]), Ok(0x7f));
    assert_eq!(
        decode::<u32>(&[0xff, 0x00]),
        Err(DecodeError::NonCanonical { len: 2, canonical: 1 })
    );
    // The same inside a frame body found by the fuzzer: a u64 with a trailing zero continuation byte.
    let body = [0x00, 0xff, 0xfd, 0xff, 0xff, 0x00];
    assert!(matches!(
        decode::<(u8, u64)>(&body),
        Err(DecodeError::NonCanonical { len: 6, canonical: 5 })
    ));
}

#[test]
fn golden_bounded_encodings() {
    golden::check(
        &BoundedVec::<u16, 4>::try_from(vec![1, 300]).unwrap(),
        "02 01 ac02",
    );
    golden::check(&BoundedBytes::<4>::try_from(vec![0xde, 0xad]).unwrap(), "02 dead");
    golden::check(&BoundedString::<8>::try_from("hi").unwrap(), "02 6869");
}

#[test]
fn protocol_ids_are_checked() {
    const KAD: ProtocolId = ProtocolId::new("/meshwork/kad/1");
    assert_eq!(KAD.name(), "/meshwork/kad");
    assert_eq!(KAD.version(), Some(1));
    for bad in [
        "",
        "meshwork/kad/1",
        "/meshwork/kad/",
        "/meshwork//1",
        "/1",
        "/meshwork/kad/v1",
        "/a b/1",
    ] {
        assert!(ProtocolId::check(bad.as_bytes()).is_err(), "{bad:?}");
    }
    assert_eq!(
        ProtocolId::check(&[b'/'; 65]),
        Err(ProtocolIdError::Length { len: 65 })
    );
    let known = [KAD, ProtocolId::new("/meshwork/gossip/1")];
    assert_eq!(ProtocolId::lookup(b"/meshwork/kad/1", &known), Ok(KAD));
    assert_eq!(
        ProtocolId::lookup(b"/meshwork/kad/2", &known),
        Err(ProtocolIdError::Unsupported)
    );
    assert_eq!(
        ProtocolId::lookup(b"kad", &known),
        Err(ProtocolIdError::Malformed)
    );
}

#[test]
fn instants_saturate_instead_of_overflowing() {
    let t = Instant::from_nanos(5);
    assert_eq!(t + Duration::from_nanos(7), Instant::from_nanos(12));
    assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
    assert_eq!(Instant::ZERO - t, Duration::ZERO);
    assert_eq!(t - Instant::ZERO, Duration::from_nanos(5));
    assert_eq!(
        Instant::from_duration(Duration::from_millis(3)).as_nanos(),
        3_000_000
    );
}

proptest! {
    #[test]
    fn bounded_types_round_trip(
        v in proptest::collection::vec(any::<u32>(), 0..=16),
        b in proptest::collection::vec(any::<u8>(), 0..=64),
        s in "[a-z]{0,32}",
    ) {
        let v: BoundedVec<u32, 16> = v.try_into().unwrap();
        let b: BoundedBytes<64> = b.try_into().unwrap();
        let s: BoundedString<32> = s.try_into().unwrap();
        let value = (v, b, s);
        let bytes = encode(&value).unwrap();
        prop_assert_eq!(encoded_len(&value).unwrap(), bytes.len());
        prop_assert_eq!(decode::<(BoundedVec<u32, 16>, BoundedBytes<64>, BoundedString<32>)>(&bytes).unwrap(), value);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_bounded_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode::<BoundedVec<BoundedBytes<8>, 4>>(&bytes);
        let _ = decode::<BoundedString<16>>(&bytes);
        let _ = decode::<meshwork_wire::PeerId>(&bytes);
    }
}
