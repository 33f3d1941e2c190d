//! One Kademlia node driven by hand: records and providers it stores, and republishing.
#![allow(clippy::unwrap_used)]

#[path = "support/node.rs"]
mod node;

use std::time::Duration;

use meshwork_kad::message::{Request, Response};
use meshwork_kad::{Address, Command, Config, Event, Key, Message, QueryId, Record, Timer};
use meshwork_wire::{Input, Instant, Output, PeerId};
use node::*;

#[test]
fn inbound_records_are_checked_before_they_are_stored() {
    let mut node = Node::new(Config::default());
    node.connect(1);
    let key = Key::for_name(b"three");
    let expires = Instant::from_duration(Duration::from_secs(3600));
    let good = Record::sign(&keypair(1), key, b"v".to_vec(), expires).unwrap();
    let mut forged = good.clone();
    forged.expires += 1;
    let out = node.from(
        1,
        Message::Request {
            id: 1,
            request: Request::PutValue { record: forged },
        },
    );
    assert_eq!(responses(&out), vec![Response::Stored { ok: false }]);
    let out = node.from(
        1,
        Message::Request {
            id: 2,
            request: Request::PutValue { record: good.clone() },
        },
    );
    assert_eq!(responses(&out), vec![Response::Stored { ok: true }]);
    // Another publisher cannot overwrite it.
    let rival = Record::sign(&keypair(2), key, b"w".to_vec(), expires + Duration::from_secs(1)).unwrap();
    let out = node.from(
        1,
        Message::Request {
            id: 3,
            request: Request::PutValue { record: rival },
        },
    );
    assert_eq!(responses(&out), vec![Response::Stored { ok: false }]);
    let out = node.from(
        1,
        Message::Request {
            id: 4,
            request: Request::GetValue { key },
        },
    );
    assert!(matches!(&responses(&out)[..], [Response::Value { record: Some(r), .. }] if *r == good));
    // After its expiry the record is no longer served.
    node.now = expires;
    let out = node.from(
        1,
        Message::Request {
            id: 5,
            request: Request::GetValue { key },
        },
    );
    assert!(matches!(
        &responses(&out)[..],
        [Response::Value { record: None, .. }]
    ));
}

#[test]
fn nobody_takes_a_publishers_own_key_before_it_publishes() {
    let mut node = Node::new(Config::default());
    node.connect(1);
    node.connect(2);
    let expires = Instant::from_duration(Duration::from_secs(3600));
    let key = key_of(1, b"home");
    let put = |node: &mut Node, from: u64, id: u64, record: Record| {
        let out = node.from(
            from,
            Message::Request {
                id,
                request: Request::PutValue { record },
            },
        );
        responses(&out)
    };
    // Peer 2 signs a record of its own under peer 1's key, first: refused, and nothing is held.
    let squat = signed_by_hand(&keypair(2), key, b"squat", expires.as_nanos());
    assert_eq!(put(&mut node, 2, 1, squat), vec![Response::Stored { ok: false }]);
    assert_eq!(node.kad.store().num_records(), 0);
    // Peer 1's own record goes in, whoever relays it, and is the one served.
    let own = Record::sign(&keypair(1), key, b"mine".to_vec(), expires).unwrap();
    assert_eq!(
        put(&mut node, 2, 2, own.clone()),
        vec![Response::Stored { ok: true }]
    );
    let out = node.from(
        2,
        Message::Request {
            id: 3,
            request: Request::GetValue { key },
        },
    );
    assert!(matches!(&responses(&out)[..], [Response::Value { record: Some(r), .. }] if *r == own));
}

