//! Attacks on a node's record store, staged on real QUIC.
//!
//! - Squatting a publisher's record key: a hostile peer stores a record it signed itself under another
//!   publisher's own key before that publisher does. The honest node refuses it, then takes the owner's
//!   record, relayed by the same peer, and serves that one.
//! - Filling the store with made-up publishers: one host sends records of many identities, each
//!   within its publisher's share. Its IP prefix's share stops it, and a publisher elsewhere still
//!   finds room.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use meshwork_identity::{Keypair, PeerId};
use meshwork_kad::message::{RECORD_NAMESPACE, Request, Response};
use meshwork_kad::{Config, Kademlia, Key, MemoryStore, Message, Record};
use meshwork_node::{Events, Handle, NodeBuilder, NodeConfig};
use meshwork_wire::{BoundedBytes, Input, Instant, Output, Protocol, ProtocolId};
use support::{Net, kad_hooks, loopback};
use tokio::time::timeout;

/// A hostile peer's side of the kad protocol: sends whatever kad message it is told, and reports
/// every message it gets (`Some`) and every peer that comes up (`None`).
struct Squatter;

impl Protocol for Squatter {
    type Message = Message;
    type Command = (PeerId, Message);
    type Event = Option<Message>;
    type Timer = ();
    const ID: ProtocolId = <Kademlia as Protocol>::ID;
    const MAX_MESSAGE_SIZE: usize = <Kademlia as Protocol>::MAX_MESSAGE_SIZE;

    fn handle(&mut self, _now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
        match input {
            Input::Command((to, msg)) => out.push(Output::Send { to, msg }),
            Input::Message { msg, .. } => out.push(Output::Emit(Some(msg))),
            Input::PeerUp(_) => out.push(Output::Emit(None)),
            _ => {}
        }
    }
}

