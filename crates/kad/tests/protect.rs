//! Kademlia keeps no connection per routing-table entry: a peer's connection is protected from the
//! driver's connection manager only while a request to it is outstanding, and released when the
//! last one ends, whether it was answered, timed out or failed.
#![allow(clippy::unwrap_used)]

#[path = "support/node.rs"]
mod node;

use meshwork_kad::message::Response;
use meshwork_kad::{Config, Message, Timer};
use meshwork_wire::{BoundedVec, Input, Output};
use node::*;

#[test]
fn a_peer_is_protected_while_a_request_waits_on_it_and_released_after_its_answer() {
    let mut node = Node::new(Config::default());
    let out = bootstrap(&mut node, &[1]);
    // Protected before the dial, so the connection is protected from the moment it is up.
    assert_eq!(protections(&out), [(peer(1), true)]);
    assert!(out.iter().any(|o| matches!(o, Output::Dial(p) if *p == peer(1))));
    assert!(node.kad.is_waiting_on(&peer(1)));

    let out = node.connect(1);
    let (id, _) = requests_to(&out, peer(1))[0].clone();
    assert!(protections(&out).is_empty(), "still one request: no change");
    let answer = Message::Response {
        id,
        response: Response::Nodes {
            closer: BoundedVec::default(),
        },
    };
    let out = node.from(1, answer);
    assert!(
        protections(&out).contains(&(peer(1), false)),
        "answered: the connection is no longer needed ({out:?})"
    );
    assert!(!node.kad.is_waiting_on(&peer(1)));
}

#[test]
fn a_request_that_times_out_or_fails_releases_its_peer_too() {
    let mut node = Node::new(Config::default());
    let out = bootstrap(&mut node, &[1, 2]);
    let mut protected = protections(&out);
    protected.sort();
    let mut want = vec![(peer(1), true), (peer(2), true)];
    want.sort();
    assert_eq!(protected, want, "the lookup asks both, closest first");
    // Peer 1's connection fails; peer 2's request times out.
    let out = node.input(Input::PeerDown(peer(1)));
    assert!(protections(&out).contains(&(peer(1), false)), "{out:?}");
    let out = node.connect(2);
    assert_eq!(requests_to(&out, peer(2)).len(), 1);
    node.now += Config::default().request_timeout;
    let out = node.input(Input::Timer(Timer::Deadlines));
    assert!(protections(&out).contains(&(peer(2), false)), "{out:?}");
    assert!(!node.kad.is_waiting_on(&peer(1)) && !node.kad.is_waiting_on(&peer(2)));
}
