//! One Kademlia node driven by hand through the `Protocol` contract: the table, lookups, commands.
#![allow(clippy::unwrap_used)]

#[path = "support/node.rs"]
mod node;

use std::time::Duration;

use meshwork_identity::puzzle;
use meshwork_kad::message::{Request, Response};
use meshwork_kad::{
    Address, Command, Config, Event, Kademlia, Key, Message, PeerInfo, QueryError, QueryId, RecordError,
    Timer,
};
use meshwork_wire::{BoundedVec, Input, Instant, Output, Protocol};
use node::*;

#[test]
fn a_requester_enters_the_table_at_once_as_the_paper_has_it() {
    let mut node = Node::new(Config::default());
    node.connect(1);
    let out = node.from(
        1,
        Message::Request {
            id: 9,
            request: Request::FindNode {
                target: Key::from_bytes([0; 32]),
            },
        },
    );
    assert!(matches!(responses(&out)[..], [Response::Nodes { .. }]));
    assert!(
        requests_to(&out, peer(1)).is_empty(),
        "no ping back: the request proves what a pong would"
    );
    let entry = node.kad.routing_table().get(&peer(1)).unwrap();
    assert_eq!(
        entry.addr,
        addr(1),
        "the table keeps the address the driver observed"
    );
    assert_eq!(node.kad.totals().admitted_inbound, 1);
    // A second request refreshes the entry; it is not admitted twice.
    node.from(
        1,
        Message::Request {
            id: 10,
            request: Request::Ping,
        },
    );
    assert_eq!(node.kad.routing_table().len(), 1);
    assert_eq!(node.kad.totals().admitted_inbound, 1);
}

#[test]
fn without_inbound_admission_requesters_never_enter() {
    let mut config = Config::default();
    config.admit_inbound = false;
    let mut node = Node::new(config);
    node.connect(1);
    let out = node.from(
        1,
        Message::Request {
            id: 9,
            request: Request::Ping,
        },
    );
    assert_eq!(responses(&out), vec![Response::Pong]);
    assert!(requests_to(&out, peer(1)).is_empty());
    assert!(node.kad.routing_table().is_empty());
}

#[test]
fn a_full_bucket_pings_its_oldest_and_evicts_it_only_on_timeout() {
    let mut config = Config::default();
    config.k = 1;
    config.stale_after = Duration::ZERO;
    let mut node = Node::new(config);
    let p = in_bucket(0, 3);
    admit(&mut node, p[0]);
    assert!(node.kad.routing_table().contains(&peer(p[0])));
    let out = admit(&mut node, p[1]);
    // The newcomer waits; the oldest is pinged.
    let liveness = requests_to(&out, peer(p[0]));
    assert_eq!(liveness.len(), 1);
    assert!(!node.kad.routing_table().contains(&peer(p[1])));
    // The oldest answers: it stays, the newcomer is dropped.
    node.from(
        p[0],
        Message::Response {
            id: liveness[0].0,
            response: Response::Pong,
        },
    );
    assert!(node.kad.routing_table().contains(&peer(p[0])));
    assert!(node.kad.routing_table().pending(0).is_none());
    // Again with a third peer, and this time the oldest stays silent until its request times out.
    let out = admit(&mut node, p[2]);
    let liveness = requests_to(&out, peer(p[0]));
    assert_eq!(liveness.len(), 1);
    node.now += Duration::from_secs(10);
    node.input(Input::Timer(Timer::Deadlines));
    assert!(!node.kad.routing_table().contains(&peer(p[0])));
    assert!(node.kad.routing_table().contains(&peer(p[2])));
}