#[test]
fn providers_are_served_then_expire() {
    let mut config = Config::default();
    config.provider_ttl = Duration::from_secs(60);
    let mut node = Node::new(config);
    node.connect(1);
    let key = Key::from_bytes([4; 32]);
    let claimed = Address::V4 {
        ip: [1, 2, 3, 4],
        port: 5,
    };
    let out = node.from(
        1,
        Message::Request {
            id: 1,
            request: Request::AddProvider { key, addr: claimed },
        },
    );
    assert_eq!(responses(&out), vec![Response::Stored { ok: true }]);
    let out = node.from(
        1,
        Message::Request {
            id: 2,
            request: Request::GetProviders { key },
        },
    );
    let Response::Providers { providers, .. } = &responses(&out)[0] else {
        panic!()
    };
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].id, peer(1));
    assert_eq!(
        providers[0].addr,
        addr(1),
        "the observed address wins over the claimed one"
    );
    node.now += Duration::from_secs(61);
    let out = node.from(
        1,
        Message::Request {
            id: 3,
            request: Request::GetProviders { key },
        },
    );
    assert!(matches!(&responses(&out)[..], [Response::Providers { providers, .. }] if providers.is_empty()));
}

#[test]
fn the_publisher_republishes_on_its_timer_with_a_fresh_expiry() {
    let mut config = Config::default();
    config.republish_interval = Duration::from_secs(100);
    let mut node = Node::new(config);
    admit(&mut node, 1);
    let key = key_of(0, b"five");
    let out = node.input(Input::Command(Command::PutValue {
        query: QueryId(1),
        key,
        value: b"x".to_vec(),
    }));
    let republish = out.iter().find_map(|o| match o {
        Output::Schedule {
            after,
            timer: Timer::Republish(k),
        } if *k == key => Some(*after),
        _ => None,
    });
    assert_eq!(republish, Some(Duration::from_secs(100)));
    let first = node.kad.store().num_records();
    assert_eq!(first, 1, "the publisher keeps its own record");
    node.now += Duration::from_secs(100);
    let out = node.input(Input::Timer(Timer::Republish(key)));
    // A new lookup starts (a FIND_NODE to our only peer) and the timer is re-armed.
    assert!(
        requests_to(&out, peer(1))
            .iter()
            .any(|(_, r)| matches!(r, Request::FindNode { target } if *target == key))
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Schedule {
            timer: Timer::Republish(_),
            ..
        }
    )));
    let out = node.from(
        1,
        Message::Request {
            id: 7,
            request: Request::GetValue { key },
        },
    );
    let Response::Value {
        record: Some(record), ..
    } = &responses(&out)[0]
    else {
        panic!()
    };
    assert_eq!(record.expires_at(), node.now + node.kad.config().record_ttl);
}

#[test]
fn a_command_under_an_id_in_use_is_refused_before_it_stores_schedules_or_answers() {
    let mut node = Node::new(Config::default());
    admit(&mut node, 1);
    let mine = key_of(0, b"mine");
    node.input(Input::Command(Command::PutValue {
        query: QueryId(1),
        key: mine,
        value: b"mine".to_vec(),
    }));
    assert_eq!(node.kad.store().num_records(), 1);
    // Query 1 is still out (peer 1 has not answered its lookup): every command under id 1 is
    // refused, including a `GetValue` our own store could answer at once.
    let other = key_of(0, b"other");
    for command in [
        Command::GetValue {
            query: QueryId(1),
            key: mine,
        },
        Command::PutValue {
            query: QueryId(1),
            key: other,
            value: b"other".to_vec(),
        },
        Command::StartProviding {
            query: QueryId(1),
            key: other,
        },
    ] {
        let out = node.input(Input::Command(command.clone()));
        let refused = events(&out);
        assert!(
            matches!(
                refused[..],
                [Event::Failed {
                    query: QueryId(1),
                    error: meshwork_kad::QueryError::DuplicateId,
                    ..
                }]
            ),
            "{command:?}: {out:?}"
        );
        assert_eq!(out.len(), 1, "{command:?}: nothing sent or scheduled: {out:?}");
    }
    assert_eq!(
        node.kad.store().num_records(),
        1,
        "the refused record is not stored"
    );
    // Under a free id, the refused commands run: the record is stored, and republished and
    // re-announced on their timers.
    let out = node.input(Input::Command(Command::PutValue {
        query: QueryId(2),
        key: other,
        value: b"other".to_vec(),
    }));
    assert_eq!(node.kad.store().num_records(), 2);
    assert!(timer_in(&out, &Timer::Republish(other)).is_some());
    let out = node.input(Input::Command(Command::StartProviding {
        query: QueryId(3),
        key: other,
    }));
    assert!(timer_in(&out, &Timer::Reprovide(other)).is_some());
}

