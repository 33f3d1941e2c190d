//! Wire messages: golden vectors, bounds, and record signatures.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use meshwork_identity::{Keypair, Namespace};
use meshwork_kad::message::{MAX_PEERS, MAX_VALUE, Request, Response};
use meshwork_kad::{Address, Kademlia, Key, Message, PeerInfo, Record, RecordError};
use meshwork_wire::{BoundedBytes, BoundedVec, DecodeError, Instant, Protocol, golden};
use node::signed_by_hand;
use proptest::prelude::*;

#[path = "support/node.rs"]
mod node;

fn alice() -> Keypair {
    Keypair::from_seed([1; 32])
}

fn info() -> PeerInfo {
    PeerInfo {
        id: alice().peer_id(),
        addr: Address::V4 {
            ip: [10, 0, 0, 1],
            port: 4000,
        },
    }
}

/// The wire sample: the same bytes since the first release (an encoding pins bytes, not validity;
/// this key admits nobody).
fn record() -> Record {
    signed_by_hand(&alice(), Key::from_bytes([7; 32]), b"hi", 1_000)
}

/// A valid record under a shared name, so that any change of a field but the key fails on the
/// signature.
fn named_record() -> Record {
    Record::sign(
        &alice(),
        Key::for_name(b"hi"),
        b"hi".to_vec(),
        Instant::from_nanos(1_000),
    )
    .unwrap()
}

fn samples() -> Vec<(&'static str, Message)> {
    let req = |request| Message::Request { id: 5, request };
    let resp = |response| Message::Response { id: 5, response };
    let peers = BoundedVec::try_from(vec![info()]).unwrap();
    vec![
        ("ping", req(Request::Ping)),
        (
            "find_node",
            req(Request::FindNode {
                target: Key::from_bytes([2; 32]),
            }),
        ),
        (
            "get_value",
            req(Request::GetValue {
                key: Key::from_bytes([3; 32]),
            }),
        ),
        ("put_value", req(Request::PutValue { record: record() })),
        (
            "add_provider",
            req(Request::AddProvider {
                key: Key::from_bytes([4; 32]),
                addr: Address::Opaque(Box::new(BoundedBytes::try_from(b"mem".to_vec()).unwrap())),
            }),
        ),
        (
            "get_providers",
            req(Request::GetProviders {
                key: Key::from_bytes([4; 32]),
            }),
        ),
        ("pong", resp(Response::Pong)),
        (
            "nodes",
            resp(Response::Nodes {
                closer: peers.clone(),
            }),
        ),
        (
            "value",
            resp(Response::Value {
                record: Some(record()),
                closer: BoundedVec::default(),
            }),
        ),
        ("stored", resp(Response::Stored { ok: true })),
        (
            "providers",
            resp(Response::Providers {
                providers: peers,
                closer: BoundedVec::default(),
            }),
        ),
        (
            "v6",
            resp(Response::Nodes {
                closer: BoundedVec::try_from(vec![PeerInfo {
                    id: alice().peer_id(),
                    addr: Address::V6 {
                        ip: [0xfe; 16],
                        port: 1,
                    },
                }])
                .unwrap(),
            }),
        ),
    ]
}

