//! One `ChainSync` node driven by hand (fake clock) against peers that game the header download:
//! unconnecting announcements whose count a resent known header used to reset, and claims of work
//! that are never delivered.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use meshwork_consensus::sync::{ChainSync, Message};
use meshwork_consensus::{Event, Fault, SyncConfig};
use meshwork_identity::{Hash, PeerId};
use meshwork_ledger::{BlockHeader, MemoryStore};
use meshwork_wire::{Input, Instant, Output, Protocol};
use support::{extend, key, open};

type Node = ChainSync<MemoryStore>;

fn at(secs: u64) -> Instant {
    Instant::from_duration(Duration::from_secs(secs))
}

fn handle(node: &mut Node, now: Instant, input: Input<Node>) -> Vec<Output<Node>> {
    let mut out = Vec::new();
    node.handle(now, input, &mut out);
    out
}

fn deliver(node: &mut Node, now: Instant, from: PeerId, msg: Message) -> Vec<Output<Node>> {
    handle(node, now, Input::Message { from, msg })
}

fn faulted(out: &[Output<Node>], peer: PeerId) -> Option<Fault> {
    out.iter().find_map(|o| match o {
        Output::Emit(Event::PeerFaulted { peer: p, fault }) if *p == peer => {
            assert!(
                out.iter()
                    .any(|o| matches!(o, Output::Disconnect(d) if *d == peer)),
                "a faulted peer is also disconnected"
            );
            Some(fault.clone())
        }
        _ => None,
    })
}

/// The peers asked for headers in `out`.
fn asked(out: &[Output<Node>]) -> Vec<PeerId> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg: Message::GetHeaders { .. },
            } => Some(*to),
            _ => None,
        })
        .collect()
}

/// A header whose parent nobody has: it connects to nothing.
fn unconnecting(i: u32) -> BlockHeader {
    BlockHeader {
        version: 1,
        parent: Hash::digest(&i.to_le_bytes()),
        merkle_root: Hash::ZERO,
        timestamp: 1,
        target: support::config().pow_limit,
        nonce: 0,
        height: 9,
    }
}

#[test]
fn unconnecting_headers_interleaved_with_resent_known_headers_get_the_peer_dropped() {
    let cfg = support::config();
    let mut chain = open(&cfg);
    extend(&mut chain, &key(1).peer_id(), 2, 60);
    let known = chain.tip().header;
    let now = at(known.timestamp + 60);
    let mut node = ChainSync::new(chain, SyncConfig::default());
    let attacker = key(66).peer_id();
    handle(&mut node, now, Input::PeerUp(attacker));
    let limit = SyncConfig::default().max_unconnecting_headers;

    // The red team's pattern: an unconnecting announcement, then a header we know (announced, and sent
    // as the answer to the header request the first one triggered), 990 times over.
    let mut dropped_at = None;
    for i in 0..990u32 {
        let out = deliver(&mut node, now, attacker, Message::NewTip(unconnecting(i)));
        if let Some(fault) = faulted(&out, attacker) {
            dropped_at = Some((i, fault));
            break;
        }
        let out = deliver(&mut node, now, attacker, Message::NewTip(known));
        assert_eq!(faulted(&out, attacker), None);
        let answer = vec![known].try_into().unwrap();
        let out = deliver(&mut node, now, attacker, Message::Headers(answer));
        assert_eq!(faulted(&out, attacker), None);
    }
    // Before: the known header restarted the count and all 990 went through. Now the eleventh is one
    // too many.
    assert_eq!(
        dropped_at,
        Some((limit, Fault::UnconnectingHeaders { count: limit + 1 }))
    );
    assert_eq!(node.peers().count(), 0);
}

#[test]
fn unconnecting_headers_are_counted_per_window() {
    let cfg = support::config();
    let chain = open(&cfg);
    let start = chain.tip().header.timestamp + 60;
    let sync = SyncConfig::default();
    let window = sync.unconnecting_window.as_secs();
    let limit = sync.max_unconnecting_headers;
    let mut node = ChainSync::new(chain, sync);
    let peer = key(7).peer_id();
    handle(&mut node, at(start), Input::PeerUp(peer));

    // `limit` in each of three windows: never more than `limit` in one, never dropped.
    let mut i = 0;
    for round in 0..3 {
        for _ in 0..limit {
            let now = at(start + round * window);
            let out = deliver(&mut node, now, peer, Message::NewTip(unconnecting(i)));
            assert_eq!(faulted(&out, peer), None, "message {i}");
            i += 1;
        }
    }
    // One more in the last window is one too many.
    let now = at(start + 2 * window + window - 1);
    let out = deliver(&mut node, now, peer, Message::NewTip(unconnecting(i)));
    assert_eq!(
        faulted(&out, peer),
        Some(Fault::UnconnectingHeaders { count: limit + 1 })
    );
}