/// Sends `request` to `to` and waits (at most 20 s) for the response.
async fn ask(
    squatter: &Handle<Squatter>,
    events: &mut Events<Squatter>,
    to: PeerId,
    id: u64,
    request: Request,
) -> Response {
    squatter
        .command((to, Message::Request { id, request }))
        .await
        .unwrap();
    timeout(Duration::from_secs(20), async {
        loop {
            match events.recv().await.expect("node stopped") {
                Some(Message::Response { id: got, response }) if got == id => return response,
                _ => {}
            }
        }
    })
    .await
    .expect("no answer in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_cannot_take_a_publishers_own_key_before_it_publishes() {
    let net = Net::Quic;
    let honest_key = Keypair::from_seed([1; 32]);
    let mut builder = NodeBuilder::new(NodeConfig::default());
    let kad = Kademlia::new(honest_key.clone(), Config::default(), 1);
    let (_kad, _events) = builder.register_with(kad, kad_hooks()).unwrap();
    let honest = net.start(builder, &honest_key, loopback(0)).await;

    let evil_key = Keypair::from_seed([2; 32]);
    let mut builder = NodeBuilder::new(NodeConfig::default());
    let (squatter, mut replies) = builder.register(Squatter).unwrap();
    let evil = net.start(builder, &evil_key, loopback(1)).await;
    evil.dial(honest.peer_id(), honest.local_addr()).await.unwrap();
    let up = timeout(Duration::from_secs(20), replies.recv())
        .await
        .expect("no connection in time");
    assert_eq!(up, Some(None), "the connection comes up first");

    // The owner has not published yet; the squatter signs a record of its own under the owner's key.
    let owner = Keypair::from_seed([3; 32]);
    let key = Key::for_record(&owner.peer_id(), b"home");
    // Protocol time is wall time (`wall_clock`): an hour from now is valid at the node.
    let expires = meshwork_node::wall_clock() + Duration::from_secs(3600);
    let mut signed = key.as_bytes().to_vec();
    signed.extend_from_slice(&expires.as_nanos().to_be_bytes());
    signed.extend_from_slice(b"squat");
    let squat = Record {
        key,
        value: BoundedBytes::try_from(b"squat".to_vec()).unwrap(),
        publisher: evil_key.peer_id(),
        expires: expires.as_nanos(),
        signature: evil_key.sign(RECORD_NAMESPACE, &signed),
    };
    let to = honest.peer_id();
    let put = |record| Request::PutValue { record };
    assert_eq!(
        ask(&squatter, &mut replies, to, 1, put(squat)).await,
        Response::Stored { ok: false }
    );
    assert!(matches!(
        ask(&squatter, &mut replies, to, 2, Request::GetValue { key }).await,
        Response::Value { record: None, .. }
    ));
    // The owner's record goes in, whoever relays it, and it is what the node serves.
    let own = Record::sign(&owner, key, b"mine".to_vec(), expires).unwrap();
    assert_eq!(
        ask(&squatter, &mut replies, to, 3, put(own.clone())).await,
        Response::Stored { ok: true }
    );
    match ask(&squatter, &mut replies, to, 4, Request::GetValue { key }).await {
        Response::Value { record, .. } => assert_eq!(record, Some(own)),
        other => panic!("not a value: {other:?}"),
    }
    evil.shutdown().await.unwrap();
    honest.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_cannot_fill_a_store_with_made_up_publishers() {
    let net = Net::Quic;
    let honest_key = Keypair::from_seed([1; 32]);
    let mut builder = NodeBuilder::new(NodeConfig::default());
    // Sixteen records: two a publisher, four a prefix (the default eighth and quarter).
    let store = MemoryStore::new(16, 16, 4);
    let kad = Kademlia::with_store(honest_key.clone(), Config::default(), store, 1);
    let (_kad, _events) = builder.register_with(kad, kad_hooks()).unwrap();
    let honest = net.start(builder, &honest_key, loopback(0)).await;
    let to = honest.peer_id();

    // Two raw peers in two /24s: the attacker's host, and an honest publisher's.
    let mut peers = Vec::new();
    for (seed, at) in [(2u8, 1usize), (3, 2)] {
        let key = Keypair::from_seed([seed; 32]);
        let mut builder = NodeBuilder::new(NodeConfig::default());
        let (handle, mut replies) = builder.register(Squatter).unwrap();
        let node = net.start(builder, &key, loopback(at)).await;
        node.dial(to, honest.local_addr()).await.unwrap();
        let up = timeout(Duration::from_secs(20), replies.recv())
            .await
            .expect("no connection in time");
        assert_eq!(up, Some(None), "the connection comes up first");
        peers.push((node, handle, replies));
    }
    let expires = meshwork_node::wall_clock() + Duration::from_secs(3600);
    let record = |seed: u8, name: &[u8]| {
        let publisher = Keypair::from_seed([seed; 32]);
        let key = Key::for_record(&publisher.peer_id(), name);
        Record::sign(&publisher, key, b"v".to_vec(), expires).unwrap()
    };

    // Eight made-up publishers, two records each: the whole store, were shares per publisher only.
    let mut stored = 0;
    let (_, attacker, replies) = &mut peers[0];
    for (i, seed) in (100..108u8).enumerate() {
        for (j, name) in [&b"a"[..], b"b"].into_iter().enumerate() {
            let request = Request::PutValue {
                record: record(seed, name),
            };
            if ask(attacker, replies, to, (2 * i + j) as u64, request).await
                == (Response::Stored { ok: true })
            {
                stored += 1;
            }
        }
    }
    assert_eq!(stored, 4, "one prefix's share of sixteen is four");

    let own = record(3, b"home");
    let (_, publisher, replies) = &mut peers[1];
    let put = Request::PutValue { record: own.clone() };
    assert_eq!(
        ask(publisher, replies, to, 100, put).await,
        Response::Stored { ok: true }
    );
    let get = Request::GetValue { key: own.key };
    match ask(publisher, replies, to, 101, get).await {
        Response::Value { record, .. } => assert_eq!(record, Some(own)),
        other => panic!("not a value: {other:?}"),
    }
    for (node, _, _) in peers {
        node.shutdown().await.unwrap();
    }
    honest.shutdown().await.unwrap();
}
