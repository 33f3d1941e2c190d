//! NAT messages: hostile bytes decode without panicking (within bounds, canonically), and whatever
//! decodes, fed to a rendezvous and to a client from a connected peer, never panics, never makes the
//! client dial a peer no rendezvous told it to, and never grows the registry past its limits. Inputs
//! that are not one message are read as up to eight `u16`-length-prefixed messages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_identity::Keypair;
use meshwork_nat::{Nat, NatCommand, NatConfig, NatMessage};
use meshwork_wire::{Input, Instant, Output, Protocol, decode, encode};

fn messages(data: &[u8]) -> Vec<NatMessage> {
    if let Ok(msg) = decode::<NatMessage>(data) {
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
        if let Ok(msg) = decode::<NatMessage>(&rest[2..2 + len]) {
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
    let peer = Keypair::from_seed([1; 32]).peer_id();
    let addr = "192.0.2.1:4000".parse().expect("an address");
    let mut rendezvous = Nat::new(NatConfig::rendezvous());
    let mut client = Nat::new(NatConfig::default());
    let mut out = Vec::new();
    for node in [&mut rendezvous, &mut client] {
        node.handle(Instant::ZERO, Input::PeerUp(peer), &mut out);
        node.handle(
            Instant::ZERO,
            Input::Command(NatCommand::Connected { peer, addr }),
            &mut out,
        );
    }
    out.clear();
    for (i, msg) in msgs.into_iter().enumerate() {
        let now = Instant::from_nanos(i as u64 * 1_000_000_000);
        rendezvous.handle(now, Input::Message { from: peer, msg: msg.clone() }, &mut out);
        let mut client_out = Vec::new();
        client.handle(now, Input::Message { from: peer, msg }, &mut client_out);
        // The client registered nowhere and asked nothing: it must dial no one.
        assert!(
            !client_out.iter().any(|o| matches!(o, Output::Dial(_))),
            "an unsolicited punch made the client dial"
        );
    }
    let registry = rendezvous.registry().expect("the rendezvous role");
    assert!(registry.len() <= 8, "one peer holds at most 8 registrations");
});
