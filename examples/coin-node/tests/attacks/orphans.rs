//! Orphan transactions from a hostile relay: a flood of made-up ones, and forged ones.

use coin_node::api::txid_of;
use coin_node::wallet;
use meshwork_coin::{Submitted, tx_topic};
use meshwork_gossip::{Gossip, GossipMessage, MembershipMessage, Message, Penalty, TreeMessage};
use meshwork_identity::{Hash, Keypair};
use meshwork_ledger::{Amount, OutPoint, Transfer, TxOut};
use meshwork_transport::{Config, Connection, ProtocolSpec, QuicTransport, Transport};
use meshwork_wire::Protocol;

use crate::support::{ONE_AT_A_TIME, faucet_coin, params, start, wait_for};

/// Made-up orphans the attacker floods: three times the orphan pool.
const FLOOD: u64 = 300;
/// Forged orphans it relays after the flood: more than the ban takes (five rejections).
const FORGED: u32 = 6;

/// The gossip frame that pushes `tx` as a message of `origin`'s, number `seq`.
fn push(origin: &Keypair, seq: u64, tx: &Transfer) -> Vec<u8> {
    let payload = meshwork_wire::encode(tx).unwrap().try_into().unwrap();
    let message = GossipMessage::sign(origin, tx_topic(), seq, payload);
    meshwork_wire::encode(&Message::Tree(TreeMessage::Gossip { message, hops: 1 })).unwrap()
}

/// The red team's censorship by orphans, on real QUIC: a child that waits at the victim for its
/// parent sat in one FIFO of 100, which a hostile gossip neighbour pushed it out of with three
/// hundred made-up orphans (free to make), so it never entered the mempool. Now the flooder loses its
/// own oldest orphans, and the child is adopted when the parent comes. The same neighbour then pushes
/// forged children of that parent, which cannot be checked before it comes; when it does, each
/// forgery is blamed on the neighbour, and the victim's gossip bans it for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_flood_keeps_the_honest_orphan_and_forged_orphans_ban_their_relay() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let params = params();
    let victim = start(&dir, 0, params, &[], false, None).await;
    let (id, addr) = (victim.api().node().peer_id(), victim.api().node().local_addr());

    // The attacker speaks gossip alone, joins the victim's overlay, and never reads.
    let key = Keypair::from_seed([150; 32]);
    let config = Config::new([ProtocolSpec::of::<Gossip>()]);
    let transport = QuicTransport::bind(&key, "127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let conn = transport.dial(id, addr).await.unwrap();
    let mut stream = conn.open(<Gossip as Protocol>::ID).await.unwrap();
    let join = meshwork_wire::encode(&Message::Membership(MembershipMessage::Join)).unwrap();
    stream.send_frame(&join).await.unwrap();
    let attacker = key.peer_id();
    let app = victim.api().app();
    wait_for(30, "the attacker in the victim's active view", || async {
        app.with(move |app| app.gossip().active_view().contains(&attacker))
            .await
            .unwrap()
    })
    .await;

    // The parent pays `owner` seven coins; the victim's wallet submits a child of the first before
    // the parent: it waits in the orphan pool.
    let owner = Keypair::from_seed([7; 32]);
    let to = Keypair::from_seed([8; 32]).peer_id();
    let one = Amount::from_coins(1);
    let outputs = vec![
        TxOut {
            amount: one,
            owner: owner.peer_id()
        };
        1 + FORGED as usize
    ];
    let fee = Amount::from_units(100_000);
    let genesis = meshwork_consensus::genesis_key();
    let parent = wallet::pay_many(&genesis, vec![faucet_coin(params)], outputs, fee).unwrap();
    let output = |index| {
        let txid = txid_of(&parent);
        (OutPoint { txid, index }, one)
    };
    let child = wallet::pay(&owner, vec![output(0)], to, Amount::from_units(90_000_000), fee).unwrap();
    let child_id = txid_of(&child);
    let submitted = victim.api().submit(child).await.unwrap();
    assert_eq!(submitted, Submitted::Orphan(child_id));

    let forger = Keypair::from_seed([9; 32]);
    for seq in 0..FLOOD {
        let missing = (
            OutPoint {
                txid: Hash::digest(&seq.to_le_bytes()),
                index: 0,
            },
            one,
        );
        let made_up = wallet::pay(&forger, vec![missing], to, Amount::from_units(1_000), fee).unwrap();
        stream.send_frame(&push(&key, seq, &made_up)).await.unwrap();
    }
    let from_attacker = || async {
        app.with(move |app| app.chain().mempool().orphan_count_from(Some(attacker)))
            .await
            .unwrap()
    };
    wait_for(60, "the flood at the victim", || async {
        from_attacker().await >= 99
    })
    .await;
    let held = app.with(move |app| app.chain().mempool().contains_orphan(&child_id));
    assert!(held.await.unwrap(), "the honest orphan outlived the flood");

    // Children of the parent signed by someone who does not own its outputs.
    let forged: Vec<Transfer> = (1..=FORGED)
        .map(|index| wallet::pay(&forger, vec![output(index)], to, Amount::from_units(1_000), fee).unwrap())
        .collect();
    for (seq, tx) in (FLOOD..).zip(&forged) {
        stream.send_frame(&push(&key, seq, tx)).await.unwrap();
    }
    let forged_ids: Vec<_> = forged.iter().map(txid_of).collect();
    wait_for(30, "the forged orphans at the victim", || {
        let ids = forged_ids.clone();
        async move {
            let held = app.with(move |app| ids.iter().all(|id| app.chain().mempool().contains_orphan(id)));
            held.await.unwrap()
        }
    })
    .await;

    let submitted = victim.api().submit(parent.clone()).await.unwrap();
    assert_eq!(submitted, Submitted::Accepted(txid_of(&parent)));
    wait_for(10, "the honest child adopted", || async {
        victim.api().in_mempool(child_id).await.unwrap()
    })
    .await;
    let (ban, blamed) = app
        .with(move |app| (app.gossip().ban_of(&attacker), app.relay_stats().blamed_orphans))
        .await
        .unwrap();
    assert_eq!(blamed, u64::from(FORGED), "each forgery blamed on its relay");
    let ban = ban.expect("the relay of the forgeries is banned");
    assert_eq!(
        ban.penalty,
        Penalty::Rejected,
        "banned for the forgeries, not the flood"
    );
    for id in &forged_ids {
        assert!(!victim.api().in_mempool(*id).await.unwrap());
    }
    victim.shutdown().await;
}
