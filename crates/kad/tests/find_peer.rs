//! A lookup of one peer ([`Command::FindPeer`]) ends once we hold a connection to that peer: the
//! handshake proved where it is, so neither its answer nor its neighbours' are waited for.
#![allow(clippy::unwrap_used)]

#[path = "support/node.rs"]
mod node;

use meshwork_kad::message::Request;
use meshwork_kad::{Address, Command, Config, Event, Key, PeerInfo, QueryError, QueryId, QueryStats};
use meshwork_wire::{Input, Output};
use node::*;

/// The [`Event::FoundPeer`]s in `out`: the peer found (if any) and the query's statistics.
fn found(out: &Outs) -> Vec<(Option<PeerInfo>, QueryStats)> {
    events(out)
        .into_iter()
        .filter_map(|e| match e {
            Event::FoundPeer { found, stats, .. } => Some((found, stats)),
            _ => None,
        })
        .collect()
}

fn told(i: u64) -> Address {
    Address::V4 {
        ip: [198, 51, 100, i as u8],
        port: 7,
    }
}

/// A node with peer 1 in its table, looking up peer `target` (query 7), and the id of its request
/// to peer 1.
fn find_peer_through_1(target: u64) -> (Node, u64) {
    let mut node = Node::new(Config::default());
    admit(&mut node, 1);
    let out = node.input(Input::Command(Command::FindPeer {
        query: QueryId(7),
        peer: peer(target),
    }));
    let (id, _) = requests_to(&out, peer(1))[0].clone();
    (node, id)
}

/// [`find_peer_through_1`] of peer 2, and peer 1's answer, which names peer 2 and peer 3 at
/// addresses of its choosing.
fn lookup_told_of_2_and_3() -> (Node, Outs) {
    let (mut node, id) = find_peer_through_1(2);
    let named = [2, 3].map(|i| PeerInfo {
        id: peer(i),
        addr: told(i),
    });
    let out = answer(&mut node, 1, id, named.to_vec());
    (node, out)
}

#[test]
fn a_lookup_of_a_peer_ends_when_its_connection_comes_up_not_when_it_answers() {
    let (mut node, out) = lookup_told_of_2_and_3();
    for i in [2, 3] {
        assert!(
            out.iter().any(|o| matches!(o, Output::Dial(p) if *p == peer(i))),
            "peer {i}, among the α closest, is dialled"
        );
    }
    assert!(found(&out).is_empty(), "nobody reached yet");

    // Another peer's connection ends nothing.
    let out = node.connect(3);
    assert_eq!(requests_to(&out, peer(3)).len(), 1);
    assert!(found(&out).is_empty(), "peer 3 is not the peer looked up");

    // The connection to peer 2 comes up (the driver observed it at `addr(2)`): the lookup is
    // answered now, and the request queued for the dial still goes out.
    node.now += std::time::Duration::from_millis(40);
    let out = node.connect(2);
    let asked = requests_to(&out, peer(2));
    assert!(matches!(asked.as_slice(), [(_, Request::FindNode { .. })]));
    let [(Some(info), stats)] = <[_; 1]>::try_from(found(&out)).unwrap() else {
        panic!("found, with an address");
    };
    assert_eq!(info.id, peer(2));
    assert_eq!(
        info.addr,
        addr(2),
        "the address the connection came from, not the one named"
    );
    assert_eq!(
        (stats.requests, stats.successes),
        (3, 1),
        "peer 1 answered; 2 and 3 not yet"
    );
    assert_eq!(stats.duration, std::time::Duration::from_millis(40));

    // Its answer, later, ends nothing twice, and puts it in our table.
    assert_eq!(node.kad.num_queries(), 0);
    let out = answer(&mut node, 2, asked[0].0, Vec::new());
    assert!(found(&out).is_empty());
    assert!(node.kad.routing_table().contains(&peer(2)));
}

#[test]
fn a_request_left_out_by_an_ended_lookup_is_not_taken_by_a_new_one_under_the_same_id() {
    let (mut node, _) = lookup_told_of_2_and_3();
    // Peer 2 is reached while peer 3's request is still out.
    node.connect(2);
    let straggler = requests_to(&node.connect(3), peer(3))[0].0;
    assert_eq!(node.kad.num_queries(), 0);

    // The application reuses the id for another lookup; peer 3's late answer is not one of its.
    let out = node.input(Input::Command(Command::FindPeer {
        query: QueryId(7),
        peer: peer(9),
    }));
    let asked: Vec<u64> = [1, 2, 3]
        .into_iter()
        .filter(|&i| !requests_to(&out, peer(i)).is_empty())
        .collect();
    assert_eq!(asked, [1], "peer 1 is the only one in our table: {out:?}");
    assert!(found(&answer(&mut node, 3, straggler, Vec::new())).is_empty());
    let id = requests_to(&out, peer(1))[0].0;
    let out = answer(&mut node, 1, id, Vec::new());
    let [(None, stats)] = <[_; 1]>::try_from(found(&out)).unwrap() else {
        panic!("ended, not found");
    };
    assert_eq!(
        (stats.requests, stats.successes),
        (1, 1),
        "peer 3's answer belonged to the lookup that ended"
    );
    // It still taught the table.
    assert!(node.kad.routing_table().contains(&peer(3)));
}