#[test]
fn a_record_is_stored_only_at_peers_that_answered_the_lookup() {
    let mut node = Node::new(Config::default());
    admit(&mut node, 1);
    let key = key_of(0, b"v");
    // Peer 1 names the three peers nearest the key, which answer, and the next seventeen, which
    // nobody can reach (made-up ids, as a hostile answer would name).
    let mut candidates: Vec<u64> = (2..200).collect();
    candidates.sort_by_key(|&i| Key::from_peer(&peer(i)).distance(&key));
    let (real, fake) = (&candidates[..3], &candidates[3..20]);
    let out = node.input(Input::Command(Command::PutValue {
        query: QueryId(1),
        key,
        value: b"v".to_vec(),
    }));
    let (id, _) = requests_to(&out, peer(1))[0].clone();
    let named = real
        .iter()
        .chain(fake)
        .map(|&i| meshwork_kad::PeerInfo {
            id: peer(i),
            addr: addr(i),
        })
        .collect();
    let mut work = answer(&mut node, 1, id, named);
    let mut stores = Vec::new();
    for _ in 0..200 {
        let Some(output) = work.pop() else {
            break;
        };
        match output {
            Output::Send {
                to,
                msg:
                    Message::Request {
                        request: Request::PutValue { .. },
                        ..
                    },
            } => stores.push(to),
            Output::Dial(p) => match real.iter().find(|&&i| peer(i) == p) {
                Some(&i) => {
                    let out = node.connect(i);
                    let (id, _) = requests_to(&out, p)[0].clone();
                    work.extend(out);
                    work.extend(answer(&mut node, i, id, Vec::new()));
                }
                None => work.extend(node.input(Input::PeerDown(p))),
            },
            _ => {}
        }
    }
    stores.sort();
    let mut answered: Vec<PeerId> = [1].iter().chain(real).map(|&i| peer(i)).collect();
    answered.sort();
    assert_eq!(stores, answered, "only the peers that answered");
}

#[test]
fn one_publisher_or_provider_cannot_fill_a_store_for_everyone() {
    use meshwork_kad::store::{ProviderRecord, Sender};
    use meshwork_kad::{MemoryStore, RecordError, RecordStore};
    // Sixteen records and provided keys: an eighth, two, for one peer.
    let mut store = MemoryStore::new(16, 16, 4);
    let (now, expires) = (Instant::ZERO, Instant::from_duration(Duration::from_secs(100)));
    let record = |publisher: u64, key: u8, value: &[u8]| {
        Record::sign(
            &keypair(publisher),
            Key::for_name(&[key]),
            value.to_vec(),
            expires,
        )
        .unwrap()
    };
    let local = Sender::Local;
    for key in 0..2 {
        store.put(record(5, key, b"x"), local, now).unwrap();
    }
    assert_eq!(
        store.put(record(5, 2, b"x"), local, now),
        Err(RecordError::ShareFull)
    );
    // The store checks a key admits its publisher, whatever its caller did.
    let mut foreign = record(6, 9, b"x");
    foreign.key = Key::from_bytes([9; 32]);
    assert_eq!(store.put(foreign, local, now), Err(RecordError::ForeignKey));
    // What it holds it may still refresh, and others still find room.
    store.put(record(5, 1, b"y"), local, now).unwrap();
    store.put(record(6, 2, b"x"), local, now).unwrap();
    assert_eq!(store.num_records(), 3);

    let provider = |i: u64, lapses: u64| ProviderRecord {
        provider: meshwork_kad::PeerInfo {
            id: peer(i),
            addr: addr(i),
        },
        expires: Instant::from_duration(Duration::from_secs(lapses)),
    };
    let from = |i: u64| Sender::observed(Some(&addr(i)));
    for key in 0..2 {
        store
            .add_provider(Key::from_bytes([key; 32]), provider(5, 50), from(5))
            .unwrap();
    }
    let third = Key::from_bytes([2; 32]);
    assert_eq!(
        store.add_provider(third, provider(5, 50), from(5)),
        Err(RecordError::ShareFull)
    );
    store.add_provider(third, provider(6, 50), from(6)).unwrap();
    // Once its announcements lapse, it has room again.
    store.expire(Instant::from_duration(Duration::from_secs(60)));
    store.add_provider(third, provider(5, 200), from(5)).unwrap();
    assert_eq!(store.providers(&third, now).len(), 1, "peer 6's lapsed too");
}

