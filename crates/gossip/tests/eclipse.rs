//! Issue #14, item 5 (eclipse), staged on one node with a fake clock: Sybil joins cannot push out
//! established neighbours, unsolicited answers and walks do not fill the views, and per-prefix limits
//! hold (and can be lifted for a loopback devnet).
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use meshwork_gossip::{
    AdmissionConfig, Command, Config, Gossip, MAX_SHUFFLE, MembershipMessage as Msg, Message, PeerEntry,
    Timer,
};
use meshwork_identity::Keypair;
use meshwork_wire::{BoundedVec, Input, Instant, Output, PeerId, Protocol};

/// A distinct peer per `n` (Sybils are cheap: any number of fresh keys).
fn peer(n: u32) -> PeerId {
    let mut seed = [7u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    Keypair::from_seed(seed).peer_id()
}

/// Peers named without addresses, as a shuffle sample.
fn sample(peers: &[PeerId]) -> BoundedVec<PeerEntry, MAX_SHUFFLE> {
    peers
        .iter()
        .map(|p| PeerEntry::id_only(*p))
        .collect::<Vec<_>>()
        .try_into()
        .unwrap()
}

fn secs(s: u64) -> Instant {
    Instant::from_duration(Duration::from_secs(s))
}

fn node(config: Config) -> Gossip {
    Gossip::new(Keypair::from_seed([1; 32]), config, 7)
}

fn handle(g: &mut Gossip, now: Instant, input: Input<Gossip>) -> Vec<Output<Gossip>> {
    let mut out = Vec::new();
    g.handle(now, input, &mut out);
    out
}

/// `from` connects (from `ip`, if given) and sends `msg`.
fn connect_and_send(
    g: &mut Gossip,
    now: Instant,
    from: PeerId,
    ip: Option<&str>,
    msg: Msg,
) -> Vec<Output<Gossip>> {
    let mut out = handle(g, now, Input::PeerUp(from));
    if let Some(ip) = ip {
        let ip: IpAddr = ip.parse().unwrap();
        let addr = SocketAddr::new(ip, 4001);
        out.extend(handle(
            g,
            now,
            Input::Command(Command::PeerAddress { peer: from, addr }),
        ));
    }
    let msg = Message::Membership(msg);
    out.extend(handle(g, now, Input::Message { from, msg }));
    out
}

fn receive(g: &mut Gossip, now: Instant, from: PeerId, msg: Msg) -> Vec<Output<Gossip>> {
    handle(
        g,
        now,
        Input::Message {
            from,
            msg: Message::Membership(msg),
        },
    )
}

/// Five honest neighbours, the first at 0 s and one more each second.
fn settled() -> (Gossip, Vec<PeerId>) {
    let mut g = node(Config::default());
    let honest: Vec<PeerId> = (0..5).map(|n| peer(1_000 + n)).collect();
    for (s, &h) in honest.iter().enumerate() {
        connect_and_send(
            &mut g,
            secs(s as u64),
            h,
            None,
            Msg::Neighbor { high_priority: false },
        );
    }
    assert_eq!(g.active_view(), &honest[..]);
    (g, honest)
}

fn honest_left(g: &Gossip, honest: &[PeerId]) -> usize {
    honest.iter().filter(|h| g.active_view().contains(h)).count()
}

#[test]
fn a_hundred_sybil_joins_do_not_push_out_established_neighbours() {
    let (mut g, honest) = settled();
    // Ten minutes later, a burst of 100 joins from fresh identities. Before, the first join evicted an
    // honest neighbour and after 100 none was left.
    for s in 0..100 {
        connect_and_send(&mut g, secs(600), peer(s), None, Msg::Join);
        assert!(
            honest_left(&g, &honest) >= 4,
            "after {} joins: {:?}",
            s + 1,
            g.active_view()
        );
    }
    assert_eq!(g.active_view().len(), 5);
    // One eviction of an established neighbour per interval: the burst cost one honest slot at most,
    // and the three longest-lived are untouchable.
    assert!(honest[..3].iter().all(|h| g.active_view().contains(h)));
    // Fresh identities also ask as isolated nodes (high priority); the budget is spent.
    for s in 100..200 {
        connect_and_send(
            &mut g,
            secs(610),
            peer(s),
            None,
            Msg::Neighbor { high_priority: true },
        );
    }
    assert!(honest_left(&g, &honest) >= 4);
}

#[test]
fn sybil_joins_spread_over_an_hour_never_reach_the_longest_lived_neighbours() {
    let (mut g, honest) = settled();
    // One join every 36 s for an hour: the budget allows an eviction a minute, and the Sybils that got
    // in become established in turn.
    for s in 0..100 {
        connect_and_send(&mut g, secs(600 + 36 * u64::from(s)), peer(s), None, Msg::Join);
        assert!(
            honest[..3].iter().all(|h| g.active_view().contains(h)),
            "after {} joins",
            s + 1
        );
    }
    assert!(honest_left(&g, &honest) >= 3);
}

#[test]
fn an_unsolicited_shuffle_reply_does_not_change_the_passive_view() {
    let (mut g, honest) = settled();
    let before = g.passive_view().to_vec();
    let attacker = peer(1);
    handle(&mut g, secs(600), Input::PeerUp(attacker));
    let sybils: Vec<PeerId> = (100..116).map(peer).collect();
    let peers = sample(&sybils);
    receive(&mut g, secs(600), attacker, Msg::ShuffleReply { peers, nonce: 0 });
    assert_eq!(
        g.passive_view(),
        &before[..],
        "nothing learnt from an answer to no question"
    );
    // Nor does it cost the sender: anyone can make an honest node send one (next test).
    assert_eq!(g.score(&attacker, secs(600)), 0.0);
    // Walks only run over active links: a shuffle or join walk from outside the view fills nothing.
    let peers = sample(&sybils);
    receive(
        &mut g,
        secs(600),
        attacker,
        Msg::Shuffle {
            origin: PeerEntry::id_only(attacker),
            ttl: 0,
            peers,
            nonce: 0,
        },
    );
    receive(
        &mut g,
        secs(600),
        attacker,
        Msg::ForwardJoin {
            joiner: PeerEntry::id_only(peer(200)),
            ttl: 3,
        },
    );
    assert_eq!(g.passive_view(), &before[..]);
    // Our own shuffle: a reply without the walk's nonce, however quick, is not the one awaited (a
    // connected attacker could otherwise catch every walk of ours, and the honest reply came second).
    let out = handle(&mut g, secs(610), Input::Timer(Timer::Shuffle));
    let (to, size, nonce) = out
        .iter()
        .find_map(|o| match o {
            Output::Send {
                to,
                msg: Message::Membership(Msg::Shuffle { peers, nonce, .. }),
            } => Some((*to, peers.len(), *nonce)),
            _ => None,
        })
        .unwrap();
    assert!(honest.contains(&to));
    let peers = sample(&sybils);
    let guess = nonce.wrapping_add(1);
    receive(
        &mut g,
        secs(611),
        attacker,
        Msg::ShuffleReply { peers, nonce: guess },
    );
    assert_eq!(
        g.passive_view(),
        &before[..],
        "the attacker's sample is not taken"
    );
    // The walk's reply (from its last node, a stranger we are told of by the walk) is taken once,
    // with at most as many peers as we sent.
    let end = peer(400);
    handle(&mut g, secs(611), Input::PeerUp(end));
    let fresh: Vec<PeerId> = (300..316).map(peer).collect();
    receive(
        &mut g,
        secs(611),
        end,
        Msg::ShuffleReply {
            peers: sample(&fresh),
            nonce,
        },
    );
    let learnt = fresh.iter().filter(|p| g.passive_view().contains(p)).count();
    assert_eq!(learnt, size.min(fresh.len()));
    let again = sample(&(500..516).map(peer).collect::<Vec<_>>());
    receive(&mut g, secs(611), end, Msg::ShuffleReply { peers: again, nonce });
    assert!(
        g.passive_view()
            .iter()
            .all(|p| !(500..516).map(peer).any(|q| q == *p))
    );
    assert_eq!(g.score(&attacker, secs(611)), 0.0);
}

#[test]
fn shuffle_replies_a_third_party_makes_a_neighbour_send_never_get_it_banned() {
    // An attacker next to our neighbour ends made-up walks "from" us there, twice a second: the
    // neighbour answers each honestly, to us, with no shuffle of ours outstanding.
    let (mut g, honest) = settled();
    let framed = honest[0];
    for tick in 0..240u64 {
        let now = Instant::from_duration(Duration::from_millis(600_000 + 500 * tick));
        let reply = Msg::ShuffleReply {
            peers: sample(&[]),
            nonce: tick,
        };
        let out = receive(&mut g, now, framed, reply);
        assert!(
            !out.iter()
                .any(|o| matches!(o, Output::Disconnect(p) if *p == framed)),
            "released at reply {tick}"
        );
    }
    assert!(!g.is_banned(&framed));
    assert!(g.active_view().contains(&framed));
}

#[test]
fn a_walk_from_a_neighbour_is_no_longer_than_our_own() {
    let (mut g, honest) = settled();
    let walk_length = Config::default().active_random_walk_length;
    let forwarded_ttls = |out: &[Output<Gossip>]| -> Vec<u8> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send {
                    msg: Message::Membership(Msg::ForwardJoin { ttl, .. } | Msg::Shuffle { ttl, .. }),
                    ..
                } => Some(*ttl),
                _ => None,
            })
            .collect()
    };
    let joiner = PeerEntry::id_only(peer(77));
    let out = receive(
        &mut g,
        secs(600),
        honest[0],
        Msg::ForwardJoin { joiner, ttl: u8::MAX },
    );
    let origin = PeerEntry::id_only(peer(78));
    let shuffle = Msg::Shuffle {
        origin,
        ttl: u8::MAX,
        peers: sample(&[]),
        nonce: 0,
    };
    let mut ttls = forwarded_ttls(&out);
    ttls.extend(forwarded_ttls(&receive(&mut g, secs(600), honest[1], shuffle)));
    assert_eq!(ttls.len(), 2, "both walks go on");
    assert!(ttls.iter().all(|&ttl| ttl < walk_length), "{ttls:?}");
}

