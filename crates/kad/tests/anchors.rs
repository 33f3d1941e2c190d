//! Anchors: each of the farthest buckets keeps one peer whose connection stays protected and in use,
//! and a lookup asks a peer it holds a connection to in its first round, besides the `α` closest.
#![allow(clippy::unwrap_used)]

#[path = "support/node.rs"]
mod node;

use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_kad::message::{Request, Response};
use meshwork_kad::{Command, Config, Key, Message, QueryId, Timer};
use meshwork_wire::{BoundedVec, Input, Output};
use node::*;

/// The dials in `out`.
fn dials(out: &Outs) -> Vec<PeerId> {
    out.iter()
        .filter_map(|o| match o {
            Output::Dial(p) => Some(*p),
            _ => None,
        })
        .collect()
}

fn nodes(id: u64) -> Message {
    Message::Response {
        id,
        response: Response::Nodes {
            closer: BoundedVec::default(),
        },
    }
}

/// A lookup of `target` from `node`; returns its outputs.
fn find(node: &mut Node, query: u64, target: u64) -> Outs {
    node.input(Input::Command(Command::FindNode {
        query: QueryId(query),
        target: Key::from_peer(&peer(target)),
    }))
}

/// Node 0 with peer `a` of bucket 0 admitted (connected) and made its anchor by answering a lookup.
/// Returns the outputs of that answer.
fn anchored(node: &mut Node, a: u64, target: u64) -> Outs {
    admit(node, a);
    let out = find(node, 100 + a, target);
    let (id, _) = requests_to(&out, peer(a))[0].clone();
    node.from(a, nodes(id))
}

/// Node 0 with an anchor in bucket 0, and that anchor.
fn with_anchor() -> (Node, u64) {
    let far = in_bucket(0, 2);
    let mut node = Node::new(Config::default());
    anchored(&mut node, far[0], far[1]);
    (node, far[0])
}

#[test]
fn the_first_peer_of_a_far_bucket_that_answers_over_a_connection_is_its_anchor_and_stays_protected() {
    let far = in_bucket(0, 3);
    let (a, b) = (far[0], far[1]);
    let mut node = Node::new(Config::default());
    let out = anchored(&mut node, a, far[2]);
    assert!(
        protections(&out).is_empty(),
        "the request's protection carries over to the anchor, never released in between: {out:?}"
    );
    assert_eq!(node.kad.anchors().collect::<Vec<_>>(), [peer(a)]);
    assert_eq!(
        timer_in(&out, &Timer::Keepalive),
        Some(Config::default().anchor_keepalive),
        "{out:?}"
    );

    // A second peer of the same bucket answers: the bucket has its anchor, so `b` is released.
    admit(&mut node, b);
    let out = find(&mut node, 2, b);
    let (id, _) = requests_to(&out, peer(b))[0].clone();
    let out = node.from(b, nodes(id));
    assert_eq!(protections(&out), [(peer(b), false)]);
    assert_eq!(node.kad.anchors().collect::<Vec<_>>(), [peer(a)]);
}

#[test]
fn a_seed_or_a_peer_of_a_near_bucket_is_no_anchor() {
    let mut node = Node::new(Config::default());
    // The seed of a join is every joining node's first answer.
    let seed = in_bucket(0, 1)[0];
    bootstrap(&mut node, &[seed]);
    let out = node.connect(seed);
    let (id, _) = requests_to(&out, peer(seed))[0].clone();
    let out = node.from(seed, nodes(id));
    assert!(protections(&out).contains(&(peer(seed), false)), "{out:?}");
    assert_eq!(node.kad.anchors().count(), 0);

    // Bucket 3 is the last of the three farthest (the default); bucket 4 keeps none.
    let near = in_bucket(4, 2);
    let out = anchored(&mut node, near[0], near[1]);
    assert!(protections(&out).contains(&(peer(near[0]), false)), "{out:?}");
    assert_eq!(node.kad.anchors().count(), 0);
    let third = in_bucket(2, 2);
    anchored(&mut node, third[0], third[1]);
    assert_eq!(node.kad.anchors().collect::<Vec<_>>(), [peer(third[0])]);
}

