//! Validation cannot be lost: with every event queue at its smallest setting, a burst of transactions
//! relayed over real QUIC is validated and forwarded by every node. The verdict is computed inside the
//! app (`meshwork_coin::CoinApp`) in the step that asks for it; no queue sits between gossip and the
//! mempool, so a full event queue costs log lines only.
#![allow(clippy::unwrap_used)]

mod support;

use coin_node::api::txid_of;
use coin_node::{CoinNode, DataDir, NodeOptions, wallet};
use meshwork_consensus::genesis_key;
use meshwork_identity::Keypair;
use meshwork_ledger::{Amount, OutPoint, TxOut};
use support::{ONE_AT_A_TIME, faucet_coin, params, wait_for};

/// Transactions in the burst (besides the one that funds them): as many as the mempool takes while
/// nothing is mined, the funding transaction and its children being at most 25 (Bitcoin Core's
/// descendant limit, `MempoolConfig::max_descendants`).
const BURST: u32 = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_smallest_event_queues_every_relayed_transaction_is_validated_and_forwarded() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let params = params();
    // Four nodes, none mining, each joining through the one before (3 -> 2 -> 1 -> 0).
    let mut nodes: Vec<CoinNode> = Vec::new();
    for i in 0..4 {
        let mut options = NodeOptions::new(DataDir::new(dir.path().join(format!("n{i}"))), params);
        options.event_queue = 1;
        options.target_peers = 1;
        options.seed = i as u64 + 1;
        options.loopback_devnet = true;
        if let Some(prev) = nodes.last() {
            options.bootstrap = vec![(prev.api().node().peer_id(), prev.api().node().local_addr())];
        }
        nodes.push(CoinNode::start(options).await.unwrap());
    }
    wait_for(30, "every node connected", || async {
        for node in &nodes {
            if node.api().node().peers().await.unwrap().is_empty() {
                return false;
            }
        }
        true
    })
    .await;

    // The faucet's coin split in BURST outputs, then BURST payments spending them (chained in the
    // mempool: nothing is mined), all submitted at once at the end of the line.
    let coin = faucet_coin(params);
    let owner = Keypair::from_seed([7; 32]);
    let outputs = (0..BURST)
        .map(|_| TxOut {
            amount: Amount::from_coins(1),
            owner: owner.peer_id(),
        })
        .collect();
    let split = wallet::pay_many(&genesis_key(), vec![coin], outputs, Amount::from_units(100_000)).unwrap();
    let split_id = txid_of(&split);
    let mut burst = vec![split];
    for index in 0..BURST {
        let coin = (
            OutPoint {
                txid: split_id,
                index,
            },
            Amount::from_coins(1),
        );
        let to = Keypair::from_seed([8; 32]).peer_id();
        let payment = wallet::pay(
            &owner,
            vec![coin],
            to,
            Amount::from_units(50_000_000),
            Amount::from_units(1_000),
        );
        burst.push(payment.unwrap());
    }
    let txids: Vec<_> = burst.iter().map(txid_of).collect();
    let sender = nodes.last().unwrap().api().clone();
    for tx in burst {
        sender.submit_tx(tx).await.unwrap();
    }

    // Every node, three hops away included, holds every transaction: each was validated at each hop.
    let count = txids.len();
    wait_for(60, "the whole burst in every mempool", || async {
        for node in &nodes {
            for txid in &txids {
                if !node.api().in_mempool(*txid).await.unwrap() {
                    return false;
                }
            }
        }
        true
    })
    .await;
    let far = nodes[0].api().app().with(|app| app.relay_stats()).await.unwrap();
    // A child may overtake its parent (they travel over several streams and, when the connection
    // manager trims, connections): then it waits as an orphan and is adopted with the parent.
    assert_eq!(
        far.accepted + far.adopted,
        count as u64,
        "the far end took each relayed transaction once"
    );
    assert_eq!(far.rejected, 0);
    for node in nodes {
        node.shutdown().await;
    }
}
