//! The engine's contract with a protocol: dials, timers, sends, bounds, crashes.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use std::time::Duration;

use meshwork_sim::{LinkConfig, NodeId, Sim, SimConfig, Stop};
use meshwork_wire::{Input, Instant, Output, PeerId, Protocol, ProtocolId};
use serde::{Deserialize, Serialize};

/// Dials on command, pings each new peer, answers pings, and ticks a timer on command.
#[derive(Default)]
struct Pinger;

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Msg {
    Ping,
    Pong,
}

#[derive(Debug)]
enum Cmd {
    Dial(PeerId),
    Send(PeerId),
    Tick(Duration),
    Hang(PeerId),
    Protect(PeerId, bool),
    RoundTrip(PeerId, Duration),
}

#[derive(Debug, PartialEq, Eq)]
enum Event {
    Up(PeerId),
    Down(PeerId),
    Pong,
    Tick,
    RoundTrip(PeerId, Duration),
}

impl Protocol for Pinger {
    type Message = Msg;
    type Command = Cmd;
    type Event = Event;
    type Timer = ();
    const ID: ProtocolId = ProtocolId::new("/test/ping/1");
    const MAX_MESSAGE_SIZE: usize = 8;

    fn handle(&mut self, _now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        match input {
            Input::Command(Cmd::Dial(peer)) => out.push(Output::Dial(peer)),
            Input::Command(Cmd::Send(peer)) => out.push(Output::Send {
                to: peer,
                msg: Msg::Ping,
            }),
            Input::Command(Cmd::Tick(after)) => out.push(Output::Schedule { after, timer: () }),
            Input::Command(Cmd::Hang(peer)) => out.push(Output::Disconnect(peer)),
            Input::Command(Cmd::Protect(peer, protect)) => out.push(Output::Protect { peer, protect }),
            Input::Command(Cmd::RoundTrip(peer, rtt)) => out.push(Output::Emit(Event::RoundTrip(peer, rtt))),
            Input::PeerUp(peer) => out.push(Output::Emit(Event::Up(peer))),
            Input::PeerDown(peer) => out.push(Output::Emit(Event::Down(peer))),
            Input::Message { from, msg: Msg::Ping } => out.push(Output::Send {
                to: from,
                msg: Msg::Pong,
            }),
            Input::Message { msg: Msg::Pong, .. } => out.push(Output::Emit(Event::Pong)),
            Input::Timer(()) => out.push(Output::Emit(Event::Tick)),
        }
    }
}

fn pair() -> (Sim<Pinger>, PeerId, PeerId) {
    let link = LinkConfig::constant(Duration::from_millis(30));
    let mut sim = Sim::new(SimConfig::new(1).with_link(link));
    sim.add_nodes(2, |_| Pinger).unwrap();
    let (a, b) = (sim.peer_id(NodeId(0)).unwrap(), sim.peer_id(NodeId(1)).unwrap());
    (sim, a, b)
}

fn collect(sim: &mut Sim<Pinger>) -> Vec<(u64, NodeId, Event)> {
    let mut events = Vec::new();
    sim.run_for(10_000, |at, node, event| {
        events.push((at.as_duration().as_millis() as u64, node, event))
    });
    events
}

#[test]
fn a_dial_brings_the_connection_up_on_both_sides_after_a_round_trip() {
    let (mut sim, a, b) = pair();
    sim.command(NodeId(0), Cmd::Dial(b)).unwrap();
    let events = collect(&mut sim);
    assert_eq!(
        events,
        vec![(60, NodeId(1), Event::Up(a)), (60, NodeId(0), Event::Up(b))]
    );
    assert!(sim.is_connected(NodeId(0), NodeId(1)));
    assert_eq!(sim.stats().connections, 1);
}

