//! The relay protocol's rules, end to end over scripted messages: reservations, circuits, forwarding,
//! and every limit a relay puts on what it does for others.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_nat::relay::{CircuitEnd, CircuitId, RelayMessage, RelayRefusal, RelayTimer};
use meshwork_nat::{Relay, RelayCommand, RelayConfig, RelayEvent, RelayLimits};
use meshwork_wire::{DropReason, Input, Instant, Output, Protocol};

fn peer(seed: u8) -> PeerId {
    Keypair::from_seed([seed; 32]).peer_id()
}

/// A relay with `limits`, and its connected peers 1..=n.
struct Bench {
    relay: Relay,
    now: Instant,
}

impl Bench {
    fn new(limits: RelayLimits, peers: u8) -> Self {
        let mut relay = Relay::new(RelayConfig {
            serve: Some(limits),
            ..RelayConfig::default()
        });
        let mut out = Vec::new();
        for p in 1..=peers {
            relay.handle(Instant::ZERO, Input::PeerUp(peer(p)), &mut out);
        }
        Self {
            relay,
            now: Instant::ZERO,
        }
    }

    fn input(&mut self, input: Input<Relay>) -> Vec<Output<Relay>> {
        let mut out = Vec::new();
        self.relay.handle(self.now, input, &mut out);
        out
    }

    fn from(&mut self, p: u8, msg: RelayMessage) -> Vec<Output<Relay>> {
        self.input(Input::Message { from: peer(p), msg })
    }

    /// `p` reserves; asserts the relay accepted.
    fn reserve(&mut self, p: u8) {
        let out = self.from(p, RelayMessage::Reserve);
        assert!(
            sent(&out, p)
                .iter()
                .any(|m| matches!(m, RelayMessage::Reserved { .. })),
            "{out:?}"
        );
    }

