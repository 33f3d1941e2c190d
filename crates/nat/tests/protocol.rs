//! The protocol end to end over a scripted network: registration, discovery, coordinated punches, and
//! what hostile or absent peers get.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_nat::{NatCommand, NatConfig, NatEvent, NatMessage, NatTimer, PunchFailure, Refusal};
use meshwork_wire::{DropReason, Input, Output, Protocol};
use support::Net;

/// A rendezvous and two clients behind NATs, both registered under "coin".
fn registered() -> (Net, PeerId, PeerId, PeerId) {
    let mut net = Net::new();
    let r = net.add(NatConfig::rendezvous(), "10.200.0.100:9000");
    let a = net.add(NatConfig::default(), "10.200.0.1:40001");
    let b = net.add(NatConfig::default(), "10.200.0.2:40002");
    register(&mut net, r, &[a, b]);
    (net, r, a, b)
}

/// Connects `clients` to the rendezvous `r` and registers each under "coin" for a minute.
fn register(net: &mut Net, r: PeerId, clients: &[PeerId]) {
    for client in clients {
        net.connect(*client, r);
    }
    net.run();
    for client in clients {
        register_under_coin(net, *client, r, Duration::from_secs(60));
    }
}

/// `client` asks `rendezvous` to register it under "coin" for `ttl`.
fn register_under_coin(net: &mut Net, client: PeerId, rendezvous: PeerId, ttl: Duration) {
    let namespace = "coin".try_into().unwrap();
    net.command(
        client,
        NatCommand::Register {
            rendezvous,
            namespace,
            ttl,
        },
    );
}

#[test]
fn a_client_is_registered_at_the_address_the_rendezvous_observes_and_found_by_others() {
    let (mut net, r, a, b) = registered();
    let registered = net.events_of(a).into_iter().find_map(|e| match e {
        NatEvent::Registered { addr, ttl, .. } => Some((addr, ttl)),
        _ => None,
    });
    assert_eq!(registered, Some((net.seen_at[&a], Duration::from_secs(60))));
    assert_eq!(
        net.protected.get(&(a, r)),
        Some(&true),
        "the rendezvous connection is kept"
    );
    net.command(
        b,
        NatCommand::Discover {
            rendezvous: r,
            namespace: "coin".try_into().unwrap(),
            limit: 10,
            after: None,
        },
    );
    let found = net.events_of(b).into_iter().find_map(|e| match e {
        NatEvent::Discovered {
            registrations, more, ..
        } => Some((registrations, more)),
        _ => None,
    });
    let (found, more) = found.unwrap();
    assert!(!more);
    assert_eq!(found.len(), 1, "b's own registration is left out");
    assert_eq!((found[0].peer, found[0].addr), (a, net.seen_at[&a]));
}

#[test]
fn each_side_learns_the_address_its_connection_comes_from() {
    let mut net = Net::new();
    let a = net.add(NatConfig::default(), "10.200.0.1:40001");
    let p1 = net.add(NatConfig::default(), "10.200.0.100:9000");
    // In another /24: two peers of one prefix count as one reporter.
    let p2 = net.add(NatConfig::default(), "10.201.0.101:9000");
    net.connect(a, p1);
    net.run();
    assert!(
        net.nodes[&a].external_addresses().is_empty(),
        "one report is not enough"
    );
    net.connect(a, p2);
    net.run();
    assert_eq!(net.nodes[&a].external_addresses(), &[net.seen_at[&a]]);
    assert!(
        net.events_of(a)
            .contains(&NatEvent::AddressConfirmed(net.seen_at[&a]))
    );
    // Without new reports the address expires after the observation TTL.
    net.advance(Duration::from_secs(601));
    assert!(
        net.events_of(a)
            .contains(&NatEvent::AddressExpired(net.seen_at[&a]))
    );
}

