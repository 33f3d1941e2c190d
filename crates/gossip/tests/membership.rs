//! HyParView repair driven by hand: high-priority requests, eviction hints, expiring requests, join retries.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use meshwork_gossip::{Config, Gossip, MembershipMessage as Msg, Message, PeerEntry, Timer};
use meshwork_identity::Keypair;
use meshwork_wire::{Input, Instant, Output, PeerId, Protocol};

fn peer(n: u8) -> PeerId {
    Keypair::from_seed([n; 32]).peer_id()
}

fn node() -> Gossip {
    Gossip::new(Keypair::from_seed([1; 32]), Config::default(), 7)
}

fn handle(g: &mut Gossip, input: Input<Gossip>) -> Vec<Output<Gossip>> {
    let mut out = Vec::new();
    g.handle(Instant::ZERO, input, &mut out);
    out
}

fn receive(g: &mut Gossip, from: PeerId, msg: Msg) -> Vec<Output<Gossip>> {
    let msg = Message::Membership(msg);
    handle(g, Input::Message { from, msg })
}

/// Connects `from` and has it ask to be a neighbour.
fn neighbour(g: &mut Gossip, from: PeerId, high_priority: bool) -> Vec<Output<Gossip>> {
    handle(g, Input::PeerUp(from));
    receive(g, from, Msg::Neighbor { high_priority })
}

fn sent(out: &[Output<Gossip>]) -> Vec<(PeerId, Msg)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg: Message::Membership(m),
            } => Some((*to, m.clone())),
            _ => None,
        })
        .collect()
}

fn dials(out: &[Output<Gossip>]) -> Vec<PeerId> {
    out.iter()
        .filter_map(|o| match o {
            Output::Dial(p) => Some(*p),
            _ => None,
        })
        .collect()
}

/// Fills the passive view with `peers` (a shuffle walk of the active peer `via` that ends here).
fn learn(g: &mut Gossip, via: PeerId, peers: &[PeerId]) {
    let peers: Vec<PeerEntry> = peers.iter().map(|p| PeerEntry::id_only(*p)).collect();
    let peers = peers.try_into().unwrap();
    receive(
        g,
        via,
        Msg::Shuffle {
            origin: PeerEntry::id_only(via),
            ttl: 0,
            peers,
            nonce: 0,
        },
    );
}

#[test]
fn a_full_view_takes_a_high_priority_request_and_tells_the_evicted_peer_who_came() {
    let mut g = node();
    for n in 2..7 {
        neighbour(&mut g, peer(n), false);
    }
    assert_eq!(g.active_view().len(), 5);
    // A low-priority request is refused when full.
    let out = neighbour(&mut g, peer(8), false);
    assert_eq!(
        sent(&out),
        vec![(
            peer(8),
            Msg::NeighborReply {
                accepted: false,
                alternative: None
            }
        )]
    );
    assert!(!g.active_view().contains(&peer(8)));
    // A high-priority one (the sender is alone) must be accepted: a random member makes room.
    let out = neighbour(&mut g, peer(7), true);
    assert_eq!(g.active_view().len(), 5, "the view stays within its size");
    assert!(g.active_view().contains(&peer(7)));
    let evicted: Vec<PeerId> = sent(&out)
        .into_iter()
        .filter(|(_, m)| {
            *m == Msg::Disconnect {
                alternative: Some(PeerEntry::id_only(peer(7))),
            }
        })
        .map(|(to, _)| to)
        .collect();
    assert_eq!(evicted.len(), 1);
    assert!(
        g.passive_view().contains(&evicted[0]),
        "evicted peers go to the passive view"
    );
    assert!(sent(&out).contains(&(
        peer(7),
        Msg::NeighborReply {
            accepted: true,
            alternative: None
        }
    )));
}