/// The pinned encodings, by sample name. A change here is a wire change: bump the protocol version.
const GOLDEN: &[(&str, &[&str])] = &[
    ("ping", &["000500"]),
    (
        "find_node",
        &["0005010202020202020202020202020202020202020202020202020202020202020202"],
    ),
    (
        "get_value",
        &["0005020303030303030303030303030303030303030303030303030303030303030303"],
    ),
    (
        "put_value",
        &[
            "00050307070707070707070707070707070707070707070707070707070707070707070268698a88e3dd7409f195fd52",
            "db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5ce80778fd7279e5cb0eb100bce058fa945d77ae65ccec687332a3",
            "6903ab786cfad96dce2c6150bc38ddb9ef0aa5d8a87d3b2c8888ec2325ae0d051145280785610f03",
        ],
    ),
    (
        "add_provider",
        &["000504040404040404040404040404040404040404040404040404040404040404040402036d656d"],
    ),
    (
        "get_providers",
        &["0005050404040404040404040404040404040404040404040404040404040404040404"],
    ),
    ("pong", &["010500"]),
    (
        "nodes",
        &["010501018a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c000a000001a01f"],
    ),
    (
        "value",
        &[
            "0105020107070707070707070707070707070707070707070707070707070707070707070268698a88e3dd7409f195fd",
            "52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5ce80778fd7279e5cb0eb100bce058fa945d77ae65ccec687332",
            "a36903ab786cfad96dce2c6150bc38ddb9ef0aa5d8a87d3b2c8888ec2325ae0d051145280785610f0300",
        ],
    ),
    ("stored", &["01050301"]),
    (
        "providers",
        &["010504018a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c000a000001a01f00"],
    ),
    (
        "v6",
        &[
            "010501018a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c01fefefefefefefefefefefe",
            "fefefefefe01",
        ],
    ),
];

#[test]
fn golden_vectors() {
    let samples = samples();
    assert_eq!(samples.len(), GOLDEN.len());
    for ((name, msg), (golden_name, hex)) in samples.iter().zip(GOLDEN) {
        assert_eq!(name, golden_name);
        golden::check(msg, &hex.concat());
    }
}

#[test]
fn every_message_decodes_only_from_its_exact_bytes() {
    for (_, msg) in samples() {
        let mut bytes = meshwork_wire::encode(&msg).unwrap();
        bytes.push(0);
        assert!(matches!(
            meshwork_wire::decode::<Message>(&bytes),
            Err(DecodeError::TrailingBytes { .. })
        ));
        bytes.truncate(bytes.len() - 2);
        assert!(meshwork_wire::decode::<Message>(&bytes).is_err());
    }
}

#[test]
fn a_maximal_message_fits_the_protocol_bound() {
    let big_addr = Address::Opaque(Box::new(
        BoundedBytes::try_from(vec![0xab; meshwork_kad::MAX_OPAQUE_ADDRESS]).unwrap(),
    ));
    let peer = PeerInfo {
        id: alice().peer_id(),
        addr: big_addr,
    };
    let full = BoundedVec::try_from(vec![peer; MAX_PEERS]).unwrap();
    let big = Record::sign(
        &alice(),
        Key::for_record(&alice().peer_id(), b"big"),
        vec![0xcd; MAX_VALUE],
        Instant::MAX,
    )
    .unwrap();
    let limit = <Kademlia as Protocol>::MAX_MESSAGE_SIZE;
    let value = Message::Response {
        id: u64::MAX,
        response: Response::Value {
            record: Some(big),
            closer: full.clone(),
        },
    };
    let providers = Message::Response {
        id: u64::MAX,
        response: Response::Providers {
            providers: full.clone(),
            closer: full,
        },
    };
    for msg in [value, providers] {
        let len = meshwork_wire::encoded_len(&msg).unwrap();
        assert!(len <= limit, "{len} > {limit}");
    }
}

#[test]
fn more_than_max_peers_is_refused_while_decoding() {
    // A well-formed Nodes response with 21 peers.
    let mut bytes = vec![0x01, 0x05, 0x01];
    bytes.extend(meshwork_wire::encode(&vec![info(); MAX_PEERS + 1]).unwrap());
    assert!(matches!(
        meshwork_wire::decode::<Message>(&bytes),
        Err(DecodeError::OverBound { .. })
    ));
}