#[test]
fn an_active_neighbour_fills_at_most_its_share_of_the_passive_view() {
    let (mut g, honest) = settled();
    // A neighbour ending shuffle walks here again and again (within its request limit) with fresh ids.
    let share = AdmissionConfig::default().max_passive_per_source;
    for round in 0..10u32 {
        let peers = (0..16).map(|i| peer(10_000 + 16 * round + i)).collect::<Vec<_>>();
        let peers = sample(&peers);
        receive(
            &mut g,
            secs(600 + u64::from(round)),
            honest[4],
            Msg::Shuffle {
                origin: PeerEntry::id_only(honest[4]),
                ttl: 0,
                peers,
                nonce: u64::from(round),
            },
        );
    }
    assert_eq!(g.passive_view().len(), share, "{:?}", g.passive_view());
}

#[test]
fn forwarded_joins_and_requests_are_rate_limited_per_peer() {
    let (mut g, honest) = settled();
    // A neighbour ends a hundred join walks here at once, each with a fresh joiner: we would ask every
    // joiner to be our neighbour (high priority). Only a burst's worth get through.
    let mut asked = 0;
    for s in 0..100 {
        let out = receive(
            &mut g,
            secs(600),
            honest[4],
            Msg::ForwardJoin {
                joiner: PeerEntry::id_only(peer(s)),
                ttl: 0,
            },
        );
        asked += out.iter().filter(|o| matches!(o, Output::Dial(_))).count();
    }
    let burst = AdmissionConfig::default().requests_burst as usize;
    assert_eq!(asked, burst);
    assert!(g.stats().membership_refused >= (100 - burst) as u64);
}