#[test]
fn a_full_bucket_with_a_fresh_oldest_pings_nobody_and_a_failed_lookup_request_makes_room() {
    // Default `stale_after`: the oldest answered a moment ago, so it is not pinged.
    let mut config = Config::default();
    config.k = 1;
    let mut node = Node::new(config);
    let p = in_bucket(0, 2);
    admit(&mut node, p[0]);
    let out = admit(&mut node, p[1]);
    assert!(requests_to(&out, peer(p[0])).is_empty(), "no liveness ping");
    assert!(!node.kad.routing_table().contains(&peer(p[1])));
    assert_eq!(
        node.kad.routing_table().pending(0).map(|e| e.peer),
        Some(peer(p[1]))
    );
    // Lookups ask the one entry, which stays silent. It answered a moment ago, so it keeps its place
    // through `max_failures - 1` failures; at the last it leaves and the candidate takes its place.
    let max_failures = Config::default().max_failures;
    for attempt in 1..=max_failures {
        let out = node.input(Input::Command(Command::FindNode {
            query: QueryId(u64::from(attempt)),
            target: Key::from_bytes([3; 32]),
        }));
        assert_eq!(requests_to(&out, peer(p[0])).len(), 1, "attempt {attempt}");
        node.now += Duration::from_secs(10);
        node.input(Input::Timer(Timer::Deadlines));
        let evicted = attempt == max_failures;
        assert_eq!(
            node.kad.routing_table().contains(&peer(p[0])),
            !evicted,
            "attempt {attempt}"
        );
        assert_eq!(
            node.kad.routing_table().contains(&peer(p[1])),
            evicted,
            "attempt {attempt}"
        );
    }
}

#[test]
fn an_answer_forgives_the_failures_before_it_and_a_request_of_its_own_does_not() {
    let mut node = Node::new(Config::default());
    let p = in_bucket(0, 1)[0];
    admit(&mut node, p);
    let failures = |node: &Node| node.kad.routing_table().get(&peer(p)).map(|e| e.failures);
    let lookup = |node: &mut Node, query: u64| {
        let out = node.input(Input::Command(Command::FindNode {
            query: QueryId(query),
            target: Key::from_bytes([3; 32]),
        }));
        requests_to(&out, peer(p))[0].0
    };
    for query in 1..=4 {
        lookup(&mut node, query);
        node.now += Duration::from_secs(10);
        node.input(Input::Timer(Timer::Deadlines));
    }
    assert_eq!(failures(&node), Some(4));
    // It asks us something: it proves nothing of its answers to ours.
    admit(&mut node, p);
    assert_eq!(failures(&node), Some(4));
    // It answers a lookup: forgiven.
    let id = lookup(&mut node, 5);
    answer(&mut node, p, id, Vec::new());
    assert_eq!(failures(&node), Some(0));
}

#[test]
fn peers_failing_the_puzzle_are_neither_admitted_nor_contacted() {
    let difficulty = 4;
    let mut config = Config::default();
    config.puzzle_difficulty = difficulty;
    let mut node = Node::new(config);
    let bad = (1..).find(|&i| !puzzle::solves(&peer(i), difficulty)).unwrap();
    let good = (1..).find(|&i| puzzle::solves(&peer(i), difficulty)).unwrap();
    node.connect(bad);
    let out = node.from(
        bad,
        Message::Request {
            id: 1,
            request: Request::Ping,
        },
    );
    assert!(
        requests_to(&out, peer(bad)).is_empty(),
        "no ping back to an id that fails the puzzle"
    );
    // A lookup through `good` that names `bad` never contacts `bad`.
    node.connect(good);
    let info = |i| PeerInfo {
        id: peer(i),
        addr: addr(i),
    };
    let out = node.input(Input::Command(Command::Bootstrap {
        query: QueryId(1),
        peers: vec![info(bad), info(good)],
    }));
    assert!(requests_to(&out, peer(bad)).is_empty());
    let (id, _) = requests_to(&out, peer(good))[0].clone();
    let closer = BoundedVec::try_from(vec![info(bad)]).unwrap();
    let out = node.from(
        good,
        Message::Response {
            id,
            response: Response::Nodes { closer },
        },
    );
    assert!(requests_to(&out, peer(bad)).is_empty());
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Dial(p) if *p == peer(bad)))
    );
    // One request sent, to `good`, and answered; `bad` was never asked.
    assert!(events(&out).iter().any(|e| matches!(
        e,
        Event::Bootstrapped {
            query: QueryId(1),
            table_size: 1,
            stats,
        } if (stats.requests, stats.successes, stats.failures, stats.timeouts) == (1, 1, 0, 0)
    )));
}