/// Our node at genesis, an honest peer with a three-block chain, and its status message.
fn honest_setup() -> (Node, Vec<BlockHeader>, Message, Instant) {
    let cfg = support::config();
    let mut theirs = open(&cfg);
    let blocks = extend(&mut theirs, &key(1).peer_id(), 3, 60);
    let tip = theirs.tip();
    let status = Message::Status {
        tip: tip.id,
        height: tip.height,
        work: tip.work,
    };
    let now = at(tip.header.timestamp + 60);
    let headers = blocks.iter().map(|b| b.header).collect();
    let sync = SyncConfig {
        header_download_peers: 1,
        ..SyncConfig::default()
    };
    (ChainSync::new(open(&cfg), sync), headers, status, now)
}

#[test]
fn a_claim_answered_empty_is_a_fault_and_the_download_moves_on() {
    let (mut node, headers, status, now) = honest_setup();
    let honest = key(2).peer_id();
    let liar = key(3).peer_id();
    let claimed = 1u128 << 100;
    for peer in [honest, liar] {
        handle(&mut node, now, Input::PeerUp(peer));
    }
    let out = deliver(&mut node, now, honest, status);
    // The honest peer is asked first (the only claimant) ...
    assert_eq!(asked(&out), vec![honest]);
    let lie = Message::Status {
        tip: Hash::digest(b"a tip nobody has"),
        height: 1_000_000,
        work: claimed,
    };
    let out = deliver(&mut node, now, liar, lie);
    // ... and with one download at a time the liar waits, though it claims more.
    assert!(asked(&out).is_empty());
    // The honest peer's answer stalls (say); the liar is now asked for its claim and answers nothing.
    let out = handle(
        &mut node,
        now,
        Input::Timer(meshwork_consensus::sync::Timer::Headers { peer: honest, seq: 1 }),
    );
    assert_eq!(faulted(&out, honest), Some(Fault::Stalled));
    assert!(
        protections(&out).contains(&(honest, false)),
        "a faulted peer is no longer protected for us: {:?}",
        protections(&out)
    );
    assert_eq!(asked(&out), vec![liar]);
    let out = deliver(
        &mut node,
        now,
        liar,
        Message::Headers(Vec::new().try_into().unwrap()),
    );
    assert_eq!(
        faulted(&out, liar),
        Some(Fault::WorkNotDelivered {
            claimed,
            delivered: 0
        })
    );
    assert_eq!(node.peers().count(), 0);

    // With the liar connected next to an honest claimant, the liar (most work) goes first, is dropped
    // for its empty answer, and the download moves to the honest peer in the same step.
    let (mut node, headers2, status, now) = honest_setup();
    assert_eq!(headers, headers2);
    for peer in [honest, liar] {
        handle(&mut node, now, Input::PeerUp(peer));
    }
    let lie = Message::Status {
        tip: Hash::digest(b"a tip nobody has"),
        height: 1_000_000,
        work: claimed,
    };
    assert_eq!(asked(&deliver(&mut node, now, liar, lie)), vec![liar]);
    assert!(asked(&deliver(&mut node, now, honest, status)).is_empty());
    let out = deliver(
        &mut node,
        now,
        liar,
        Message::Headers(Vec::new().try_into().unwrap()),
    );
    assert!(matches!(
        faulted(&out, liar),
        Some(Fault::WorkNotDelivered { .. })
    ));
    assert_eq!(asked(&out), vec![honest], "the download moves on");
    let out = deliver(
        &mut node,
        now,
        honest,
        Message::Headers(headers.clone().try_into().unwrap()),
    );
    assert_eq!(faulted(&out, honest), None);
    assert_eq!(node.chain().best_header().id, headers[2].id());
}