#[test]
fn a_coordinated_punch_makes_both_sides_dial_and_ends_in_a_direct_connection() {
    let (mut net, r, a, b) = registered();
    net.punch(a, r, b);
    assert!(net.connected(a, b));
    // Both sides dialled (the rendezvous told both), each at the address the rendezvous observed.
    assert!(net.dials.contains(&(a, b)) && net.dials.contains(&(b, a)));
    for (me, other) in [(a, b), (b, a)] {
        let punched = net.events_of(me).into_iter().find_map(|e| match e {
            NatEvent::HolePunched { peer, addr, .. } => Some((peer, addr)),
            _ => None,
        });
        let (peer, addr) = punched.unwrap();
        assert_eq!(peer, other);
        assert_eq!(addr, Some(net.seen_at[&other]));
    }
    // Once the connection is up, the punch address is forgotten (the runtime's book has the peer).
    assert_eq!(net.nodes[&a].address_of(&b), None);
}

#[test]
fn a_punch_between_peers_joined_by_a_relay_upgrades_their_connection() {
    let (mut net, r, a, b) = registered();
    net.connect_relayed(a, b);
    net.run();
    // A relayed connection's virtual address is no observation: neither side is told it.
    assert!(net.nodes[&a].external_addresses().is_empty());
    net.punch(a, r, b);
    assert!(
        !net.events_of(a)
            .iter()
            .any(|e| matches!(e, NatEvent::AlreadyConnected(_))),
        "a relayed peer is not connected enough to skip the punch"
    );
    assert!(net.dials.contains(&(a, b)) && net.dials.contains(&(b, a)));
    assert!(net.connected(a, b) && !net.is_relayed(a, b), "upgraded");
    for (me, other) in [(a, b), (b, a)] {
        let punched = net.events_of(me).into_iter().find_map(|e| match e {
            NatEvent::HolePunched { peer, addr, .. } => Some((peer, addr)),
            _ => None,
        });
        assert_eq!(punched, Some((other, Some(net.seen_at[&other]))));
    }
    // Now directly connected, a second punch has nothing to do.
    net.punch(a, r, b);
    assert!(
        net.events_of(a)
            .iter()
            .any(|e| matches!(e, NatEvent::AlreadyConnected(peer) if *peer == b))
    );
}

#[test]
fn a_failed_upgrade_leaves_the_relayed_connection_and_times_out() {
    let (mut net, r, a, b) = registered();
    net.connect_relayed(a, b);
    net.run();
    net.dialable = |_, _, _| false;
    net.punch(a, r, b);
    // `PeerUp` from the runtime's hand-back (the peer is connected, through the relay) settles nothing.
    assert!(
        !net.events_of(a)
            .iter()
            .any(|e| matches!(e, NatEvent::HolePunched { .. }))
    );
    net.advance(NatConfig::default().punch_timeout);
    for me in [a, b] {
        let failure = net.events_of(me).into_iter().find_map(|e| match e {
            NatEvent::PunchFailed { reason, .. } => Some(reason),
            _ => None,
        });
        assert_eq!(failure, Some(PunchFailure::TimedOut));
    }
    assert!(net.is_relayed(a, b), "the relayed connection carries on");
}

#[test]
fn through_nats_that_let_nothing_in_the_punch_fails_after_its_attempts() {
    let (mut net, r, a, b) = registered();
    net.dialable = |_, _, _| false;
    net.punch(a, r, b);
    assert!(!net.connected(a, b));
    assert_eq!(net.dials.iter().filter(|d| **d == (a, b)).count(), 3);
    let failure = |peer| {
        net.events_of(peer).into_iter().find_map(|e| match e {
            NatEvent::PunchFailed { reason, .. } => Some(reason),
            _ => None,
        })
    };
    assert_eq!(failure(a), Some(PunchFailure::DialsFailed { attempts: 3 }));
    assert_eq!(failure(b), Some(PunchFailure::DialsFailed { attempts: 3 }));
}

#[test]
fn a_punch_nobody_asked_for_is_dropped_and_dials_nothing() {
    let (mut net, _r, a, b) = registered();
    let stranger = net.add(NatConfig::default(), "10.200.0.9:1");
    net.connect(stranger, a);
    net.run();
    let victim = "192.0.2.80:80".parse().unwrap();
    net.message(
        stranger,
        a,
        NatMessage::Punch {
            peer: b,
            addr: victim,
        },
    );
    assert!(!net.dials.contains(&(a, b)));
    assert_eq!(net.nodes[&a].address_of(&b), None);
    assert!(net.dropped.contains(&(a, stranger, DropReason::Unsolicited)));
}