#[test]
fn a_lookup_whose_peers_time_out_finishes_empty() {
    // One path, so exactly α requests go out at first.
    let mut config = Config::default();
    config.disjoint_paths = 1;
    let mut node = Node::new(config);
    let peers: Vec<PeerInfo> = (1..=4)
        .map(|i| PeerInfo {
            id: peer(i),
            addr: addr(i),
        })
        .collect();
    let mut out = node.input(Input::Command(Command::Bootstrap {
        query: QueryId(1),
        peers,
    }));
    // Unconnected peers are dialed, not sent to.
    assert_eq!(
        out.iter().filter(|o| matches!(o, Output::Dial(_))).count(),
        3,
        "α = 3 dials"
    );
    let mut finished = None;
    for _ in 0..10 {
        // The peers are never connected: each request's deadline is the backstop of three timeouts.
        let Some(after) = out.iter().find_map(|o| match o {
            Output::Schedule {
                after,
                timer: Timer::Deadlines,
            } => Some(*after),
            _ => None,
        }) else {
            panic!("requests out, but no deadline timer: {out:?}");
        };
        assert_eq!(after, Duration::from_secs(30));
        node.now += after;
        out = node.input(Input::Timer(Timer::Deadlines));
        finished = events(&out).into_iter().find_map(|e| match e {
            Event::Bootstrapped {
                table_size: 0, stats, ..
            } => Some(stats),
            _ => None,
        });
        if finished.is_some() {
            break;
        }
    }
    let stats = finished.expect("the bootstrap finished");
    assert_eq!(node.kad.num_queries(), 0);
    // Four peers asked, none answered: four timeouts, no other failure, over two backstops of three
    // request timeouts (the dials never complete).
    assert_eq!(
        (stats.requests, stats.successes, stats.failures, stats.timeouts),
        (4, 0, 0, 4)
    );
    assert_eq!(stats.started, Instant::ZERO);
    assert_eq!(stats.duration, Duration::from_secs(60));
    let totals = node.kad.totals();
    assert_eq!((totals.requests, totals.timeouts, totals.failures), (4, 4, 0));
}

#[test]
fn commands_that_cannot_run_fail_with_an_event() {
    let mut node = Node::new(Config::default());
    let big = vec![0; meshwork_kad::message::MAX_VALUE + 1];
    let out = node.input(Input::Command(Command::PutValue {
        query: QueryId(1),
        key: key_of(0, b"big"),
        value: big,
    }));
    assert!(matches!(
        events(&out)[..],
        [Event::Failed {
            query: QueryId(1),
            error: QueryError::Record(RecordError::TooLarge { .. }),
            stats,
        }] if stats.requests == 0
    ));
    // Another peer's key: nobody would store it.
    let out = node.input(Input::Command(Command::PutValue {
        query: QueryId(3),
        key: key_of(1, b"theirs"),
        value: b"v".to_vec(),
    }));
    assert!(matches!(
        events(&out)[..],
        [Event::Failed {
            query: QueryId(3),
            error: QueryError::Record(RecordError::ForeignKey),
            ..
        }]
    ));
    assert_eq!(node.kad.store().num_records(), 0, "and kept nothing");
    assert!(
        !out.iter().any(|o| matches!(o, Output::Schedule { .. })),
        "nor scheduled its republishing"
    );
    node.connect(5);
    let peers = vec![PeerInfo {
        id: peer(5),
        addr: addr(5),
    }];
    node.input(Input::Command(Command::Bootstrap {
        query: QueryId(2),
        peers: peers.clone(),
    }));
    let out = node.input(Input::Command(Command::Bootstrap {
        query: QueryId(2),
        peers,
    }));
    assert!(matches!(
        events(&out)[..],
        [Event::Failed {
            query: QueryId(2),
            error: QueryError::DuplicateId,
            stats,
        }] if stats.requests == 0
    ));
}