#[test]
fn without_an_observed_address_the_lookup_of_a_peer_waits_for_its_answer() {
    let (mut node, id) = find_peer_through_1(2);
    // Peer 1 names peer 2 alone; the driver tells no address when the connection comes up, so only
    // the named one is known, and a claim is not what a connection proved.
    let named = vec![PeerInfo {
        id: peer(2),
        addr: told(2),
    }];
    answer(&mut node, 1, id, named);
    let out = node.input(Input::PeerUp(peer(2)));
    assert!(found(&out).is_empty(), "no observed address, no early end");
    let (id, _) = requests_to(&out, peer(2))[0].clone();
    let out = answer(&mut node, 2, id, Vec::new());
    let [(Some(info), _)] = <[_; 1]>::try_from(found(&out)).unwrap() else {
        panic!("found once it answered");
    };
    assert_eq!(info.id, peer(2));
    assert_eq!(info.addr, told(2), "the address it was named with: all we know");
}

#[test]
fn an_address_told_after_the_connection_came_up_ends_the_lookup_then() {
    let (mut node, id) = find_peer_through_1(2);
    answer(
        &mut node,
        1,
        id,
        vec![PeerInfo {
            id: peer(2),
            addr: told(2),
        }],
    );
    assert!(found(&node.input(Input::PeerUp(peer(2)))).is_empty());
    let out = node.input(Input::Command(Command::PeerAddress {
        peer: peer(2),
        addr: addr(2),
    }));
    let [(Some(info), _)] = <[_; 1]>::try_from(found(&out)).unwrap() else {
        panic!("found once the address is known");
    };
    assert_eq!(info.addr, addr(2));
}

#[test]
fn a_lookup_of_a_connected_peer_under_an_id_in_use_is_refused() {
    let (mut node, _) = find_peer_through_1(9);
    admit(&mut node, 2);
    let out = node.input(Input::Command(Command::FindPeer {
        query: QueryId(7),
        peer: peer(2),
    }));
    let refused = events(&out).into_iter().any(|e| {
        matches!(
            e,
            Event::Failed {
                query: QueryId(7),
                error: QueryError::DuplicateId,
                ..
            }
        )
    });
    assert!(refused, "{out:?}");
    assert!(found(&out).is_empty());
}

#[test]
fn the_stragglers_of_a_converged_lookup_are_nobodys_and_one_that_times_out_counts_a_failure() {
    // Peer 1 is the target; of the candidates, the two nearest it are named by peer 1, the two
    // farthest are in our table: the lookup converges on the near ones while the far ones are out.
    let target = Key::from_peer(&peer(1));
    let mut by_distance: Vec<u64> = (2..40).collect();
    by_distance.sort_by_key(|&i| Key::from_peer(&peer(i)).distance(&target));
    let (near, far) = (
        [by_distance[0], by_distance[1]],
        [by_distance[36], by_distance[37]],
    );
    // One path: with two, the far peers would make a path of their own, which waits for them.
    let mut config = Config::default();
    config.disjoint_paths = 1;
    let mut node = Node::new(config);
    for i in [1, far[0], far[1]] {
        admit(&mut node, i);
    }
    let out = node.input(Input::Command(Command::FindNode {
        query: QueryId(7),
        target,
    }));
    let asked = |i: u64| requests_to(&out, peer(i)).first().map(|(id, _)| *id);
    let (to_1, stragglers) = (asked(1).unwrap(), far.map(|i| asked(i).unwrap()));
    let named = near
        .map(|i| PeerInfo {
            id: peer(i),
            addr: told(i),
        })
        .to_vec();
    answer(&mut node, 1, to_1, named);
    let mut out = Vec::new();
    for i in near {
        let id = requests_to(&node.connect(i), peer(i))[0].0;
        out.extend(answer(&mut node, i, id, Vec::new()));
    }
    assert!(
        events(&out)
            .iter()
            .any(|e| matches!(e, Event::ClosestPeers { .. })),
        "converged on the nearest, the far ones still out"
    );

    // A new lookup under the same id: one straggler's answer is not its own, and the other
    // straggler, timing out, counts a failure against its entry as any unresponsive peer does.
    let out = node.input(Input::Command(Command::FindNode {
        query: QueryId(7),
        target,
    }));
    let asked: Vec<(u64, u64)> = [1, near[0], near[1]]
        .into_iter()
        .filter_map(|i| Some((i, requests_to(&out, peer(i)).first()?.0)))
        .collect();
    let mut out = answer(&mut node, far[0], stragglers[0], Vec::new());
    for (i, id) in &asked {
        out.extend(answer(&mut node, *i, *id, Vec::new()));
    }
    let stats = events(&out)
        .into_iter()
        .find_map(|e| match e {
            Event::ClosestPeers { stats, .. } => Some(stats),
            _ => None,
        })
        .expect("the new lookup converged");
    assert_eq!(
        (stats.requests, stats.successes),
        (asked.len() as u32, asked.len() as u32),
        "only its own requests: {asked:?}"
    );
    node.now += Config::default().request_timeout * 2;
    let out = node.input(Input::Timer(meshwork_kad::Timer::Deadlines));
    assert!(events(&out).is_empty(), "{out:?}");
    let failures = |i: u64| node.kad.routing_table().get(&peer(i)).map(|e| e.failures);
    assert_eq!(failures(far[1]), Some(1), "timed out: one failure counted");
    assert_eq!(failures(far[0]), Some(0));
}