#[test]
fn the_round_trip_hook_follows_each_peer_up_with_the_links_mean_round_trip() {
    // 30 ms each way and up to 10 ms of jitter each way: a mean round trip of 70 ms.
    let link = LinkConfig::constant(Duration::from_millis(30)).with_jitter(Duration::from_millis(10));
    let mut sim = Sim::new(SimConfig::new(1).with_link(link));
    sim.add_nodes(2, |_| Pinger).unwrap();
    let (a, b) = (sim.peer_id(NodeId(0)).unwrap(), sim.peer_id(NodeId(1)).unwrap());
    sim.set_round_trip_hook(|peer, rtt| Some(Cmd::RoundTrip(peer, rtt)));
    sim.command(NodeId(0), Cmd::Dial(b)).unwrap();
    let events: Vec<(NodeId, Event)> = collect(&mut sim).into_iter().map(|(_, n, e)| (n, e)).collect();
    let rtt = Duration::from_millis(70);
    assert_eq!(
        events,
        vec![
            (NodeId(1), Event::Up(a)),
            (NodeId(1), Event::RoundTrip(a, rtt)),
            (NodeId(0), Event::Up(b)),
            (NodeId(0), Event::RoundTrip(b, rtt)),
        ]
    );
}

#[test]
fn sends_need_a_connection_and_take_the_link_latency() {
    let (mut sim, _, b) = pair();
    sim.command(NodeId(0), Cmd::Send(b)).unwrap();
    assert!(collect(&mut sim).is_empty());
    assert_eq!(sim.stats().dropped_no_link, 1);

    sim.connect(NodeId(0), NodeId(1)).unwrap();
    collect(&mut sim);
    let start = sim.now().as_duration().as_millis() as u64;
    sim.command(NodeId(0), Cmd::Send(b)).unwrap();
    let events = collect(&mut sim);
    assert_eq!(events, vec![(start + 60, NodeId(0), Event::Pong)]);
    assert_eq!(sim.node_stats(NodeId(0)).unwrap().messages_sent, 1);
    assert_eq!(
        sim.node_stats(NodeId(0)).unwrap().bytes_sent,
        1,
        "postcard encodes a unit variant in a byte"
    );
}

#[test]
fn timers_fire_at_their_virtual_time() {
    let (mut sim, _, _) = pair();
    sim.schedule_command(
        Instant::from_duration(Duration::from_millis(5)),
        NodeId(1),
        Cmd::Tick(Duration::from_millis(250)),
    )
    .unwrap();
    let outcome = sim.run_until(Instant::from_duration(Duration::from_millis(100)), |_, _, _| {
        panic!("too early")
    });
    assert_eq!(outcome.stop, Stop::ReachedTime);
    assert_eq!(sim.now(), Instant::from_duration(Duration::from_millis(100)));
    assert_eq!(collect(&mut sim), vec![(255, NodeId(1), Event::Tick)]);
}

#[test]
fn run_for_is_bounded_by_its_event_budget() {
    let (mut sim, _, _) = pair();
    for i in 0..10 {
        sim.schedule_command(Instant::from_nanos(i), NodeId(0), Cmd::Tick(Duration::ZERO))
            .unwrap();
    }
    let mut ticks = 0;
    let outcome = sim.run_for(7, |_, _, _| ticks += 1);
    assert_eq!((outcome.events, outcome.stop), (7, Stop::EventLimit));
    // Each zero-delay timer runs right after its command, before the next command's instant:
    // c0 t0 c1 t1 c2 t2 c3 ran; t3 and c4..c9 are left.
    assert_eq!(ticks, 3);
    assert_eq!(sim.pending(), 7);
    let outcome = sim.run_for(100, |_, _, _| ticks += 1);
    assert_eq!((outcome.events, outcome.stop), (13, Stop::Idle));
    assert_eq!(ticks, 10);
}

#[test]
fn a_crash_discards_the_old_life_and_tells_the_peers() {
    let (mut sim, a, _) = pair();
    sim.set_restart(|_| Pinger);
    sim.connect(NodeId(0), NodeId(1)).unwrap();
    collect(&mut sim);
    sim.command(NodeId(0), Cmd::Tick(Duration::from_secs(1))).unwrap();
    sim.run_until(sim.now() + Duration::from_millis(1), |_, _, _| {});
    sim.apply_control(meshwork_sim::Control::Crash(NodeId(0)))
        .unwrap();
    sim.apply_control(meshwork_sim::Control::Restart(NodeId(0)))
        .unwrap();
    let events = collect(&mut sim);
    // Node 1 hears that node 0 went down, then (rejoin) that it is back; the old timer never fires.
    assert!(
        events
            .iter()
            .any(|(_, n, e)| *n == NodeId(1) && *e == Event::Down(a))
    );
    assert!(!events.iter().any(|(_, _, e)| *e == Event::Tick), "{events:?}");
}