#[test]
fn a_query_with_an_empty_routing_table_fails_with_no_peers_and_sends_nothing() {
    let mut node = Node::new(Config::default());
    let key = key_of(0, b"seven");
    for command in [
        Command::GetValue {
            query: QueryId(1),
            key,
        },
        Command::FindNode {
            query: QueryId(1),
            target: key,
        },
        Command::PutValue {
            query: QueryId(1),
            key,
            value: b"v".to_vec(),
        },
    ] {
        let out = node.input(Input::Command(command));
        assert!(
            matches!(
                events(&out)[..],
                [Event::Failed {
                    query: QueryId(1),
                    error: QueryError::NoPeers,
                    ..
                }]
            ),
            "{out:?}"
        );
        assert!(!out.iter().any(|o| matches!(o, Output::Send { .. })), "{out:?}");
    }
}

#[test]
fn bootstrap_arms_the_refresh_timer_once() {
    let mut node = Node::new(Config::default());
    let is_refresh = |o: &Output<Kademlia>| {
        matches!(
            o,
            Output::Schedule {
                timer: Timer::Refresh,
                ..
            }
        )
    };
    let out = node.input(Input::Command(Command::Bootstrap {
        query: QueryId(1),
        peers: Vec::new(),
    }));
    assert_eq!(out.iter().filter(|o| is_refresh(o)).count(), 1);
    let out = node.input(Input::Command(Command::Bootstrap {
        query: QueryId(2),
        peers: Vec::new(),
    }));
    assert_eq!(out.iter().filter(|o| is_refresh(o)).count(), 0);
}

#[test]
fn the_protocol_id_is_versioned() {
    assert_eq!(<Kademlia as Protocol>::ID.as_str(), "/meshwork/kad/2");
}

#[test]
fn one_subnet_cannot_fill_the_table() {
    let mut config = Config::default();
    config.max_per_prefix_in_bucket = 2;
    config.max_per_prefix_in_table = 3;
    let mut node = Node::new(config);
    // Twelve peers, all observed in 10.9.9.0/24.
    for p in 1..=12u64 {
        let sybil = Address::V4 {
            ip: [10, 9, 9, p as u8],
            port: 9,
        };
        node.input(Input::Command(Command::PeerAddress {
            peer: peer(p),
            addr: sybil,
        }));
        node.input(Input::PeerUp(peer(p)));
        let out = node.from(
            p,
            Message::Request {
                id: 1,
                request: Request::Ping,
            },
        );
        if let Some((id, _)) = requests_to(&out, peer(p)).first().cloned() {
            node.from(
                p,
                Message::Response {
                    id,
                    response: Response::Pong,
                },
            );
        }
    }
    let table = node.kad.routing_table();
    assert_eq!(table.len(), 3, "the table limit of the /24 holds");
    for index in 0..256 {
        assert!(table.bucket(index).len() <= 2);
    }
    // A peer from another subnet still gets in.
    admit(&mut node, 13);
    assert!(node.kad.routing_table().contains(&peer(13)));
}

#[test]
fn unanswered_dials_do_not_block_later_dials() {
    let mut config = Config::default();
    config.request_timeout = Duration::from_secs(1);
    let mut node = Node::new(config);
    // Far more lookups to unreachable peers than the dialing set holds; the driver never answers a dial.
    for round in 0..400u64 {
        let peers = vec![PeerInfo {
            id: peer(1000 + round),
            addr: addr(1),
        }];
        let out = node.input(Input::Command(Command::Bootstrap {
            query: QueryId(round),
            peers,
        }));
        assert!(
            out.iter()
                .any(|o| matches!(o, Output::Dial(p) if *p == peer(1000 + round))),
            "round {round}"
        );
        // A second passes; the requests of three rounds ago reach their backstop (three timeouts).
        node.now += Duration::from_secs(1);
        node.input(Input::Timer(Timer::Deadlines));
    }
}

