//! Of the two ends of a lazy link, one announcing a message is enough: a neighbour that announced a
//! message to us holds it, so we do not announce it back, whether its `IHave` came before the message
//! did or while our own announcement waited for the batch. What one neighbour says spares only what
//! we owe that neighbour, and a neighbour whose path is much longer than ours is still told: our
//! announcement is what lets it move its tree link to us (the optimisation of the paper's §3.8).
//!
//! One node, a fake clock. Neighbour 2 is the tree link for the messages' origin; 3 and 4 are lazy
//! (they pushed duplicates of the first message, which pruned them).
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

mod support;

use meshwork_gossip::{Gossip, GossipMessage, MessageId, Timer, TreeMessage};
use meshwork_wire::{Input, Instant, PeerId};
use support::{at, from, gossip, handle, message, node, tree_sends};

/// A node whose tree link is `parent`; `lazy` are pruned for the origin of [`message`].
fn pruned_node() -> (Gossip, PeerId, [PeerId; 2]) {
    let (mut g, peers) = node(&[2, 3, 4]);
    let (parent, lazy) = (peers[0], [peers[1], peers[2]]);
    handle(&mut g, at(100), from(parent, gossip(&message(1))));
    for peer in lazy {
        handle(&mut g, at(110), from(peer, gossip(&message(1))));
    }
    handle(&mut g, at(200), Input::Timer(Timer::FlushIHave));
    (g, parent, lazy)
}

/// An announcement of `id`, `hops` links from its origin at the announcer.
fn ihave(id: MessageId, hops: u16) -> TreeMessage {
    let ids = vec![support::announcement(10, id, hops)].try_into().unwrap();
    TreeMessage::IHave { ids }
}

/// The peers the batch flushed at `now` announces `id` to.
fn announced_to(g: &mut Gossip, now: Instant, id: MessageId) -> Vec<PeerId> {
    let out = handle(g, now, Input::Timer(Timer::FlushIHave));
    let peers = tree_sends(out)
        .into_iter()
        .filter(|(_, m)| matches!(m, TreeMessage::IHave { ids } if ids.iter().any(|a| a.id == id)))
        .map(|(to, _)| to)
        .collect();
    sorted(peers)
}

fn sorted(mut peers: Vec<PeerId>) -> Vec<PeerId> {
    peers.sort();
    peers
}

/// `msg` from the tree at 1,000 ms, one link from its origin; `told` is when the lazy neighbours
/// announce it, from one link away too.
fn deliver(g: &mut Gossip, parent: PeerId, msg: &GossipMessage, told: &[(u64, PeerId)]) -> Vec<PeerId> {
    deliver_with_hops(
        g,
        parent,
        msg,
        &told.iter().map(|(t, p)| (*t, *p, 1)).collect::<Vec<_>>(),
    )
}

/// [`deliver`], each announcement with its own hops.
fn deliver_with_hops(
    g: &mut Gossip,
    parent: PeerId,
    msg: &GossipMessage,
    told: &[(u64, PeerId, u16)],
) -> Vec<PeerId> {
    let mut events: Vec<(u64, Option<(PeerId, u16)>)> =
        told.iter().map(|(t, p, h)| (*t, Some((*p, *h)))).collect();
    events.push((1_000, None));
    events.sort_by_key(|(t, _)| *t);
    for (t, peer) in events {
        let input = match peer {
            Some((peer, hops)) => from(peer, ihave(msg.id(), hops)),
            None => from(parent, gossip(msg)),
        };
        handle(g, at(t), input);
    }
    announced_to(g, at(1_050), msg.id())
}

#[test]
fn without_announcements_both_lazy_neighbours_are_told() {
    let (mut g, parent, lazy) = pruned_node();
    assert_eq!(deliver(&mut g, parent, &message(2), &[]), sorted(lazy.to_vec()));
}

