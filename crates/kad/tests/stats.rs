//! Every answer carries its query's statistics: requests of every path and of the store phase, how they
//! ended (answered, failed, timed out), and protocol time from the command to the answer. A request
//! whose connection goes down fails at once, not at its timer.
#![allow(clippy::unwrap_used)]

#[path = "support/node.rs"]
mod node;

use std::time::Duration;

use meshwork_kad::message::Response;
use meshwork_kad::{Command, Config, Event, Key, Message, QueryId, QueryStats, Timer};
use meshwork_wire::{BoundedVec, Input, Instant, Output};
use node::*;

/// (requests, successes, failures, timeouts) of `stats`.
fn counts(stats: &QueryStats) -> (u32, u32, u32, u32) {
    (stats.requests, stats.successes, stats.failures, stats.timeouts)
}

fn empty_nodes() -> Message {
    Message::Response {
        id: 0,
        response: Response::Nodes {
            closer: BoundedVec::default(),
        },
    }
}

/// `answer` as the response to request `id`.
fn answering(id: u64, answer: &Message) -> Message {
    match answer.clone() {
        Message::Response { response, .. } => Message::Response { id, response },
        other => other,
    }
}

/// A node with peers 1..=n in its table (each in its own /24).
fn node_with_peers(config: Config, n: u64) -> Node {
    let mut node = Node::new(config);
    for p in 1..=n {
        admit(&mut node, p);
        assert!(node.kad.routing_table().contains(&peer(p)));
    }
    node
}

/// `p`'s connection closes under our requests: they are sent once more on a new connection (a dial),
/// and that dial fails. The outputs of the failure.
fn lose(node: &mut Node, p: u64) -> Outs {
    let out = node.input(Input::PeerDown(peer(p)));
    assert!(
        out.iter().any(|o| matches!(o, Output::Dial(q) if *q == peer(p))),
        "a request whose connection closed is retried on a new one: {out:?}"
    );
    assert!(events(&out).is_empty(), "a retry is not an answer");
    node.input(Input::PeerDown(peer(p)))
}

/// The deadline timers `out` schedules: one serves every request out.
fn timers(out: &Outs) -> usize {
    out.iter()
        .filter(|o| {
            matches!(
                o,
                Output::Schedule {
                    timer: Timer::Deadlines,
                    ..
                }
            )
        })
        .count()
}

#[test]
fn disjoint_paths_sum_their_requests() {
    let mut config = Config::default();
    config.disjoint_paths = 2;
    let mut node = node_with_peers(config, 4);
    node.now = Instant::from_duration(Duration::from_secs(5));
    let out = node.input(Input::Command(Command::FindNode {
        query: QueryId(7),
        target: Key::from_bytes([3; 32]),
    }));
    // Four seeds dealt to two paths, α = 3 each: every seed is asked at once.
    let asked: Vec<(u64, u64)> = (1..=4)
        .flat_map(|p| requests_to(&out, peer(p)).into_iter().map(move |(id, _)| (p, id)))
        .collect();
    assert_eq!(asked.len(), 4);
    node.now += Duration::from_millis(300);
    let mut answer = Vec::new();
    for (p, id) in asked {
        answer.extend(events(&node.from(p, answering(id, &empty_nodes()))));
    }
    let [Event::ClosestPeers { query, stats, .. }] = &answer[..] else {
        panic!("one answer expected, got {answer:?}");
    };
    assert_eq!(*query, QueryId(7));
    assert_eq!(counts(stats), (4, 4, 0, 0), "both paths counted");
    assert_eq!(stats.unfinished(), 0);
    assert_eq!(stats.started, Instant::from_duration(Duration::from_secs(5)));
    assert_eq!(stats.duration, Duration::from_millis(300));
    // The peers entered the table by asking, which sent nothing of ours.
    let totals = node.kad.totals();
    assert_eq!((totals.requests, totals.successes), (4, 4));
    assert_eq!(totals.admitted_inbound, 4);
}

#[test]
fn a_put_counts_its_store_requests_and_their_failures() {
    let mut config = Config::default();
    config.disjoint_paths = 1;
    let mut node = node_with_peers(config, 3);
    let out = node.input(Input::Command(Command::PutValue {
        query: QueryId(1),
        key: key_of(0, b"nine"),
        value: b"v".to_vec(),
    }));
    let mut stores = Vec::new();
    for p in 1..=3 {
        let (id, _) = requests_to(&out, peer(p))[0].clone();
        let out = node.from(p, answering(id, &empty_nodes()));
        stores
            .extend((1..=3).flat_map(|q| requests_to(&out, peer(q)).into_iter().map(move |(id, _)| (q, id))));
    }
    assert_eq!(stores.len(), 3, "the record goes to the three peers found");
    node.now += Duration::from_secs(1);
    // One store is accepted, one refused, and the third peer's connection closes.
    let (p, id) = stores[0];
    let ok = Message::Response {
        id,
        response: Response::Stored { ok: true },
    };
    assert!(events(&node.from(p, ok)).is_empty());
    let (p, id) = stores[1];
    let refused = Message::Response {
        id,
        response: Response::Stored { ok: false },
    };
    assert!(events(&node.from(p, refused)).is_empty());
    let out = lose(&mut node, stores[2].0);
    let [Event::PutValue { stored_at, stats, .. }] = &events(&out)[..] else {
        panic!("the put ends when its last store request fails");
    };
    assert_eq!(*stored_at, 1);
    // Three lookup requests, three store requests; a refusal is an answer, the closed one a failure.
    assert_eq!(counts(stats), (6, 5, 1, 0));
    assert_eq!(stats.duration, Duration::from_secs(1));
}