/// The request deadline measures the peer's answer, not the dial before it: a request that waits for a
/// connection gets a longer backstop, and its own deadline once it is sent. Under load (two hundred nodes
/// joining at once over QUIC) handshakes took seconds, and requests ended by their timer while their
/// answers were on the way.
#[test]
fn a_request_waiting_for_a_dial_gets_its_deadline_when_sent() {
    let mut config = Config::default();
    config.disjoint_paths = 1;
    let timeout = config.request_timeout;
    let mut node = Node::new(config);
    let out = node.input(Input::Command(Command::Bootstrap {
        query: QueryId(1),
        peers: vec![PeerInfo {
            id: peer(1),
            addr: addr(1),
        }],
    }));
    assert!(out.iter().any(|o| matches!(o, Output::Dial(p) if *p == peer(1))));
    assert_eq!(
        deadline_timers(&out),
        vec![timeout * 3],
        "queued for a dial: only the backstop"
    );

    // The dial takes longer than a request timeout: the request has not timed out.
    node.now += timeout + Duration::from_secs(5);
    node.input(Input::Timer(Timer::Deadlines));
    assert_eq!(node.kad.totals().timeouts, 0);
    // The request goes out when the dial succeeds, and its deadline is a timeout from then.
    let out = node.connect(1);
    let sent = requests_to(&out, peer(1));
    assert_eq!(sent.len(), 1);
    assert_eq!(
        deadline_timers(&out),
        vec![timeout],
        "sent: the request's own deadline"
    );

    // Answered within the timeout after sending, though long after the request was made.
    node.now += timeout / 2;
    let out = node.from(
        1,
        Message::Response {
            id: sent[0].0,
            response: Response::Nodes {
                closer: BoundedVec::default(),
            },
        },
    );
    let stats = events(&out)
        .into_iter()
        .find_map(|e| match e {
            Event::Bootstrapped { stats, .. } => Some(stats),
            _ => None,
        })
        .expect("the bootstrap finished");
    assert_eq!((stats.requests, stats.successes, stats.timeouts), (1, 1, 0));
    // The backstop's timer firing later finds nothing to fail.
    node.now += timeout * 3;
    node.input(Input::Timer(Timer::Deadlines));
    assert_eq!(node.kad.totals().timeouts, 0);
}

/// A node with peer 1 in its table, looking up `target` through it, and peer 1's answer, which
/// names `named`.
fn lookup_through_peer_1(target: Key, named: Vec<PeerInfo>) -> (Node, Outs) {
    let mut node = Node::new(Config::default());
    admit(&mut node, 1);
    let out = node.input(Input::Command(Command::FindNode {
        query: QueryId(7),
        target,
    }));
    let (id, _) = requests_to(&out, peer(1))[0].clone();
    let out = answer(&mut node, 1, id, named);
    (node, out)
}

#[test]
fn a_peer_named_to_a_lookup_is_dialled_at_the_address_it_was_named_with() {
    // Peer 1 names peer 2 at an address of its own choosing; nobody else has told us of peer 2.
    let told = Address::V4 {
        ip: [192, 0, 2, 7],
        port: 4242,
    };
    let named = vec![PeerInfo {
        id: peer(2),
        addr: told.clone(),
    }];
    let (mut node, out) = lookup_through_peer_1(Key::from_peer(&peer(2)), named);
    assert!(
        out.iter().any(|o| matches!(o, Output::Dial(p) if *p == peer(2))),
        "the lookup asks the peer it was told of"
    );
    assert_eq!(
        node.kad.address_of(&peer(2)),
        Some(&told),
        "where the driver dials it"
    );
    // Once the driver observes the connection, its address wins over what a peer claimed.
    node.connect(2);
    assert_eq!(node.kad.address_of(&peer(2)), Some(&addr(2)));
}

