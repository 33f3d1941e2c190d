//! `Domain` gives exactly what `Hash::derive` gives.
#![allow(clippy::unwrap_used)]

use meshwork_identity::{Domain, Hash};
use proptest::prelude::*;

proptest! {
    #[test]
    fn a_domain_derives_what_hash_derive_does(
        context in "[a-z0-9 .-]{0,40}",
        data in proptest::collection::vec(any::<u8>(), 0..3000),
    ) {
        let domain = Domain::new(&context);
        prop_assert_eq!(domain.derive(&data), Hash::derive(&context, &data));
        // A domain is used again and again: the second digest is the same, and a different input
        // gives a different one.
        prop_assert_eq!(domain.derive(&data), Hash::derive(&context, &data));
        let mut other = data.clone();
        other.push(1);
        prop_assert_ne!(domain.derive(&other), domain.derive(&data));
    }
}
