//! In-process networks over real QUIC on 127.0.0.1: payments confirmed everywhere, a late node syncing,
//! a node shut down, and censoring relays. Every wait is bounded; nothing is timed.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use coin_node::api::TxStatus;
use coin_node::api::txid_of;
use coin_node::app::RelayFilter;
use coin_node::config::ConsensusParams;
use coin_node::wallet;
use meshwork_consensus::genesis_key;
use meshwork_ledger::{Amount, Transfer};
use support::{
    ONE_AT_A_TIME, confirmed_everywhere, data_dir, faucet_coin, params, same_tip, start, start_with, wait_for,
};

/// The genesis faucet's coin, paid to `to` (amount 10 coins, fee 0.001).
fn faucet_payment(params: coin_node::NetworkParams, to: meshwork_identity::PeerId) -> Transfer {
    wallet::pay(
        &genesis_key(),
        vec![faucet_coin(params)],
        to,
        Amount::from_coins(10),
        Amount::from_units(100_000),
    )
    .unwrap()
}

/// Every node's status, one line each, for a failure message.
async fn dump(nodes: &[&coin_node::CoinNode]) -> String {
    let mut state = String::new();
    for (i, node) in nodes.iter().enumerate() {
        let status = node.api().status().await.unwrap();
        state.push_str(&format!(
            "\nnode {i}: height {} peers {} mempool {} mining {} synced {}",
            status.height, status.peers, status.mempool, status.mining, status.synced
        ));
    }
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_confirm_a_payment_a_late_node_syncs_and_a_shutdown_is_survived() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let _ = tracing_subscriber::fmt()
        .with_env_filter("coin_node=debug,meshwork_node=info")
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let params = params();
    let n0 = start(&dir, 0, params, &[], true, None).await;
    let mut nodes = vec![n0];
    for i in 1..5 {
        let node = start(&dir, i, params, &[&nodes[0]], i == 1, None).await;
        nodes.push(node);
    }

    // (a) A wallet payment (the faucet to node 3's wallet), sent through node 2, is confirmed on all five.
    wait_for(60, "height 2", || async {
        nodes[2].api().tip().await.unwrap().0 >= 2
    })
    .await;
    let to = nodes[3].api().wallet().peer_id();
    let tx = faucet_payment(params, to);
    let txid = nodes[2].api().submit_tx(tx).await.unwrap();
    let all: Vec<&_> = nodes.iter().collect();
    wait_for(90, "the payment confirmed on every node", || {
        confirmed_everywhere(&all, txid)
    })
    .await;
    // Balances agree once the tips do (mining goes on, so compare at a common tip).
    wait_for(60, "equal balances at one tip", || async {
        let mut seen = Vec::new();
        for node in &all {
            seen.push((
                node.api().tip().await.unwrap(),
                node.api().balance(to).await.unwrap(),
            ));
        }
        seen.windows(2).all(|w| w[0] == w[1])
    })
    .await;
    assert!(nodes[0].api().balance(to).await.unwrap() >= Amount::from_coins(10));

    // (b) A late node syncs to the same tip.
    let late = start(&dir, 5, params, &[&nodes[4]], false, None).await;
    wait_for(90, "the late node on the same tip", || async {
        let (h, id) = late.api().tip().await.unwrap();
        let (h0, id0) = nodes[0].api().tip().await.unwrap();
        h >= h0.saturating_sub(1) && (id == id0 || h >= h0)
    })
    .await;
    nodes.push(late);

    // (c) Shutting down a miner leaves the others mining and relaying.
    let gone = nodes.remove(0);
    gone.shutdown().await;
    let before = nodes[1].api().tip().await.unwrap().0;
    let grew = tokio::time::timeout(std::time::Duration::from_secs(90), async {
        while nodes[4].api().tip().await.unwrap().0 < before + 3 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
    if grew.is_err() {
        panic!(
            "no three more blocks without node 0 within 90 s:{}",
            dump(&nodes.iter().collect::<Vec<_>>()).await
        );
    }
    // Node 3 of the original numbering (now at index 2) owns the paid wallet: it pays node 4.
    let sender = nodes[2].api();
    assert_eq!(sender.wallet().peer_id(), to);
    let coins = sender.spendable(sender.wallet().peer_id()).await.unwrap();
    assert!(!coins.is_empty(), "node 3 was paid");
    let pay = wallet::pay(
        sender.wallet(),
        coins,
        nodes[3].api().wallet().peer_id(),
        Amount::from_coins(1),
        Amount::from_units(1000),
    )
    .unwrap();
    let txid = sender.submit_tx(pay).await.unwrap();
    let rest: Vec<&_> = nodes.iter().collect();
    let confirmed = tokio::time::timeout(std::time::Duration::from_secs(90), async {
        while !confirmed_everywhere(&rest, txid).await {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
    if confirmed.is_err() {
        let mut state = dump(&rest).await;
        for (i, node) in rest.iter().enumerate() {
            let view = node.api().transaction(txid).await.unwrap().map(|v| v.status);
            state.push_str(&format!("\nnode {i}: payment {view:?}"));
        }
        panic!("a payment was not confirmed after the shutdown within 90 s:{state}");
    }
    wait_for(60, "same tip on the remaining nodes", || same_tip(&rest)).await;
    // The chain height gauge follows the tip (mining goes on: compare with the tip read just before).
    wait_for(30, "meshwork_chain_height at the tip", || async {
        let (height, _) = nodes[1].api().tip().await.unwrap();
        let text = nodes[1].api().node().metrics().render();
        text.contains(&format!("\nmeshwork_chain_height {height}\n"))
            && text.contains("\nmeshwork_mempool_transactions ")
            && text.contains("\nmeshwork_mempool_bytes ")
    })
    .await;
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_two_censoring_relays_refuse_is_confirmed_on_every_honest_node() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let params = params();
    let victim = meshwork_identity::Keypair::from_seed([9; 32]).peer_id();
    let tx = faucet_payment(params, victim);
    let target = txid_of(&tx);
    let censor: RelayFilter = Arc::new(move |tx: &Transfer| txid_of(tx) != target);
    // Node 0 is the contact; 1 and 2 censor; the sender is 3; only node 5 mines.
    let mut nodes = vec![start(&dir, 0, params, &[], false, None).await];
    for i in 1..6 {
        let filter = (i == 1 || i == 2).then(|| censor.clone());
        let node = start(&dir, i, params, &[&nodes[0]], i == 5, filter).await;
        nodes.push(node);
    }
    wait_for(60, "height 1 at the sender", || async {
        nodes[3].api().tip().await.unwrap().0 >= 1
    })
    .await;
    nodes[3].api().submit_tx(tx).await.unwrap();
    let honest: Vec<&_> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1 && *i != 2)
        .map(|(_, n)| n)
        .collect();
    wait_for(90, "the censored payment confirmed on every honest node", || {
        confirmed_everywhere(&honest, target)
    })
    .await;
    assert!(
        !nodes[1].api().in_mempool(target).await.unwrap(),
        "a censor never took it in"
    );
    for node in nodes {
        node.shutdown().await;
    }
}

/// Every node's final height.
async fn final_heights(nodes: &[&coin_node::CoinNode]) -> Vec<Option<u64>> {
    let mut heights = Vec::new();
    for node in nodes {
        heights.push(node.api().status().await.unwrap().final_height);
    }
    heights
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_finalise_a_payment_everywhere_and_a_restarted_validator_rejoins() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let params = params();
    // The validator set names its nodes before any starts.
    let validators = (0..4).map(|i| data_dir(&dir, i).node_id().unwrap()).collect();
    let bft = ConsensusParams::Bft { validators };
    let mut nodes = vec![start_with(&dir, 0, params, bft.clone(), &[], true, None).await];
    for i in 1..5 {
        // Node 4 is not a validator: it follows their certificates. Nobody mines under BFT.
        let node = start_with(&dir, i, params, bft.clone(), &[&nodes[0]], true, None).await;
        nodes.push(node);
    }
    for node in &nodes {
        assert!(!node.api().status().await.unwrap().mining);
    }
    wait_for(90, "final height 5 on every node", || async {
        let all: Vec<&_> = nodes.iter().collect();
        final_heights(&all)
            .await
            .iter()
            .all(|h| h.is_some_and(|h| h >= 5))
    })
    .await;

    // A payment sent through the observer is in a final block on every node.
    let to = nodes[3].api().wallet().peer_id();
    let txid = nodes[4]
        .api()
        .submit_tx(faucet_payment(params, to))
        .await
        .unwrap();
    wait_for(60, "the payment final on every node", || async {
        for node in &nodes {
            match node.api().transaction(txid).await.unwrap() {
                Some(view) if view.is_final && view.status == TxStatus::Confirmed => {}
                _ => return false,
            }
        }
        true
    })
    .await;

    // A validator restarts from its data dir (its vote journal is there): three of four keep
    // finalising meanwhile, and it catches up with them.
    let restarted = nodes.remove(2);
    restarted.shutdown().await;
    assert!(
        data_dir(&dir, 2).vote_journal().exists(),
        "the validator journalled its votes"
    );
    let before = nodes[0].api().status().await.unwrap().final_height.unwrap();
    wait_for(60, "five more final blocks with three validators", || async {
        nodes[1].api().status().await.unwrap().final_height.unwrap_or(0) >= before + 5
    })
    .await;
    let back = start_with(&dir, 2, params, bft.clone(), &[&nodes[0]], false, None).await;
    let target = nodes[0].api().status().await.unwrap().final_height.unwrap();
    wait_for(
        60,
        "the restarted validator at the others' final height",
        || async { back.api().status().await.unwrap().final_height.unwrap_or(0) >= target },
    )
    .await;
    let ours = back.api().block_at(target).await.unwrap().map(|b| b.id);
    let theirs = nodes[0].api().block_at(target).await.unwrap().map(|b| b.id);
    assert!(ours.is_some() && ours == theirs);
    nodes.push(back);
    for node in nodes {
        node.shutdown().await;
    }
}
