//! Golden test vectors: pin the exact bytes of an encoding in a test.
//!
//! A wire format is a promise to every peer already deployed. Pinning each message type's bytes in a test
//! turns an accidental change (a reordered field, a new enum variant in the middle) into a failing test, and
//! a deliberate one into a visible diff of hex strings.
//!
//! ```
//! meshwork_wire::golden::check(&(7u8, 300u16), "07ac02");
//! ```

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Asserts that `value` encodes to exactly `expected_hex` (whitespace ignored), and that decoding those
/// bytes gives `value` back.
///
/// # Panics
/// On any mismatch, with both encodings in the message. Meant for tests.
#[track_caller]
pub fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T, expected_hex: &str) {
    let expected: String = expected_hex.split_whitespace().collect();
    let actual = match crate::encode(value) {
        Ok(bytes) => hex::encode(bytes),
        Err(err) => panic!("golden vector: {value:?} does not encode: {err}"),
    };
    assert_eq!(
        actual, expected,
        "golden vector: the encoding of {value:?} changed"
    );
    let bytes = match hex::decode(&expected) {
        Ok(bytes) => bytes,
        Err(err) => panic!("golden vector: expected hex is not hex: {err}"),
    };
    match crate::decode::<T>(&bytes) {
        Ok(back) => assert_eq!(
            &back, value,
            "golden vector: decoding does not give the value back"
        ),
        Err(err) => panic!("golden vector: {expected} does not decode: {err}"),
    }
}