#[test]
fn a_short_answer_below_the_claim_is_a_fault_and_an_honest_one_is_not() {
    let (mut node, headers, status, now) = honest_setup();
    let liar = key(3).peer_id();
    handle(&mut node, now, Input::PeerUp(liar));
    // It claims the honest chain's tip and work but delivers only the first header of it.
    let Message::Status { work, .. } = status else {
        unreachable!()
    };
    assert_eq!(asked(&deliver(&mut node, now, liar, status)), vec![liar]);
    let short = vec![headers[0]].try_into().unwrap();
    let out = deliver(&mut node, now, liar, Message::Headers(short));
    let delivered = node.chain().engine().work(&headers[0].id()).unwrap();
    assert!(delivered < work);
    assert_eq!(
        faulted(&out, liar),
        Some(Fault::WorkNotDelivered {
            claimed: work,
            delivered
        })
    );

    // The same claim, delivered whole: no fault, and nothing more is asked of it.
    let (mut node, headers, status, now) = honest_setup();
    let honest = key(2).peer_id();
    handle(&mut node, now, Input::PeerUp(honest));
    assert_eq!(asked(&deliver(&mut node, now, honest, status)), vec![honest]);
    let whole = headers.try_into().unwrap();
    let out = deliver(&mut node, now, honest, Message::Headers(whole));
    assert_eq!(faulted(&out, honest), None);
    assert!(asked(&out).is_empty());
    assert!(!node.is_synced());
}

#[test]
fn the_two_best_claimants_are_asked_at_once_by_default() {
    let (_, _, status, now) = honest_setup();
    let cfg = support::config();
    let mut node = ChainSync::new(open(&cfg), SyncConfig::default());
    let peers: Vec<PeerId> = (10..13).map(|i| key(i).peer_id()).collect();
    let mut all = Vec::new();
    for (i, peer) in peers.iter().enumerate() {
        handle(&mut node, now, Input::PeerUp(*peer));
        let Message::Status { tip, height, work } = status.clone() else {
            unreachable!()
        };
        // The second claims the most, the third the least.
        let work = work + [1, 2, 0][i];
        let msg = Message::Status { tip, height, work };
        all.extend(asked(&deliver(&mut node, now, *peer, msg)));
    }
    assert_eq!(all, vec![peers[0], peers[1]], "two at once; the third waits");
}

