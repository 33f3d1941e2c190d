//! Valid relay is never punished.

use meshwork_identity::Keypair;

use crate::support::{self, ONE_AT_A_TIME, params, same_tip, start, wait_for};

/// "Ban your neighbours": an honest relay forwarding a burst of 700 valid transactions (the red team's
/// node banned such a relay after 0.24 s, 512 accepted, and the ban closed sync and Kademlia too). Valid
/// relay costs nothing now: every transaction arrives, nobody is banned, and the peers stay connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_700_valid_transactions_gets_no_relay_banned() {
    use coin_node::api::txid_of;
    use coin_node::wallet;
    use meshwork_ledger::{Amount, OutPoint, TxOut};

    const BURST: u32 = 700;
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let params = params();
    let miner = start(&dir, 0, params, &[], true, None).await;
    let relay = start(&dir, 1, params, &[&miner], false, None).await;
    let both = [&miner, &relay];
    wait_for(60, "the relay in step", || same_tip(&both)).await;

    // Fund 700 independent coins, confirmed, so the burst is 700 unrelated valid payments.
    let owner = Keypair::from_seed([7; 32]);
    let outputs = (0..BURST)
        .map(|_| TxOut {
            amount: Amount::from_units(1_000_000),
            owner: owner.peer_id(),
        })
        .collect();
    let split = wallet::pay_many(
        &meshwork_consensus::genesis_key(),
        vec![support::faucet_coin(params)],
        outputs,
        Amount::from_units(100_000),
    )
    .unwrap();
    let split_id = txid_of(&split);
    relay.api().submit_tx(split).await.unwrap();
    wait_for(90, "the funding confirmed on both", || {
        support::confirmed_everywhere(&both, split_id)
    })
    .await;

    let to = Keypair::from_seed([8; 32]).peer_id();
    let burst: Vec<_> = (0..BURST)
        .map(|index| {
            let coin = (
                OutPoint {
                    txid: split_id,
                    index,
                },
                Amount::from_units(1_000_000),
            );
            wallet::pay(
                &owner,
                vec![coin],
                to,
                Amount::from_units(500_000),
                Amount::from_units(1_000),
            )
            .unwrap()
        })
        .collect();
    let txids: Vec<_> = burst.iter().map(txid_of).collect();
    for tx in burst {
        relay.api().submit_tx(tx).await.unwrap();
    }
    // Every payment reaches the miner, in its mempool or already in a block.
    wait_for(120, "the whole burst at the miner", || async {
        for txid in &txids {
            if miner.api().transaction(*txid).await.ok().flatten().is_none() {
                return false;
            }
        }
        true
    })
    .await;
    let stats = miner.api().app().with(|app| app.gossip().stats()).await.unwrap();
    assert_eq!(stats.bans, 0, "the miner banned its relay: {stats:?}");
    assert_eq!(stats.rate_limited, 0, "valid relay was rate limited: {stats:?}");
    let relayed = miner.api().app().with(|app| app.relay_stats()).await.unwrap();
    assert_eq!(relayed.rejected, 0);
    // The relay does not mine, so every payment came by gossip (the funding too).
    assert!(relayed.accepted >= u64::from(BURST), "{relayed:?}");
    let peers = miner.api().node().peers().await.unwrap();
    assert!(
        peers.iter().any(|(id, _)| *id == relay.api().node().peer_id()),
        "the relay was dropped"
    );
    relay.shutdown().await;
    miner.shutdown().await;
}
