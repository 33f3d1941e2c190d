//! The coin node's composite: hostile bytes on any of its channels decode without panicking (a
//! channel's bytes are its child's own encoding, canonical and bounded), and whatever decodes, fed to a
//! `CoinApp` connected to the sender, never panics nor lowers the work of its tip. The first byte of each
//! `u16`-length-prefixed chunk picks the channel (gossip, sync, Kademlia, Simplex, or one the app does not
//! speak). An odd first byte of the input runs the app as a BFT validator of a certified chain, the
//! sender one of the three others: one validator's messages never make a block final.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use meshwork_coin::{AppConfig, BftSetup, CoinApp, CoinMessage};
use meshwork_consensus::bft::{AnyJournal, BftConfig, MemoryJournal, ValidatorSet};
use meshwork_consensus::{Chain, ChainConfig, ChainRule, genesis_block, genesis_key};
use meshwork_identity::Keypair;
use meshwork_ledger::MemoryStore;
use meshwork_wire::{Input, Instant, Protocol, WireMessage};

fn messages(data: &[u8]) -> Vec<CoinMessage> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() < 8 && rest.len() >= 3 {
        let channel = usize::from(rest[0] % 5);
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let bytes = &rest[3..3 + len];
        if let Ok(msg) = CoinMessage::decode_from(channel, bytes) {
            assert!(
                channel < CoinApp::<MemoryStore>::channels().len(),
                "decoded on a channel it does not speak"
            );
            assert_eq!(
                msg.channel(),
                channel,
                "a message goes back out on the channel it came from"
            );
            let mut again = Vec::new();
            msg.encode_to(&mut again).expect("a decoded message encodes");
            assert_eq!(again, bytes, "non-canonical encoding");
            out.push(msg);
        }
        rest = &rest[3 + len..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let msgs = messages(data);
    if msgs.is_empty() {
        return;
    }
    let bft = data[0] % 2 == 1;
    let keys: Vec<Keypair> = [1u8, 7, 8, 9]
        .iter()
        .map(|i| Keypair::from_seed([*i; 32]))
        .collect();
    let set = ValidatorSet::new(keys.iter().map(Keypair::peer_id).collect()).expect("four validators");
    let mut config = ChainConfig::regtest();
    if bft {
        config.rule = ChainRule::Certified(set.clone());
    }
    let genesis = genesis_block(&config);
    let genesis_id = genesis.id();
    let secs = genesis.header.timestamp + 60;
    let chain = Chain::open(MemoryStore::new(), config, genesis, secs).expect("genesis");
    let work = chain.tip().work;
    let mut app = CoinApp::new(keys[0].clone(), chain, AppConfig::default(), 1);
    if bft {
        app = app.with_bft(BftSetup {
            config: BftConfig::new(set, genesis_id),
            journal: AnyJournal::Memory(MemoryJournal::new()),
            coinbase_owner: genesis_key().peer_id(),
        });
    }
    let peer = keys[1].peer_id();
    let now = Instant::from_duration(Duration::from_secs(secs));
    let mut out = Vec::new();
    app.handle(now, Input::PeerUp(peer), &mut out);
    for msg in msgs {
        app.handle(now, Input::Message { from: peer, msg }, &mut out);
    }
    if bft {
        assert!(
            app.chain().final_certificate().is_none(),
            "one validator made a block final"
        );
    } else {
        assert!(app.chain().tip().work >= work, "the tip never loses work");
    }
});
