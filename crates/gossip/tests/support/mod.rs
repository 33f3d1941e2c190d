//! Helpers of the one-node gossip tests: a node on a fake clock, signed messages, inputs.
#![allow(dead_code)] // each test file uses a part

use std::time::Duration;

use meshwork_gossip::{
    Announcement, Command, Config, Gossip, GossipMessage, MembershipMessage, Message, MessageId, Timer,
    TopicId, TopicOptions, TreeMessage, TreeTag,
};
use meshwork_identity::Keypair;
use meshwork_wire::{Input, Instant, Output, PeerId, Protocol};

pub(crate) fn topic() -> TopicId {
    TopicId::from_name("t")
}

pub(crate) fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

pub(crate) fn at(millis: u64) -> Instant {
    Instant::from_duration(Duration::from_millis(millis))
}

/// Message `seq` of origin key 10, 64 bytes of payload.
pub(crate) fn message(seq: u64) -> GossipMessage {
    GossipMessage::sign(&key(10), topic(), seq, vec![7; 64].try_into().unwrap())
}

/// An announcement of `id` at `hops`, on the tree of the origin of key `origin`.
pub(crate) fn announcement(origin: u8, id: MessageId, hops: u16) -> Announcement {
    Announcement {
        id,
        hops,
        tree: TreeTag::of(&key(origin).peer_id()),
    }
}

/// A node (key 1) subscribed to the topic, with neighbours of keys `neighbours`.
pub(crate) fn node(neighbours: &[u8]) -> (Gossip, Vec<PeerId>) {
    node_with(Config::default(), neighbours)
}

/// [`node`] with `config`.
pub(crate) fn node_with(config: Config, neighbours: &[u8]) -> (Gossip, Vec<PeerId>) {
    node_subscribed(config, TopicOptions::default(), neighbours)
}

/// [`node`] with `config`, subscribed with `options`.
pub(crate) fn node_subscribed(
    config: Config,
    options: TopicOptions,
    neighbours: &[u8],
) -> (Gossip, Vec<PeerId>) {
    let mut g = Gossip::new(key(1), config, 7);
    let subscribe = Command::Subscribe(topic(), options);
    handle(&mut g, at(0), Input::Command(subscribe));
    let peers: Vec<PeerId> = neighbours.iter().map(|n| key(*n).peer_id()).collect();
    for peer in &peers {
        neighbour_up(&mut g, *peer);
    }
    (g, peers)
}

/// Brings `peer` into the active view of `g`: a connection, then its `Neighbor` request.
pub(crate) fn neighbour_up(g: &mut Gossip, peer: PeerId) {
    handle(g, at(0), Input::PeerUp(peer));
    let msg = Message::Membership(MembershipMessage::Neighbor { high_priority: false });
    handle(g, at(0), Input::Message { from: peer, msg });
}

pub(crate) fn handle(g: &mut Gossip, now: Instant, input: Input<Gossip>) -> Vec<Output<Gossip>> {
    let mut out = Vec::new();
    g.handle(now, input, &mut out);
    out
}

pub(crate) fn from(peer: PeerId, msg: TreeMessage) -> Input<Gossip> {
    Input::Message {
        from: peer,
        msg: Message::Tree(msg),
    }
}

/// `msg` pushed one hop.
pub(crate) fn gossip(msg: &GossipMessage) -> TreeMessage {
    TreeMessage::Gossip {
        message: msg.clone(),
        hops: 1,
    }
}

/// The peers that `out` pushes a full message (`Gossip`) to.
pub(crate) fn gossip_sends(out: &[Output<Gossip>]) -> Vec<PeerId> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg: Message::Tree(TreeMessage::Gossip { .. }),
            } => Some(*to),
            _ => None,
        })
        .collect()
}

/// The tree messages `out` sends, with their receivers.
pub(crate) fn tree_sends(out: Vec<Output<Gossip>>) -> Vec<(PeerId, TreeMessage)> {
    out.into_iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                msg: Message::Tree(m),
            } => Some((to, m)),
            _ => None,
        })
        .collect()
}

/// The timers `out` scheduled, with their delays.
pub(crate) fn timers(out: &[Output<Gossip>]) -> Vec<(Duration, Timer)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Schedule { after, timer } => Some((*after, timer.clone())),
            _ => None,
        })
        .collect()
}