#[test]
fn an_isolated_node_sends_one_high_priority_request_at_a_time_until_it_has_neighbours() {
    let mut g = node();
    neighbour(&mut g, peer(2), false);
    learn(&mut g, peer(2), &[peer(10), peer(11), peer(12), peer(13)]);
    // Its only neighbour fails: one high-priority request, not one per free slot.
    let out = handle(&mut g, Input::PeerDown(peer(2)));
    let asked = dials(&out);
    assert_eq!(asked.len(), 1, "{out:?}");
    let out = handle(&mut g, Input::PeerUp(asked[0]));
    assert_eq!(
        sent(&out),
        vec![(asked[0], Msg::Neighbor { high_priority: true })]
    );
    // Accepted: still alone (fewer than half the slots), so the next request is high priority too.
    let out = receive(
        &mut g,
        asked[0],
        Msg::NeighborReply {
            accepted: true,
            alternative: None,
        },
    );
    assert_eq!(g.active_view(), &[asked[0]]);
    let next = dials(&out);
    assert_eq!(next.len(), 1);
    assert_ne!(next[0], asked[0]);
}

#[test]
fn an_unanswered_request_expires_and_the_next_peer_is_asked() {
    let mut g = node();
    neighbour(&mut g, peer(2), false);
    learn(&mut g, peer(2), &[peer(10), peer(11)]);
    let first = dials(&handle(&mut g, Input::PeerDown(peer(2))));
    handle(&mut g, Input::PeerUp(first[0]));
    // No answer ever comes (lost). Within two repair rounds the request is dropped and the other
    // passive peer is asked.
    let mut asked = Vec::new();
    for _ in 0..2 {
        asked.extend(dials(&handle(&mut g, Input::Timer(Timer::Shuffle))));
    }
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_ne!(asked[0], first[0]);
}

#[test]
fn an_evicted_node_asks_the_peer_that_took_its_slot_first() {
    let mut g = node();
    neighbour(&mut g, peer(2), false);
    neighbour(&mut g, peer(3), false);
    let out = receive(
        &mut g,
        peer(2),
        Msg::Disconnect {
            alternative: Some(PeerEntry::id_only(peer(9))),
        },
    );
    assert_eq!(g.active_view(), &[peer(3)]);
    assert!(g.passive_view().contains(&peer(2)));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Disconnect(p) if *p == peer(2)))
    );
    assert_eq!(dials(&out).first(), Some(&peer(9)));
    // Not straight back to the peer that evicted us.
    assert!(!dials(&out).contains(&peer(2)));
}

#[test]
fn an_accept_without_a_request_is_ignored() {
    let mut g = node();
    handle(&mut g, Input::PeerUp(peer(4)));
    receive(
        &mut g,
        peer(4),
        Msg::NeighborReply {
            accepted: true,
            alternative: None,
        },
    );
    assert!(g.active_view().is_empty());
}

#[test]
fn an_accept_of_a_request_given_up_on_tells_the_peer_it_is_no_neighbour() {
    let mut g = node();
    learn_via_neighbour(&mut g, &[peer(20)]);
    // The repair round asks the passive peer; the request goes unanswered for the next round too,
    // and is given up on.
    let asked = dials(&handle(&mut g, Input::Timer(Timer::Shuffle)));
    assert_eq!(asked, vec![peer(20)]);
    handle(&mut g, Input::PeerUp(peer(20)));
    for _ in 0..2 {
        handle(&mut g, Input::Timer(Timer::Shuffle));
    }
    // Its acceptance comes late: the peer took us into its view, and must hear that we did not.
    let out = receive(
        &mut g,
        peer(20),
        Msg::NeighborReply {
            accepted: true,
            alternative: None,
        },
    );
    assert!(!g.active_view().contains(&peer(20)));
    assert_eq!(
        sent(&out),
        vec![(peer(20), Msg::Disconnect { alternative: None })]
    );
}

/// Gives `g` one neighbour (2) and, through its walk, `peers` in the passive view.
fn learn_via_neighbour(g: &mut Gossip, peers: &[PeerId]) {
    neighbour(g, peer(2), false);
    learn(g, peer(2), peers);
}

