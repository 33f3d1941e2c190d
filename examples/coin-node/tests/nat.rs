//! A coin devnet whose nodes sit behind NATs, in the NAT testbed (network namespaces and nftables
//! routers on this machine): one public node serves as rendezvous and relay (`--rendezvous`), two
//! nodes sit behind endpoint-independent NATs and one behind a symmetric NAT (`--use-rendezvous`).
//! The network mines, relays a payment and converges on one tip; the nodes behind NATs reach each
//! other directly where a hole punch can, and through the relay where it cannot.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use coin_node::nat::NatRole;
use coin_node::{CoinNode, NodeOptions, wallet};
use meshwork_consensus::genesis_key;
use meshwork_identity::PeerId;
use meshwork_ledger::Amount;
use meshwork_testbed::{Host, NatKind, Testbed, TestbedSpec, skip_reason};
use meshwork_transport::quic::udp_socket;
use meshwork_wire::relayed::is_relayed;
use support::{ONE_AT_A_TIME, confirmed_everywhere, data_dir, faucet_coin, params, same_tip, wait_for};

async fn start_on(
    host: &Host,
    dir: &tempfile::TempDir,
    i: usize,
    params: coin_node::NetworkParams,
    nat: NatRole,
    seeds: &[(PeerId, SocketAddr)],
    mine: bool,
) -> CoinNode {
    let socket = host
        .enter(|| udp_socket(SocketAddr::new(host.addr().into(), 0)))
        .unwrap()
        .unwrap();
    let mut options = NodeOptions::new(data_dir(dir, i), params);
    options.socket = Some(Arc::new(socket));
    options.nat = nat;
    options.bootstrap = seeds.to_vec();
    options.mine_threads = usize::from(mine);
    options.seed = i as u64 + 1;
    CoinNode::start(options).await.unwrap()
}

/// The address `node` holds its connection to `peer` at, if any.
async fn connection(node: &CoinNode, peer: PeerId) -> Option<SocketAddr> {
    let peers = node.api().node().peers().await.unwrap();
    peers.into_iter().find(|(p, _)| *p == peer).map(|(_, addr)| addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_devnet_behind_nats_mines_relays_a_payment_and_converges() {
    if skip_reason().is_some() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let _ = tracing_subscriber::fmt()
        .with_env_filter("coin_node=info,meshwork_nat=debug")
        .with_test_writer()
        .try_init();
    let nats = [
        NatKind::EndpointIndependent,
        NatKind::EndpointIndependent,
        NatKind::Symmetric,
    ];
    let bed = Testbed::build(&TestbedSpec::new(1, &nats)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let params = params();

    let public = start_on(bed.public(0), &dir, 0, params, NatRole::Rendezvous, &[], false).await;
    let at = (public.api().node().peer_id(), public.api().node().local_addr());
    let client = NatRole::Client(at.0, at.1);
    let a = start_on(bed.private(0, 0), &dir, 1, params, client, &[at], true).await;
    let b = start_on(bed.private(1, 0), &dir, 2, params, client, &[at], false).await;
    let c = start_on(bed.private(2, 0), &dir, 3, params, client, &[at], true).await;
    let ids: Vec<PeerId> = [&a, &b, &c].iter().map(|n| n.api().node().peer_id()).collect();

    // The nodes behind endpoint-independent NATs end directly connected, at each other's NAT mapping.
    wait_for(
        90,
        "a direct connection between the two endpoint-independent peers",
        || async {
            connection(&a, ids[1])
                .await
                .is_some_and(|addr| addr.ip() == bed.nat_address(1))
        },
    )
    .await;
    // The one behind the symmetric NAT reaches the other two through the relay.
    for (node, peer) in [(&c, ids[0]), (&c, ids[1])] {
        wait_for(120, "a relayed connection to the symmetric-NAT peer", || async {
            connection(node, peer).await.is_some_and(|addr| is_relayed(&addr))
        })
        .await;
    }

    // The metrics say how: the punches towards the symmetric NAT failed for want of a connection in
    // time, and relay circuits were opened instead. (The direct connection needs no successful punch
    // of its own: the two peers' Kademlia dials to each other's mapping can cross and open it first.)
    let gauge = |node: &CoinNode, name: &str| -> i64 {
        let text = node.api().node().metrics().render();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("meshwork_{name} ")))
            .unwrap_or("");
        line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let total = |name: &str| [&a, &b, &c].iter().map(|n| gauge(n, name)).sum::<i64>();
    assert!(total("nat_relay_circuits_opened") >= 1);
    assert!(total("nat_punches_timed_out") + total("nat_punches_dials_failed") >= 1);

    // Blocks are mined behind the NATs and reach everyone.
    let all = [&public, &a, &b, &c];
    wait_for(120, "height 2 everywhere", || async {
        for node in &all {
            if node.api().tip().await.unwrap().0 < 2 {
                return false;
            }
        }
        true
    })
    .await;
    // A payment sent through the node behind the symmetric NAT is confirmed everywhere.
    let to = b.api().wallet().peer_id();
    let tx = wallet::pay(
        &genesis_key(),
        vec![faucet_coin(params)],
        to,
        Amount::from_coins(10),
        Amount::from_units(100_000),
    )
    .unwrap();
    let txid = c.api().submit_tx(tx).await.unwrap();
    wait_for(120, "the payment confirmed on every node", || {
        confirmed_everywhere(&all, txid)
    })
    .await;
    // And the network agrees on one tip (mining goes on; the wait catches a moment between blocks).
    wait_for(60, "one tip everywhere", || same_tip(&all)).await;
    for node in [public, a, b, c] {
        node.shutdown().await;
    }
}
