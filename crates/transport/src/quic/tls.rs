//! TLS 1.3 with both sides authenticated by their ed25519 keys: our certificate verifiers and the quinn
//! configurations built from them.

use std::sync::{Arc, Mutex, PoisonError};

use meshwork_identity::{Keypair, PeerId};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, verify_tls13_signature_with_raw_key};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

use super::cert::{peer_id_of_cert, self_signed, spki_of};
use crate::Config;
use crate::error::BindError;

/// Where a dialer's verifier records the key the listener proved.
pub(crate) type PeerIdSlot = Arc<Mutex<Option<PeerId>>>;

/// The ALPN value both sides require.
pub(crate) const ALPN: &[u8] = b"meshwork/1";
/// The server name a dialer presents; identity comes from the key, never from the name.
pub(crate) const SERVER_NAME: &str = "meshwork";

/// Our certificate and key, ready for rustls, with the crypto provider (ring) they are used with.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    provider: Arc<CryptoProvider>,
    certified: Arc<CertifiedKey>,
}

impl Identity {
    pub(crate) fn new(keypair: &Keypair) -> Result<Self, BindError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (cert, key) = self_signed(keypair).map_err(|err| BindError::Tls(err.to_string()))?;
        let key = provider
            .key_provider
            .load_private_key(key)
            .map_err(|err| BindError::Tls(err.to_string()))?;
        Ok(Self {
            provider,
            certified: Arc::new(CertifiedKey::new(vec![cert], key)),
        })
    }
}

/// Checks a peer's certificate chain: exactly one certificate, whose key is a valid ed25519 peer id.
fn check_chain(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Result<PeerId, Error> {
    if !intermediates.is_empty() {
        return Err(Error::InvalidCertificate(CertificateError::BadEncoding));
    }
    peer_id_of_cert(end_entity.as_ref()).map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))
}

/// Verifies the handshake signature with the key read from the certificate (the very key we compared
/// with the expected peer), using the ring provider's TLS 1.3 verification. Only ed25519 is accepted.
fn check_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algorithms: &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, Error> {
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ));
    }
    let peer = check_chain(cert, &[])?;
    let spki = spki_of(&peer);
    verify_tls13_signature_with_raw_key(
        message,
        &SubjectPublicKeyInfoDer::from(&spki[..]),
        dss,
        algorithms,
    )
}

/// The dialer's check of the listener: its key must be the peer we dialed. The key it proved is
/// recorded in `seen`, so a mismatch is reported with both ids.
#[derive(Debug)]
struct ServerVerifier {
    expected: PeerId,
    seen: PeerIdSlot,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let actual = check_chain(end_entity, intermediates)?;
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(actual);
        if actual != self.expected {
            return Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        check_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// The listener's check of a dialer: any valid ed25519 key is a peer; which one is read after the
/// handshake and handed to the application with the connection.
#[derive(Debug)]
struct ClientVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        check_chain(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        check_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// quinn's transport parameters from our limits and timeouts.
pub(crate) fn transport_config(config: &Config) -> Result<quinn::TransportConfig, BindError> {
    let limits = &config.limits;
    let timeouts = &config.timeouts;
    if timeouts.keep_alive.is_some_and(|every| every >= timeouts.idle) {
        return Err(BindError::Config(
            "keep_alive must be shorter than the idle timeout".into(),
        ));
    }
    let varint =
        |value: u64| quinn::VarInt::from_u64(value).map_err(|err| BindError::Config(err.to_string()));
    let idle =
        quinn::IdleTimeout::try_from(timeouts.idle).map_err(|err| BindError::Config(err.to_string()))?;
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(varint(u64::from(limits.max_streams_per_connection))?)
        .max_concurrent_uni_streams(0u32.into())
        .receive_window(varint(limits.max_queued_bytes_per_peer)?)
        .stream_receive_window(varint(
            limits
                .max_queued_bytes_per_stream
                .min(limits.max_queued_bytes_per_peer),
        )?)
        .send_window(limits.max_queued_bytes_per_peer)
        .max_idle_timeout(Some(idle))
        .keep_alive_interval(timeouts.keep_alive)
        .datagram_receive_buffer_size(None)
        .mtu_discovery_config(Some(mtu_discovery()));
    Ok(transport)
}

/// QUIC's smallest datagram, where every connection starts (RFC 9000 §14).
const INITIAL_MTU: u16 = 1200;
/// The largest datagram path MTU discovery tries: quinn's default, what a 1,500-byte Ethernet path
/// carries under IPv6 and UDP headers.
const MTU_UPPER_BOUND: u16 = 1452;

/// Path MTU discovery (RFC 8899) in two probes: half way up, then the upper bound.
///
/// quinn's default searches in steps down to 20 bytes: four probes of 1,326 to 1,436 bytes on an
/// Ethernet path, padded datagrams that quinn parses a byte at a time. Most of a P2P node's connections
/// carry a few requests (a Kademlia lookup dials most peers it asks), so they paid for a search whose
/// result they never used: four of the 15 packets a fresh connection had sent by the end of its search
/// were probes (`quic_path_mtu_in_two_probes` in the transport's tests). Paths that carry 1,452 bytes
/// (Ethernet, PPPoE) still reach it; a narrower one (a VPN tunnel) settles at 1,326 instead of its exact
/// size.
fn mtu_discovery() -> quinn::MtuDiscoveryConfig {
    let mut config = quinn::MtuDiscoveryConfig::default();
    config
        .upper_bound(MTU_UPPER_BOUND)
        .minimum_change((MTU_UPPER_BOUND - INITIAL_MTU) / 2);
    config
}

/// The listener's quinn configuration: TLS 1.3 only, client certificate required, no resumption.
pub(crate) fn server_config(
    identity: &Identity,
    transport: Arc<quinn::TransportConfig>,
) -> Result<quinn::ServerConfig, BindError> {
    let algorithms = identity.provider.signature_verification_algorithms;
    let mut tls = rustls::ServerConfig::builder_with_provider(identity.provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|err| BindError::Tls(err.to_string()))?
        .with_client_cert_verifier(Arc::new(ClientVerifier { algorithms }))
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(identity.certified.clone())));
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    tls.send_tls13_tickets = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|err| BindError::Tls(err.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(transport);
    Ok(server)
}

/// A dialer's quinn configuration for reaching `expected`; the key the listener proves lands in `seen`.
pub(crate) fn client_config(
    identity: &Identity,
    transport: Arc<quinn::TransportConfig>,
    expected: PeerId,
    seen: PeerIdSlot,
) -> Result<quinn::ClientConfig, String> {
    let algorithms = identity.provider.signature_verification_algorithms;
    let mut tls = rustls::ClientConfig::builder_with_provider(identity.provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|err| err.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerVerifier {
            expected,
            seen,
            algorithms,
        }))
        .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(identity.certified.clone())));
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.resumption = rustls::client::Resumption::disabled();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|err| err.to_string())?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(transport);
    Ok(client)
}

/// A slot shared with a verifier, which records the key the peer proved.
pub(crate) fn new_slot() -> PeerIdSlot {
    Arc::new(Mutex::new(None))
}
