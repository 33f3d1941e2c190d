//! One `ChainSync` node driven by hand against a hostile peer: floods of low-work headers, headers that
//! connect to nothing, and requests it must answer within bounds.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use meshwork_consensus::pow::mine;
use meshwork_consensus::sync::{ChainSync, MAX_HEADERS, Message};
use meshwork_consensus::{ChainConfig, Fault, SyncConfig};
use meshwork_identity::{Hash, PeerId};
use meshwork_ledger::{BlockHeader, MemoryStore};
use meshwork_wire::{BoundedVec, Input, Instant, Output, Protocol};
use support::{extend, key, open, twitchy};

type Node = ChainSync<MemoryStore>;

fn at(secs: u64) -> Instant {
    Instant::from_duration(Duration::from_secs(secs))
}

fn deliver(node: &mut Node, now: Instant, from: PeerId, msg: Message) -> Vec<Output<Node>> {
    let mut out = Vec::new();
    node.handle(now, Input::Message { from, msg }, &mut out);
    out
}

fn faulted(out: &[Output<Node>], peer: PeerId) -> Option<Fault> {
    let disconnected = out
        .iter()
        .any(|o| matches!(o, Output::Disconnect(p) if *p == peer));
    out.iter().find_map(|o| match o {
        Output::Emit(meshwork_consensus::Event::PeerFaulted { peer: p, fault }) if *p == peer => {
            assert!(disconnected, "a faulted peer is also disconnected");
            Some(fault.clone())
        }
        _ => None,
    })
}

/// `n` valid headers on schedule at the proof-of-work limit, continuing `parent`.
fn cheap_headers(cfg: &ChainConfig, parent: &BlockHeader, n: usize) -> Vec<BlockHeader> {
    let mut headers = Vec::with_capacity(n);
    let mut parent = *parent;
    for _ in 0..n {
        let header = BlockHeader {
            version: 1,
            parent: parent.id(),
            merkle_root: Hash::digest(b"never sent"),
            timestamp: parent.timestamp + cfg.target_block_time,
            target: cfg.pow_limit,
            nonce: 0,
            height: parent.height + 1,
        };
        parent = mine(header, 1, 1 << 20).unwrap();
        headers.push(parent);
    }
    headers
}

#[test]
fn a_flood_of_low_work_header_batches_gets_the_peer_dropped() {
    let cfg = twitchy();
    // Our chain: fourteen fast blocks, each about twice as hard as the one before.
    let mut chain = open(&cfg);
    extend(&mut chain, &key(1).peer_id(), 14, 1);
    let genesis = *chain
        .header(&chain.block_id_at_height(0).unwrap())
        .as_ref()
        .unwrap();
    let our_work = chain.tip().work;
    let attack = cheap_headers(&cfg, &genesis, 2 * MAX_HEADERS);
    assert!(
        2 * 2 * MAX_HEADERS as u128 + 2 < our_work,
        "the attack chain is lighter"
    );

    let sync = SyncConfig {
        max_pending_headers: 3_000,
        ..SyncConfig::default()
    };
    let mut node = ChainSync::new(chain, sync);
    let attacker = key(66).peer_id();
    let now = at(attack.last().unwrap().timestamp);
    let mut out = Vec::new();
    node.handle(now, Input::PeerUp(attacker), &mut out);

    // The first full batch is held (its chain might go on to be heavier) and more is asked for.
    let first: BoundedVec<BlockHeader, MAX_HEADERS> = attack[..MAX_HEADERS].to_vec().try_into().unwrap();
    let out = deliver(&mut node, now, attacker, Message::Headers(first));
    assert_eq!(faulted(&out, attacker), None);
    let asked = out.iter().find_map(|o| match o {
        Output::Send {
            msg: Message::GetHeaders { locator, .. },
            ..
        } => Some(locator[0]),
        _ => None,
    });
    assert_eq!(
        asked,
        Some(attack[MAX_HEADERS - 1].id()),
        "asks for what follows the held batch"
    );
    assert!(node.chain().header(&attack[0].id()).is_none(), "nothing stored");

    // The second batch still does not make it heavier and exceeds the bound: dropped.
    let second: BoundedVec<BlockHeader, MAX_HEADERS> = attack[MAX_HEADERS..].to_vec().try_into().unwrap();
    let out = deliver(&mut node, now, attacker, Message::Headers(second));
    assert_eq!(
        faulted(&out, attacker),
        Some(Fault::LowWorkHeaders {
            headers: 2 * MAX_HEADERS
        })
    );
    assert!(node.chain().header(&attack[0].id()).is_none());
    assert_eq!(node.peers().count(), 0);
}

