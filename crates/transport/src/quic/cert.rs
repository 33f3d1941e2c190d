//! Our self-signed certificate, and reading the ed25519 key back out of a peer's certificate.
//!
//! The certificate is only a container for the key: nothing in it but the key is trusted (no CA, no
//! names, no dates). The key is read with a small, strict DER walk to the `subjectPublicKeyInfo` field,
//! which must be exactly an ed25519 key; the TLS handshake signature is then checked against that very
//! key, so the key we compare with the expected `PeerId` is the key that signed.

use meshwork_identity::{Keypair, PeerId};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// DER prefix of an ed25519 `SubjectPublicKeyInfo` (RFC 8410): `SEQUENCE { SEQUENCE { OID 1.3.101.112 },
/// BIT STRING (0 unused bits) }`, followed by the 32-byte key.
pub(crate) const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// DER prefix of an ed25519 PKCS#8 v1 private key (RFC 8410), followed by the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Why a peer's certificate was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// Not well-formed DER, or not shaped like an X.509 certificate.
    #[error("malformed certificate")]
    Malformed,
    /// The certificate's key is not an ed25519 key.
    #[error("the certificate key is not ed25519")]
    NotEd25519,
    /// The ed25519 key is non-canonical or of small order, so it cannot name a peer.
    #[error("the certificate key is not a valid peer id")]
    InvalidKey,
}

/// The ed25519 private key of `keypair` in PKCS#8 form (for rcgen and rustls).
pub(crate) fn pkcs8(keypair: &Keypair) -> PrivatePkcs8KeyDer<'static> {
    let mut der = Vec::with_capacity(ED25519_PKCS8_PREFIX.len() + 32);
    der.extend_from_slice(&ED25519_PKCS8_PREFIX);
    der.extend_from_slice(keypair.secret_seed().as_ref());
    PrivatePkcs8KeyDer::from(der)
}

/// A self-signed certificate for `keypair`, and its private key.
pub(crate) fn self_signed(
    keypair: &Keypair,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), rcgen::Error> {
    let key = pkcs8(keypair);
    let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&key, &rcgen::PKCS_ED25519)?;
    let params = rcgen::CertificateParams::new(vec!["meshwork".to_owned()])?;
    let cert = params.self_signed(&signer)?;
    Ok((cert.der().clone(), PrivateKeyDer::Pkcs8(key)))
}

/// The `SubjectPublicKeyInfo` DER a certificate for `peer` carries.
pub(crate) fn spki_of(peer: &PeerId) -> [u8; 44] {
    let mut spki = [0u8; 44];
    spki[..12].copy_from_slice(&ED25519_SPKI_PREFIX);
    spki[12..].copy_from_slice(peer.as_bytes());
    spki
}

/// The peer a certificate names: its ed25519 `subjectPublicKeyInfo`, parsed strictly.
pub fn peer_id_of_cert(cert: &[u8]) -> Result<PeerId, CertError> {
    let spki = spki_field(cert)?;
    let key = spki
        .strip_prefix(&ED25519_SPKI_PREFIX[..])
        .ok_or(CertError::NotEd25519)?;
    PeerId::from_slice(key).map_err(|_| CertError::InvalidKey)
}

/// Walks `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
/// signature, issuer, validity, subject, subjectPublicKeyInfo, ... }, ... }` to the SPKI's full DER.
fn spki_field(cert: &[u8]) -> Result<&[u8], CertError> {
    let (cert_body, rest) = tlv(cert, 0x30)?;
    if !rest.is_empty() {
        return Err(CertError::Malformed);
    }
    let (tbs, _) = tlv(cert_body, 0x30)?;
    let mut fields = tbs;
    if fields.first() == Some(&0xa0) {
        fields = tlv(fields, 0xa0)?.1;
    }
    for tag in [0x02, 0x30, 0x30, 0x30, 0x30] {
        fields = tlv(fields, tag)?.1;
    }
    let (_, after) = tlv(fields, 0x30)?;
    Ok(&fields[..fields.len() - after.len()])
}

/// One DER element with the given tag: its contents and what follows it.
fn tlv(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), CertError> {
    let (&found, rest) = input.split_first().ok_or(CertError::Malformed)?;
    if found != tag {
        return Err(CertError::Malformed);
    }
    let (&first, mut rest) = rest.split_first().ok_or(CertError::Malformed)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err(CertError::Malformed);
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return Err(CertError::Malformed);
    }
    Ok(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_certificate_names_our_key() {
        let keypair = Keypair::from_seed([3; 32]);
        let (cert, _) = self_signed(&keypair).unwrap();
        assert_eq!(peer_id_of_cert(cert.as_ref()), Ok(keypair.peer_id()));
        assert_eq!(
            spki_field(cert.as_ref()).unwrap(),
            &spki_of(&keypair.peer_id())[..]
        );
    }

    #[test]
    fn refuses_garbage_and_truncation() {
        let (cert, _) = self_signed(&Keypair::from_seed([4; 32])).unwrap();
        let cert = cert.as_ref();
        for cut in 0..cert.len() {
            assert!(peer_id_of_cert(&cert[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = cert.to_vec();
        trailing.push(0);
        assert_eq!(peer_id_of_cert(&trailing), Err(CertError::Malformed));
        assert_eq!(
            peer_id_of_cert(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            Err(CertError::Malformed)
        );
    }
}