fn admitted(out: &[Output<Gossip>]) -> bool {
    out.iter().any(|o| {
        matches!(
            o,
            Output::Send {
                msg: Message::Membership(Msg::NeighborReply {
                    accepted: true,
                    alternative: None
                }),
                ..
            }
        )
    })
}

#[test]
fn a_prefix_holds_at_most_its_share_of_the_views() {
    let mut g = node(Config::default());
    // Five requests from one /24 (room for all): two get in. Another /24 still gets in.
    let mut ins = 0;
    for n in 0..5u32 {
        let out = connect_and_send(
            &mut g,
            secs(0),
            peer(n),
            Some(&format!("203.0.113.{}", 10 + n)),
            Msg::Neighbor { high_priority: false },
        );
        ins += usize::from(admitted(&out));
    }
    assert_eq!(ins, AdmissionConfig::default().max_active_per_prefix);
    let out = connect_and_send(
        &mut g,
        secs(0),
        peer(9),
        Some("198.51.100.1"),
        Msg::Neighbor { high_priority: false },
    );
    assert!(admitted(&out));
    // An address reported before the connection is up counts too.
    let early = peer(30);
    let addr: SocketAddr = "203.0.113.200:4001".parse().unwrap();
    handle(
        &mut g,
        secs(0),
        Input::Command(Command::PeerAddress { peer: early, addr }),
    );
    let out = connect_and_send(
        &mut g,
        secs(0),
        early,
        None,
        Msg::Neighbor { high_priority: false },
    );
    assert!(!admitted(&out));
    // IPv6 counts by /48; an IPv4-mapped address is the IPv4 one.
    let out = connect_and_send(
        &mut g,
        secs(0),
        peer(20),
        Some("2001:db8:1::1"),
        Msg::Neighbor { high_priority: false },
    );
    assert!(admitted(&out), "the view has room");
    let out = connect_and_send(
        &mut g,
        secs(0),
        peer(21),
        Some("::ffff:203.0.113.99"),
        Msg::Neighbor { high_priority: true },
    );
    assert!(
        !admitted(&out),
        "a third from 203.0.113.0/24, even as a high-priority request"
    );
    // The passive view: neighbours of one prefix leaving us (they go to the passive view) fill four
    // slots. A stranger's `Disconnect` is no way in at all.
    let mut g = node(Config::default());
    let stranger = Msg::Disconnect { alternative: None };
    connect_and_send(&mut g, secs(0), peer(99), Some("2001:db8:3::1"), stranger);
    assert!(g.passive_view().is_empty());
    for n in 0..10u32 {
        let (at, neighbour) = (secs(10 * u64::from(n)), peer(100 + n));
        let ip = format!("2001:db8:2:{n}::1");
        let request = Msg::Neighbor { high_priority: true };
        assert!(admitted(&connect_and_send(
            &mut g,
            at,
            neighbour,
            Some(&ip),
            request
        )));
        receive(&mut g, at, neighbour, Msg::Disconnect { alternative: None });
    }
    assert_eq!(
        g.passive_view().len(),
        AdmissionConfig::default().max_passive_per_prefix
    );
}

