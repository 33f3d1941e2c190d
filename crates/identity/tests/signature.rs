//! Domain-separated signing and verification, one at a time and in batches.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use meshwork_identity::{BatchVerifier, Hash, Keypair, Namespace, Signature, VerifyError};
use proptest::prelude::*;

const TX: Namespace = Namespace::new(b"meshwork/test/tx/1");
const BLOCK: Namespace = Namespace::new(b"meshwork/test/block/1");

fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

#[test]
fn signature_verifies_only_in_its_own_namespace() {
    let alice = key(1);
    let sig = alice.sign(TX, b"pay bob 5");
    assert_eq!(alice.peer_id().verify(TX, b"pay bob 5", &sig), Ok(()));
    assert_eq!(
        alice.peer_id().verify(BLOCK, b"pay bob 5", &sig),
        Err(VerifyError::Invalid)
    );
}

#[test]
fn namespace_and_message_boundary_cannot_be_shifted() {
    // "ab" + "c" must not verify as "a" + "bc": the namespace's length is signed too.
    const AB: Namespace = Namespace::new(b"ab");
    const A: Namespace = Namespace::new(b"a");
    let alice = key(1);
    let sig = alice.sign(AB, b"c");
    assert!(alice.peer_id().verify(A, b"bc", &sig).is_err());
}

#[test]
fn wrong_key_and_tampered_message_fail() {
    let sig = key(1).sign(TX, b"hello");
    assert!(key(2).peer_id().verify(TX, b"hello", &sig).is_err());
    assert!(key(1).peer_id().verify(TX, b"hellO", &sig).is_err());
    let mut bytes = *sig.as_bytes();
    bytes[10] ^= 1;
    assert!(
        key(1)
            .peer_id()
            .verify(TX, b"hello", &Signature::from_bytes(bytes))
            .is_err()
    );
}

#[test]
fn non_canonical_s_is_refused() {
    // Adding the group order L to s gives the same point equation but a non-canonical scalar.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let alice = key(3);
    let sig = alice.sign(TX, b"m");
    let mut bytes = *sig.as_bytes();
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(bytes[32 + i]) + u16::from(L[i]) + carry;
        bytes[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "s + L fits in 256 bits for this key");
    let malleated = Signature::from_bytes(bytes);
    assert!(alice.peer_id().verify(TX, b"m", &malleated).is_err());
    let mut batch = BatchVerifier::new();
    batch.push(&alice.peer_id(), TX, b"m", &malleated);
    assert!(batch.verify().is_err());
}

#[test]
fn batch_of_valid_signatures_verifies_and_reports_the_first_bad_one() {
    let keys: Vec<Keypair> = (0..64).map(key).collect();
    let msgs: Vec<Vec<u8>> = (0..64u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let sigs: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(TX, m)).collect();

    let mut batch = BatchVerifier::with_capacity(64);
    for ((k, m), s) in keys.iter().zip(&msgs).zip(&sigs) {
        batch.push(&k.peer_id(), TX, m, s);
    }
    assert_eq!(batch.len(), 64);
    assert_eq!(batch.verify(), Ok(()));

    let mut batch = BatchVerifier::new();
    for (i, ((k, m), s)) in keys.iter().zip(&msgs).zip(&sigs).enumerate() {
        let ns = if i == 37 || i == 50 { BLOCK } else { TX };
        batch.push(&k.peer_id(), ns, m, s);
    }
    assert_eq!(batch.verify(), Err(VerifyError::InvalidInBatch { index: 37 }));
    assert_eq!(BatchVerifier::new().verify(), Ok(()));
}

proptest! {
    #[test]
    fn sign_verify_round_trip(seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..512)) {
        let k = Keypair::from_seed(seed);
        let sig = k.sign(TX, &msg);
        prop_assert!(k.peer_id().verify(TX, &msg, &sig).is_ok());
        prop_assert!(k.peer_id().verify(BLOCK, &msg, &sig).is_err());
    }

    /// A batch accepts exactly when every signature would verify alone.
    #[test]
    fn batch_agrees_with_single_verification(corrupt in proptest::collection::vec(any::<bool>(), 1..12)) {
        let mut batch = BatchVerifier::new();
        let mut first_bad = None;
        for (i, &bad) in corrupt.iter().enumerate() {
            let k = key(i as u8);
            let msg = [i as u8; 8];
            let mut sig = *k.sign(TX, &msg).as_bytes();
            if bad {
                sig[0] ^= 0x80;
                first_bad.get_or_insert(i);
            }
            let sig = Signature::from_bytes(sig);
            prop_assert_eq!(k.peer_id().verify(TX, &msg, &sig).is_ok(), !bad);
            batch.push(&k.peer_id(), TX, &msg, &sig);
        }
        match first_bad {
            None => prop_assert_eq!(batch.verify(), Ok(())),
            Some(index) => prop_assert_eq!(batch.verify(), Err(VerifyError::InvalidInBatch { index })),
        }
    }

    #[test]
    fn signature_and_hash_text_forms_round_trip(bytes in any::<[u8; 32]>()) {
        let sig = Signature::from_bytes([bytes, bytes].concat().try_into().unwrap());
        prop_assert_eq!(sig.to_string().parse::<Signature>().unwrap(), sig);
        let bin = postcard::to_stdvec(&sig).unwrap();
        prop_assert_eq!(bin.len(), 64);
        prop_assert_eq!(postcard::from_bytes::<Signature>(&bin).unwrap(), sig);
        let hash = Hash::digest(&bytes);
        prop_assert_eq!(hash.to_string().parse::<Hash>().unwrap(), hash);
        prop_assert_eq!(postcard::from_bytes::<Hash>(&postcard::to_stdvec(&hash).unwrap()).unwrap(), hash);
    }
}

#[test]
fn malformed_signature_text_is_rejected() {
    assert!("zz".repeat(64).parse::<Signature>().is_err());
    assert!("ab".repeat(63).parse::<Signature>().is_err());
    assert!("ab".repeat(65).parse::<Signature>().is_err());
}

#[test]
fn hash_golden_vectors() {
    // blake3("") and blake3("abc") from the BLAKE3 reference test vectors.
    assert_eq!(
        Hash::digest(b"").to_string(),
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    );
    assert_eq!(
        Hash::digest(b"abc").to_string(),
        "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
    );
    assert_eq!(Hash::digest_parts(&[b"a", b"bc"]), Hash::digest(b"abc"));
    assert_ne!(Hash::derive("ctx one", b"abc"), Hash::derive("ctx two", b"abc"));
    assert_eq!(
        Hash::from_bytes([
            0, 0, 0x0f, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0
        ])
        .leading_zero_bits(),
        20
    );
}
