//! [`Keypair`]: an ed25519 signing key, and its key file.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

use ed25519_dalek::{Signer, SigningKey};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::signature::signed_bytes;
use crate::{KeyFileError, Namespace, PeerId, Signature};

/// The first line of a key file, so a stray file is never mistaken for a key.
const KEY_FILE_HEADER: &str = "meshwork-ed25519-secret-v1";

/// An ed25519 key pair: the secret that signs, and the [`PeerId`] that verifies.
///
/// The secret is zeroed when the value is dropped, and `Debug` prints only the `PeerId`.
#[derive(Clone)]
pub struct Keypair {
    secret: SigningKey,
}

impl Keypair {
    /// A new key drawn from `rng` (pass `rand_core::OsRng` in production, a seeded RNG in simulations).
    pub fn generate<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
        Self {
            secret: SigningKey::generate(rng),
        }
    }

    /// The key whose 32-byte secret seed is `seed` (RFC 8032 §5.1.5). The same seed always gives the same key.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            secret: SigningKey::from_bytes(&seed),
        }
    }

    /// A new key whose `PeerId` solves the S/Kademlia static puzzle at `difficulty` bits (see
    /// [`crate::puzzle`]). Takes about `2^difficulty` key generations.
    pub fn generate_with_puzzle<R: CryptoRngCore + ?Sized>(rng: &mut R, difficulty: u32) -> Self {
        loop {
            let key = Self::generate(rng);
            if crate::puzzle::solves(&key.peer_id(), difficulty) {
                return key;
            }
        }
    }

    /// This key's public identity.
    pub fn peer_id(&self) -> PeerId {
        PeerId::from_verified(self.secret.verifying_key().to_bytes())
    }

    /// Signs `msg` in `namespace` (see [`Namespace`]).
    pub fn sign(&self, namespace: Namespace, msg: &[u8]) -> Signature {
        Signature::from_bytes(self.secret.sign(&signed_bytes(namespace, msg)).to_bytes())
    }

    /// The 32-byte secret seed. Handle with care: whoever has it can sign as this peer.
    pub fn secret_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// Writes the key to `path`, readable and writable by its owner only (mode 600 on Unix).
    ///
    /// The file is written under a temporary name and renamed into place, so a crash never leaves half a
    /// key behind. An existing file at `path` is replaced.
    pub fn save(&self, path: &Path) -> Result<(), KeyFileError> {
        let io = |source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        };
        let tmp = path.with_extension("tmp");
        let text = Zeroizing::new(format!(
            "{KEY_FILE_HEADER}\n{}\n",
            hex::encode(self.secret.to_bytes())
        ));
        // A temporary file left by an earlier crash keeps its old mode (the mode below applies only to a new
        // file), so remove it and insist on creating the file ourselves.
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(io(err)),
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        fs::rename(&tmp, path).map_err(io)
    }

    /// Reads a key written by [`Keypair::save`]. Refuses a file that group or others can read.
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let io = |source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        };
        let malformed = |reason| KeyFileError::Malformed {
            path: path.to_owned(),
            reason,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyFileError::InsecurePermissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        // A key file is about 92 bytes; refuse to read anything much larger.
        let len = fs::metadata(path).map_err(io)?.len();
        if len > 256 {
            return Err(malformed("larger than a key file can be"));
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(io)?);
        let mut lines = text.lines();
        if lines.next() != Some(KEY_FILE_HEADER) {
            return Err(malformed("missing the meshwork key header"));
        }
        let body = lines.next().ok_or_else(|| malformed("missing the key line"))?;
        if lines.next().is_some() {
            return Err(malformed("unexpected lines after the key"));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(body.trim(), &mut seed[..])
            .map_err(|_| malformed("key is not 64 hex digits"))?;
        Ok(Self::from_seed(*seed))
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}
