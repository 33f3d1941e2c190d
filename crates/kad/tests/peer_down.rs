//! In the test network: a lookup whose peers go down while it waits on them does not wait for the
//! request timer; it moves on to other peers at once, and its statistics count the losses as failures.
#![allow(clippy::unwrap_used)]

#[path = "support/net.rs"]
mod net;

use std::time::Duration;

use meshwork_kad::{Command, Config, Event, Key, QueryId};
use net::{LATENCY, bootstrapped};

#[test]
fn a_lookup_whose_first_peers_go_down_ends_well_before_the_request_timeout() {
    let mut config = Config::default();
    // Far longer than an answer takes here (a few round trips of 20 ms): a lookup that waited for a
    // timer would end after it.
    config.request_timeout = Duration::from_secs(60);
    let mut net = bootstrapped(60, &config);
    // Let bootstrap's follow-up lookups settle, so the lookup below runs alone.
    let settle = net.now + Duration::from_secs(5);
    net.run(settle, 5_000_000, |_| false);
    net.now = settle;

    let asker = 1;
    let target = Key::from_bytes([0x5a; 32]);
    // The peers the lookup asks first: the α closest per path, α · d of them.
    let first: Vec<usize> = net.nodes[asker]
        .routing_table()
        .closest(&target, config.alpha * config.disjoint_paths)
        .iter()
        .map(|e| net.index[&e.peer])
        .collect();
    assert_eq!(first.len(), 6);
    let start = net.now;
    net.events.clear();
    net.command(
        asker,
        Command::FindNode {
            query: QueryId(99),
            target,
        },
    );
    // The requests go out at `start`; the peers go down before their answers could arrive.
    net.run(start, 1_000, |_| false);
    for &i in &first {
        net.kill(i, LATENCY / 2);
    }
    let deadline = start + Duration::from_secs(120);
    net.run(deadline, 5_000_000, |ev| {
        ev.iter().any(|(n, e)| {
            *n == asker
                && matches!(
                    e,
                    Event::ClosestPeers {
                        query: QueryId(99),
                        ..
                    }
                )
        })
    });
    let Some((peers, stats)) = net.events.iter().find_map(|(n, e)| match e {
        Event::ClosestPeers {
            query: QueryId(99),
            peers,
            stats,
            ..
        } if *n == asker => Some((peers.clone(), *stats)),
        _ => None,
    }) else {
        panic!("the lookup never ended");
    };
    let took = net.now.saturating_duration_since(start);
    assert!(took < config.request_timeout, "the lookup took {took:?}");
    assert_eq!(stats.started, start);
    assert_eq!(stats.duration, took);
    assert!(stats.failures >= 6, "each lost peer is a failure: {stats:?}");
    assert_eq!(stats.timeouts, 0, "no request waited for its timer: {stats:?}");
    assert!(stats.successes > 0, "other peers answered: {stats:?}");
    assert!(!peers.is_empty());
    for &i in &first {
        assert!(
            peers.iter().all(|p| p.id != net.peer(i)),
            "a dead peer in the answer"
        );
    }
    assert_eq!(net.nodes[asker].totals().timeouts, 0);
}
