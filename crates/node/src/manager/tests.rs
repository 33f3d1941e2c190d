//! The manager's decisions, at chosen instants.

use super::*;

fn peer(n: u16) -> PeerId {
    let mut seed = [0u8; 32];
    seed[..2].copy_from_slice(&n.to_le_bytes());
    meshwork_identity::Keypair::from_seed(seed).peer_id()
}

fn limits(low: usize, high: usize) -> ConnectionLimits {
    ConnectionLimits {
        low_watermark: low,
        high_watermark: high,
        grace_period: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
    }
}

#[test]
fn above_the_high_watermark_the_least_recently_active_close_down_to_the_low_one() {
    let start = Instant::now();
    let mut manager = Manager::new(limits(3, 5));
    for n in 0..6u16 {
        // Peer n came up n ms after peer 0, and was last active n seconds after the grace
        // period ended.
        manager.up(peer(n), start + Duration::from_millis(u64::from(n)));
        manager.touch(&peer(n), start + Duration::from_secs(10 + u64::from(n)));
    }
    let now = start + Duration::from_secs(20);
    let close = manager.to_close(now);
    assert_eq!(
        close,
        [peer(1), peer(2), peer(3)].map(|p| (p, Why::Trimmed)),
        "six held, high mark five: the three least recently active go, leaving the low mark, \
         but for the longest-lived (one: half the low mark, rounded down)"
    );
    manager.down(&peer(5));
    assert!(
        manager.to_close(now).is_empty(),
        "at the high watermark nothing is trimmed"
    );
}

#[test]
fn protected_and_new_connections_are_never_closed() {
    let start = Instant::now();
    let mut manager = Manager::new(limits(0, 1));
    manager.up(peer(1), start);
    manager.up(peer(2), start);
    manager.protect(peer(1), 3, true);
    manager.protect(peer(1), 5, true);
    // Within the grace period nothing closes, whatever the count.
    assert!(manager.to_close(start + Duration::from_secs(9)).is_empty());
    let later = start + Duration::from_secs(600);
    assert_eq!(manager.to_close(later), [(peer(2), Why::Idle)]);
    manager.protect(peer(1), 3, false);
    assert_eq!(
        manager.to_close(later),
        [(peer(2), Why::Idle)],
        "still protected by the other protocol"
    );
    manager.protect(peer(1), 5, false);
    assert_eq!(manager.to_close(later).len(), 2);
    assert_eq!(
        manager.states(later),
        States {
            protected: 0,
            new: 0,
            closable: 2
        }
    );
}

#[test]
fn connections_nobody_has_used_yet_do_not_push_out_others() {
    // Fresh identities keep as many unused connections as the high watermark; one honest
    // connection, quiet for two seconds, is not trimmed for them.
    let start = Instant::now();
    let mut manager = Manager::new(limits(20, 24));
    manager.up(peer(0), start);
    manager.touch(&peer(0), start + Duration::from_secs(28));
    for n in 1..=24u16 {
        manager.up(peer(n), start + Duration::from_secs(25));
    }
    let now = start + Duration::from_secs(30);
    assert_eq!(manager.states(now).new, 24);
    assert!(manager.to_close(now).is_empty(), "{:?}", manager.to_close(now));
    // Once used, they count, and trimming goes ahead.
    for n in 1..=24u16 {
        manager.heard(&peer(n), now);
    }
    assert!(!manager.to_close(now + Duration::from_secs(2)).is_empty());
}

#[test]
fn the_grace_period_ends_when_the_peer_first_uses_the_connection() {
    let start = Instant::now();
    let soon = start + Duration::from_secs(2);
    let mut manager = Manager::new(limits(0, 0));
    for n in 1..=4u16 {
        manager.up(peer(n), start);
    }
    // Peers 1 to 3 sent a frame (1 the longest ago); peer 4 did not; peer 3 is protected.
    for n in 1..=3u16 {
        manager.heard(&peer(n), start + Duration::from_millis(100 * u64::from(n)));
    }
    manager.protect(peer(3), 0, true);
    assert_eq!(
        manager.to_close(soon),
        [peer(1), peer(2)].map(|p| (p, Why::Trimmed)),
        "used and quiet for a second: trimmed at once, least recently active first"
    );
    assert_eq!(
        manager.states(soon),
        States {
            protected: 1,
            new: 1,
            closable: 2
        }
    );
    // The one never used is new until its grace period ends.
    manager.down(&peer(1));
    manager.down(&peer(2));
    manager.protect(peer(3), 0, false);
    let later = start + Duration::from_secs(10);
    assert_eq!(
        manager.to_close(later),
        [peer(4), peer(3)].map(|p| (p, Why::Trimmed)),
        "by last activity: peer 4's was its coming up"
    );
    // A frame within the last second still keeps a used connection.
    let mut busy = Manager::new(limits(0, 0));
    busy.up(peer(1), start);
    busy.heard(&peer(1), soon - Duration::from_millis(500));
    assert!(busy.to_close(soon).is_empty());
}

/// The red team's T5, the part left open: fresh identities that each send one frame (as honest
/// peers do, a greeting on every connection) are the most recently active, so trimming took every
/// honest connection that had been quiet for a second. The longest-lived, up to half the low
/// watermark, are kept now.
#[test]
fn fresh_connections_that_sent_a_frame_do_not_push_out_the_longest_lived() {
    let start = Instant::now();
    let mut manager = Manager::new(limits(16, 24));
    for n in 0..10u16 {
        manager.up(peer(n), start);
        manager.heard(&peer(n), start + Duration::from_secs(297));
    }
    for n in 100..130u16 {
        manager.up(peer(n), start + Duration::from_secs(299));
        manager.heard(&peer(n), start + Duration::from_millis(299_500));
    }
    let now = start + Duration::from_secs(301);
    let close = manager.to_close(now);
    assert_eq!(close.len(), 40 - 16, "trimmed to the low watermark");
    let honest_kept = (0..10u16)
        .filter(|n| !close.contains(&(peer(*n), Why::Trimmed)))
        .count();
    assert_eq!(honest_kept, 8, "the eight longest-lived (all ten went before)");
    // Older still but idle: closed as idle, and no elder's place goes to them.
    for n in 200..210u16 {
        manager.up(peer(n), start);
        manager.heard(&peer(n), start + Duration::from_secs(200));
    }
    let close = manager.to_close(now);
    let idle = close.iter().filter(|(_, why)| *why == Why::Idle).count();
    let honest_kept = (0..10u16)
        .filter(|n| !close.contains(&(peer(*n), Why::Trimmed)))
        .count();
    assert_eq!((idle, honest_kept), (10, 8));
}

#[test]
fn an_idle_connection_closes_below_the_watermarks_too_and_traffic_keeps_it() {
    let start = Instant::now();
    let mut manager = Manager::new(limits(16, 24));
    manager.up(peer(1), start);
    manager.up(peer(2), start);
    manager.touch(&peer(2), start + Duration::from_secs(50));
    let now = start + Duration::from_secs(61);
    assert_eq!(manager.to_close(now), [(peer(1), Why::Idle)]);
}
