//! The capabilities as an application calls them, inside its own step: `ContentRouting` stores and finds a
//! record and a provider, `PeerRouting` finds a peer, each answer carrying the id the call returned.
#![allow(clippy::unwrap_used)]

#[path = "support/net.rs"]
mod net;

use std::time::Duration;

use meshwork_kad::{AUTO_QUERY_IDS, Config, ContentRouting, Event, Key, PeerRouting, QueryId};
use net::bootstrapped;

/// Node `node`'s answer to its query `query` (ids are per node).
fn answered(events: &[(usize, Event)], (node, query): (usize, QueryId)) -> Option<&Event> {
    events
        .iter()
        .filter(|(n, _)| *n == node)
        .map(|(_, e)| e)
        .find(|e| match e {
            Event::PutValue { query: q, .. }
            | Event::GetValue { query: q, .. }
            | Event::StartedProviding { query: q, .. }
            | Event::GetProviders { query: q, .. }
            | Event::FoundPeer { query: q, .. } => *q == query,
            _ => false,
        })
}

#[test]
fn content_and_peer_routing_answer_with_the_ids_they_returned() {
    let config = Config::default();
    let mut net = bootstrapped(40, &config);
    let key = Key::for_record(&net.nodes[3].local_peer(), b"capabilities");

    let mut out = Vec::new();
    let put = (
        3,
        net.nodes[3].put_value(net.now, key, b"through the trait".to_vec(), &mut out),
    );
    assert!(
        put.1.0 >= AUTO_QUERY_IDS,
        "ids the protocol picks never meet an application's own"
    );
    net.apply(3, out);
    let deadline = net.now + Duration::from_secs(60);
    net.run(deadline, 1_000_000, |ev| answered(ev, put).is_some());
    assert!(matches!(answered(&net.events, put), Some(Event::PutValue { stored_at, .. }) if *stored_at > 0));

    let mut out = Vec::new();
    let get = (30, net.nodes[30].get_value(net.now, key, &mut out));
    net.apply(30, out);
    let mut out = Vec::new();
    let provide = (7, net.nodes[7].provide(net.now, key, &mut out));
    net.apply(7, out);
    let mut out = Vec::new();
    let target = net.peer(25);
    let find = (12, net.nodes[12].find_peer(net.now, target, &mut out));
    net.apply(12, out);
    let deadline = net.now + Duration::from_secs(60);
    net.run(deadline, 1_000_000, |ev| {
        [get, provide, find].iter().all(|q| answered(ev, *q).is_some())
    });
    let Some(Event::GetValue {
        record: Some(record), ..
    }) = answered(&net.events, get)
    else {
        panic!("node 30 found no record: {:?}", answered(&net.events, get));
    };
    assert_eq!(record.value.as_ref(), b"through the trait");
    let mut out = Vec::new();
    let again = net.nodes[30].get_value(net.now, key, &mut out);
    assert_ne!(again, get.1, "every call on a node gets its own id");
    assert!(matches!(
        answered(&net.events, find),
        Some(Event::FoundPeer { found: Some(_), .. })
    ));

    let mut out = Vec::new();
    let providers = (33, net.nodes[33].find_providers(net.now, key, &mut out));
    net.apply(33, out);
    let deadline = net.now + Duration::from_secs(60);
    net.run(deadline, 1_000_000, |ev| answered(ev, providers).is_some());
    let Some(Event::GetProviders { providers: found, .. }) = answered(&net.events, providers) else {
        panic!("no answer to find_providers");
    };
    assert!(
        found.iter().any(|p| p.id == net.peer(7)),
        "node 7 provides the key"
    );
    assert!(
        net.nodes[0].known_peers().len() >= 20,
        "a bootstrapped table knows its neighbourhood"
    );
}