#[test]
fn a_rendezvous_says_where_to_dial_once_and_never_somewhere_no_peer_can_be() {
    let (mut net, r, a, _b) = registered();
    let punch = |peer, addr: &str| NatMessage::Punch {
        peer,
        addr: addr.parse().unwrap(),
    };
    let dials = |net: &Net, peer| net.dials.iter().filter(|d| **d == (a, peer)).count();
    // A punch another peer asked for: one dial, however often the rendezvous repeats itself.
    let x = net.add(NatConfig::default(), "10.203.0.1:1");
    net.message(r, a, punch(x, "198.51.100.1:4000"));
    net.message(r, a, punch(x, "198.51.100.2:4000"));
    assert_eq!(dials(&net, x), 1);
    // Addresses no peer has are not dialled.
    let y = net.add(NatConfig::default(), "10.204.0.1:1");
    let relayed = meshwork_wire::relayed::relayed_addr(7).to_string();
    for bogus in [
        "0.0.0.0:4000",
        "224.0.0.1:4000",
        "[::ffff:224.0.0.1]:4000",
        &relayed,
    ] {
        net.message(r, a, punch(y, bogus));
    }
    assert_eq!(dials(&net, y), 0);
    // Nor is port 0, nor an address that reaches less far than the rendezvous connection (this
    // one is on a private network: a loopback address is refused, a private or public one is not).
    for narrow in ["127.0.0.1:53", "[::1]:53", "255.255.255.255:4000", "10.200.0.7:0"] {
        net.message(r, a, punch(y, narrow));
    }
    assert_eq!(dials(&net, y), 0);
    let w = net.add(NatConfig::default(), "10.205.0.1:1");
    net.message(r, a, punch(w, "10.205.0.1:4000"));
    assert_eq!(
        dials(&net, w),
        1,
        "a private address from a rendezvous on a private network"
    );
    // Nor does another rendezvous move a punch the first coordinates.
    let r2 = net.add(NatConfig::rendezvous(), "10.206.0.100:9000");
    net.connect(a, r2);
    net.run();
    register_under_coin(&mut net, a, r2, Duration::from_secs(60));
    let z = meshwork_identity::Keypair::from_seed([77; 32]).peer_id();
    let (now, node) = (net.now, net.nodes.get_mut(&a).unwrap());
    let mut out = Vec::new();
    for (via, addr) in [(r, "198.51.100.3:4000"), (r2, "198.51.100.4:4000")] {
        let msg = punch(z, addr);
        node.handle(now, Input::Message { from: via, msg }, &mut out);
    }
    let dialled = out
        .iter()
        .filter(|o| matches!(o, Output::Dial(p) if *p == z))
        .count();
    assert_eq!(dialled, 1, "{out:?}");
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Dropped {
            peer,
            reason: DropReason::Unsolicited
        } if *peer == r2
    )));
}

#[test]
fn punches_others_ask_for_leave_room_for_our_own() {
    let (mut net, r, a, _b) = registered();
    let max = NatConfig::default().max_punches;
    let now = net.now;
    let node = net.nodes.get_mut(&a).unwrap();
    let mut out = Vec::new();
    // The rendezvous names more peers to punch towards than we take: half the places at most.
    for i in 0..max {
        let peer = meshwork_identity::Keypair::from_seed([100 + i as u8; 32]).peer_id();
        let addr = format!("198.51.100.{}:4000", i + 1).parse().unwrap();
        let msg = NatMessage::Punch { peer, addr };
        node.handle(now, Input::Message { from: r, msg }, &mut out);
    }
    let dialled = out.iter().filter(|o| matches!(o, Output::Dial(_))).count();
    assert_eq!(dialled, max / 2);
    // Our own punch still starts.
    out.clear();
    let target = meshwork_identity::Keypair::from_seed([99; 32]).peer_id();
    node.handle(
        now,
        Input::Command(NatCommand::Connect {
            rendezvous: r,
            target,
        }),
        &mut out,
    );
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Send {
                msg: NatMessage::Connect { .. },
                ..
            }
        )),
        "{out:?}"
    );
}