#[test]
fn one_prefix_cannot_fill_a_store_with_many_publishers_or_providers() {
    use meshwork_kad::store::{ProviderRecord, Sender};
    use meshwork_kad::{MemoryStore, PeerInfo, RecordError, RecordStore};
    // Sixteen of each: two a publisher or provider, four a prefix.
    let mut store = MemoryStore::new(16, 16, 4);
    let now = Instant::ZERO;
    let at = |secs: u64| Instant::from_duration(Duration::from_secs(secs));
    let record = |publisher: u64, expires: u64| {
        let key = Key::for_record(&peer(publisher), b"r");
        Record::sign(&keypair(publisher), key, b"v".to_vec(), at(expires)).unwrap()
    };
    let (a, b) = (Sender::observed(Some(&addr(1))), Sender::observed(Some(&addr(2))));
    for publisher in 10..14 {
        store.put(record(publisher, 100), a, now).unwrap();
    }
    let full = Err(RecordError::PrefixShareFull);
    assert_eq!(store.put(record(14, 100), a, now), full);
    // A refresh from elsewhere stays counted against the first prefix: it frees nothing there.
    store.put(record(10, 200), b, now).unwrap();
    assert_eq!(store.put(record(14, 100), a, now), full);
    for publisher in 20..24 {
        store.put(record(publisher, 100), b, now).unwrap();
    }
    // Our own records count against no prefix. Peers the driver saw at no IP address (through a
    // relay, say) share one prefix's share: a relay is no way around the share.
    store.put(record(30, 100), Sender::Local, now).unwrap();
    for publisher in 31..35 {
        store
            .put(record(publisher, 100), Sender::Unobserved, now)
            .unwrap();
    }
    assert_eq!(store.put(record(35, 100), Sender::Unobserved, now), full);
    assert_eq!(store.num_records(), 13);
    // Once the prefix's records lapse, it has room again, but for publisher 10's refresh: it lives
    // on, counted against the first prefix still.
    store.expire(at(150));
    assert_eq!(store.num_records(), 1);
    for publisher in [14, 11, 12] {
        store.put(record(publisher, 300), a, now).unwrap();
    }
    assert_eq!(store.put(record(13, 300), a, now), full);

    // Providers are counted by where the driver saw them, whatever address they name.
    let provider = |i: u64, named: u8| ProviderRecord {
        provider: PeerInfo {
            id: peer(i),
            addr: Address::V4 {
                ip: [10, 9, named, i as u8],
                port: 9,
            },
        },
        expires: at(100),
    };
    let net = |n: u8| {
        Sender::observed(Some(&Address::V4 {
            ip: [10, 9, n, 1],
            port: 9,
        }))
    };
    let key = |i: u8| Key::from_bytes([i; 32]);
    for i in 40..44 {
        store.add_provider(key(1), provider(i, 1), net(1)).unwrap();
    }
    assert_eq!(store.add_provider(key(1), provider(44, 7), net(1)), full);
    // A provider that moves takes its count along, within the new prefix's share.
    store.add_provider(key(1), provider(40, 2), net(2)).unwrap();
    store.add_provider(key(2), provider(44, 1), net(1)).unwrap();
    for i in 41..44 {
        store.add_provider(key(2), provider(i, 2), net(2)).unwrap();
    }
    assert_eq!(
        store.add_provider(key(1), provider(41, 2), net(2)),
        full,
        "moving into a full prefix is refused"
    );
    let kept = store.providers(&key(1), now);
    let p41 = kept.iter().find(|p| p.provider.id == peer(41)).unwrap();
    assert_eq!(
        p41.provider.addr,
        provider(41, 1).provider.addr,
        "the refused refresh changed nothing"
    );
    for i in 50..54 {
        store
            .add_provider(key(3), provider(i, 3), Sender::Unobserved)
            .unwrap();
    }
    assert_eq!(
        store.add_provider(key(3), provider(54, 3), Sender::Unobserved),
        full
    );
}