#[test]
fn a_lookup_result_carries_the_address_each_peer_was_named_with() {
    let told = |i: u64| Address::V4 {
        ip: [198, 51, 100, i as u8],
        port: 7,
    };
    // Peer 1 is the target itself, so it is the closest; it names five more.
    let named = (2..7)
        .map(|i| PeerInfo {
            id: peer(i),
            addr: told(i),
        })
        .collect();
    let (mut node, out) = lookup_through_peer_1(Key::from_peer(&peer(1)), named);
    let dialled: Vec<u64> = (2..7)
        .filter(|&i| out.iter().any(|o| matches!(o, Output::Dial(p) if *p == peer(i))))
        .collect();
    assert_eq!(dialled.len(), 2, "the next two of the α closest: {dialled:?}");
    // They answer (over connections the driver observed), naming nobody new: the lookup converges.
    let mut out = Vec::new();
    for &i in &dialled {
        let sent = node.connect(i);
        let (id, _) = requests_to(&sent, peer(i))[0].clone();
        out.extend(answer(&mut node, i, id, Vec::new()));
    }
    let result = events(&out)
        .into_iter()
        .find_map(|e| match e {
            Event::ClosestPeers { peers, .. } => Some(peers),
            _ => None,
        })
        .expect("the lookup converged");
    assert_eq!(result.len(), 6);
    for info in &result {
        let i = (1..7).find(|&i| peer(i) == info.id).unwrap();
        let expected = if i == 1 || dialled.contains(&i) {
            addr(i)
        } else {
            told(i)
        };
        assert_eq!(
            info.addr, expected,
            "peer {i}: observed if we met it, else as named"
        );
    }
}

#[test]
fn connections_that_are_up_do_not_count_against_the_bound_on_addresses_of_unconnected_peers() {
    let mut node = Node::new(Config::default());
    // More connections than the bound (4,096), each told its address before it comes up.
    for i in 1..=4_200 {
        node.connect(i);
    }
    assert_eq!(node.kad.address_of(&peer(4_200)), Some(&addr(4_200)));
    node.connect(4_201);
    assert_eq!(
        node.kad.address_of(&peer(4_201)),
        Some(&addr(4_201)),
        "the newest connection's observed address is kept"
    );
}

#[test]
fn a_lookup_held_by_unreachable_peers_ends_at_the_query_timeout_with_what_it_has() {
    // Between two of the request deadlines (every 30 s here): the lookup's own must be armed.
    let mut config = Config::default();
    config.query_timeout = Duration::from_secs(45);
    let mut node = Node::new(config);
    admit(&mut node, 1);
    let target = Key::from_bytes([6; 32]);
    let out = node.input(Input::Command(Command::FindNode {
        query: QueryId(1),
        target,
    }));
    let (id, _) = requests_to(&out, peer(1))[0].clone();
    // Peer 1 names twenty peers whose dials the driver never reports back on: each request waits
    // out its backstop (three request timeouts), the window asking three at a time.
    let named = (100..120)
        .map(|i| PeerInfo {
            id: peer(i),
            addr: addr(i),
        })
        .collect();
    let asked = out;
    let mut out = answer(&mut node, 1, id, named);
    // Only the timers the node asks for fire, each when it asked.
    let mut due: Vec<Instant> = deadline_timers(&asked)
        .into_iter()
        .map(|after| node.now + after)
        .collect();
    let mut ended = None;
    for _ in 0..100 {
        due.extend(deadline_timers(&out).into_iter().map(|after| node.now + after));
        if let Some(peers) = events(&out).into_iter().find_map(|e| match e {
            Event::ClosestPeers { peers, .. } => Some(peers),
            _ => None,
        }) {
            ended = Some((node.now.as_duration().as_secs(), peers));
            break;
        }
        due.sort_unstable();
        let Some(next) = (!due.is_empty()).then(|| due.remove(0)) else {
            break;
        };
        node.now = next;
        out = node.input(Input::Timer(Timer::Deadlines));
    }
    let (second, peers) = ended.expect("the lookup ended");
    assert_eq!(second, 45, "at its timeout");
    assert!(
        peers.iter().any(|p| p.id == peer(1)),
        "with what it had: {peers:?}"
    );
}