#[test]
fn a_lookup_whose_peer_goes_down_continues_at_once_and_counts_a_failure() {
    let mut config = Config::default();
    config.disjoint_paths = 1;
    // Far longer than the lookup takes: an answer that waited for the timer would show.
    config.request_timeout = Duration::from_secs(60);
    let mut node = node_with_peers(config, 2);
    let out = node.input(Input::Command(Command::FindNode {
        query: QueryId(1),
        target: Key::from_bytes([5; 32]),
    }));
    assert_eq!(timers(&out), 1, "one deadline timer for both requests");
    let (id2, _) = requests_to(&out, peer(2))[0].clone();
    node.now += Duration::from_secs(1);
    let out = lose(&mut node, 1);
    assert!(events(&out).is_empty(), "peer 2 still has to answer");
    assert!(
        !node.kad.is_waiting_on(&peer(1)),
        "the request to the lost peer is over"
    );
    node.now += Duration::from_secs(1);
    let out = node.from(2, answering(id2, &empty_nodes()));
    let [Event::ClosestPeers { peers, stats, .. }] = &events(&out)[..] else {
        panic!("the lookup ends with peer 2's answer");
    };
    assert_eq!(peers.iter().map(|p| p.id).collect::<Vec<_>>(), vec![peer(2)]);
    assert_eq!(counts(stats), (2, 1, 1, 0), "a failure, not a timeout");
    assert_eq!(stats.duration, Duration::from_secs(2));
    assert_eq!(node.kad.totals().timeouts, 0);
}

#[test]
fn a_lookup_whose_peers_all_go_down_ends_at_once() {
    let mut config = Config::default();
    config.disjoint_paths = 2;
    config.request_timeout = Duration::from_secs(60);
    let mut node = node_with_peers(config, 3);
    let out = node.input(Input::Command(Command::GetValue {
        query: QueryId(4),
        key: Key::from_bytes([6; 32]),
    }));
    assert_eq!(timers(&out), 1, "one deadline timer for all three requests");
    node.now += Duration::from_millis(40);
    assert!(events(&lose(&mut node, 1)).is_empty());
    assert!(events(&lose(&mut node, 2)).is_empty());
    let out = lose(&mut node, 3);
    let [
        Event::GetValue {
            record: None, stats, ..
        },
    ] = &events(&out)[..]
    else {
        panic!("the lookup ends with the last peer's loss");
    };
    assert_eq!(counts(stats), (3, 0, 3, 0));
    assert_eq!(stats.duration, Duration::from_millis(40));
    assert_eq!(node.kad.num_queries(), 0);
}

#[test]
fn an_answer_from_the_local_store_has_empty_stats() {
    let mut node = Node::new(Config::default());
    let key = key_of(0, b"two");
    node.input(Input::Command(Command::PutValue {
        query: QueryId(1),
        key,
        value: b"mine".to_vec(),
    }));
    node.now = Instant::from_duration(Duration::from_secs(3));
    let out = node.input(Input::Command(Command::GetValue {
        query: QueryId(2),
        key,
    }));
    let [
        Event::GetValue {
            record: Some(_),
            stats,
            ..
        },
    ] = &events(&out)[..]
    else {
        panic!("our own record is found at once");
    };
    assert_eq!(counts(stats), (0, 0, 0, 0));
    assert_eq!(stats.started, node.now);
    assert_eq!(stats.duration, Duration::ZERO);
}

#[test]
fn a_request_whose_connection_closes_is_answered_on_a_new_one() {
    let mut config = Config::default();
    config.disjoint_paths = 1;
    let mut node = node_with_peers(config, 1);
    let out = node.input(Input::Command(Command::FindNode {
        query: QueryId(1),
        target: Key::from_bytes([5; 32]),
    }));
    let (id, _) = requests_to(&out, peer(1))[0].clone();
    // The peer's connection manager closes the connection; we dial again and send the same request.
    let out = node.input(Input::PeerDown(peer(1)));
    assert!(
        requests_to(&out, peer(1)).is_empty(),
        "not sent before the new connection is up"
    );
    let out = node.connect(1);
    assert_eq!(requests_to(&out, peer(1))[0].0, id, "the same request, once more");
    let out = node.from(1, answering(id, &empty_nodes()));
    let [Event::ClosestPeers { stats, .. }] = &events(&out)[..] else {
        panic!("the lookup ends with the answer on the new connection");
    };
    assert_eq!(counts(stats), (1, 1, 0, 0), "one request, answered");
    assert_eq!(node.kad.totals().retried, 1);
}
