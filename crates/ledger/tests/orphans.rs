//! The orphan pool under a peer that floods it, and the blame for an orphan that proves invalid.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should stop loudly

use meshwork_identity::{Hash, Keypair, PeerId};
use meshwork_ledger::mempool::Inserted;
use meshwork_ledger::testkit::{GENESIS_TIME, key, ledger_with_spendable_genesis, pay};
use meshwork_ledger::{
    Amount, Ledger, LedgerConfig, MemoryStore, Mempool, MempoolConfig, MempoolError, OutPoint, Transaction,
    Transfer, TxError, TxId, TxOut,
};

const NOW: u64 = GENESIS_TIME + 1_000_000;
const EACH: u64 = 5 * Amount::COIN;

fn txid(tx: &Transfer) -> TxId {
    Transaction::Transfer(tx.clone()).txid()
}

fn peer(i: u8) -> PeerId {
    key(100 + i).peer_id()
}

/// A ledger whose genesis pays `key(1)` ten coins of [`EACH`], and a pool with at most `max_orphans`.
fn setup(max_orphans: usize) -> (Ledger<MemoryStore>, Mempool, OutPoint) {
    let (ledger, genesis) = ledger_with_spendable_genesis(
        LedgerConfig::default(),
        &key(1),
        10,
        Amount::from_units(EACH),
        NOW,
    )
    .unwrap();
    let pool = Mempool::new(MempoolConfig {
        max_orphans,
        ..MempoolConfig::default()
    });
    let coin = OutPoint {
        txid: genesis.txs[0].txid(),
        index: 0,
    };
    (ledger, pool, coin)
}

/// A well-formed orphan: it spends output 0 of a transaction nobody has, made from `seed`.
fn made_up_orphan(seed: u32) -> Transfer {
    let missing = OutPoint {
        txid: Hash::digest(&seed.to_le_bytes()),
        index: 0,
    };
    pay(
        &[(missing, Amount::from_units(10_000), &key(2))],
        &key(3),
        Amount::from_units(1_000),
    )
}

/// A parent paying `outputs` outputs of one coin each to `key(2)`, from the genesis coin.
fn parent(coin: OutPoint, outputs: u32) -> Transfer {
    let out = TxOut {
        amount: Amount::from_units(Amount::COIN),
        owner: key(2).peer_id(),
    };
    Transfer::signed(
        &[(coin, Amount::from_units(EACH), &key(1))],
        vec![out; outputs as usize],
    )
}

/// A child spending output `index` of `parent`, signed by `signer` (`key(2)` owns it: any other
/// signs a transaction whose signature fails once the parent is known).
fn child(parent: &Transfer, index: u32, signer: &Keypair) -> Transfer {
    let spent = OutPoint {
        txid: txid(parent),
        index,
    };
    pay(
        &[(spent, Amount::from_units(Amount::COIN), signer)],
        &key(3),
        Amount::from_units(Amount::COIN / 2),
    )
}

fn orphan(result: Result<Inserted, MempoolError>) {
    assert!(matches!(result, Ok(Inserted::Orphan { .. })), "{result:?}");
}

/// The red team's censorship by orphans: a child relayed just ahead of its parent waits in the orphan
/// pool, and one FIFO of 100 let any peer push it out with a hundred made-up orphans, free to make.
/// Now the peer that floods loses its own oldest: the honest peer's orphans and the node's own stay,
/// and are adopted when the parent comes.
#[test]
fn a_peer_flooding_orphans_evicts_its_own_not_an_honest_peers_or_the_nodes() {
    let (mut ledger, mut pool, coin) = setup(10);
    let parent = parent(coin, 3);
    let honest: Vec<Transfer> = (0..2).map(|i| child(&parent, i, &key(2))).collect();
    let own = child(&parent, 2, &key(2));
    for tx in &honest {
        orphan(pool.insert_relayed(tx.clone(), peer(1), &mut ledger));
    }
    orphan(pool.insert(own.clone(), &mut ledger));
    for seed in 0..500 {
        orphan(pool.insert_relayed(made_up_orphan(seed), peer(9), &mut ledger));
    }
    assert_eq!(pool.orphan_count(), 10);
    assert_eq!(pool.orphan_count_from(Some(peer(1))), 2);
    assert_eq!(pool.orphan_count_from(None), 1);
    assert_eq!(pool.orphan_count_from(Some(peer(9))), 7);
    // The flooder's newest are the ones kept.
    assert!(pool.contains_orphan(&txid(&made_up_orphan(499))));
    assert!(!pool.contains_orphan(&txid(&made_up_orphan(492))));

    let Inserted::Accepted { adopted, .. } = pool.insert(parent, &mut ledger).unwrap() else {
        panic!("the parent is valid");
    };
    let mut expected: Vec<TxId> = honest.iter().chain([&own]).map(txid).collect();
    let mut adopted = adopted;
    expected.sort_unstable();
    adopted.sort_unstable();
    assert_eq!(adopted, expected);
    assert!(pool.take_invalid_orphans().is_empty());
}