#[test]
fn a_neighbour_that_dropped_and_came_back_is_told_at_the_next_round_that_it_is_no_neighbour() {
    let mut g = node();
    neighbour(&mut g, peer(4), false);
    neighbour(&mut g, peer(5), false);
    // Our connection to 4 closed; 4 dialled us again before it saw the close, so its view may
    // still hold us, and nothing else tells it while the overlay is idle.
    handle(&mut g, Input::PeerDown(peer(4)));
    handle(&mut g, Input::PeerUp(peer(4)));
    let told = |out: &[Output<Gossip>]| sent(out).contains(&(peer(4), Msg::Disconnect { alternative: None }));
    let out = handle(&mut g, Input::Timer(Timer::Shuffle));
    assert!(told(&out), "{:?}", sent(&out));
    // Not released: it may have dialled us for a request of its own.
    let released = out
        .iter()
        .any(|o| matches!(o, Output::Disconnect(p) if *p == peer(4)));
    assert!(!released);
    // Told once.
    handle(&mut g, Input::PeerUp(peer(4)));
    assert!(!told(&handle(&mut g, Input::Timer(Timer::Shuffle))));
    // A neighbour that came back into the view is not told.
    handle(&mut g, Input::PeerDown(peer(5)));
    neighbour(&mut g, peer(5), false);
    let out = handle(&mut g, Input::Timer(Timer::Shuffle));
    assert!(
        !sent(&out)
            .iter()
            .any(|(to, m)| *to == peer(5) && matches!(m, Msg::Disconnect { .. }))
    );
    assert!(g.active_view().contains(&peer(5)));
}

#[test]
fn a_former_neighbour_that_dials_again_rounds_later_is_told_too() {
    let mut g = node();
    neighbour(&mut g, peer(4), false);
    neighbour(&mut g, peer(5), false);
    // Our side of the connection closed first; 4 redials only three rounds later.
    handle(&mut g, Input::PeerDown(peer(4)));
    let told = |out: &[Output<Gossip>]| sent(out).contains(&(peer(4), Msg::Disconnect { alternative: None }));
    for _ in 0..3 {
        assert!(!told(&handle(&mut g, Input::Timer(Timer::Shuffle))));
    }
    handle(&mut g, Input::PeerUp(peer(4)));
    assert!(told(&handle(&mut g, Input::Timer(Timer::Shuffle))));
}

#[test]
fn a_disconnect_that_crosses_our_request_leaves_the_request_to_its_answer() {
    let mut g = node();
    learn_via_neighbour(&mut g, &[peer(20)]);
    let asked = dials(&handle(&mut g, Input::Timer(Timer::Shuffle)));
    assert_eq!(asked, vec![peer(20)]);
    handle(&mut g, Input::PeerUp(peer(20)));
    // 20 had dropped us and tells us so (its link check) while our request is on its way.
    let out = receive(&mut g, peer(20), Msg::Disconnect { alternative: None });
    let released = out
        .iter()
        .any(|o| matches!(o, Output::Disconnect(p) if *p == peer(20)));
    assert!(!released, "the connection carries our request");
    // Its answer to the request still counts.
    receive(
        &mut g,
        peer(20),
        Msg::NeighborReply {
            accepted: true,
            alternative: None,
        },
    );
    assert!(g.active_view().contains(&peer(20)));
}

#[test]
fn a_disconnect_from_a_peer_that_is_no_neighbour_only_lets_it_go() {
    let mut g = node();
    learn_via_neighbour(&mut g, &[peer(20)]);
    for n in 3..7 {
        neighbour(&mut g, peer(n), false);
    }
    // 20 is connected but no neighbour (it shuffled with us, say), and tells us what we know: that
    // we are not its neighbour (its link check, crossing its own eviction's `Disconnect`).
    handle(&mut g, Input::PeerUp(peer(20)));
    let out = receive(&mut g, peer(20), Msg::Disconnect { alternative: None });
    let released = out
        .iter()
        .any(|o| matches!(o, Output::Disconnect(p) if *p == peer(20)));
    assert!(released);
    // It is not taken for a peer that refused us: a free slot asks it.
    let out = handle(&mut g, Input::PeerDown(peer(3)));
    assert!(dials(&out).contains(&peer(20)), "{:?}", sent(&out));
}