#[test]
fn a_lookup_of_a_peer_we_hold_a_connection_to_answers_at_once() {
    let mut node = Node::new(Config::default());
    admit(&mut node, 1);
    admit(&mut node, 2);
    let out = node.input(Input::Command(Command::FindPeer {
        query: QueryId(7),
        peer: peer(1),
    }));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Send { .. } | Output::Dial(_))),
        "nothing sent: {out:?}"
    );
    let [(Some(info), stats)] = <[_; 1]>::try_from(found(&out)).unwrap() else {
        panic!("found, with an address");
    };
    assert_eq!(
        info,
        PeerInfo {
            id: peer(1),
            addr: addr(1)
        }
    );
    assert_eq!(stats.requests, 0);
}

#[test]
fn a_lookup_of_a_peer_nobody_names_ends_as_a_lookup_does_without_it() {
    let (mut node, id) = find_peer_through_1(9);
    let out = answer(&mut node, 1, id, Vec::new());
    let [(None, stats)] = <[_; 1]>::try_from(found(&out)).unwrap() else {
        panic!("ended, not found");
    };
    assert_eq!((stats.requests, stats.successes), (1, 1));
}

#[test]
fn a_relay_circuits_address_is_not_where_a_peer_is_found() {
    let mut node = Node::new(Config::default());
    admit(&mut node, 1);
    admit(&mut node, 2);
    // Peer 2's connection now comes through a relay: the virtual address of its circuit says where
    // the relay is, and withdraws the direct address observed before.
    let relayed = Address::from(meshwork_wire::relayed::relayed_addr(5));
    node.input(Input::Command(Command::PeerAddress {
        peer: peer(2),
        addr: relayed.clone(),
    }));
    let out = node.input(Input::Command(Command::FindPeer {
        query: QueryId(7),
        peer: peer(2),
    }));
    assert!(
        found(&out).is_empty(),
        "no observed address: not answered at once"
    );
    let (to_1, _) = requests_to(&out, peer(1))[0].clone();
    let (to_2, _) = requests_to(&out, peer(2))[0].clone();
    answer(&mut node, 2, to_2, Vec::new());
    let out = answer(&mut node, 1, to_1, Vec::new());
    let [(Some(info), _)] = <[_; 1]>::try_from(found(&out)).unwrap() else {
        panic!("found once it answered: {out:?}");
    };
    assert_ne!(info.addr, relayed);
    assert_ne!(node.kad.address_of(&peer(2)), Some(&relayed));

    // Nor does a relayed address make an entry for a peer we have no connection to.
    node.input(Input::Command(Command::PeerAddress {
        peer: peer(9),
        addr: relayed,
    }));
    assert_eq!(node.kad.address_of(&peer(9)), None);
}

#[test]
fn a_peer_whose_connection_closes_under_an_ended_lookups_request_keeps_its_place() {
    let mut node = Node::new(Config::default());
    admit(&mut node, 1);
    admit(&mut node, 5);
    let out = node.input(Input::Command(Command::FindPeer {
        query: QueryId(7),
        peer: peer(2),
    }));
    let to_1 = requests_to(&out, peer(1))[0].0;
    assert_eq!(
        requests_to(&out, peer(5)).len(),
        1,
        "peer 5 is asked too: {out:?}"
    );
    let named = vec![PeerInfo {
        id: peer(2),
        addr: told(2),
    }];
    answer(&mut node, 1, to_1, named);
    assert_eq!(
        found(&node.connect(2)).len(),
        1,
        "peer 2 reached: the lookup ended"
    );
    // Peer 5's connection closes (its connection manager's choice) under the ended lookup's
    // request: nothing waits for that request, so it is not sent again, and it says nothing of
    // peer 5.
    let out = node.input(Input::PeerDown(peer(5)));
    assert!(
        !out.iter().any(|o| matches!(o, Output::Dial(p) if *p == peer(5))),
        "not redialled: {out:?}"
    );
    assert!(node.kad.routing_table().contains(&peer(5)));
    assert!(!node.kad.is_waiting_on(&peer(5)));
}

#[test]
fn a_relay_circuits_address_named_by_a_peer_is_no_address_here() {
    let (mut node, id) = find_peer_through_1(2);
    let relayed = Address::from(meshwork_wire::relayed::relayed_addr(5));
    let named = vec![PeerInfo {
        id: peer(2),
        addr: relayed,
    }];
    let out = answer(&mut node, 1, id, named);
    assert!(
        out.iter().any(|o| matches!(o, Output::Dial(p) if *p == peer(2))),
        "peer 2 is still asked: {out:?}"
    );
    assert_eq!(node.kad.address_of(&peer(2)), Some(&Address::unknown()));
}
