//! Joining and bucket refreshes: a refresh runs one lookup path, joining skips the buckets its
//! self-lookup already filled or saw all of, and a join nobody answered is tried again until someone
//! does.
#![allow(clippy::unwrap_used)]

#[path = "support/node.rs"]
mod node;

use std::collections::BTreeMap;

use meshwork_kad::message::{Request, Response};
use meshwork_kad::{Command, Config, Event, Key, Message, PeerInfo, QueryId, Timer};
use meshwork_wire::{BoundedVec, Input, Output};
use node::*;

/// The `FindNode` requests in `out`: (to, request id, target).
fn find_nodes(out: &Outs) -> Vec<(meshwork_identity::PeerId, u64, Key)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg:
                    Message::Request {
                        id,
                        request: Request::FindNode { target },
                    },
            } => Some((*to, *id, *target)),
            _ => None,
        })
        .collect()
}

/// The bucket of node 0's table that `target` falls in.
fn bucket_of(target: &Key) -> usize {
    Key::from_peer(&peer(0)).distance(target).bucket_index().unwrap()
}

/// The answer to request `id` that names `closer`.
fn nodes(id: u64, closer: Vec<PeerInfo>) -> Message {
    Message::Response {
        id,
        response: Response::Nodes {
            closer: BoundedVec::try_from(closer).unwrap(),
        },
    }
}

#[test]
fn a_bucket_refresh_runs_one_lookup_path() {
    let config = Config::default();
    let (alpha, paths) = (config.alpha, config.disjoint_paths);
    assert!(
        paths > 1,
        "the default runs disjoint paths, which refreshes do without"
    );
    let mut node = Node::new(config.clone());
    for p in in_bucket(0, 10) {
        admit(&mut node, p);
    }
    node.now += config.refresh_interval * 2;
    let out = node.input(Input::Timer(Timer::Refresh));
    let mut per_target: BTreeMap<Key, usize> = BTreeMap::new();
    for (_, _, target) in find_nodes(&out) {
        *per_target.entry(target).or_default() += 1;
    }
    // The stale bucket 0 and our own key: two refreshes, each α requests on one path (with `d`
    // paths and ten seeds, each would start with `d·α`).
    assert_eq!(per_target.len(), 2, "{per_target:?}");
    assert!(per_target.values().all(|&n| n == alpha), "{per_target:?}");
}

/// Joins through the peers already in `node`'s table, answering every request (of the self-lookup
/// and of the bucket refreshes that follow it) with no closer peers, and returns the buckets the join
/// refreshed. Asserts that the refreshes run one at a time.
fn buckets_refreshed_by_join(node: &mut Node) -> std::collections::BTreeSet<usize> {
    let own = Key::from_peer(&peer(0));
    let mut out = node.input(Input::Command(Command::Bootstrap {
        query: QueryId(1),
        peers: Vec::new(),
    }));
    let mut joined = false;
    let mut refreshed = std::collections::BTreeSet::new();
    for _ in 0..1_000 {
        joined |= events(&out)
            .iter()
            .any(|e| matches!(e, Event::Bootstrapped { .. }));
        let requests = find_nodes(&out);
        if requests.is_empty() {
            assert!(joined, "the self-lookup stalled");
            return refreshed;
        }
        let targets: std::collections::BTreeSet<Key> = requests
            .iter()
            .map(|(_, _, t)| *t)
            .filter(|t| *t != own)
            .collect();
        assert!(
            targets.len() <= 1,
            "join refreshes run one at a time: {targets:?}"
        );
        refreshed.extend(targets.iter().map(bucket_of));
        let mut next = Vec::new();
        for (to, id, _) in requests {
            next.extend(node.input(Input::Message {
                from: to,
                msg: nodes(id, Vec::new()),
            }));
        }
        out = next;
    }
    panic!("the join did not end within 1,000 rounds");
}