    /// `from` connects to `to`; the circuit, asserting both ends were told.
    fn open(&mut self, from: u8, to: u8) -> CircuitId {
        let out = self.from(from, RelayMessage::Connect { target: peer(to) });
        let circuit = sent(&out, from)
            .iter()
            .find_map(|m| match m {
                RelayMessage::Opened { circuit, peer: p } if *p == peer(to) => Some(*circuit),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no circuit: {out:?}"));
        assert!(sent(&out, to).contains(&RelayMessage::Incoming {
            circuit,
            peer: peer(from)
        }));
        circuit
    }

    fn refusal(&mut self, from: u8, to: u8) -> Option<RelayRefusal> {
        let out = self.from(from, RelayMessage::Connect { target: peer(to) });
        sent(&out, from).iter().find_map(|m| match m {
            RelayMessage::ConnectRefused { reason, .. } => Some(*reason),
            _ => None,
        })
    }
}

/// The messages `out` sends to peer `p`.
fn sent(out: &[Output<Relay>], p: u8) -> Vec<RelayMessage> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { to, msg } if *to == peer(p) => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

fn send_on(circuit: CircuitId, len: usize) -> RelayMessage {
    RelayMessage::Send {
        circuit,
        payload: vec![7; len].try_into().unwrap(),
    }
}

/// Reads a step's outputs.
trait Outputs {
    /// Whether they set `peer`'s protection to `protect`.
    fn contains_protect(&self, peer: PeerId, protect: bool) -> bool;
}

impl Outputs for Vec<Output<Relay>> {
    fn contains_protect(&self, who: PeerId, to: bool) -> bool {
        self.iter()
            .any(|o| matches!(o, Output::Protect { peer, protect } if *peer == who && *protect == to))
    }
}

/// The first timer in `out` that `which` picks, with when it fires.
fn scheduled(out: &[Output<Relay>], which: impl Fn(&RelayTimer) -> bool) -> Option<(Duration, RelayTimer)> {
    out.iter().find_map(|o| match o {
        Output::Schedule { after, timer } if which(timer) => Some((*after, timer.clone())),
        _ => None,
    })
}

/// The events `out` emits.
fn emitted(out: &[Output<Relay>]) -> Vec<RelayEvent> {
    out.iter()
        .filter_map(|o| match o {
            Output::Emit(event) => Some(event.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_circuit_carries_datagrams_between_its_two_ends_only() {
    let mut bench = Bench::new(RelayLimits::default(), 3);
    bench.reserve(2);
    let circuit = bench.open(1, 2);

    let out = bench.from(1, send_on(circuit, 1200));
    assert!(matches!(&sent(&out, 2)[..], [RelayMessage::Deliver { payload, .. }] if payload.len() == 1200));
    let out = bench.from(2, send_on(circuit, 80));
    assert!(matches!(&sent(&out, 1)[..], [RelayMessage::Deliver { payload, .. }] if payload.len() == 80));

    // A third peer cannot inject into it: dropped and counted, nothing forwarded.
    let out = bench.from(3, send_on(circuit, 100));
    assert!(sent(&out, 1).is_empty() && sent(&out, 2).is_empty());
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Dropped {
            reason: DropReason::Unsolicited,
            ..
        }
    )));

    let stats = bench.relay.stats().unwrap();
    assert_eq!(stats.bytes_relayed, 1280);
    assert_eq!((stats.reservations, stats.circuits), (1, 1));
}

#[test]
fn only_a_reserved_connected_target_can_be_reached() {
    let mut bench = Bench::new(RelayLimits::default(), 3);
    assert_eq!(bench.refusal(1, 2), Some(RelayRefusal::NoReservation));
    assert_eq!(bench.refusal(1, 1), Some(RelayRefusal::NoReservation));
    bench.reserve(2);
    let out = bench.input(Input::PeerDown(peer(2)));
    assert!(
        out.contains_protect(peer(2), false),
        "released with its reservation: {out:?}"
    );
    // Its reservation went with its connection.
    assert_eq!(bench.refusal(1, 2), Some(RelayRefusal::NoReservation));
    bench.input(Input::PeerUp(peer(2)));
    bench.reserve(2);
    bench.open(1, 2);
}

#[test]
fn a_datagram_past_the_byte_limit_is_not_forwarded_and_closes_the_circuit() {
    let limits = RelayLimits {
        max_circuit_bytes: 3000,
        ..RelayLimits::default()
    };
    let mut bench = Bench::new(limits, 2);
    bench.reserve(2);
    let circuit = bench.open(1, 2);
    assert_eq!(sent(&bench.from(1, send_on(circuit, 1500)), 2).len(), 1);
    assert_eq!(sent(&bench.from(2, send_on(circuit, 1500)), 1).len(), 1);
    // Both directions count: the next byte is one too many.
    let out = bench.from(1, send_on(circuit, 1));
    let closed = RelayMessage::Closed {
        circuit,
        reason: CircuitEnd::ByteLimit,
    };
    assert_eq!(sent(&out, 2), vec![closed.clone()]);
    assert_eq!(sent(&out, 1), vec![closed]);
    // Later datagrams of the flood are refused without reaching anyone.
    let out = bench.from(1, send_on(circuit, 1500));
    assert!(sent(&out, 2).is_empty());
    let stats = bench.relay.stats().unwrap();
    assert_eq!(stats.bytes_relayed, 3000);
    assert_eq!(
        (
            stats.closed_at_byte_limit,
            stats.circuits,
            stats.datagrams_refused
        ),
        (1, 0, 2)
    );
}

#[test]
fn circuits_are_bounded_per_peer_and_in_all_and_end_at_their_time_limit() {
    let limits = RelayLimits {
        max_circuits: 3,
        max_circuits_per_peer: 2,
        max_circuit_duration: Duration::from_secs(60),
        ..RelayLimits::default()
    };
    let mut bench = Bench::new(limits, 6);
    for p in 2..=6 {
        bench.reserve(p);
    }
    let first = bench.open(1, 2);
    // Used circuits, both ways: one an end has not spoken on would give way to a new one at a full
    // end.
    bench.from(1, send_on(first, 10));
    bench.from(2, send_on(first, 10));
    // The others open later, so only the first is past its limit at 60 s.
    bench.now = Instant::ZERO + Duration::from_secs(10);
    let second = bench.open(1, 3);
    bench.from(1, send_on(second, 10));
    bench.from(3, send_on(second, 10));
    assert_eq!(bench.refusal(1, 4), Some(RelayRefusal::TooManyCircuitsForPeer));
    bench.open(5, 6);
    assert_eq!(bench.refusal(4, 5), Some(RelayRefusal::TooManyCircuits));

    // The time limit: the sweep closes the circuit past it and tells both ends.
    bench.now = Instant::ZERO + Duration::from_secs(60);
    let out = bench.input(Input::Timer(RelayTimer::Sweep));
    let closed = RelayMessage::Closed {
        circuit: first,
        reason: CircuitEnd::TimeLimit,
    };
    assert_eq!(sent(&out, 1), vec![closed.clone()]);
    assert_eq!(sent(&out, 2), vec![closed]);
    assert_eq!(bench.relay.stats().unwrap().circuits, 2);
    // The sweep comes again while circuits remain.
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Schedule {
            timer: RelayTimer::Sweep,
            ..
        }
    )));
    // Which frees a slot for peer 1.
    bench.open(1, 4);
}