#[test]
fn the_rendezvous_refuses_what_it_cannot_do_with_a_reason() {
    let (mut net, r, a, b) = registered();
    let offline = net.add(NatConfig::default(), "10.200.0.3:1");
    net.punch(a, r, offline);
    assert!(net.events_of(a).contains(&NatEvent::PunchFailed {
        peer: offline,
        reason: PunchFailure::Refused(Refusal::TargetNotConnected),
    }));
    // Connected but not registered: its address is not handed out (registering is how a peer
    // consents to being found).
    let unregistered = net.add(NatConfig::default(), "10.200.0.4:40004");
    net.connect(unregistered, r);
    net.run();
    net.punch(a, r, unregistered);
    assert!(net.events_of(a).contains(&NatEvent::PunchFailed {
        peer: unregistered,
        reason: PunchFailure::Refused(Refusal::TargetNotConnected),
    }));

    // A plain node is no rendezvous.
    net.command(
        a,
        NatCommand::Register {
            rendezvous: b,
            namespace: "x".try_into().unwrap(),
            ttl: Duration::from_secs(60),
        },
    );
    net.connect(a, b);
    net.run();
    assert!(net.events_of(a).contains(&NatEvent::RegisterRefused {
        rendezvous: b,
        namespace: "x".try_into().unwrap(),
        reason: Refusal::NotARendezvous,
    }));
}

/// The punches of `peer` the rendezvous refused for its network's budget.
fn rate_limited(net: &Net, peer: PeerId) -> usize {
    net.events_of(peer)
        .iter()
        .filter(|e| {
            matches!(
                e,
                NatEvent::PunchFailed {
                    reason: PunchFailure::Refused(Refusal::RateLimited),
                    ..
                }
            )
        })
        .count()
}

#[test]
fn punch_budgets_belong_to_networks_and_outlive_connections() {
    let (mut net, r, a, b) = registered();
    net.dialable = |_, _, _| false;
    let refused = rate_limited;
    for _ in 0..10 {
        net.punch(a, r, b);
    }
    assert_eq!(refused(&net, a), 0);
    // Reconnecting does not refill a's budget.
    net.disconnect(a, r);
    net.run();
    net.connect(a, r);
    net.run();
    net.punch(a, r, b);
    assert_eq!(refused(&net, a), 1);
    // Another identity in a's /24 (10.200.0.0/24) spends the same budget.
    let sybil = net.add(NatConfig::default(), "10.200.0.77:40077");
    net.connect(sybil, r);
    net.run();
    net.punch(sybil, r, b);
    assert_eq!(refused(&net, sybil), 1);
    // A peer of another network has a budget of its own.
    let other = net.add(NatConfig::default(), "10.209.0.1:40009");
    net.connect(other, r);
    net.run();
    net.punch(other, r, b);
    assert_eq!(refused(&net, other), 0);
}

#[test]
fn a_rendezvous_answers_a_bounded_number_of_discovers_per_network_per_minute() {
    let (mut net, r, _a, b) = registered();
    let per_minute = NatConfig::default().discovers_per_minute;
    for _ in 0..=per_minute {
        net.command(
            b,
            NatCommand::Discover {
                rendezvous: r,
                namespace: "coin".try_into().unwrap(),
                limit: 10,
                after: None,
            },
        );
    }
    let events = net.events_of(b);
    let answered = events
        .iter()
        .filter(|e| matches!(e, NatEvent::Discovered { .. }))
        .count();
    let limited = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                NatEvent::DiscoverRefused {
                    reason: Refusal::RateLimited,
                    ..
                }
            )
        })
        .count();
    assert_eq!((answered, limited), (per_minute as usize, 1));
}

#[test]
fn a_rendezvous_coordinates_a_bounded_number_of_punches_per_peer_per_minute() {
    let (mut net, r, a, b) = registered();
    // Dials fail at once, so each punch ends before the next request.
    net.dialable = |_, _, _| false;
    let limited = |net: &Net| rate_limited(net, a);
    let punches_to_b = |net: &Net| net.dials.iter().filter(|d| **d == (b, a)).count();
    for _ in 0..15 {
        net.punch(a, r, b);
    }
    assert_eq!(limited(&net), 5, "10 a minute");
    assert_eq!(
        punches_to_b(&net),
        10 * 3,
        "b dialled (3 times) for each coordinated punch only"
    );
    // Half a minute refills five.
    net.advance(Duration::from_secs(30));
    for _ in 0..6 {
        net.punch(a, r, b);
    }
    assert_eq!(limited(&net), 6);
}