#[test]
fn joins_from_one_prefix_are_rate_limited() {
    let (mut g, _) = settled();
    // Thirty fresh identities of one /24 join: each join announces the joiner on every active link.
    let mut announced = 0;
    for n in 0..30u32 {
        let out = connect_and_send(
            &mut g,
            secs(600),
            peer(n),
            Some(&format!("192.0.2.{n}")),
            Msg::Join,
        );
        announced += usize::from(out.iter().any(|o| {
            matches!(
                o,
                Output::Send {
                    msg: Message::Membership(Msg::ForwardJoin { .. }),
                    ..
                }
            )
        }));
    }
    assert_eq!(announced, AdmissionConfig::default().prefix_joins_burst as usize);
}

#[test]
fn high_priority_requests_from_one_prefix_are_rate_limited_as_joins() {
    let (mut g, _) = settled();
    // Twenty fresh identities of one /24 each ask for a place with eviction.
    let mut admitted_count = 0;
    for n in 0..20u32 {
        let out = connect_and_send(
            &mut g,
            secs(600),
            peer(n),
            Some(&format!("192.0.2.{n}")),
            Msg::Neighbor { high_priority: true },
        );
        admitted_count += usize::from(admitted(&out));
    }
    assert!(
        admitted_count <= AdmissionConfig::default().prefix_joins_burst as usize,
        "{admitted_count} admitted"
    );
}

#[test]
fn a_loopback_devnet_can_lift_the_prefix_limits() {
    let config = Config {
        admission: AdmissionConfig::default().without_prefix_limits(),
        ..Config::default()
    };
    let mut g = node(config);
    for n in 0..5u32 {
        let out = connect_and_send(
            &mut g,
            secs(0),
            peer(n),
            Some("127.0.0.1"),
            Msg::Neighbor { high_priority: false },
        );
        assert!(admitted(&out));
    }
    assert_eq!(g.active_view().len(), 5);
}
