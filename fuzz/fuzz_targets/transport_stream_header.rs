//! The transport's decoders: the stream header (length byte, then a protocol id) and the ed25519 key
//! inside a peer's certificate. Never panic; what decodes is exactly what was there.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_transport::quic::peer_id_of_cert;
use meshwork_transport::stream_header;
use meshwork_wire::ProtocolId;

const KNOWN: [ProtocolId; 3] = [
    ProtocolId::new("/meshwork/kad/1"),
    ProtocolId::new("/meshwork/gossip/1"),
    ProtocolId::new("/meshwork/sync/1"),
];

fuzz_target!(|data: &[u8]| {
    match stream_header::decode(data, &KNOWN) {
        Ok(Some((id, used))) => {
            assert!(KNOWN.contains(&id));
            assert!(used <= data.len() && used <= 1 + ProtocolId::MAX_LEN);
            assert_eq!(stream_header::encode(id), &data[..used]);
        }
        Ok(None) => assert!(data.is_empty() || data.len() <= usize::from(data[0])),
        Err(_) => {}
    }
    // A certificate from a peer: refused or read, never a panic; a key read is always 32 bytes found
    // in the input.
    if let Ok(peer) = peer_id_of_cert(data) {
        assert!(data.windows(32).any(|w| w == peer.as_bytes()));
    }
});