#[test]
fn a_quiet_anchor_is_pinged_and_a_busy_one_is_not() {
    let (mut node, a) = with_anchor();
    let period = Config::default().anchor_keepalive;

    // Two thirds of a period on, the anchor asks us something: its connection is in use.
    node.now += period * 2 / 3;
    node.from(
        a,
        Message::Request {
            id: 7,
            request: Request::Ping,
        },
    );
    node.now += period / 3;
    let out = node.input(Input::Timer(Timer::Keepalive));
    assert!(
        requests_to(&out, peer(a)).is_empty(),
        "busy a third of a period ago: {out:?}"
    );
    assert_eq!(
        timer_in(&out, &Timer::Keepalive),
        Some(period * 2 / 3),
        "set for when it is due"
    );

    // Quiet for a whole period: pinged, over the connection it has.
    node.now += period * 2 / 3;
    let out = node.input(Input::Timer(Timer::Keepalive));
    let pings = requests_to(&out, peer(a));
    assert!(matches!(pings.as_slice(), [(_, Request::Ping)]), "{out:?}");
    assert!(protections(&out).is_empty(), "an anchor stays protected: {out:?}");
    // Set for the recruiting of buckets 1 and 2 (empty), a period after the first: before the
    // anchor's next ping, a period from now.
    assert_eq!(timer_in(&out, &Timer::Keepalive), Some(period / 3));
    let out = node.from(
        a,
        Message::Response {
            id: pings[0].0,
            response: Response::Pong,
        },
    );
    assert!(protections(&out).is_empty(), "{out:?}");
    assert_eq!(node.kad.totals().anchor_pings, 1);
    assert_eq!(node.kad.anchors().count(), 1);
}

#[test]
fn an_anchor_whose_connection_closes_is_released_at_once_and_stays_in_the_table() {
    let (mut node, a) = with_anchor();
    let out = node.input(Input::PeerDown(peer(a)));
    assert_eq!(protections(&out), [(peer(a), false)]);
    assert!(dials(&out).is_empty(), "not dialled again: {out:?}");
    assert_eq!(node.kad.anchors().count(), 0);
    assert!(
        node.kad.routing_table().contains(&peer(a)),
        "a closed connection says nothing of the peer"
    );
}

#[test]
fn a_far_bucket_without_an_anchor_recruits_one_a_keepalive_period_after_it_lost_it() {
    let (mut node, a) = with_anchor();
    node.input(Input::PeerDown(peer(a)));
    assert_eq!(node.kad.anchors().count(), 0);

    // At the keep-alive timer it had set, the bucket asks its peer (still in the table, no longer
    // connected) again.
    let period = Config::default().anchor_keepalive;
    node.now += period;
    let out = node.input(Input::Timer(Timer::Keepalive));
    assert_eq!(dials(&out), [peer(a)], "{out:?}");
    assert_eq!(protections(&out), [(peer(a), true)]);
    let out = node.connect(a);
    let pings = requests_to(&out, peer(a));
    assert!(matches!(pings.as_slice(), [(_, Request::Ping)]), "{out:?}");
    let out = node.from(
        a,
        Message::Response {
            id: pings[0].0,
            response: Response::Pong,
        },
    );
    assert!(
        protections(&out).is_empty(),
        "kept protected as the anchor: {out:?}"
    );
    assert_eq!(node.kad.anchors().collect::<Vec<_>>(), [peer(a)]);
    assert_eq!(
        timer_in(&out, &Timer::Keepalive),
        None,
        "the pending timer serves"
    );
}

#[test]
fn a_bucket_recruits_once_a_period_and_not_while_a_candidate_is_asked() {
    let (mut node, a) = with_anchor();
    let b = in_bucket(0, 3)[2];
    admit(&mut node, b);
    node.input(Input::PeerDown(peer(a)));
    let period = Config::default().anchor_keepalive;
    node.now += period;
    let out = node.input(Input::Timer(Timer::Keepalive));
    // The peer it holds a connection to, not the one seen last.
    assert_eq!(requests_to(&out, peer(b)).len(), 1, "{out:?}");
    assert!(
        requests_to(&out, peer(a)).is_empty() && dials(&out).is_empty(),
        "{out:?}"
    );
    // The timer fires again (one set before, superseded): nothing more is asked.
    let out = node.input(Input::Timer(Timer::Keepalive));
    assert!(requests_to(&out, peer(a)).is_empty() && requests_to(&out, peer(b)).is_empty());
    assert!(dials(&out).is_empty(), "{out:?}");
}