/// Dials a joining node makes after the one peer it joined through, observed at `teller_at`,
/// answers naming twenty peers at `named_at`.
fn dials_after_answer(teller_at: &str, named_at: impl Fn(u16) -> Address) -> usize {
    let mut node = Node::new(Config::default());
    let teller = 1;
    let addr = Address::from(teller_at.parse::<std::net::SocketAddr>().unwrap());
    node.input(Input::Command(Command::PeerAddress {
        peer: peer(teller),
        addr,
    }));
    node.input(Input::PeerUp(peer(teller)));
    let out = bootstrap(&mut node, &[teller]);
    let (id, _) = requests_to(&out, peer(teller))[0].clone();
    let named = (100..120u16)
        .map(|i| PeerInfo {
            id: peer(u64::from(i)),
            addr: named_at(i),
        })
        .collect();
    let out = answer(&mut node, teller, id, named);
    out.iter().filter(|o| matches!(o, Output::Dial(_))).count()
}

#[test]
fn peers_a_public_peer_names_at_local_addresses_are_not_dialled() {
    let v4 = |ip: [u8; 4]| move |i: u16| Address::V4 { ip, port: 4000 + i };
    // A public peer naming peers on loopback, on our LAN or at a broadcast address: nobody dialled.
    for named_at in [
        [127, 0, 0, 1],
        [192, 168, 1, 1],
        [10, 0, 0, 5],
        [255, 255, 255, 255],
    ] {
        assert_eq!(
            dials_after_answer("198.51.100.7:4001", v4(named_at)),
            0,
            "{named_at:?}"
        );
    }
    // Nor at port 0, wherever.
    let port_zero = |i: u16| Address::V4 {
        ip: [203, 0, 113, i as u8],
        port: 0,
    };
    assert_eq!(dials_after_answer("198.51.100.7:4001", port_zero), 0);
    // Peers at public addresses are: the lookup asks the closest.
    let public = |i: u16| Address::V4 {
        ip: [203, 0, 113, i as u8],
        port: 4001,
    };
    assert!(dials_after_answer("198.51.100.7:4001", public) > 0);
    // A peer on a private network may name peers on it.
    assert!(dials_after_answer("10.9.9.9:4001", v4([10, 0, 0, 5])) > 0);
}

#[test]
fn a_peer_enters_the_table_at_the_address_observed_never_at_one_another_peer_claimed() {
    let mut node = Node::new(Config::default());
    node.connect(1);
    let out = bootstrap(&mut node, &[1]);
    let (id, _) = requests_to(&out, peer(1))[0].clone();
    // Peer 1 names peer 2 at an address in someone else's network.
    let claim = Address::V4 {
        ip: [198, 51, 100, 7],
        port: 4001,
    };
    let named = vec![PeerInfo {
        id: peer(2),
        addr: claim.clone(),
    }];
    answer(&mut node, 1, id, named);
    // Peer 2 connects through a relay (the driver observes no address for it) and asks us something.
    node.input(Input::PeerUp(peer(2)));
    let ping = Message::Request {
        id: 1,
        request: Request::Ping,
    };
    node.from(2, ping.clone());
    let entry = node
        .kad
        .routing_table()
        .get(&peer(2))
        .expect("a requester enters the table");
    assert_ne!(entry.addr, claim);
    assert!(entry.addr.is_unknown(), "{:?}", entry.addr);
    // Once it is seen directly, the entry takes the address observed, and keeps it after.
    node.connect(2);
    node.from(2, ping.clone());
    let at = |node: &Node| node.kad.routing_table().get(&peer(2)).unwrap().addr.clone();
    assert_eq!(at(&node), addr(2));
    node.input(Input::Command(Command::PeerAddress {
        peer: peer(2),
        addr: claim,
    }));
    node.from(2, ping);
    assert_eq!(at(&node), addr(2));
}