#[test]
fn one_prefix_refreshing_its_providers_cannot_push_out_another_prefixs() {
    use meshwork_kad::store::{ProviderRecord, Sender};
    use meshwork_kad::{MemoryStore, PeerInfo, RecordStore};
    // Four providers a key, and prefix shares large enough not to bind here.
    let mut store = MemoryStore::new(64, 64, 4);
    let now = Instant::ZERO;
    let key = Key::from_bytes([9; 32]);
    let provider = |i: u64, expires: u64| ProviderRecord {
        provider: PeerInfo {
            id: peer(i),
            addr: addr(i),
        },
        expires: Instant::from_duration(Duration::from_secs(expires)),
    };
    let net = |n: u8| {
        Sender::observed(Some(&Address::V4 {
            ip: [10, 9, n, 1],
            port: 9,
        }))
    };
    let (host, honest) = (net(1), net(2));
    for i in 60..64 {
        store.add_provider(key, provider(i, 100), host).unwrap();
    }
    // An honest provider from another network gets a place, though it lapses no later.
    store.add_provider(key, provider(70, 100), honest).unwrap();
    let holds = |store: &MemoryStore, i: u64| {
        store
            .providers(&key, now)
            .iter()
            .any(|p| p.provider.id == peer(i))
    };
    assert!(holds(&store, 70));
    // The host refreshes its providers with later expiries and adds them back: it replaces its own.
    for round in 0..3u64 {
        for i in 60..64 {
            let _ = store.add_provider(key, provider(i, 200 + round), host);
        }
        assert!(holds(&store, 70), "round {round}");
    }
}

/// The providers a lookup of them returns when the only peer asked, peer 1, answers naming
/// `providers` (and no closer peers).
fn providers_found(providers: Vec<meshwork_kad::PeerInfo>) -> Vec<meshwork_kad::PeerInfo> {
    let mut node = Node::new(Config::default());
    admit(&mut node, 1);
    let key = Key::from_bytes([8; 32]);
    let out = node.input(Input::Command(Command::GetProviders {
        query: QueryId(1),
        key,
    }));
    let (id, _) = requests_to(&out, peer(1))[0].clone();
    let response = Response::Providers {
        providers: providers.try_into().unwrap(),
        closer: Vec::new().try_into().unwrap(),
    };
    let out = node.from(1, Message::Response { id, response });
    events(&out)
        .into_iter()
        .find_map(|e| match e {
            Event::GetProviders { providers, .. } => Some(providers),
            _ => None,
        })
        .expect("the lookup ended")
}

fn provider_at(i: u64, addr: Address) -> meshwork_kad::PeerInfo {
    meshwork_kad::PeerInfo { id: peer(i), addr }
}

#[test]
fn providers_named_in_an_answer_lose_a_relay_circuits_address() {
    let relayed = Address::from(meshwork_wire::relayed::relayed_addr(3));
    // Peer 1 names us (peer 0: it stores our announcement) and peer 7, at a relay circuit's
    // address, as providers.
    let found = providers_found(vec![provider_at(0, addr(0)), provider_at(7, relayed)]);
    assert_eq!(
        found,
        vec![provider_at(0, addr(0)), provider_at(7, Address::unknown())]
    );
}

#[test]
fn one_answer_fills_at_most_half_the_providers_found() {
    let named: Vec<_> = (10..30).map(|i| provider_at(i, addr(i))).collect();
    let found = providers_found(named.clone());
    let k = Config::default().k;
    assert_eq!(
        found.len(),
        k / 2,
        "the first answer cannot shut out every other provider"
    );
    assert_eq!(found[..], named[..k / 2]);
}

