//! Back-pressure on the node's own transactions: while the driver drops data to most gossip neighbours
//! for full send queues, local transactions are refused (`SubmitError::LinksFull`), to be submitted
//! again shortly, but for one per hold; a minority of slow neighbours never trips it. One node, a fake
//! clock.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use meshwork_coin::{
    AppConfig, CoinApp, CoinCommand, CoinMessage, SubmitError, Submitted, tx_topic, txid_of,
};
use meshwork_consensus::{Chain, ChainConfig, genesis_block, genesis_key};
use meshwork_gossip::{GossipMessage, MembershipMessage, Message, TreeMessage};
use meshwork_identity::{Keypair, PeerId};
use meshwork_ledger::{Amount, MemoryStore, OutPoint, Transfer, testkit};
use meshwork_wire::{DropReason, Input, Instant, Protocol};

type App = CoinApp<MemoryStore>;

/// A node with four gossip neighbours (keys 2 to 5), at the genesis time plus a minute.
fn node(config: AppConfig) -> (App, Vec<PeerId>, Instant) {
    let chain_config = ChainConfig::regtest();
    let genesis = genesis_block(&chain_config);
    let secs = genesis.header.timestamp + 60;
    let now = Instant::from_duration(Duration::from_secs(secs));
    let chain = Chain::open(MemoryStore::default(), chain_config, genesis, secs).unwrap();
    let mut app = CoinApp::new(Keypair::from_seed([1; 32]), chain, config, 1);
    let peers: Vec<PeerId> = (2..=5u8).map(|n| Keypair::from_seed([n; 32]).peer_id()).collect();
    let mut out = Vec::new();
    for peer in &peers {
        app.handle(now, Input::PeerUp(*peer), &mut out);
        let neighbor = MembershipMessage::Neighbor { high_priority: false };
        let msg = CoinMessage::Gossip(Message::Membership(neighbor));
        app.handle(now, Input::Message { from: *peer, msg }, &mut out);
    }
    assert_eq!(app.gossip().active_view().len(), 4, "four neighbours");
    (app, peers, now)
}

/// The driver drops a transaction copy to `peer` at `now`: its send queue is full.
fn dropped(app: &mut App, now: Instant, peer: PeerId) {
    let payload = vec![1; 100].try_into().unwrap();
    let message = GossipMessage::sign(&Keypair::from_seed([9; 32]), tx_topic(), 1, payload);
    let msg = CoinMessage::Gossip(Message::Tree(TreeMessage::Gossip { message, hops: 1 }));
    app.undelivered(now, peer, msg, DropReason::QueueFull, &mut Vec::new());
}

/// A transfer of the genesis coin (one coin to key 10), and one of that coin on (to key 11).
fn transfers() -> (Transfer, Transfer) {
    let genesis = genesis_block(&ChainConfig::regtest());
    let coin = testkit::outpoints(&genesis.txs[0])[0];
    let held = genesis.txs[0].outputs()[0].amount;
    let to = Keypair::from_seed([10; 32]);
    let first = testkit::pay(&[(coin, held, &genesis_key())], &to, Amount::from_coins(1));
    let paid = OutPoint {
        txid: txid_of(&first),
        index: 0,
    };
    let on = Keypair::from_seed([11; 32]);
    let second = testkit::pay(
        &[(paid, Amount::from_coins(1), &to)],
        &on,
        Amount::from_units(90_000_000),
    );
    (first, second)
}

fn transfer() -> Transfer {
    transfers().0
}

#[test]
fn local_transactions_wait_while_most_neighbours_links_are_full() {
    let (mut app, peers, now) = node(AppConfig::default());
    let hold = AppConfig::default().links_full_hold;
    // Two of four full: not most. A slow or hostile minority cannot stop the node's wallets.
    dropped(&mut app, now, peers[0]);
    dropped(&mut app, now, peers[1]);
    let (first, tx) = transfers();
    let at = |ms| now + Duration::from_millis(ms);
    // Three of four: one transaction per hold still goes through (a node whose uplink is always full
    // gets its own out, slowly); the next is refused, and does not reach the mempool.
    dropped(&mut app, at(10), peers[2]);
    let trickled = app
        .submit_local_tx(at(15), first.clone(), &mut Vec::new())
        .unwrap();
    assert_eq!(trickled, Submitted::Accepted(txid_of(&first)));
    let refused = app.submit_local_tx(at(20), tx.clone(), &mut Vec::new());
    assert!(
        matches!(
            refused,
            Err(SubmitError::LinksFull {
                full: 3,
                neighbours: 4
            })
        ),
        "{refused:?}"
    );
    assert!(!app.chain().mempool().contains(&txid_of(&tx)));
    assert_eq!(app.relay_stats().refused_links_full, 1);
    // The first two links drained (no drop for the hold): two of four again, and it is taken.
    let later = at(hold.as_millis() as u64 + 5);
    let taken = app.submit_local_tx(later, tx.clone(), &mut Vec::new()).unwrap();
    assert_eq!(taken, Submitted::Accepted(txid_of(&tx)));
}

#[test]
fn a_minority_of_full_links_or_a_zero_hold_never_refuses() {
    let (mut app, peers, now) = node(AppConfig::default());
    dropped(&mut app, now, peers[0]);
    dropped(&mut app, now, peers[1]);
    assert!(app.submit_local_tx(now, transfer(), &mut Vec::new()).is_ok());

    let off = AppConfig {
        links_full_hold: Duration::ZERO,
        ..AppConfig::default()
    };
    let (mut app, peers, now) = node(off);
    for peer in &peers {
        dropped(&mut app, now, *peer);
    }
    assert!(app.submit_local_tx(now, transfer(), &mut Vec::new()).is_ok());
    assert_eq!(app.relay_stats().refused_links_full, 0);
}

#[test]
fn a_submission_by_command_is_never_held_back() {
    // A command has no answer to carry a refusal: it goes into the mempool, links full or not.
    let (mut app, peers, now) = node(AppConfig::default());
    for peer in &peers {
        dropped(&mut app, now, *peer);
    }
    let (first, second) = transfers();
    for tx in [first, second] {
        let txid = txid_of(&tx);
        app.handle(now, Input::Command(CoinCommand::SubmitTx(tx)), &mut Vec::new());
        assert!(app.chain().mempool().contains(&txid));
    }
    assert_eq!(app.relay_stats().refused_links_full, 0);
}