#[test]
fn a_client_renews_its_registration_and_registers_again_after_losing_the_rendezvous() {
    let (mut net, r, a, _b) = registered();
    let registrations = |net: &Net| {
        net.events_of(a)
            .iter()
            .filter(|e| matches!(e, NatEvent::Registered { .. }))
            .count()
    };
    assert_eq!(registrations(&net), 1);
    net.advance(Duration::from_secs(46)); // 3/4 of the 60 s TTL
    assert_eq!(registrations(&net), 2);
    net.disconnect(a, r);
    net.run();
    // The client dials the rendezvous again at once and registers on the new connection.
    assert!(net.connected(a, r));
    assert_eq!(registrations(&net), 3);
    assert_eq!(net.nodes[&r].registry().unwrap().len(), 2);
}

#[test]
fn a_registration_ends_with_its_connection() {
    let (mut net, r, _a, b) = registered();
    // A peer registers on a raw connection and leaves: a host cycling identities so would fill the
    // namespace with peers nobody can reach.
    let c = net.add(NatConfig::default(), "10.200.0.3:40003");
    net.connect(c, r);
    net.run();
    let register = NatMessage::Register {
        namespace: "coin".try_into().unwrap(),
        ttl_secs: 3600,
    };
    net.message(c, r, register);
    assert_eq!(net.nodes[&r].registry().unwrap().len(), 3);
    net.disconnect(c, r);
    net.run();
    assert_eq!(net.nodes[&r].registry().unwrap().len(), 2);
    net.command(
        b,
        NatCommand::Discover {
            rendezvous: r,
            namespace: "coin".try_into().unwrap(),
            limit: 10,
            after: None,
        },
    );
    let found = net.events_of(b).into_iter().find_map(|e| match e {
        NatEvent::Discovered { registrations, .. } => Some(registrations),
        _ => None,
    });
    assert!(found.unwrap().iter().all(|reg| reg.peer != c));
}

#[test]
fn a_client_renews_within_the_ttl_the_rendezvous_granted() {
    let mut net = Net::new();
    let r = net.add(NatConfig::rendezvous(), "10.200.0.100:9000");
    let a = net.add(NatConfig::default(), "10.200.0.1:40001");
    net.connect(a, r);
    net.run();
    // A day asked; the rendezvous grants its maximum, two hours.
    register_under_coin(&mut net, a, r, Duration::from_secs(24 * 3600));
    let granted: Vec<Duration> = net
        .events_of(a)
        .iter()
        .filter_map(|e| match e {
            NatEvent::Registered { ttl, .. } => Some(*ttl),
            _ => None,
        })
        .collect();
    assert_eq!(granted, vec![Duration::from_secs(2 * 3600)]);
    // Renewed at three quarters of the grant, not of the day asked: it never lapses.
    net.advance(Duration::from_secs(3 * 1800 + 1));
    let renewals = net
        .events_of(a)
        .iter()
        .filter(|e| matches!(e, NatEvent::Registered { .. }))
        .count();
    assert_eq!(renewals, 2);
    assert_eq!(net.nodes[&r].registry().unwrap().len(), 1);
}

/// The `DiscoverFailed` events `peer` got.
fn discoveries_failed(net: &Net, peer: PeerId) -> usize {
    net.events_of(peer)
        .iter()
        .filter(|e| matches!(e, NatEvent::DiscoverFailed { .. }))
        .count()
}