#[test]
fn joining_refreshes_only_the_buckets_the_self_lookup_did_not_cover() {
    let config = Config::default();
    let k = config.k;
    let mut node = Node::new(config);
    // Ten peers in bucket 0 (the join's fill), five in 1, a full bucket 3 and two in bucket 5 (our
    // nearest).
    let peers = [
        in_bucket(0, 10),
        in_bucket(1, 5),
        in_bucket(3, k),
        in_bucket(5, 2),
    ];
    for &p in peers.iter().flatten() {
        admit(&mut node, p);
    }
    assert_eq!(node.kad.routing_table().bucket(3).len(), k, "bucket 3 is full");
    // The self-lookup's k closest are the two of bucket 5 and eighteen of bucket 3: it has seen
    // everyone nearer than bucket 3, so bucket 4 needs no refresh although it is empty. Buckets 1
    // and 2 lie beyond its k-th peer and hold fewer than the join's fill: refreshed. Bucket 0
    // holds the fill already, and bucket 3 is full.
    assert_eq!(node.kad.config().join_fill, 10);
    assert_eq!(buckets_refreshed_by_join(&mut node), [1, 2].into_iter().collect());
}

#[test]
fn a_self_lookup_that_found_fewer_than_k_covers_only_our_nearest_neighbours() {
    let config = Config::default();
    let k = config.k;
    let mut node = Node::new(config);
    let (far, near) = (in_bucket(0, k), in_bucket(3, 2));
    for &p in far.iter().chain(&near) {
        admit(&mut node, p);
    }
    // 22 answered, but the table is all the lookup knew: its 20 closest reach into bucket 0, so
    // it saw everyone nearer, and no bucket is refreshed (bucket 0 is full).
    assert!(buckets_refreshed_by_join(&mut node).is_empty());

    // Fewer than k answered: the lookup's reach says nothing, so every bucket beyond our nearest
    // neighbour's that is not full is refreshed, as Kademlia's join does.
    let mut small = Node::new(Config::default());
    for &p in in_bucket(0, 5).iter().chain(&near) {
        admit(&mut small, p);
    }
    assert_eq!(
        buckets_refreshed_by_join(&mut small),
        [0, 1, 2].into_iter().collect()
    );
}

#[test]
fn a_join_nobody_answered_is_tried_again_later_until_someone_does() {
    let mut config = Config::default();
    config.disjoint_paths = 1;
    let mut node = Node::new(config);
    let seed = PeerInfo {
        id: peer(1),
        addr: addr(1),
    };
    let out = node.input(Input::Command(Command::Bootstrap {
        query: QueryId(1),
        peers: vec![seed],
    }));
    assert!(
        matches!(&out[..], [.., Output::Dial(p)] if *p == peer(1)),
        "{out:?}"
    );
    // The dial fails: the join ends with an empty table and is tried again in 1 s, then 2 s, 4 s.
    let mut out = node.input(Input::PeerDown(peer(1)));
    assert!(events(&out).iter().any(|e| matches!(
        e,
        Event::Bootstrapped {
            query: QueryId(1),
            table_size: 0,
            ..
        }
    )));
    for wait in [1, 2, 4] {
        let after = timer_in(&out, &Timer::Rejoin).expect("a new try is scheduled");
        assert_eq!(after, std::time::Duration::from_secs(wait));
        node.now += after;
        out = node.input(Input::Timer(Timer::Rejoin));
        assert!(
            out.iter().any(|o| matches!(o, Output::Dial(p) if *p == peer(1))),
            "the new try dials the bootstrap peer again"
        );
        out = node.input(Input::PeerDown(peer(1)));
    }
    // This time the seed is up and answers: the table fills and no further try is scheduled.
    node.now += timer_in(&out, &Timer::Rejoin).unwrap();
    node.input(Input::Timer(Timer::Rejoin));
    let out = node.connect(1);
    let (id, _) = requests_to(&out, peer(1))[0].clone();
    let out = node.from(1, nodes(id, Vec::new()));
    assert_eq!(node.kad.routing_table().len(), 1);
    assert_eq!(timer_in(&out, &Timer::Rejoin), None, "{out:?}");
    // A timer that fires late, with the table no longer empty, does nothing.
    assert!(node.input(Input::Timer(Timer::Rejoin)).is_empty());
}

