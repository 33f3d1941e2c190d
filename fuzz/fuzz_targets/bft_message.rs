//! Simplex messages: hostile bytes decode without panicking (within bounds, canonically), and whatever
//! decodes, fed to a started validator from each of the other validators in turn, never panics and never
//! finalises a height out of order. Inputs that are not one message are read as up to eight
//! `u16`-length-prefixed messages, so the fuzzer can reach states that take a conversation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_consensus::bft::mocks::Digests;
use meshwork_consensus::bft::{BftConfig, Command, Event, MemoryJournal, Message, Simplex, ValidatorSet};
use meshwork_identity::{Hash, Keypair};
use meshwork_wire::{Input, Instant, Output, Protocol, decode, encode};

fn messages(data: &[u8]) -> Vec<Message> {
    if let Ok(msg) = decode::<Message>(data) {
        assert_eq!(
            encode(&msg).expect("a decoded message encodes"),
            data,
            "non-canonical encoding"
        );
        return vec![msg];
    }
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() < 8 && rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        if let Ok(msg) = decode::<Message>(&rest[2..2 + len]) {
            out.push(msg);
        }
        rest = &rest[2 + len..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let msgs = messages(data);
    if msgs.is_empty() {
        return;
    }
    let keys: Vec<Keypair> = (1..=4).map(|i| Keypair::from_seed([i; 32])).collect();
    let set = ValidatorSet::new(keys.iter().map(Keypair::peer_id).collect()).expect("four keys");
    let config = BftConfig::new(set, Hash::digest(b"fuzz"));
    let me = keys[0].clone();
    let mut engine = Simplex::new(
        config,
        me.clone(),
        Digests::new(me.peer_id()),
        MemoryJournal::new(),
    );
    let now = Instant::ZERO;
    let mut out = Vec::new();
    for key in &keys[1..] {
        engine.handle(now, Input::PeerUp(key.peer_id()), &mut out);
    }
    engine.handle(now, Input::Command(Command::Start), &mut out);
    for (i, msg) in msgs.into_iter().enumerate() {
        let from = keys[1 + i % 3].peer_id();
        engine.handle(now, Input::Message { from, msg }, &mut out);
    }
    let mut height = 0;
    for output in out {
        if let Output::Emit(Event::Finalized { proposal, .. }) = output {
            assert_eq!(proposal.height, height + 1, "final heights in order");
            height = proposal.height;
        }
    }
});