#[test]
fn a_discovery_that_will_get_no_answer_is_reported_and_forgotten() {
    let (mut net, r, a, b) = registered();
    let discover = |rendezvous| NatCommand::Discover {
        rendezvous,
        namespace: "coin".try_into().unwrap(),
        limit: 10,
        after: None,
    };
    // Through a rendezvous we hold no connection to: it fails at once, nothing waits.
    let stranger = net.add(NatConfig::rendezvous(), "10.200.0.200:9000");
    net.command(b, discover(stranger));
    assert_eq!(discoveries_failed(&net, b), 1);
    // One of a namespace waits at a rendezvous at a time. The rendezvous answers in turn, so the
    // first is answered and the second failed at once, not mistaken for its answer.
    let mut out = Vec::new();
    let node = net.nodes.get_mut(&b).unwrap();
    node.handle(net.now, Input::Command(discover(r)), &mut out);
    node.handle(net.now, Input::Command(discover(r)), &mut out);
    let failed = out
        .iter()
        .filter(|o| matches!(o, Output::Emit(NatEvent::DiscoverFailed { .. })))
        .count();
    assert_eq!(failed, 1, "{out:?}");
    // The rendezvous goes down with it waiting: it fails then, and later ones can go out.
    net.disconnect(b, r);
    net.run();
    assert_eq!(discoveries_failed(&net, b), 2);
    // A rendezvous that never answers: the deadline ends the wait.
    let mut out = Vec::new();
    let node = net.nodes.get_mut(&a).unwrap();
    node.handle(net.now, Input::Command(discover(r)), &mut out);
    let deadline = out.iter().find_map(|o| match o {
        Output::Schedule {
            after,
            timer: timer @ NatTimer::DiscoverDeadline { .. },
        } => Some((*after, timer.clone())),
        _ => None,
    });
    let (after, timer) = deadline.expect("a deadline is set");
    out.clear();
    node.handle(net.now + after, Input::Timer(timer), &mut out);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Emit(NatEvent::DiscoverFailed { .. }))),
        "{out:?}"
    );
}

#[test]
fn a_rendezvous_protects_its_registrants_until_their_registrations_end() {
    let (mut net, r, a, b) = registered();
    // A peer behind a NAT cannot be dialled back: the rendezvous keeps the connection it registered on.
    assert_eq!(net.protected.get(&(r, a)), Some(&true));
    assert_eq!(net.protected.get(&(r, b)), Some(&true));
    // A registration that is not renewed: it expires, and its peer's protection goes with it.
    let c = net.add(NatConfig::default(), "10.200.0.3:40003");
    net.connect(c, r);
    net.run();
    net.message(
        c,
        r,
        NatMessage::Register {
            namespace: "coin".try_into().unwrap(),
            ttl_secs: 10,
        },
    );
    assert_eq!(net.protected.get(&(r, c)), Some(&true));
    net.advance(Duration::from_secs(21));
    assert_eq!(net.protected.get(&(r, c)), Some(&false));
    // Renewing clients stay protected; one that unregisters is released at once.
    assert_eq!(net.protected.get(&(r, b)), Some(&true));
    net.command(
        a,
        NatCommand::Unregister {
            rendezvous: r,
            namespace: "coin".try_into().unwrap(),
        },
    );
    assert_eq!(net.protected.get(&(r, a)), Some(&false));
    assert_eq!(net.protected.get(&(r, b)), Some(&true));
}

#[test]
fn both_ends_keep_a_punched_connection_until_it_closes() {
    let (mut net, r, a, b) = registered();
    net.punch(a, r, b);
    assert!(net.connected(a, b));
    // A connection manager above its watermark would trim it a second after its first exchange;
    // rebuilding it takes another coordinated punch, which may not get through.
    assert_eq!(net.protected.get(&(a, b)), Some(&true));
    assert_eq!(net.protected.get(&(b, a)), Some(&true));
    net.disconnect(a, b);
    net.run();
    assert_eq!(net.protected.get(&(a, b)), Some(&false));
    assert_eq!(net.protected.get(&(b, a)), Some(&false));
    // The rendezvous stays protected: its registration still needs it.
    assert_eq!(net.protected.get(&(a, r)), Some(&true));
}

#[test]
fn an_upgraded_connection_is_kept_like_a_punched_one() {
    let (mut net, r, a, b) = registered();
    net.connect_relayed(a, b);
    net.run();
    assert_eq!(
        net.protected.get(&(a, b)),
        None,
        "a relayed link is not the punch's to keep"
    );
    net.punch(a, r, b);
    assert!(net.connected(a, b) && !net.is_relayed(a, b));
    assert_eq!(net.protected.get(&(a, b)), Some(&true));
    assert_eq!(net.protected.get(&(b, a)), Some(&true));
}

