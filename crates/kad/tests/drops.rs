//! Nothing is dropped silently: peers refused for their IP prefix and answers to no request of ours are
//! pushed as `Output::Dropped` (and counted in `Kademlia::totals`); accepted peers and late answers
//! are not reported as drops.
#![allow(clippy::unwrap_used)]

#[path = "support/node.rs"]
mod node;

use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_kad::message::{Request, Response};
use meshwork_kad::{Address, Command, Config, Message, PeerInfo, QueryId, Timer};
use meshwork_wire::{BoundedVec, DropReason, Input, Output};
use node::*;

/// An address in 10.9.9.0/24: every peer given one shares a prefix.
fn shared(p: u64) -> Address {
    Address::V4 {
        ip: [10, 9, 9, p as u8],
        port: 9,
    }
}

fn drops(out: &Outs) -> Vec<(PeerId, DropReason)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Dropped { peer, reason } => Some((*peer, *reason)),
            _ => None,
        })
        .collect()
}

/// `p` connects from `addr` and asks us something: the outputs of that request.
fn asks_from(node: &mut Node, p: u64, addr: Address) -> Outs {
    node.input(Input::Command(Command::PeerAddress { peer: peer(p), addr }));
    node.input(Input::PeerUp(peer(p)));
    node.from(
        p,
        Message::Request {
            id: 1,
            request: Request::Ping,
        },
    )
}

/// Admits `p`, observed at `addr`, through the inbound-ping path; every output on the way.
fn admit_from(node: &mut Node, p: u64, addr: Address) -> Outs {
    let mut all = asks_from(node, p, addr);
    if let Some((id, _)) = requests_to(&all, peer(p)).first().cloned() {
        all.extend(node.from(
            p,
            Message::Response {
                id,
                response: Response::Pong,
            },
        ));
    }
    all
}

fn empty_nodes() -> Response {
    Response::Nodes {
        closer: BoundedVec::default(),
    }
}

#[test]
fn a_peer_over_its_bucket_prefix_share_is_reported_when_it_asks_and_when_it_answers() {
    let mut node = Node::new(Config::default());
    // Default limits: two peers of one /24 per bucket.
    let p = in_bucket(0, 3);
    for &accepted in &p[..2] {
        let out = admit_from(&mut node, accepted, shared(accepted));
        assert!(node.kad.routing_table().contains(&peer(accepted)));
        assert!(
            drops(&out).is_empty(),
            "an accepted peer is no drop: {:?}",
            drops(&out)
        );
    }
    // The third asks us something: it is answered, but not pinged for the table, and that is reported.
    let out = asks_from(&mut node, p[2], shared(p[2]));
    assert!(requests_to(&out, peer(p[2])).is_empty());
    assert_eq!(responses(&out).len(), 1, "its request is still answered");
    assert_eq!(drops(&out), vec![(peer(p[2]), DropReason::PrefixLimit)]);
    assert_eq!(node.kad.totals().prefix_refused, 1);

    // A lookup in which a table peer names it: it is asked, its answer is used, but it stays out of
    // the table, and that is reported again. The table peers' answers are no drop.
    let mut waiting: Vec<(u64, u64)> = Vec::new();
    let mut reported = Vec::new();
    let mut asked_it = false;
    let mut out = node.input(Input::Command(Command::FindNode {
        query: QueryId(1),
        target: meshwork_kad::Key::from_peer(&peer(p[2])),
    }));
    // Until no request of the lookup waits (three peers: it ends).
    loop {
        reported.extend(drops(&out));
        for &q in &p {
            for (id, _) in requests_to(&out, peer(q)) {
                asked_it |= q == p[2];
                waiting.push((q, id));
            }
        }
        let Some((q, id)) = waiting.pop() else {
            break;
        };
        let response = if q == p[0] {
            let named = PeerInfo {
                id: peer(p[2]),
                addr: shared(p[2]),
            };
            Response::Nodes {
                closer: BoundedVec::try_from(vec![named]).unwrap(),
            }
        } else {
            empty_nodes()
        };
        out = node.from(q, Message::Response { id, response });
    }
    assert!(asked_it, "the lookup asks it");
    assert_eq!(reported, vec![(peer(p[2]), DropReason::PrefixLimit)]);
    assert!(!node.kad.routing_table().contains(&peer(p[2])));
    assert_eq!(node.kad.totals().prefix_refused, 2);
}

#[test]
fn on_one_host_the_eleventh_peer_is_reported_not_silently_left_out() {
    // Default limits: ten peers of one /24 in the table, two per bucket. Twelve peers of one /24,
    // two per bucket, as nodes on one host or behind one NAT look.
    let mut node = Node::new(Config::default());
    let peers: Vec<u64> = (0..6).flat_map(|bucket| in_bucket(bucket, 2)).collect();
    let mut refused = Vec::new();
    for &p in &peers {
        let out = admit_from(&mut node, p, shared(p));
        for (who, reason) in drops(&out) {
            assert_eq!(reason, DropReason::PrefixLimit);
            refused.push(who);
        }
    }
    assert_eq!(node.kad.routing_table().len(), 10);
    let left_out: Vec<PeerId> = peers
        .iter()
        .map(|&p| peer(p))
        .filter(|p| !node.kad.routing_table().contains(p))
        .collect();
    assert_eq!(left_out.len(), 2);
    assert_eq!(refused, left_out, "exactly the peers left out are reported");
    assert_eq!(node.kad.totals().prefix_refused, 2);
}