/// The answer to a `GetValue` of `key` when peers 1, 2 and 3 (all the node knows) answer with
/// `answers`, in that order, naming nobody closer; and whether the lookup answered before the last
/// of them. The quorum is `quorum` answers with a record.
fn get_value_with(key: Key, answers: [Option<Record>; 3], quorum: usize) -> (bool, Option<Record>) {
    let mut config = Config::default();
    config.disjoint_paths = 1;
    config.value_quorum = quorum;
    let mut node = Node::new(config);
    for p in 1..=3 {
        admit(&mut node, p);
    }
    let out = node.input(Input::Command(Command::GetValue {
        query: QueryId(1),
        key,
    }));
    let mut early = false;
    let mut result = None;
    for (i, record) in answers.into_iter().enumerate() {
        let p = i as u64 + 1;
        let (id, _) = requests_to(&out, peer(p))[0].clone();
        let response = Response::Value {
            record,
            closer: meshwork_wire::BoundedVec::default(),
        };
        let got = node.from(p, Message::Response { id, response });
        for event in events(&got) {
            if let Event::GetValue { record, .. } = event {
                early |= p < 3;
                result = record;
            }
        }
    }
    (early, result)
}

#[test]
fn a_get_counts_every_answer_so_one_peer_cannot_serve_a_stale_or_forged_record() {
    let key = key_of(5, b"home");
    let at = |secs| Instant::from_duration(Duration::from_secs(secs));
    let stale = Record::sign(&keypair(5), key, b"old".to_vec(), at(1000)).unwrap();
    let fresh = Record::sign(&keypair(5), key, b"new".to_vec(), at(2000)).unwrap();
    // Peer 2 answers with a record it signed itself under peer 5's key: not counted at all.
    let forged = signed_by_hand(&keypair(2), key, b"forged", at(3000).as_nanos());
    let (early, got) = get_value_with(
        key,
        [Some(stale.clone()), Some(forged.clone()), Some(fresh.clone())],
        3,
    );
    assert!(!early, "the first record does not end the lookup");
    assert_eq!(got, Some(fresh.clone()), "the latest of the publisher's records");
    let (_, got) = get_value_with(key, [Some(forged), None, Some(stale.clone())], 3);
    assert_eq!(
        got,
        Some(stale.clone()),
        "a forged record is no answer, however late it expires"
    );
    // A quorum of two ends the lookup at the second record, before peer 3 answers.
    let (early, got) = get_value_with(key, [Some(stale), Some(fresh.clone()), None], 2);
    assert!(early);
    assert_eq!(got, Some(fresh));
}

#[test]
fn under_a_shared_name_the_publisher_most_peers_hold_wins() {
    let key = Key::for_name(b"shared");
    let expires = Instant::from_duration(Duration::from_secs(1000));
    let holder = Record::sign(&keypair(5), key, b"first".to_vec(), expires).unwrap();
    // Peer 1, on the lookup's path, answers with a record of its own that no other peer stores.
    let own = Record::sign(
        &keypair(1),
        key,
        b"mine".to_vec(),
        expires + Duration::from_secs(1),
    )
    .unwrap();
    let (_, got) = get_value_with(
        key,
        [Some(own.clone()), Some(holder.clone()), Some(holder.clone())],
        3,
    );
    assert_eq!(got, Some(holder.clone()));
    // One answer each: the first met.
    let (_, got) = get_value_with(key, [Some(own.clone()), None, Some(holder)], 3);
    assert_eq!(got, Some(own));
}

#[test]
fn a_record_taking_over_an_expired_one_frees_its_place_first() {
    use meshwork_kad::store::Sender;
    use meshwork_kad::{MemoryStore, RecordStore};
    let mut store = MemoryStore::new(16, 16, 4);
    let at = |secs: u64| Instant::from_duration(Duration::from_secs(secs));
    let record = |publisher: u64, name: u8, expires: u64| {
        Record::sign(
            &keypair(publisher),
            Key::for_name(&[name]),
            b"v".to_vec(),
            at(expires),
        )
        .unwrap()
    };
    let host = Sender::observed(Some(&addr(1)));
    for (publisher, name) in (10..14).zip(0..4) {
        store.put(record(publisher, name, 100), host, at(0)).unwrap();
    }
    // The first name lapsed (not yet swept): another publisher of the same host takes it over.
    store.put(record(20, 0, 300), host, at(150)).unwrap();
    assert_eq!(store.num_records(), 4);
}