/// A rendezvous, a client `a` that keeps two punched connections of each kind, and `n` other
/// clients, all registered under "coin".
fn keeping_two(n: u8) -> (Net, PeerId, PeerId, Vec<PeerId>) {
    let mut net = Net::new();
    let r = net.add(NatConfig::rendezvous(), "10.200.0.100:9000");
    let keep = NatConfig {
        max_punched_kept: 2,
        ..NatConfig::default()
    };
    let a = net.add(keep, "10.200.0.1:40001");
    let others: Vec<PeerId> = (2..2 + n)
        .map(|i| net.add(NatConfig::default(), &format!("10.200.0.{i}:4000{i}")))
        .collect();
    let clients: Vec<PeerId> = std::iter::once(a).chain(others.iter().copied()).collect();
    register(&mut net, r, &clients);
    (net, r, a, others)
}

#[test]
fn only_the_last_punched_connections_are_kept() {
    let (mut net, r, a, others) = keeping_two(3);
    for other in &others {
        net.punch(a, r, *other);
        assert!(net.connected(a, *other));
    }
    // The oldest was released when the third came; the two latest stay kept.
    let kept: Vec<Option<&bool>> = others.iter().map(|o| net.protected.get(&(a, *o))).collect();
    assert_eq!(kept, vec![Some(&false), Some(&true), Some(&true)]);
}

#[test]
fn punches_others_ask_for_cannot_push_out_the_ones_we_asked_for() {
    let (mut net, r, a, others) = keeping_two(5);
    // `a` punches to the first two; then three others (one identity each, say) ask to punch to `a`.
    for other in &others[..2] {
        net.punch(a, r, *other);
    }
    for other in &others[2..] {
        net.punch(*other, r, a);
        assert!(net.connected(a, *other));
    }
    let kept: Vec<Option<&bool>> = others.iter().map(|o| net.protected.get(&(a, *o))).collect();
    // Ours stay; of theirs, the last two.
    assert_eq!(
        kept,
        vec![Some(&true), Some(&true), Some(&false), Some(&true), Some(&true)]
    );
}

/// Dials `net`'s node `a` makes to `r` while time moves on by `window`.
fn redials(net: &mut Net, a: PeerId, r: PeerId, window: Duration) -> usize {
    let before = net.dials.iter().filter(|d| **d == (a, r)).count();
    net.advance(window);
    net.dials.iter().filter(|d| **d == (a, r)).count() - before
}

#[test]
fn a_rendezvous_that_accepts_and_drops_our_redials_leaves_one_chain_of_redials() {
    let window = Duration::from_secs(3_600);
    // One loss, the rendezvous unreachable since: one chain of redials, with backoff.
    let (mut net, r, a, _) = registered();
    net.dialable = |_, _, _| false;
    net.disconnect(a, r);
    net.run();
    let one_loss = redials(&mut net, a, r, window);
    assert!(one_loss > 0);
    // A rendezvous that accepts each redial and closes it at once: six losses in a row leave one
    // chain too, not six.
    let (mut net, r, a, _) = registered();
    net.dialable = |_, _, _| false;
    for _ in 0..6 {
        net.disconnect(a, r);
        net.run();
        net.connect(a, r);
        net.run();
    }
    net.disconnect(a, r);
    net.run();
    assert_eq!(redials(&mut net, a, r, window), one_loss);
}

#[test]
fn a_public_rendezvous_cannot_send_us_to_a_private_or_loopback_address() {
    let mut net = Net::new();
    let r = net.add(NatConfig::rendezvous(), "203.0.113.100:9000");
    let a = net.add(NatConfig::default(), "198.51.100.1:40001");
    register(&mut net, r, &[a]);
    let target = net.add(NatConfig::default(), "198.51.100.2:40002");
    let dials = |net: &Net| net.dials.iter().filter(|d| **d == (a, target)).count();
    for narrow in [
        "10.0.0.5:22",
        "192.168.1.1:80",
        "127.0.0.1:53",
        "[fd00::1]:80",
        "169.254.1.1:80",
    ] {
        let addr = narrow.parse().unwrap();
        net.message(r, a, NatMessage::Punch { peer: target, addr });
    }
    assert_eq!(dials(&net), 0);
    let addr = "198.51.100.2:40002".parse().unwrap();
    net.message(r, a, NatMessage::Punch { peer: target, addr });
    assert_eq!(dials(&net), 1);
}