/// The protections in `out`.
fn protections(out: &[Output<Node>]) -> Vec<(PeerId, bool)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Protect { peer, protect } => Some((*peer, *protect)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_peer_we_fetch_headers_from_is_protected_until_it_has_answered() {
    let (mut node, headers, status, now) = honest_setup();
    let peer = key(20).peer_id();
    let out = handle(&mut node, now, Input::PeerUp(peer));
    assert!(
        protections(&out).is_empty(),
        "a peer that owes us nothing is not protected"
    );
    let out = deliver(&mut node, now, peer, status);
    assert_eq!(asked(&out), [peer]);
    assert_eq!(protections(&out), [(peer, true)], "it owes us headers now");
    let answer = Message::Headers(headers.try_into().unwrap());
    let mut out = deliver(&mut node, now, peer, answer);
    // The headers are answered; the blocks they name are fetched from the same peer, so it stays
    // protected until those arrive (or it goes down).
    out.extend(handle(&mut node, now, Input::PeerDown(peer)));
    assert_eq!(
        protections(&out).last(),
        Some(&(peer, false)),
        "{:?}",
        protections(&out)
    );
}

#[test]
fn a_chain_that_ends_with_the_headers_we_hold_for_it_delivered_its_claim() {
    use meshwork_consensus::sync::MAX_HEADERS;
    let cfg = support::config();
    // Peer 1's chain is exactly one full answer long; peer 2's is a little heavier.
    let mut theirs = open(&cfg);
    let ones = extend(&mut theirs, &key(1).peer_id(), MAX_HEADERS, 60);
    let claim = theirs.tip();
    let mut heavier = open(&cfg);
    let twos = extend(&mut heavier, &key(2).peer_id(), MAX_HEADERS + 5, 60);
    let now = at(twos.last().unwrap().header.timestamp + 60);
    let sync = SyncConfig {
        header_download_peers: 1,
        ..SyncConfig::default()
    };
    let mut node = ChainSync::new(open(&cfg), sync);
    let p1 = key(1).peer_id();
    handle(&mut node, now, Input::PeerUp(p1));
    let status = Message::Status {
        tip: claim.id,
        height: claim.height,
        work: claim.work,
    };
    assert_eq!(asked(&deliver(&mut node, now, p1, status)), vec![p1]);
    // Before peer 1 answers, a heavier chain arrives (from the miner, say): ours is now heavier
    // than peer 1's.
    for block in twos {
        let submit = meshwork_consensus::sync::Command::SubmitBlock { block, from: None };
        handle(&mut node, now, Input::Command(submit));
    }
    // Peer 1's full answer is lighter than ours now, so it is held and the rest asked for; the rest
    // is nothing. It delivered what it claimed: no fault.
    let answer: Vec<BlockHeader> = ones.iter().map(|b| b.header).collect();
    let out = deliver(&mut node, now, p1, Message::Headers(answer.try_into().unwrap()));
    assert_eq!(asked(&out), vec![p1], "a full answer: the rest is asked for");
    let out = deliver(
        &mut node,
        now,
        p1,
        Message::Headers(Vec::new().try_into().unwrap()),
    );
    assert_eq!(faulted(&out, p1), None);
}

#[test]
fn a_peer_is_not_stalled_for_blocks_that_came_from_elsewhere() {
    use meshwork_consensus::sync::Command;
    let cfg = support::config();
    let mut theirs = open(&cfg);
    let blocks = extend(&mut theirs, &key(1).peer_id(), 3, 60);
    let tip = theirs.tip();
    let now = at(tip.header.timestamp + 60);
    let mut node = ChainSync::new(open(&cfg), SyncConfig::default());
    let peer = key(2).peer_id();
    handle(&mut node, now, Input::PeerUp(peer));
    let status = Message::Status {
        tip: tip.id,
        height: tip.height,
        work: tip.work,
    };
    deliver(&mut node, now, peer, status);
    let headers: Vec<BlockHeader> = blocks.iter().map(|b| b.header).collect();
    let out = deliver(
        &mut node,
        now,
        peer,
        Message::Headers(headers.try_into().unwrap()),
    );
    let due = blocks_due(&out);
    assert!(!due.is_empty(), "the blocks are asked of the peer: {out:?}");
    // They come another way first (a miner's relay through gossip, say), and the peer's answer
    // never does: it owes us nothing any more.
    for block in blocks {
        handle(
            &mut node,
            now,
            Input::Command(Command::SubmitBlock { block, from: None }),
        );
    }
    for timer in due {
        let out = handle(&mut node, now + Duration::from_secs(60), Input::Timer(timer));
        assert_eq!(faulted(&out, peer), None);
    }
}

#[test]
fn a_peer_that_resends_one_full_batch_ends_its_download_and_answers_for_its_claim() {
    use meshwork_consensus::sync::MAX_HEADERS;
    let cfg = support::config();
    let mut ours = open(&cfg);
    let blocks = extend(&mut ours, &key(1).peer_id(), MAX_HEADERS, 60);
    let now = at(blocks.last().unwrap().header.timestamp + 60);
    let mut node = ChainSync::new(ours, SyncConfig::default());
    let liar = key(3).peer_id();
    handle(&mut node, now, Input::PeerUp(liar));
    let claimed = u128::MAX;
    let lie = Message::Status {
        tip: Hash::digest(b"a tip nobody has"),
        height: 1_000_000,
        work: claimed,
    };
    assert_eq!(asked(&deliver(&mut node, now, liar, lie)), vec![liar]);
    // It answers every request with the same full batch: our own headers, which it fetched from us.
    let batch: Vec<BlockHeader> = blocks.iter().map(|b| b.header).collect();
    let answer = || Message::Headers(batch.clone().try_into().unwrap());
    let out = deliver(&mut node, now, liar, answer());
    assert_eq!(asked(&out), vec![liar], "a full answer: the rest is asked for");
    // The same again goes no higher: the download ends, and the claim was not delivered.
    let out = deliver(&mut node, now, liar, answer());
    assert!(asked(&out).is_empty(), "{out:?}");
    assert!(matches!(
        faulted(&out, liar),
        Some(Fault::WorkNotDelivered { claimed: c, .. }) if c == claimed
    ));
}

/// The block timers `out` set.
fn blocks_due(out: &[Output<Node>]) -> Vec<meshwork_consensus::sync::Timer> {
    out.iter()
        .filter_map(|o| match o {
            Output::Schedule {
                timer: timer @ meshwork_consensus::sync::Timer::Blocks { .. },
                ..
            } => Some(timer.clone()),
            _ => None,
        })
        .collect()
}

/// The blocks asked of each peer in `out`, by id.
fn blocks_asked(out: &[Output<Node>]) -> Vec<(PeerId, Vec<meshwork_ledger::BlockId>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg: Message::GetBlocks(ids),
            } => Some((*to, ids.to_vec())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_peer_that_stalled_comes_back_after_every_peer_that_did_not() {
    let cfg = support::config();
    let mut theirs = open(&cfg);
    let blocks = extend(&mut theirs, &key(1).peer_id(), 20, 60);
    let tip = theirs.tip();
    let now = at(tip.header.timestamp + 60);
    let mut node = ChainSync::new(open(&cfg), SyncConfig::default());
    let status = || Message::Status {
        tip: tip.id,
        height: tip.height,
        work: tip.work,
    };
    let (staller, honest) = (key(5).peer_id(), key(6).peer_id());
    handle(&mut node, now, Input::PeerUp(staller));
    deliver(&mut node, now, staller, status());
    let headers: Vec<BlockHeader> = blocks.iter().map(|b| b.header).collect();
    let out = deliver(
        &mut node,
        now,
        staller,
        Message::Headers(headers.try_into().unwrap()),
    );
    let asked_first = blocks_asked(&out);
    assert_eq!(asked_first.len(), 1, "{out:?}");
    assert!(
        asked_first[0].1.contains(&blocks[0].id()),
        "alone, it gets the lowest blocks"
    );
    let due = blocks_due(&out);
    let later = now + Duration::from_secs(30);
    let mut out = Vec::new();
    for timer in due {
        out.extend(handle(&mut node, later, Input::Timer(timer)));
    }
    assert_eq!(faulted(&out, staller), Some(Fault::Stalled));
    // It comes straight back, beside an honest peer with the same chain: the honest one gets the
    // lowest blocks, and the staller one block at a time.
    let mut out = Vec::new();
    for peer in [honest, staller] {
        handle(&mut node, later, Input::PeerUp(peer));
        out.extend(deliver(&mut node, later, peer, status()));
    }
    let asked = blocks_asked(&out);
    let of = |peer| -> Vec<_> {
        asked
            .iter()
            .filter(|(p, _)| *p == peer)
            .flat_map(|(_, ids)| ids.clone())
            .collect()
    };
    // The honest peer takes all it has room for, the lowest first; the staller only what is left.
    let height = |id| blocks.iter().position(|b| b.id() == id).unwrap();
    assert!(of(honest).contains(&blocks[0].id()), "{asked:?}");
    assert_eq!(
        of(honest).len(),
        SyncConfig::default().max_blocks_in_flight_per_peer
    );
    let highest_honest = of(honest).into_iter().map(height).max().unwrap();
    assert!(
        of(staller).into_iter().all(|id| height(id) > highest_honest),
        "{asked:?}"
    );
}

#[test]
fn all_peers_together_hold_a_bounded_number_of_low_work_headers() {
    use meshwork_consensus::sync::MAX_HEADERS;
    let cfg = support::config();
    let mut ours = open(&cfg);
    let mine = extend(&mut ours, &key(1).peer_id(), MAX_HEADERS + 5, 60);
    let mut fork = open(&cfg);
    let lighter: Vec<BlockHeader> = extend(&mut fork, &key(2).peer_id(), MAX_HEADERS, 60)
        .iter()
        .map(|b| b.header)
        .collect();
    let now = at(mine.last().unwrap().header.timestamp + 60);
    // One full message held per peer; four peers' worth in all.
    let sync = SyncConfig {
        max_pending_headers: MAX_HEADERS,
        ..SyncConfig::default()
    };
    let mut node = ChainSync::new(ours, sync);
    let mut held = Vec::new();
    for i in 0..5u8 {
        let peer = key(30 + i).peer_id();
        handle(&mut node, now, Input::PeerUp(peer));
        let out = deliver(
            &mut node,
            now,
            peer,
            Message::Headers(lighter.clone().try_into().unwrap()),
        );
        assert_eq!(faulted(&out, peer), None);
        // A held batch is followed by a request for the rest of that chain.
        held.push(asked(&out) == vec![peer]);
    }
    assert_eq!(held, vec![true, true, true, true, false]);
    // A peer we chose to download from, for the work it claims, is held whatever the pool holds.
    let chosen = key(40).peer_id();
    handle(&mut node, now, Input::PeerUp(chosen));
    let claim = Message::Status {
        tip: Hash::digest(b"its tip"),
        height: 1_000_000,
        work: u128::MAX,
    };
    assert_eq!(asked(&deliver(&mut node, now, chosen, claim)), vec![chosen]);
    let out = deliver(
        &mut node,
        now,
        chosen,
        Message::Headers(lighter.try_into().unwrap()),
    );
    assert_eq!(asked(&out), vec![chosen], "held, and asked for the rest");
}
