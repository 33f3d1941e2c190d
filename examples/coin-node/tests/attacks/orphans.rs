//! Orphan transactions from a hostile relay: a flood of made-up ones, and forged ones.

use std::time::Duration;

use coin_node::CoinNode;
use coin_node::api::{ApiError, txid_of};
use coin_node::wallet;
use meshwork_coin::Submitted;
use meshwork_identity::{Hash, Keypair};
use meshwork_ledger::{Amount, OutPoint, Transfer, TxOut};

use crate::support::{ONE_AT_A_TIME, faucet_coin, params, start, wait_for};

/// Made-up orphans the attacker floods: three times the orphan pool.
const FLOOD: u32 = 300;
/// Forged orphans it relays after the flood: more than the ban takes (five rejections).
const FORGED: u32 = 6;

/// Submits `tx` at `node`, again while its gossip links are full (bounded), and says what became of it.
async fn submit(node: &CoinNode, tx: &Transfer) -> Submitted {
    for _ in 0..200 {
        match node.api().submit(tx.clone()).await {
            Err(ApiError::LinksFull { .. }) => tokio::time::sleep(Duration::from_millis(50)).await,
            result => return result.unwrap(),
        }
    }
    panic!("the links stayed full for ten seconds");
}

/// The red team's censorship by orphans, on real QUIC: a child that reached the victim before its
/// parent waits in the orphan pool, and a peer that relays three hundred made-up orphans (free to
/// make) used to push it out of the pool's one FIFO of 100, so it never entered the mempool. Now the
/// flooder loses its own oldest orphans, and the child is adopted when the parent comes. The same
/// peer then relays forged children of that parent, which cannot be checked before it comes; when it
/// does, each forgery is blamed on the relay, and the victim's gossip bans it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_flood_keeps_the_honest_orphan_and_forged_orphans_ban_their_relay() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let params = params();
    let victim = start(&dir, 0, params, &[], false, None).await;
    let attacker = start(&dir, 1, params, &[&victim], false, None).await;
    let attacker_id = attacker.api().node().peer_id();
    let view = || async {
        let app = victim.api().app();
        app.with(move |app| app.gossip().active_view().contains(&attacker_id))
            .await
            .unwrap()
    };
    wait_for(60, "the attacker in the victim's active view", view).await;

    // The parent pays `owner` eight coins; the honest child spends the first.
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
    let parent = wallet::pay_many(
        &meshwork_consensus::genesis_key(),
        vec![faucet_coin(params)],
        outputs,
        fee,
    )
    .unwrap();
    let output = |index| {
        (
            OutPoint {
                txid: txid_of(&parent),
                index,
            },
            one,
        )
    };
    let child = wallet::pay(&owner, vec![output(0)], to, Amount::from_units(90_000_000), fee).unwrap();
    let child_id = txid_of(&child);
    assert_eq!(submit(&victim, &child).await, Submitted::Orphan(child_id));

    let forger = Keypair::from_seed([9; 32]);
    for seed in 0..FLOOD {
        let missing = (
            OutPoint {
                txid: Hash::digest(&seed.to_le_bytes()),
                index: 0,
            },
            one,
        );
        let made_up = wallet::pay(&forger, vec![missing], to, Amount::from_units(1_000), fee).unwrap();
        submit(&attacker, &made_up).await;
    }
    let from_attacker = || async {
        let app = victim.api().app();
        app.with(move |app| app.chain().mempool().orphan_count_from(Some(attacker_id)))
            .await
            .unwrap()
    };
    wait_for(60, "the flood at the victim", || async {
        from_attacker().await >= 99
    })
    .await;
    let held = victim
        .api()
        .app()
        .with(move |app| app.chain().mempool().contains_orphan(&child_id));
    assert!(held.await.unwrap(), "the honest orphan outlived the flood");

    // Children of the parent signed by someone who does not own its outputs.
    let forged: Vec<Transfer> = (1..=FORGED)
        .map(|index| wallet::pay(&forger, vec![output(index)], to, Amount::from_units(1_000), fee).unwrap())
        .collect();
    for tx in &forged {
        submit(&attacker, tx).await;
    }
    let forged_ids: Vec<_> = forged.iter().map(txid_of).collect();
    wait_for(30, "the forged orphans at the victim", || {
        let ids = forged_ids.clone();
        let app = victim.api().app();
        async move {
            let held = app.with(move |app| ids.iter().all(|id| app.chain().mempool().contains_orphan(id)));
            held.await.unwrap()
        }
    })
    .await;

    assert_eq!(
        submit(&victim, &parent).await,
        Submitted::Accepted(txid_of(&parent))
    );
    wait_for(10, "the honest child adopted", || async {
        victim.api().in_mempool(child_id).await.unwrap()
    })
    .await;
    let (banned, blamed) = victim
        .api()
        .app()
        .with(move |app| {
            (
                app.gossip().is_banned(&attacker_id),
                app.relay_stats().blamed_orphans,
            )
        })
        .await
        .unwrap();
    assert_eq!(blamed, u64::from(FORGED), "each forgery blamed on its relay");
    assert!(banned, "the relay of {FORGED} forgeries is banned");
    for id in &forged_ids {
        assert!(!victim.api().in_mempool(*id).await.unwrap());
    }
    attacker.shutdown().await;
    victim.shutdown().await;
}