#[test]
fn a_node_left_with_nobody_joins_again_through_its_contact() {
    let mut g = node();
    let contact = peer(5);
    let out = handle(
        &mut g,
        Input::Command(meshwork_gossip::Command::Join(vec![contact])),
    );
    assert_eq!(dials(&out), vec![contact]);
    // The dial fails: no neighbour, no passive peer. The next repair round retries the join.
    handle(&mut g, Input::PeerDown(contact));
    let out = handle(&mut g, Input::Timer(Timer::Shuffle));
    assert_eq!(dials(&out), vec![contact]);
    let out = handle(&mut g, Input::PeerUp(contact));
    assert!(sent(&out).contains(&(contact, Msg::Join)));
    assert_eq!(g.active_view(), &[contact]);
}

#[test]
fn a_late_accept_when_full_is_undone_instead_of_evicting_a_neighbour() {
    let mut g = node();
    for n in 2..6 {
        neighbour(&mut g, peer(n), false);
    }
    learn(
        &mut g,
        peer(2),
        &[peer(20), peer(21), peer(22), peer(23), peer(24)],
    );
    // The repair round asks a passive peer (low priority) for the free slot.
    let asked = dials(&handle(&mut g, Input::Timer(Timer::Shuffle)));
    assert_eq!(asked.len(), 1, "{asked:?}");
    let out = handle(&mut g, Input::PeerUp(asked[0]));
    assert_eq!(
        sent(&out),
        vec![(asked[0], Msg::Neighbor { high_priority: false })]
    );
    // Meanwhile another peer fills the view by asking us.
    neighbour(&mut g, peer(6), false);
    let before = g.active_view().to_vec();
    let out = receive(
        &mut g,
        asked[0],
        Msg::NeighborReply {
            accepted: true,
            alternative: None,
        },
    );
    assert_eq!(g.active_view(), &before[..], "nobody evicted");
    assert_eq!(
        sent(&out),
        vec![(asked[0], Msg::Disconnect { alternative: None })]
    );
}

#[test]
fn broadcast_traffic_from_a_peer_outside_the_view_is_answered_with_disconnect() {
    let mut g = node();
    handle(&mut g, Input::PeerUp(peer(4)));
    let msg = Message::Tree(meshwork_gossip::TreeMessage::Prune { origin: peer(9) });
    let out = handle(&mut g, Input::Message { from: peer(4), msg });
    assert_eq!(sent(&out), vec![(peer(4), Msg::Disconnect { alternative: None })]);
    // From a neighbour it is ordinary traffic.
    neighbour(&mut g, peer(5), false);
    let msg = Message::Tree(meshwork_gossip::TreeMessage::Prune { origin: peer(9) });
    assert!(sent(&handle(&mut g, Input::Message { from: peer(5), msg })).is_empty());
}

fn protections(out: &[Output<Gossip>]) -> Vec<(PeerId, bool)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Protect { peer, protect } => Some((*peer, *protect)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_active_view_is_protected_from_the_connection_manager_and_only_it() {
    let mut g = node();
    for n in 2..7 {
        let out = neighbour(&mut g, peer(n), false);
        assert_eq!(
            protections(&out),
            [(peer(n), true)],
            "neighbour {n} joins the view"
        );
    }
    // Refused (the view is full): connected, but not protected.
    let out = neighbour(&mut g, peer(8), false);
    assert!(protections(&out).is_empty());
    // A neighbour that leaves is no longer protected.
    let out = receive(&mut g, peer(3), Msg::Disconnect { alternative: None });
    assert_eq!(protections(&out), [(peer(3), false)]);
    let out = handle(&mut g, Input::PeerDown(peer(4)));
    assert_eq!(protections(&out), [(peer(4), false)]);
}

/// The shuffle walks `g` started in `out`.
/// A node whose views are both full: five neighbours, and a passive view filled by their walks.
fn settled() -> Gossip {
    let config = Config::default();
    let mut g = node();
    for n in 2..7 {
        neighbour(&mut g, peer(n), false);
    }
    // Each neighbour's walks fill at most its share of the passive view.
    for n in 2..7u8 {
        let peers: Vec<PeerId> = (0..8).map(|i| peer(100 + n * 8 + i)).collect();
        learn(&mut g, peer(n), &peers);
    }
    assert_eq!(g.active_view().len(), config.active_view_capacity);
    assert_eq!(g.passive_view().len(), config.passive_view_capacity);
    g
}

/// A repair round `round` after `at` (which it moves on): the shuffle walks it started.
fn round_walks(g: &mut Gossip, at: &mut Instant, round: std::time::Duration) -> usize {
    round_walk_nonces(g, at, round).len()
}

/// The nonces of the walks the round `round` after `at` starts (advancing `at`).
fn round_walk_nonces(g: &mut Gossip, at: &mut Instant, round: std::time::Duration) -> Vec<u64> {
    *at += round;
    let mut out = Vec::new();
    g.handle(*at, Input::Timer(Timer::Shuffle), &mut out);
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                msg: Message::Membership(Msg::Shuffle { nonce, .. }),
                ..
            } => Some(*nonce),
            _ => None,
        })
        .collect()
}