#[test]
fn disconnect_tells_the_other_side() {
    let (mut sim, a, b) = pair();
    sim.connect(NodeId(0), NodeId(1)).unwrap();
    collect(&mut sim);
    sim.command(NodeId(0), Cmd::Hang(b)).unwrap();
    let events = collect(&mut sim);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1, NodeId(1));
    assert_eq!(events[0].2, Event::Down(a));
    assert!(!sim.is_connected(NodeId(0), NodeId(1)));
}

/// Three nodes, node 0 linked to 1 and 2, with idle links closing after 10 s; node 0 ticks every
/// second until `until_s`, so virtual time moves on.
fn idle_triangle(until_s: u64) -> (Sim<Pinger>, [PeerId; 3]) {
    let link = LinkConfig::constant(Duration::from_millis(30)).with_idle_timeout(Duration::from_secs(10));
    let mut sim = Sim::new(SimConfig::new(1).with_link(link));
    sim.add_nodes(3, |_| Pinger).unwrap();
    let peers = [0, 1, 2].map(|i| sim.peer_id(NodeId(i)).unwrap());
    sim.connect(NodeId(0), NodeId(1)).unwrap();
    sim.connect(NodeId(0), NodeId(2)).unwrap();
    for s in 1..=until_s {
        sim.schedule_command(
            Instant::from_duration(Duration::from_secs(s)),
            NodeId(0),
            Cmd::Tick(Duration::ZERO),
        )
        .unwrap();
    }
    (sim, peers)
}

fn downs(events: &[(u64, NodeId, Event)]) -> Vec<(u64, NodeId, PeerId)> {
    events
        .iter()
        .filter_map(|(at, node, event)| match event {
            Event::Down(peer) => Some((*at, *node, *peer)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_idle_link_closes_after_the_timeout_at_both_ends_and_a_used_or_protected_one_stays() {
    let (mut sim, [a, b, c]) = idle_triangle(40);
    sim.command(NodeId(0), Cmd::Protect(c, true)).unwrap();
    // Pings on 0-1 until 15 s: its last use.
    for s in [5, 10, 15] {
        sim.schedule_command(
            Instant::from_duration(Duration::from_secs(s)),
            NodeId(0),
            Cmd::Send(b),
        )
        .unwrap();
    }
    let events = collect(&mut sim);
    let closed = downs(&events);
    assert_eq!(closed.len(), 2, "only 0-1 closes: {closed:?}");
    // Its last message left at 15 s and answered at 15.03 s; it closes at the first sweep (every
    // quarter of the timeout) at least 10 s after that.
    assert!(
        closed.iter().all(|(at, _, _)| (25_030..=27_530).contains(at)),
        "{closed:?}"
    );
    let at = closed[0].0;
    assert!(closed.contains(&(at, NodeId(0), b)) && closed.contains(&(at, NodeId(1), a)));
    assert!(!sim.is_connected(NodeId(0), NodeId(1)));
    assert!(sim.is_connected(NodeId(0), NodeId(2)), "protected by node 0");
    assert_eq!(sim.stats().idle_closed, 1);

    // Unprotected, the link idle since it opened closes at the next sweep.
    let now = sim.now().as_duration().as_millis() as u64;
    sim.command(NodeId(0), Cmd::Protect(c, false)).unwrap();
    sim.schedule_command(
        Instant::from_duration(Duration::from_secs(50)),
        NodeId(0),
        Cmd::Tick(Duration::ZERO),
    )
    .unwrap();
    let later = downs(&collect(&mut sim));
    assert_eq!(later.len(), 2, "{later:?}");
    assert!(
        later.iter().all(|(at, _, _)| *at >= now && *at <= now + 2_500),
        "{later:?}"
    );
    assert!(!sim.is_connected(NodeId(0), NodeId(2)));
    assert_eq!(sim.stats().idle_closed, 2);
}

#[test]
fn without_an_idle_timeout_links_stay_open() {
    let (mut sim, _, _) = pair();
    sim.connect(NodeId(0), NodeId(1)).unwrap();
    sim.schedule_command(
        Instant::from_duration(Duration::from_secs(3_600)),
        NodeId(0),
        Cmd::Tick(Duration::ZERO),
    )
    .unwrap();
    assert!(downs(&collect(&mut sim)).is_empty());
    assert!(sim.is_connected(NodeId(0), NodeId(1)));
    assert_eq!(sim.stats().idle_closed, 0);
}