#[test]
fn a_joining_node_sets_the_timer_that_recruits_its_anchors() {
    let seed = in_bucket(0, 1)[0];
    let mut node = Node::new(Config::default());
    let out = bootstrap(&mut node, &[seed]);
    let period = Config::default().anchor_keepalive;
    assert_eq!(timer_in(&out, &Timer::Keepalive), Some(period), "{out:?}");
    // The seed is its only peer: no candidate, nothing sent.
    node.now += period;
    let out = node.input(Input::Timer(Timer::Keepalive));
    assert!(requests_to(&out, peer(seed)).is_empty(), "{out:?}");
}

#[test]
fn an_anchor_that_does_not_answer_its_ping_is_released_with_a_failure_counted_and_the_next_peer_of_its_bucket_to_answer_takes_its_place()
 {
    let far = in_bucket(0, 3);
    let (a, b) = (far[0], far[1]);
    let mut node = Node::new(Config::default());
    anchored(&mut node, a, far[2]);
    let period = Config::default().anchor_keepalive;
    node.now += period;
    let out = node.input(Input::Timer(Timer::Keepalive));
    assert_eq!(requests_to(&out, peer(a)).len(), 1);
    // The connection stays up, but nothing answers.
    node.now += Config::default().request_timeout + Duration::from_secs(1);
    let out = node.input(Input::Timer(Timer::Deadlines));
    assert_eq!(protections(&out), [(peer(a), false)], "released: {out:?}");
    assert_eq!(node.kad.anchors().count(), 0);
    // It answered a keepalive period ago: one failure does not evict it (`Config::max_failures`).
    let entry = node.kad.routing_table().get(&peer(a)).cloned();
    assert_eq!(entry.map(|e| e.failures), Some(1));
    assert_eq!(timer_in(&out, &Timer::Keepalive), None, "no anchor left to keep");

    anchored(&mut node, b, far[2]);
    assert_eq!(node.kad.anchors().collect::<Vec<_>>(), [peer(b)]);
}

/// Node 0 (one lookup path, no anchors) with `peers` in its table, connected only to `connected`.
fn with_table(peers: &[u64], connected: &[u64]) -> Node {
    let mut config = Config::default();
    config.disjoint_paths = 1;
    config.anchors = 0;
    let mut node = Node::new(config);
    for &p in peers {
        admit(&mut node, p);
        if !connected.contains(&p) {
            node.input(Input::PeerDown(peer(p)));
        }
    }
    node
}

#[test]
fn a_lookup_asks_a_connected_peer_at_once_besides_dialling_the_alpha_closest() {
    // Six peers of bucket 0 in the table; the lookup's target is a seventh, and the six are ranked
    // by their distance from it.
    let far = in_bucket(0, 7);
    let target = far[0];
    let mut ranked: Vec<u64> = far[1..].to_vec();
    ranked.sort_by_key(|&p| Key::from_peer(&peer(p)).distance(&Key::from_peer(&peer(target))));
    let sorted = |mut peers: Vec<PeerId>| {
        peers.sort();
        peers
    };
    let closest = sorted(ranked[..3].iter().map(|&p| peer(p)).collect());

    // Cold: the α closest, dialled.
    let mut node = with_table(&ranked, &[]);
    let out = find(&mut node, 1, target);
    assert_eq!(sorted(dials(&out)), closest, "{out:?}");

    // The farthest is connected: asked at once, and the α closest still dialled.
    let warm = *ranked.last().unwrap();
    let mut node = with_table(&ranked, &[warm]);
    let out = find(&mut node, 1, target);
    assert_eq!(requests_to(&out, peer(warm)).len(), 1, "{out:?}");
    assert_eq!(sorted(dials(&out)), closest, "{out:?}");

    // A connected peer among the α closest is asked in the first round anyway: nothing is added.
    let mut node = with_table(&ranked, &[ranked[0], warm]);
    let out = find(&mut node, 1, target);
    assert_eq!(requests_to(&out, peer(ranked[0])).len(), 1, "{out:?}");
    assert!(requests_to(&out, peer(warm)).is_empty(), "{out:?}");
    assert_eq!(dials(&out).len(), 2, "{out:?}");
}