#[test]
fn a_neighbour_that_announced_before_the_message_came_is_not_told() {
    let (mut g, parent, [told, other]) = pruned_node();
    assert_eq!(deliver(&mut g, parent, &message(2), &[(990, told)]), vec![other]);
}

#[test]
fn a_neighbour_that_announced_while_our_batch_waited_is_not_told() {
    let (mut g, parent, [told, other]) = pruned_node();
    assert_eq!(
        deliver(&mut g, parent, &message(2), &[(1_020, told)]),
        vec![other]
    );
}

#[test]
fn an_announcement_spares_that_message_only() {
    let (mut g, parent, lazy) = pruned_node();
    // Neighbour 3 announces message 3, which we do not have yet, while message 2 waits in the batch.
    handle(&mut g, at(1_000), from(parent, gossip(&message(2))));
    handle(&mut g, at(1_020), from(lazy[0], ihave(message(3).id(), 1)));
    assert_eq!(
        announced_to(&mut g, at(1_050), message(2).id()),
        sorted(lazy.to_vec())
    );
}

#[test]
fn a_neighbour_on_a_much_longer_path_is_still_told() {
    let (mut g, parent, lazy) = pruned_node();
    // Neighbour 3 got the message ten links from its origin, we one: told, it moves its tree link
    // here. Neighbour 4, two links away, gains nothing from us: spared.
    let told = [(990, lazy[0], 10), (1_020, lazy[1], 2)];
    assert_eq!(
        deliver_with_hops(&mut g, parent, &message(2), &told),
        vec![lazy[0]]
    );
    let told = [(2_020, lazy[0], 10)];
    let msg = message(3);
    handle(&mut g, at(2_000), from(parent, gossip(&msg)));
    for (t, peer, hops) in told {
        handle(&mut g, at(t), from(peer, ihave(msg.id(), hops)));
    }
    assert_eq!(announced_to(&mut g, at(2_050), msg.id()), sorted(lazy.to_vec()));
}

#[test]
fn a_strangers_announcements_are_not_followed() {
    let (mut g, peers) = node(&[2, 3]);
    let stranger = meshwork_identity::Keypair::from_seed([50; 32]).peer_id();
    handle(&mut g, at(0), Input::PeerUp(stranger));
    let id = message(1).id();
    // Connected, but not a neighbour: its announcement starts no wait for the message.
    let out = handle(&mut g, at(10), from(stranger, ihave(id, 1)));
    assert_eq!(grafts_due(&out), 0, "{out:?}");
    // A neighbour's does.
    let out = handle(&mut g, at(20), from(peers[1], ihave(id, 1)));
    assert_eq!(grafts_due(&out), 1, "{out:?}");
}

#[test]
fn one_neighbours_announcements_take_at_most_its_share_of_the_table_of_missing_messages() {
    // Ten places, shared among a full active view's neighbours.
    let config = meshwork_gossip::Config {
        max_missing: 10,
        ..meshwork_gossip::Config::default()
    };
    let share = 10 / config.active_view_capacity;
    assert!(share >= 1);
    let (mut g, peers) = support::node_with(config, &[2, 3]);
    // Neighbour 3 announces eight messages nobody sends (it could make up any number of ids).
    let ids = (100..108)
        .map(|seq| support::announcement(10, message(seq).id(), 1))
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let out = handle(&mut g, at(10), from(peers[1], TreeMessage::IHave { ids }));
    assert_eq!(grafts_due(&out), share, "its share of the table");
    // Neighbour 2's announcement still finds a place.
    let out = handle(&mut g, at(20), from(peers[0], ihave(message(1).id(), 1)));
    assert_eq!(grafts_due(&out), 1, "{out:?}");
}

/// How many graft waits `out` starts: one for each missing message an announcement told of.
fn grafts_due(out: &[meshwork_wire::Output<Gossip>]) -> usize {
    out.iter()
        .filter(|o| {
            matches!(
                o,
                meshwork_wire::Output::Schedule {
                    timer: Timer::Graft(_),
                    ..
                }
            )
        })
        .count()
}