#[test]
fn records_verify_only_as_signed() {
    let now = Instant::from_nanos(500);
    let ttl = Duration::from_secs(1);
    let good = named_record();
    assert_eq!(good.verify(now, ttl), Ok(()));
    let mut tampered = good.clone();
    tampered.value = BoundedBytes::try_from(b"ho".to_vec()).unwrap();
    assert_eq!(tampered.verify(now, ttl), Err(RecordError::BadSignature));
    let mut moved = good.clone();
    moved.key = Key::for_name(b"ho");
    assert_eq!(moved.verify(now, ttl), Err(RecordError::BadSignature));
    let mut extended = good.clone();
    extended.expires += 1;
    assert_eq!(extended.verify(now, ttl), Err(RecordError::BadSignature));
    let mut stolen = good.clone();
    stolen.publisher = Keypair::from_seed([2; 32]).peer_id();
    assert_eq!(stolen.verify(now, ttl), Err(RecordError::BadSignature));
    assert_eq!(
        good.verify(Instant::from_nanos(1_000), ttl),
        Err(RecordError::Expired)
    );
    assert_eq!(
        good.verify(now, Duration::from_nanos(10)),
        Err(RecordError::TooFarInFuture)
    );
    // The same bytes signed in another namespace are not a record signature.
    let other = Namespace::new(b"meshwork/other/1");
    let mut forged = good;
    forged.signature = alice().sign(other, b"anything");
    assert_eq!(forged.verify(now, ttl), Err(RecordError::BadSignature));
    assert!(matches!(
        Record::sign(
            &alice(),
            Key::for_name(b"big"),
            vec![0; MAX_VALUE + 1],
            Instant::MAX
        ),
        Err(RecordError::TooLarge { .. })
    ));
}

#[test]
fn a_record_key_admits_its_own_publisher_or_anyone_for_a_shared_name() {
    let (bob, now, ttl) = (
        Keypair::from_seed([2; 32]),
        Instant::from_nanos(500),
        Duration::from_secs(1),
    );
    let (a, b) = (alice().peer_id(), bob.peer_id());
    let own = Key::for_record(&a, b"home");
    assert!(own.admits_publisher(&a) && !own.admits_publisher(&b));
    assert_ne!(
        own,
        Key::for_record(&b, b"home"),
        "one name, one key per publisher"
    );
    assert_ne!(own, Key::for_record(&a, b"away"));
    let shared = Key::for_name(b"home");
    assert!(shared.admits_publisher(&a) && shared.admits_publisher(&b));
    assert_ne!(shared.as_bytes()[..16], own.as_bytes()[..16], "placed apart");
    // Any other tail admits nobody.
    let made_up = Key::from_bytes([7; 32]);
    assert!(!made_up.admits_publisher(&a) && !made_up.admits_publisher(&b));

    // Bob cannot sign under Alice's key, and a record he signs by hand, with a signature that
    // verifies, is refused before the signature is looked at.
    assert_eq!(
        Record::sign(&bob, own, b"squat".to_vec(), Instant::from_nanos(1_000)),
        Err(RecordError::ForeignKey)
    );
    let squat = signed_by_hand(&bob, own, b"squat", 1_000);
    assert_eq!(squat.verify(now, ttl), Err(RecordError::ForeignKey));
    // The same made by Alice is hers.
    assert_eq!(
        signed_by_hand(&alice(), own, b"mine", 1_000).verify(now, ttl),
        Ok(())
    );
    assert_eq!(
        signed_by_hand(&alice(), made_up, b"mine", 1_000).verify(now, ttl),
        Err(RecordError::ForeignKey)
    );
}

fn arb_key() -> impl Strategy<Value = Key> {
    any::<[u8; 32]>().prop_map(Key::from_bytes)
}

fn arb_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::Ping),
        arb_key().prop_map(|target| Request::FindNode { target }),
        arb_key().prop_map(|key| Request::GetValue { key }),
        arb_key().prop_map(|key| Request::GetProviders { key }),
        (arb_key(), any::<[u8; 4]>(), any::<u16>()).prop_map(|(key, ip, port)| Request::AddProvider {
            key,
            addr: Address::V4 { ip, port }
        }),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip(id in any::<u64>(), request in arb_request()) {
        let msg = Message::Request { id, request };
        let bytes = meshwork_wire::encode(&msg).unwrap();
        prop_assert_eq!(meshwork_wire::decode::<Message>(&bytes).unwrap(), msg);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = meshwork_wire::decode::<Message>(&bytes);
    }
}
