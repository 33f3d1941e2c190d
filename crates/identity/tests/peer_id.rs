//! PeerId: the text form, strict key checks, serde in both kinds of format.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use meshwork_identity::{Keypair, ParseError, PeerId};
use proptest::prelude::*;

/// RFC 8032 §7.1, test 1: the secret seed and the public key it must give.
const RFC8032_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const RFC8032_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
/// The base58 text of that public key, computed independently (Bitcoin alphabet).
const RFC8032_PEER_TEXT: &str = "FVen3X669xLzsi6N2V91DoiyzHzg1uAgqiT8jZ9nS96Z";

fn seed(hex_text: &str) -> [u8; 32] {
    let mut out = [0; 32];
    hex::decode_to_slice(hex_text, &mut out).unwrap();
    out
}

#[test]
fn golden_rfc8032_key_and_text_form() {
    let key = Keypair::from_seed(seed(RFC8032_SEED));
    assert_eq!(hex::encode(key.peer_id().as_bytes()), RFC8032_PUBLIC);
    assert_eq!(key.peer_id().to_string(), RFC8032_PEER_TEXT);
    assert_eq!(RFC8032_PEER_TEXT.parse::<PeerId>().unwrap(), key.peer_id());
    assert_eq!(format!("{:?}", key.peer_id()), "PeerId(FVen3X66)");
}

#[test]
fn golden_binary_form_is_the_32_key_bytes() {
    let peer = Keypair::from_seed(seed(RFC8032_SEED)).peer_id();
    meshwork_wire_free_golden(&peer);
}

// The identity crate does not depend on the wire crate, so pin postcard bytes directly here.
fn meshwork_wire_free_golden(peer: &PeerId) {
    let bytes = postcard::to_stdvec(peer).unwrap();
    assert_eq!(hex::encode(&bytes), RFC8032_PUBLIC);
    assert_eq!(postcard::from_bytes::<PeerId>(&bytes).unwrap(), *peer);
}

#[test]
fn malformed_text_is_rejected_with_a_clear_error() {
    // '0', 'O', 'I' and 'l' are not in the base58 alphabet.
    for bad in [
        "0VWhVnx6J",
        "OOOO",
        "Il",
        "FVen3X669xLzsi6N2V91DoiyzHzg1uAgqiT8jZ9nS96Z!",
    ] {
        let err = bad.parse::<PeerId>().unwrap_err();
        assert!(matches!(err, ParseError::Encoding { .. }), "{bad}: {err}");
    }
    assert!(matches!(
        "".parse::<PeerId>(),
        Err(ParseError::Length { got: 0, .. })
    ));
    // A prefix of a key's text decodes to fewer than 32 bytes.
    let short = &RFC8032_PEER_TEXT[..20];
    assert!(
        matches!(short.parse::<PeerId>(), Err(ParseError::Length { .. })),
        "{short}"
    );
    // Far too long text is refused before decoding.
    let long = "z".repeat(10_000);
    assert!(matches!(long.parse::<PeerId>(), Err(ParseError::Encoding { .. })));
    // 44 'z's decode to more than 32 bytes.
    assert!(matches!(
        "z".repeat(44).parse::<PeerId>(),
        Err(ParseError::Length { .. })
    ));
}

#[test]
fn weak_keys_are_refused() {
    // The identity point (y = 1) and the order-2 point (y = -1) have small order.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(PeerId::from_bytes(identity), Err(ParseError::WeakKey));
    let mut minus_one = [0xff_u8; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    assert_eq!(PeerId::from_bytes(minus_one), Err(ParseError::WeakKey));
    // Its text form is refused too.
    let text = bs58::encode(identity).into_string();
    assert_eq!(text.parse::<PeerId>(), Err(ParseError::WeakKey));
}

#[test]
fn non_canonical_encodings_are_refused() {
    // y = p + 1 (= 1 mod p) is a non-canonical encoding of the identity; y = 2^255 - 1 is not reduced.
    let mut p_plus_one = [0xff_u8; 32];
    p_plus_one[0] = 0xee;
    p_plus_one[31] = 0x7f;
    assert!(PeerId::from_bytes(p_plus_one).is_err());
    assert!(PeerId::from_bytes([0xff; 32]).is_err());
    assert!(matches!(
        PeerId::from_slice(&[1; 31]),
        Err(ParseError::Length {
            expected: 32,
            got: 31
        })
    ));
}

#[test]
fn json_uses_the_text_form() {
    let peer = Keypair::from_seed(seed(RFC8032_SEED)).peer_id();
    let json = serde_json::to_string(&peer).unwrap();
    assert_eq!(json, format!("\"{RFC8032_PEER_TEXT}\""));
    assert_eq!(serde_json::from_str::<PeerId>(&json).unwrap(), peer);
    // A weak key is refused in JSON as well.
    let weak = bs58::encode({
        let mut b = [0u8; 32];
        b[0] = 1;
        b
    })
    .into_string();
    assert!(serde_json::from_str::<PeerId>(&format!("\"{weak}\"")).is_err());
}

proptest! {
    #[test]
    fn text_and_binary_forms_round_trip(seed in any::<[u8; 32]>()) {
        let peer = Keypair::from_seed(seed).peer_id();
        let text = peer.to_string();
        prop_assert!(text.len() == 43 || text.len() == 44);
        prop_assert_eq!(text.parse::<PeerId>().unwrap(), peer);
        let bytes = postcard::to_stdvec(&peer).unwrap();
        prop_assert_eq!(postcard::from_bytes::<PeerId>(&bytes).unwrap(), peer);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,60}") {
        let _ = text.parse::<PeerId>();
    }

    #[test]
    fn arbitrary_bytes_either_parse_strictly_or_fail(bytes in any::<[u8; 32]>()) {
        if let Ok(peer) = PeerId::from_bytes(bytes) {
            prop_assert_eq!(peer.to_bytes(), bytes);
        }
    }
}