#[test]
fn a_settled_node_walks_once_a_shuffle_interval_and_one_with_room_or_a_new_neighbour_every_round() {
    let config = Config::default();
    let (round, interval) = (config.repair_interval, config.shuffle_interval);
    assert!(interval >= round * 3, "the test needs rounds between walks");
    let mut g = settled();
    // Both views full: one walk at the first round, the next a shuffle interval later.
    let rounds = u32::try_from(interval.as_millis() / round.as_millis()).unwrap();
    let mut at = Instant::ZERO;
    let per_round: Vec<usize> = (0..=rounds)
        .map(|_| round_walks(&mut g, &mut at, round))
        .collect();
    let expected: Vec<usize> = (0..=rounds).map(|r| usize::from(r == 0 || r == rounds)).collect();
    assert_eq!(per_round, expected);
    // A neighbour fails: the view has room, and the node walks at every round until it is full.
    let mut out = Vec::new();
    g.handle(at, Input::PeerDown(peer(3)), &mut out);
    let two = |g: &mut Gossip, at: &mut Instant| [round_walks(g, at, round), round_walks(g, at, round)];
    assert_eq!(two(&mut g, &mut at), [1, 1]);
    // A new neighbour fills the slot: the active view changed since the last walk, so the next round
    // walks too, and the one after is settled again.
    g.handle(at, Input::PeerUp(peer(60)), &mut out);
    let msg = Message::Membership(Msg::Neighbor { high_priority: false });
    g.handle(at, Input::Message { from: peer(60), msg }, &mut out);
    assert_eq!(g.active_view().len(), config.active_view_capacity);
    assert_eq!(g.passive_view().len(), config.passive_view_capacity);
    assert_eq!(two(&mut g, &mut at), [1, 0]);
}

#[test]
fn a_walks_reply_is_taken_for_a_repair_interval_and_not_after_however_long_till_the_next_walk() {
    let config = Config::default();
    let round = config.repair_interval;
    let mut g = settled();
    let reply = |g: &mut Gossip, at: Instant, from: u8, nonce: u64| {
        let peers: Vec<PeerEntry> = (0..4).map(|i| PeerEntry::id_only(peer(200 + from + i))).collect();
        let msg = Message::Membership(Msg::ShuffleReply {
            peers: peers.try_into().unwrap(),
            nonce,
        });
        let mut out = Vec::new();
        g.handle(
            at,
            Input::Message {
                from: peer(from),
                msg,
            },
            &mut out,
        );
        let refused = out
            .iter()
            .any(|o| matches!(o, Output::Dropped { peer: p, .. } if *p == peer(from)));
        let learnt = (0..4).any(|i| g.passive_view().contains(&peer(200 + from + i)));
        (learnt, refused)
    };
    // The walk at the first round is answered just within a repair interval: taken.
    let mut at = Instant::ZERO;
    let nonces = round_walk_nonces(&mut g, &mut at, round);
    assert_eq!(nonces.len(), 1);
    let just_within = at + (round - std::time::Duration::from_millis(1));
    assert_eq!(reply(&mut g, just_within, 10, nonces[0]), (true, false));
    // The next walk, a shuffle interval on, is answered only after a repair interval, with no walk
    // of ours since: refused, and it teaches nothing.
    let nonce = loop {
        if let [nonce] = round_walk_nonces(&mut g, &mut at, round)[..] {
            break nonce;
        }
    };
    assert!(at < Instant::ZERO + config.shuffle_interval * 2);
    assert_eq!(reply(&mut g, at + round, 20, nonce), (false, true));
}
