//! Ledger decoding and validation: arbitrary bytes, decoded as a transaction and as a block, are validated
//! against a small chain without panicking; a block that connects disconnects back to the same UTXO set.
#![no_main]

use std::collections::HashMap;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use meshwork_ledger::testkit::{GENESIS_TIME, genesis, key};
use meshwork_ledger::{Amount, Block, Ledger, LedgerConfig, MemoryStore, Transaction};
use meshwork_wire::decode;

const NOW: u64 = GENESIS_TIME + 3600;

fn config() -> LedgerConfig {
    LedgerConfig {
        coinbase_maturity: 1,
        ..LedgerConfig::default()
    }
}

/// A store holding a genesis block with a few outputs, built once and cloned per input.
static STORE: LazyLock<MemoryStore> = LazyLock::new(|| {
    let mut ledger = Ledger::new(MemoryStore::new(), config());
    let block = genesis(&key(1), 4, Amount::from_coins(10));
    ledger
        .connect_block(&block, 1, NOW)
        .expect("the genesis block connects");
    ledger.into_store()
});

fuzz_target!(|data: &[u8]| {
    let mut ledger = Ledger::new(STORE.clone(), config());
    if let Ok(Transaction::Transfer(tx)) = decode::<Transaction>(data) {
        let _ = ledger.check_transfer(&tx, &HashMap::new());
    }
    if let Ok(block) = decode::<Block>(data) {
        let before = ledger.utxo_commitment().expect("memory store");
        if ledger.connect_block(&block, 2, NOW).is_ok() {
            ledger.disconnect_tip().expect("a connected block disconnects");
            assert_eq!(ledger.utxo_commitment().expect("memory store"), before);
        } else {
            assert_eq!(
                ledger.utxo_commitment().expect("memory store"),
                before,
                "a refused block changes nothing"
            );
        }
    }
});