#[test]
fn one_dialer_cannot_take_a_targets_circuit_slots_and_unused_circuits_give_way() {
    let limits = RelayLimits {
        max_circuits_per_peer: 3,
        ..RelayLimits::default()
    };
    let mut bench = Bench::new(limits, 6);
    bench.reserve(2);
    // One dialer gets two circuits to a target, not all of its slots.
    bench.open(1, 2);
    bench.open(1, 2);
    assert_eq!(bench.refusal(1, 2), Some(RelayRefusal::TooManyCircuitsForPeer));
    // Another takes the last slot, and uses it, both ways.
    let used = bench.open(3, 2);
    bench.from(3, send_on(used, 10));
    bench.from(2, send_on(used, 10));
    // The target is full. Within the grace its unused circuits stand; after it the oldest unused one
    // gives way to a new dialer, and both its ends are told.
    bench.now = Instant::ZERO + Duration::from_secs(5);
    assert_eq!(bench.refusal(4, 2), Some(RelayRefusal::TooManyCircuitsForPeer));
    bench.now = Instant::ZERO + Duration::from_secs(11);
    let out = bench.from(4, RelayMessage::Connect { target: peer(2) });
    let closed: Vec<_> = sent(&out, 1)
        .into_iter()
        .filter(|m| {
            matches!(
                m,
                RelayMessage::Closed {
                    reason: CircuitEnd::TimeLimit,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(closed.len(), 1, "{out:?}");
    assert!(
        sent(&out, 4)
            .iter()
            .any(|m| matches!(m, RelayMessage::Opened { .. })),
        "{out:?}"
    );
    // A circuit that carries nothing for a minute closes at the sweep; the used one stays.
    let swept = |bench: &mut Bench, at: u64| {
        bench.now = Instant::ZERO + Duration::from_secs(at);
        bench.from(3, send_on(used, 10));
        bench.from(2, send_on(used, 10));
        bench.input(Input::Timer(RelayTimer::Sweep));
        let stats = bench.relay.stats().unwrap();
        (stats.circuits, stats.closed_idle)
    };
    assert_eq!(
        swept(&mut bench, 61),
        (2, 2),
        "1's second: the new one is 50 s old"
    );
    assert_eq!(swept(&mut bench, 72), (1, 3));
}

#[test]
fn one_prefix_cannot_take_every_reservation_or_circuit() {
    let limits = RelayLimits {
        max_reservations_per_prefix: 2,
        max_circuits_per_prefix: 2,
        ..RelayLimits::default()
    };
    let mut bench = Bench::new(limits, 9);
    // Peers 1-3 and 5-7 come from one /24, 4 and 8 from others, 9 through a relay circuit.
    let at = |p: u8| -> std::net::SocketAddr {
        match p {
            1..=3 | 5..=7 => format!("192.0.2.{p}:4000"),
            9 => meshwork_wire::relayed::relayed_addr(1).to_string(),
            _ => format!("198.51.{p}.1:4000"),
        }
        .parse()
        .unwrap()
    };
    for p in 1..=9 {
        let addr = at(p);
        bench.input(Input::Command(RelayCommand::Connected { peer: peer(p), addr }));
    }
    bench.reserve(1);
    bench.reserve(2);
    let refused = RelayMessage::ReserveRefused {
        reason: RelayRefusal::TooManyReservations,
    };
    assert_eq!(sent(&bench.from(3, RelayMessage::Reserve), 3), vec![refused]);
    bench.reserve(4);
    // Circuits dialled from one prefix: two, then refused; another prefix still dials.
    bench.open(5, 1);
    bench.open(6, 2);
    assert_eq!(bench.refusal(7, 4), Some(RelayRefusal::TooManyCircuitsForPeer));
    bench.open(8, 4);
    // One whose reservation went frees its prefix's place.
    bench.input(Input::PeerDown(peer(2)));
    bench.reserve(3);
}

#[test]
fn reservations_are_bounded_and_expire_unless_renewed() {
    let limits = RelayLimits {
        max_reservations: 2,
        reservation_ttl: Duration::from_secs(100),
        ..RelayLimits::default()
    };
    let mut bench = Bench::new(limits, 3);
    bench.reserve(1);
    bench.reserve(2);
    let out = bench.from(3, RelayMessage::Reserve);
    assert_eq!(
        sent(&out, 3),
        vec![RelayMessage::ReserveRefused {
            reason: RelayRefusal::TooManyReservations
        }]
    );
    // Renewing one's own is always allowed.
    bench.now = Instant::ZERO + Duration::from_secs(50);
    bench.reserve(1);
    bench.now = Instant::ZERO + Duration::from_secs(100);
    let out = bench.input(Input::Timer(RelayTimer::Sweep));
    // The lapsed reservation's connection is no longer protected.
    assert!(out.contains_protect(peer(2), false));
    // Peer 2's lapsed; peer 1's renewal holds until 150 s.
    assert_eq!(bench.relay.stats().unwrap().reservations, 1);
    assert_eq!(bench.refusal(3, 2), Some(RelayRefusal::NoReservation));
    bench.open(3, 1);
}

#[test]
fn an_end_disconnecting_closes_its_circuits_at_the_other_end() {
    let mut bench = Bench::new(RelayLimits::default(), 2);
    bench.reserve(2);
    let circuit = bench.open(1, 2);
    let out = bench.input(Input::PeerDown(peer(1)));
    assert!(
        !out.contains_protect(peer(2), false),
        "peer 2 still holds a reservation: {out:?}"
    );
    assert_eq!(
        sent(&out, 2),
        vec![RelayMessage::Closed {
            circuit,
            reason: CircuitEnd::Disconnected
        }]
    );
    assert_eq!(bench.relay.stats().unwrap().circuits, 0);
}

#[test]
fn an_end_opens_circuits_only_where_it_asked_and_reports_what_arrives() {
    let relay = peer(9);
    let target = peer(2);
    let mut end = Relay::new(RelayConfig::default());
    let mut out = Vec::new();
    let now = Instant::ZERO;
    // Nobody asked: an `Incoming` or `Opened` from a stranger opens nothing. The `Incoming` is
    // closed, so that the relay frees its slots and the dialer stops waiting.
    end.handle(now, Input::PeerUp(relay), &mut out);
    for (msg, closes) in [
        (
            RelayMessage::Incoming {
                circuit: 1,
                peer: target,
            },
            true,
        ),
        (
            RelayMessage::Opened {
                circuit: 1,
                peer: target,
            },
            false,
        ),
    ] {
        out.clear();
        end.handle(now, Input::Message { from: relay, msg }, &mut out);
        assert_eq!(
            sent(&out, 9) == vec![RelayMessage::Close { circuit: 1 }],
            closes,
            "{out:?}"
        );
        assert!(
            matches!(
                out.last(),
                Some(Output::Dropped {
                    reason: DropReason::Unsolicited,
                    ..
                })
            ),
            "{out:?}"
        );
        assert!(emitted(&out).is_empty(), "{out:?}");
    }

    out.clear();
    end.handle(
        now,
        Input::Command(RelayCommand::Connect { relay, target }),
        &mut out,
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send {
            msg: RelayMessage::Connect { .. },
            ..
        }
    )));
    out.clear();
    end.handle(
        now,
        Input::Message {
            from: relay,
            msg: RelayMessage::Opened {
                circuit: 4,
                peer: target,
            },
        },
        &mut out,
    );
    assert!(emitted(&out).contains(
        &(RelayEvent::CircuitOpened {
            relay,
            circuit: 4,
            peer: target,
            outbound: true
        })
    ));
    out.clear();
    let payload = vec![1, 2, 3];
    end.handle(
        now,
        Input::Message {
            from: relay,
            msg: RelayMessage::Deliver {
                circuit: 4,
                payload: payload.clone().try_into().unwrap(),
            },
        },
        &mut out,
    );
    assert!(emitted(&out).contains(
        &(RelayEvent::Datagram {
            relay,
            circuit: 4,
            payload
        })
    ));
    // Losing the relay closes the circuit, with the reason.
    out.clear();
    end.handle(now, Input::PeerDown(relay), &mut out);
    assert!(emitted(&out).contains(
        &(RelayEvent::CircuitClosed {
            relay,
            circuit: 4,
            reason: CircuitEnd::Disconnected
        })
    ));
}

#[test]
fn a_node_that_is_not_a_relay_says_so() {
    let mut node = Relay::new(RelayConfig::default());
    let mut out = Vec::new();
    node.handle(
        Instant::ZERO,
        Input::Message {
            from: peer(1),
            msg: RelayMessage::Reserve,
        },
        &mut out,
    );
    assert_eq!(
        sent(&out, 1),
        vec![RelayMessage::ReserveRefused {
            reason: RelayRefusal::NotARelay
        }]
    );
}

#[test]
fn a_peer_repeating_reserve_and_churning_circuits_cannot_grow_the_relays_timers() {
    let mut bench = Bench::new(RelayLimits::default(), 2);
    let mut scheduled = 0;
    for _ in 0..1000 {
        let mut out = bench.from(2, RelayMessage::Reserve);
        let circuit = bench.open(1, 2);
        out.extend(bench.from(1, RelayMessage::Close { circuit }));
        scheduled += out
            .iter()
            .filter(|o| matches!(o, Output::Schedule { .. }))
            .count();
    }
    // One sweep timer for all of it, scheduled by the first `Reserve`.
    assert!(scheduled <= 1, "{scheduled} timers scheduled");
    assert_eq!(bench.relay.stats().unwrap().circuits, 0);
}

#[test]
fn a_relay_that_is_also_an_end_keeps_a_peer_protected_while_either_role_needs_it() {
    let mut bench = Bench::new(RelayLimits::default(), 2);
    bench.reserve(1);
    // This relay also reserves at peer 2 (another relay), and peer 2 opens a circuit through it.
    let out = bench.input(Input::Command(RelayCommand::Reserve { relay: peer(2) }));
    assert!(out.contains_protect(peer(2), true));
    let circuit = bench.open(2, 1);
    // The circuit closes: the relay role no longer needs peer 2, but the end's reservation does.
    let out = bench.from(2, RelayMessage::Close { circuit });
    assert!(
        !out.contains_protect(peer(2), false),
        "one role released a peer the other needs: {out:?}"
    );
    // Once neither needs it, it is released.
    let out = bench.input(Input::Command(RelayCommand::Unreserve { relay: peer(2) }));
    assert!(out.contains_protect(peer(2), false), "{out:?}");
}

#[test]
fn a_connect_the_relay_never_answers_ends_at_its_deadline() {
    let (relay, target) = (peer(9), peer(2));
    let mut end = Relay::new(RelayConfig::default());
    let mut out = Vec::new();
    let now = Instant::ZERO;
    end.handle(now, Input::PeerUp(relay), &mut out);
    let connect = || Input::Command(RelayCommand::Connect { relay, target });
    out.clear();
    end.handle(now, connect(), &mut out);
    let deadline = scheduled(&out, |t| matches!(t, RelayTimer::ConnectDeadline { .. }));
    let (after, timer) = deadline.expect("the answer has a deadline");
    // Asked again meanwhile: nothing new goes out, the first request stands.
    out.clear();
    end.handle(now, connect(), &mut out);
    assert!(sent(&out, 9).is_empty(), "{out:?}");
    // The relay never answers: the request fails, and the relay is no longer kept for it.
    out.clear();
    end.handle(now + after, Input::Timer(timer), &mut out);
    assert_eq!(
        emitted(&out),
        vec![RelayEvent::ConnectRefused {
            relay,
            target,
            reason: RelayRefusal::RelayUnreachable
        }]
    );
    assert!(out.contains_protect(relay, false), "{out:?}");
    // A new request goes out.
    out.clear();
    end.handle(now + after, connect(), &mut out);
    assert_eq!(sent(&out, 9), vec![RelayMessage::Connect { target }]);
}

#[test]
fn a_host_cannot_fill_a_target_with_identities_or_one_sided_circuits() {
    let mut bench = Bench::new(RelayLimits::default(), 9);
    // Peers 3-8 share a /24; the target 2 and the honest dialer 9 are elsewhere.
    for p in 2..=9 {
        let addr = match p {
            3..=8 => format!("192.0.2.{p}:4000"),
            _ => format!("198.51.{p}.1:4000"),
        };
        let addr = addr.parse().unwrap();
        bench.input(Input::Command(RelayCommand::Connected { peer: peer(p), addr }));
    }
    bench.reserve(2);
    // Two circuits to a target per dialer network, whatever identities it uses.
    let kept = [bench.open(3, 2), bench.open(4, 2)];
    assert_eq!(bench.refusal(5, 2), Some(RelayRefusal::TooManyCircuitsForPeer));
    // The host keeps its circuits alive from its side alone; the target never answers on them. A
    // minute on, the sweep closes them: no connection runs over a path one end is silent on.
    for at in [20, 40, 61] {
        bench.now = Instant::ZERO + Duration::from_secs(at);
        for circuit in kept {
            bench.from(3, send_on(circuit, 10));
            bench.from(4, send_on(circuit, 10));
        }
    }
    bench.input(Input::Timer(RelayTimer::Sweep));
    assert_eq!(bench.relay.stats().unwrap().circuits, 0);
    bench.open(9, 2);
}

#[test]
fn an_end_closes_circuits_it_did_not_ask_for_and_retries_a_full_relay() {
    let (relay, target) = (peer(9), peer(2));
    let mut end = Relay::new(RelayConfig::default());
    let mut out = Vec::new();
    let now = Instant::ZERO;
    end.handle(now, Input::PeerUp(relay), &mut out);
    end.handle(
        now,
        Input::Command(RelayCommand::Connect { relay, target }),
        &mut out,
    );
    let opened = |circuit| Input::Message {
        from: relay,
        msg: RelayMessage::Opened {
            circuit,
            peer: target,
        },
    };
    end.handle(now, opened(4), &mut out);
    // The same number again, for a request that ended: closed, and circuit 4 is not rebound.
    out.clear();
    end.handle(
        now,
        Input::Command(RelayCommand::Connect {
            relay,
            target: peer(3),
        }),
        &mut out,
    );
    out.clear();
    end.handle(
        now,
        Input::Message {
            from: relay,
            msg: RelayMessage::Opened {
                circuit: 4,
                peer: peer(3),
            },
        },
        &mut out,
    );
    assert!(emitted(&out).is_empty(), "{out:?}");
    out.clear();
    end.handle(now, opened(5), &mut out);
    assert_eq!(sent(&out, 9), vec![RelayMessage::Close { circuit: 5 }]);
    // A relay full now is asked again later; it is not given up.
    out.clear();
    end.handle(now, Input::Command(RelayCommand::Reserve { relay }), &mut out);
    let retry = scheduled(&out, |t| matches!(t, RelayTimer::Renew { .. }));
    let (after, retry) = retry.expect("a lost answer is asked again");
    let refused = RelayMessage::ReserveRefused {
        reason: RelayRefusal::TooManyReservations,
    };
    end.handle(
        now,
        Input::Message {
            from: relay,
            msg: refused,
        },
        &mut out,
    );
    out.clear();
    end.handle(now + after, Input::Timer(retry), &mut out);
    assert_eq!(sent(&out, 9), vec![RelayMessage::Reserve], "{out:?}");
}

#[test]
fn a_relay_repeating_reserved_unasked_schedules_one_renewal() {
    let relay = peer(9);
    let mut end = Relay::new(RelayConfig::default());
    let mut out = Vec::new();
    let now = Instant::ZERO;
    end.handle(now, Input::PeerUp(relay), &mut out);
    end.handle(now, Input::Command(RelayCommand::Reserve { relay }), &mut out);
    assert!(sent(&out, 9).contains(&RelayMessage::Reserve), "{out:?}");
    // The answer, and then the same answer a thousand times more, with the longest TTL there is.
    let reserved = RelayMessage::Reserved {
        ttl_secs: u32::MAX,
        circuit_bytes: 1 << 20,
        circuit_secs: 120,
    };
    let mut renewals = Vec::new();
    let mut unsolicited = 0;
    for _ in 0..1_001 {
        out.clear();
        let msg = reserved.clone();
        end.handle(now, Input::Message { from: relay, msg }, &mut out);
        renewals.extend(scheduled(&out, |t| matches!(t, RelayTimer::Renew { .. })));
        unsolicited += out
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    Output::Dropped {
                        reason: DropReason::Unsolicited,
                        ..
                    }
                )
            })
            .count();
    }
    assert_eq!(renewals.len(), 1, "one renewal for the one request");
    assert_eq!(unsolicited, 1_000);
    // Within a day however long the relay says.
    assert!(renewals[0].0 <= Duration::from_secs(24 * 3600), "{renewals:?}");
    // The renewal asks again, and its answer is taken again.
    out.clear();
    end.handle(now + renewals[0].0, Input::Timer(renewals[0].1.clone()), &mut out);
    assert!(sent(&out, 9).contains(&RelayMessage::Reserve), "{out:?}");
    out.clear();
    let msg = reserved;
    end.handle(now + renewals[0].0, Input::Message { from: relay, msg }, &mut out);
    assert!(
        scheduled(&out, |t| matches!(t, RelayTimer::Renew { .. })).is_some(),
        "{out:?}"
    );
}