#[test]
fn a_join_refresh_asks_no_more_than_its_bucket_can_take_and_ends_once_filled() {
    let config = Config::default();
    let (k, alpha, fill) = (config.k, config.alpha, config.join_fill);
    let mut node = Node::new(config);
    // Bucket 0 starts a quarter full, short of the join's fill; our nearest neighbours are in
    // bucket 5.
    let bucket0 = in_bucket(0, 4 * k);
    let (known, fresh) = bucket0.split_at(k / 4);
    for &p in known.iter().chain(&in_bucket(5, 2)) {
        admit(&mut node, p);
    }
    let index: std::collections::HashMap<_, _> = fresh.iter().map(|&i| (peer(i), i)).collect();
    let mut fresh = fresh.iter().copied();
    let own = Key::from_peer(&peer(0));
    let (mut named, mut asked) = (std::collections::HashSet::new(), std::collections::HashSet::new());
    // The bucket-0 refresh's requests not answered yet: whenever it sends one, the bucket still has
    // room, and no more are in flight than answers could fit (or `α`, which a refresh may always have).
    // Dials connect at once, so a request that waited for one goes out with the input that issued it.
    let mut in_flight = std::collections::HashSet::new();
    let mut feed = |node: &mut Node, input: Input<meshwork_kad::Kademlia>| {
        if let Input::Message {
            msg: Message::Response { id, .. },
            ..
        } = &input
        {
            in_flight.remove(id);
        }
        let mut out = node.input(input);
        let dials: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Output::Dial(p) => Some(*p),
                _ => None,
            })
            .collect();
        for p in dials {
            out.extend(node.input(Input::PeerUp(p)));
        }
        let sent: Vec<u64> = find_nodes(&out)
            .into_iter()
            .filter(|(_, _, target)| *target != own && bucket_of(target) == 0)
            .map(|(_, id, _)| id)
            .collect();
        if !sent.is_empty() {
            in_flight.extend(sent);
            let room = fill - node.kad.routing_table().bucket(0).len();
            assert!(room > 0, "a request of the refresh after its bucket filled");
            assert!(
                in_flight.len() <= room.max(alpha),
                "{} requests in flight for {room} places",
                in_flight.len()
            );
        }
        out
    };
    // The self-lookup is answered with nobody closer, and each request of the
    // bucket-0 refresh with three peers of bucket 0 it has not heard of.
    let mut pending = feed(
        &mut node,
        Input::Command(Command::Bootstrap {
            query: QueryId(1),
            peers: Vec::new(),
        }),
    );
    let mut ended = false;
    for _ in 0..1_000 {
        let requests = find_nodes(&pending);
        if requests.is_empty() {
            ended = true;
            break;
        }
        let mut next = Vec::new();
        for (to, id, target) in requests {
            let mut closer = Vec::new();
            if target != own && bucket_of(&target) == 0 {
                if let Some(&i) = index.get(&to) {
                    asked.insert(i);
                }
                for i in fresh.by_ref().take(3) {
                    named.insert(i);
                    closer.push(PeerInfo {
                        id: peer(i),
                        addr: addr(i),
                    });
                }
            }
            next.extend(feed(
                &mut node,
                Input::Message {
                    from: to,
                    msg: nodes(id, closer),
                },
            ));
        }
        pending = next;
    }
    assert!(ended, "the join did not end within 1,000 rounds");
    // Filled to the join's fill; up to `α - 1` more answers were already on their way (a refresh
    // always may have `α` in flight) and entered too, since the bucket had room.
    let filled = node.kad.routing_table().bucket(0).len();
    assert!(
        (fill..fill + alpha).contains(&filled),
        "the refresh filled bucket 0 to {filled}, not to the join's fill {fill}"
    );
    // A lookup would go on until the k peers closest to its random target had answered; the
    // refresh stopped with peers it had heard of still unasked.
    assert!(
        asked.len() < named.len(),
        "asked {} of the {} peers named to it",
        asked.len(),
        named.len()
    );
}
