//! Relay messages: hostile bytes decode without panicking (within bounds, canonically), and whatever
//! decodes, fed to a relay and to an end from connected peers, never panics, never has the relay
//! forward a datagram on a circuit the sender is not an end of or past a circuit's byte limit, and
//! never opens a circuit at an end that reserved nowhere. Inputs that are not one message are read
//! as up to eight `u16`-length-prefixed messages, each from one of two peers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_identity::Keypair;
use meshwork_nat::relay::{RelayMessage, RelayRefusal};
use meshwork_nat::{Relay, RelayConfig, RelayEvent, RelayLimits};
use meshwork_wire::{Input, Instant, Output, Protocol, decode, encode};

const LIMIT: u64 = 4096;

fn messages(data: &[u8]) -> Vec<RelayMessage> {
    if let Ok(msg) = decode::<RelayMessage>(data) {
        assert_eq!(encode(&msg).expect("a decoded message encodes"), data, "non-canonical encoding");
        return vec![msg];
    }
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() < 8 && rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        if let Ok(msg) = decode::<RelayMessage>(&rest[2..2 + len]) {
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
    let peers = [Keypair::from_seed([1; 32]).peer_id(), Keypair::from_seed([2; 32]).peer_id()];
    let limits = RelayLimits {
        max_circuit_bytes: LIMIT,
        max_circuits_per_peer: 2,
        ..RelayLimits::default()
    };
    let mut relay = Relay::new(RelayConfig {
        serve: Some(limits),
        ..RelayConfig::default()
    });
    let mut end = Relay::new(RelayConfig::default());
    let mut out = Vec::new();
    for peer in peers {
        relay.handle(Instant::ZERO, Input::PeerUp(peer), &mut out);
        end.handle(Instant::ZERO, Input::PeerUp(peer), &mut out);
    }
    let mut forwarded = std::collections::HashMap::<u64, u64>::new();
    for (i, msg) in msgs.into_iter().enumerate() {
        let from = peers[i % 2];
        let now = Instant::from_nanos(i as u64 * 1_000_000_000);
        out.clear();
        relay.handle(now, Input::Message { from, msg: msg.clone() }, &mut out);
        for o in &out {
            if let Output::Send { msg: RelayMessage::Deliver { circuit, payload }, .. } = o {
                *forwarded.entry(*circuit).or_default() += payload.len() as u64;
            }
            if let Output::Send { msg: RelayMessage::ConnectRefused { reason, .. }, .. } = o {
                assert_ne!(*reason, RelayRefusal::NotARelay);
            }
        }
        out.clear();
        end.handle(now, Input::Message { from, msg }, &mut out);
        assert!(
            !out.iter().any(|o| matches!(o, Output::Emit(RelayEvent::CircuitOpened { .. }))),
            "an end that asked for nothing got a circuit"
        );
    }
    let stats = relay.stats().expect("the relay role");
    assert_eq!(stats.bytes_relayed, forwarded.values().sum::<u64>());
    // Each circuit carries at most LIMIT bytes (eight full datagrams would be three times it), and a
    // peer is an end of at most 2 at once.
    assert!(forwarded.values().all(|&bytes| bytes <= LIMIT), "{forwarded:?}");
    assert!(stats.circuits <= 2);
});