#[test]
fn headers_that_never_connect_get_the_peer_dropped() {
    let cfg = support::config();
    let chain = open(&cfg);
    let now = at(chain.tip().header.timestamp + 600);
    let mut node = ChainSync::new(chain, SyncConfig::default());
    let attacker = key(66).peer_id();
    let mut out = Vec::new();
    node.handle(now, Input::PeerUp(attacker), &mut out);
    let limit = SyncConfig::default().max_unconnecting_headers;
    for i in 0..=limit {
        let header = BlockHeader {
            version: 1,
            parent: Hash::digest(&i.to_le_bytes()),
            merkle_root: Hash::ZERO,
            timestamp: 1,
            target: cfg.pow_limit,
            nonce: 0,
            height: 9,
        };
        let out = deliver(&mut node, now, attacker, Message::NewTip(header));
        if i < limit {
            assert_eq!(faulted(&out, attacker), None);
            // It is asked where its chain forks from ours (once: the request stays outstanding).
            if i == 0 {
                assert!(out.iter().any(|o| matches!(
                    o,
                    Output::Send {
                        msg: Message::GetHeaders { .. },
                        ..
                    }
                )));
            }
        } else {
            assert_eq!(
                faulted(&out, attacker),
                Some(Fault::UnconnectingHeaders { count: limit + 1 })
            );
        }
    }
    // Once dropped, its messages are ignored until it connects again.
    let out = deliver(&mut node, now, attacker, Message::GetBlocks(BoundedVec::new()));
    assert!(out.is_empty());
}

#[test]
fn requests_are_answered_within_bounds() {
    let cfg = support::config();
    let mut chain = open(&cfg);
    let blocks = extend(&mut chain, &key(1).peer_id(), 5, 60);
    let now = at(chain.tip().header.timestamp);
    let mut node = ChainSync::new(chain, SyncConfig::default());
    let peer = key(5).peer_id();
    let mut out = Vec::new();
    node.handle(now, Input::PeerUp(peer), &mut out);
    assert!(matches!(
        &out[0],
        Output::Send {
            msg: Message::Status { height: 5, .. },
            ..
        }
    ));

    // Headers after the locator's first known id, up to `stop`.
    let locator = vec![Hash::digest(b"unknown"), blocks[1].id()].try_into().unwrap();
    let out = deliver(
        &mut node,
        now,
        peer,
        Message::GetHeaders {
            locator,
            stop: Some(blocks[3].id()),
        },
    );
    let Output::Send {
        msg: Message::Headers(headers),
        ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        headers.iter().map(BlockHeader::id).collect::<Vec<_>>(),
        vec![blocks[2].id(), blocks[3].id()]
    );

    // Blocks it has, and one NotFound for the rest.
    let unknown = Hash::digest(b"no such block");
    let ids = vec![blocks[0].id(), unknown, blocks[4].id()].try_into().unwrap();
    let out = deliver(&mut node, now, peer, Message::GetBlocks(ids));
    let sent: Vec<&Message> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send { msg, .. } => Some(msg),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0], &Message::Block(blocks[0].clone()));
    assert_eq!(sent[1], &Message::Block(blocks[4].clone()));
    assert_eq!(sent[2], &Message::NotFound(vec![unknown].try_into().unwrap()));
}

/// The red team's C3: a peer that announces each new block first and then answers `NotFound` when
/// asked for it made every block wait a round trip. `NewTip` is sent only for a connected block, and an
/// honest node serves every block it connected, so the denial is a lie: the peer is dropped, and the
/// block is asked of the peer that announced it next. A `NotFound` for a block a peer did not
/// announce costs nothing.
#[test]
fn a_peer_that_denies_the_tip_it_announced_is_dropped() {
    let cfg = support::config();
    let mut theirs = open(&cfg);
    let block = extend(&mut theirs, &key(1).peer_id(), 1, 1).remove(0);
    let now = at(block.header.timestamp + 1);
    let mut node = ChainSync::new(open(&cfg), SyncConfig::default());
    let (liar, honest) = (key(66).peer_id(), key(67).peer_id());
    for peer in [liar, honest] {
        node.handle(now, Input::PeerUp(peer), &mut Vec::new());
    }
    let asked = |out: &[Output<Node>]| {
        out.iter().find_map(|o| match o {
            Output::Send {
                to,
                msg: Message::GetBlocks(_) | Message::GetCompactBlock(_),
            } => Some(*to),
            _ => None,
        })
    };

    // Not what it announced: a `NotFound` for it is no lie.
    let denied = vec![Hash::digest(b"another block")].try_into().unwrap();
    let out = deliver(&mut node, now, honest, Message::NotFound(denied));
    assert_eq!(faulted(&out, honest), None);

    let out = deliver(&mut node, now, liar, Message::NewTip(block.header));
    assert_eq!(asked(&out), Some(liar), "the first to announce is asked");
    let out = deliver(&mut node, now, honest, Message::NewTip(block.header));
    assert_eq!(asked(&out), None, "one request at a time");
    let denied = vec![block.id()].try_into().unwrap();
    let out = deliver(&mut node, now, liar, Message::NotFound(denied));
    assert_eq!(faulted(&out, liar), Some(Fault::DeniedTip { block: block.id() }));
    assert_eq!(asked(&out), Some(honest), "asked of the next at once");
}