#[test]
fn answers_to_no_request_are_reported_as_unsolicited() {
    let mut config = Config::default();
    config.disjoint_paths = 1;
    let mut node = Node::new(config);
    let (asked, other) = (1, 2);
    node.connect(asked);
    node.connect(other);
    let out = node.input(Input::Command(Command::Bootstrap {
        query: QueryId(1),
        peers: vec![PeerInfo {
            id: peer(asked),
            addr: addr(asked),
        }],
    }));
    let (id, _) = requests_to(&out, peer(asked))[0].clone();
    let answer = Message::Response {
        id,
        response: empty_nodes(),
    };
    // Another peer answers our request to `asked`: dropped, reported, and the request still waits.
    let out = node.from(other, answer.clone());
    assert_eq!(drops(&out), vec![(peer(other), DropReason::Unsolicited)]);
    assert!(node.kad.is_waiting_on(&peer(asked)));
    // The peer we asked answers: no drop, and it enters the table.
    let out = node.from(asked, answer.clone());
    assert!(drops(&out).is_empty());
    assert!(node.kad.routing_table().contains(&peer(asked)));
    // It answers again: the second answer waits on nothing.
    let out = node.from(asked, answer);
    assert_eq!(drops(&out), vec![(peer(asked), DropReason::Unsolicited)]);
    // An id we never used.
    let out = node.from(
        other,
        Message::Response {
            id: 1 << 40,
            response: Response::Pong,
        },
    );
    assert_eq!(drops(&out), vec![(peer(other), DropReason::Unsolicited)]);
    let totals = node.kad.totals();
    assert_eq!(
        (totals.unsolicited, totals.late_answers, totals.successes),
        (3, 0, 1)
    );
}

#[test]
fn a_late_answer_is_counted_not_reported_as_unsolicited() {
    let mut config = Config::default();
    config.disjoint_paths = 1;
    let mut node = Node::new(config);
    node.connect(1);
    let out = node.input(Input::Command(Command::Bootstrap {
        query: QueryId(1),
        peers: vec![PeerInfo {
            id: peer(1),
            addr: addr(1),
        }],
    }));
    let (id, _) = requests_to(&out, peer(1))[0].clone();
    node.now += Duration::from_secs(10);
    node.input(Input::Timer(Timer::Deadlines));
    node.now += Duration::from_secs(1);
    let out = node.from(
        1,
        Message::Response {
            id,
            response: empty_nodes(),
        },
    );
    assert!(drops(&out).is_empty(), "a slow peer is not a hostile one");
    let totals = node.kad.totals();
    assert_eq!(
        (totals.timeouts, totals.late_answers, totals.unsolicited),
        (1, 1, 0)
    );
    // The same answer once more is no longer late: nothing waits for it.
    let out = node.from(
        1,
        Message::Response {
            id,
            response: empty_nodes(),
        },
    );
    assert_eq!(drops(&out), vec![(peer(1), DropReason::Unsolicited)]);
}

#[test]
fn a_full_bucket_is_not_reported_as_a_drop() {
    // `DropReason::Full` is deliberately not used: in a network larger than a few buckets' worth,
    // most peers that answer a lookup meet a full bucket, so it would fire on every lookup.
    let mut config = Config::default();
    config.k = 1;
    let mut node = Node::new(config);
    let p = in_bucket(0, 3);
    let mut all = Vec::new();
    for &q in &p {
        all.extend(admit_from(&mut node, q, addr(q)));
    }
    assert!(node.kad.routing_table().contains(&peer(p[0])));
    assert!(
        !node.kad.routing_table().contains(&peer(p[2])),
        "the bucket was full"
    );
    assert!(drops(&all).is_empty());
}

#[test]
fn a_request_the_dial_limits_cannot_take_is_reported_and_fails_at_once() {
    let mut node = Node::new(Config::default());
    // Lookups through peers whose dials the driver never answers, until the set of dials is full.
    let mut refused = None;
    for round in 0..1_000u64 {
        let out = node.input(Input::Command(Command::Bootstrap {
            query: QueryId(round),
            peers: vec![PeerInfo {
                id: peer(5_000 + round),
                addr: addr(1),
            }],
        }));
        if !drops(&out).is_empty() {
            refused = Some((round, out));
            break;
        }
    }
    let (round, out) = refused.expect("the dial limit is reached");
    assert!(round >= 16, "the limit is not tiny: {round}");
    assert_eq!(drops(&out), vec![(peer(5_000 + round), DropReason::QueueFull)]);
    assert!(!out.iter().any(|o| matches!(o, Output::Dial(_))));
    // Its request fails on a timer of zero, as a failure: the lookup ends now, not ten seconds later.
    let timers: Vec<(Duration, Timer)> = out
        .iter()
        .filter_map(|o| match o {
            Output::Schedule {
                after,
                timer: t @ Timer::Request(_),
            } => Some((*after, t.clone())),
            _ => None,
        })
        .collect();
    let [(Duration::ZERO, timer)] = &timers[..] else {
        panic!("one immediate request timer expected: {timers:?}");
    };
    let out = node.input(Input::Timer(timer.clone()));
    let Some(stats) = out.iter().find_map(|o| match o {
        Output::Emit(meshwork_kad::Event::Bootstrapped { query, stats, .. }) if query.0 == round => {
            Some(*stats)
        }
        _ => None,
    }) else {
        panic!("the lookup ends at once");
    };
    assert_eq!((stats.requests, stats.failures, stats.timeouts), (1, 1, 0));
    let totals = node.kad.totals();
    assert_eq!((totals.queue_full, totals.timeouts), (1, 0));
}