/// Two peers that each flood get equal shares: the pool is trimmed from whichever holds more, so the
/// one that floods last does not push the other below half.
#[test]
fn two_flooding_peers_share_the_pool_evenly() {
    let (mut ledger, mut pool, _) = setup(10);
    for seed in 0..300 {
        let from = if seed < 150 { peer(1) } else { peer(2) };
        orphan(pool.insert_relayed(made_up_orphan(seed), from, &mut ledger));
    }
    assert_eq!(pool.orphan_count_from(Some(peer(1))), 5);
    assert_eq!(pool.orphan_count_from(Some(peer(2))), 5);
}

/// The byte limit is shared the same way: a peer sending few large orphans is over its share of
/// bytes before it is over its share of the count, and it loses its own.
#[test]
fn a_peer_over_its_share_of_bytes_loses_its_own_oldest() {
    let (mut ledger, _, coin) = setup(100);
    let small = made_up_orphan(u32::MAX);
    let size = Transaction::Transfer(small).encoded_len();
    let mut pool = Mempool::new(MempoolConfig {
        max_orphans: 100,
        max_orphan_bytes: 6 * size,
        ..MempoolConfig::default()
    });
    let parent = parent(coin, 1);
    let honest = child(&parent, 0, &key(2));
    orphan(pool.insert_relayed(honest.clone(), peer(1), &mut ledger));
    for seed in 0..50 {
        orphan(pool.insert_relayed(made_up_orphan(seed), peer(9), &mut ledger));
    }
    assert!(pool.orphan_bytes() <= 6 * size);
    assert!(pool.contains_orphan(&txid(&honest)));
    // The flooder keeps what fits beside the honest orphan, no more.
    let honest_size = Transaction::Transfer(honest).encoded_len();
    assert_eq!(
        pool.orphan_count_from(Some(peer(9))),
        (6 * size - honest_size) / size
    );
}

/// An orphan's signatures cannot be checked until its parent comes. Then one that fails is reported
/// with the peer that relayed it (an honest relay checked it before relaying), once; a valid one from
/// another peer is adopted, and the node's own bad orphan blames nobody.
#[test]
fn an_orphan_whose_signature_fails_when_its_parent_comes_is_blamed_on_its_relayer() {
    let (mut ledger, mut pool, coin) = setup(100);
    let parent = parent(coin, 3);
    let forged = child(&parent, 0, &key(7));
    let good = child(&parent, 1, &key(2));
    let own_forged = child(&parent, 2, &key(8));
    orphan(pool.insert_relayed(forged.clone(), peer(9), &mut ledger));
    orphan(pool.insert_relayed(good.clone(), peer(1), &mut ledger));
    orphan(pool.insert(own_forged, &mut ledger));
    assert!(
        pool.take_invalid_orphans().is_empty(),
        "nothing is known before the parent"
    );

    let Inserted::Accepted { adopted, .. } = pool.insert(parent, &mut ledger).unwrap() else {
        panic!("the parent is valid");
    };
    assert_eq!(adopted, vec![txid(&good)]);
    let invalid = pool.take_invalid_orphans();
    assert_eq!(invalid.len(), 1, "{invalid:?}");
    assert_eq!((invalid[0].txid, invalid[0].from), (txid(&forged), peer(9)));
    assert!(matches!(
        invalid[0].error,
        MempoolError::Invalid(TxError::BadSignature { .. })
    ));
    assert!(invalid[0].error.is_invalid());
    assert!(pool.take_invalid_orphans().is_empty(), "reported once");
    assert_eq!(pool.orphan_count(), 0);
}
