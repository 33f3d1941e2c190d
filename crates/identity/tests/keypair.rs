//! Key files and the S/Kademlia puzzle.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use meshwork_identity::{KeyFileError, Keypair, Namespace, puzzle};
use rand_core::SeedableRng;

const NS: Namespace = Namespace::new(b"meshwork/test/1");

#[test]
fn save_and_load_round_trip_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    let key = Keypair::from_seed([9; 32]);
    key.save(&path).unwrap();
    let loaded = Keypair::load(&path).unwrap();
    assert_eq!(loaded.peer_id(), key.peer_id());
    assert_eq!(loaded.sign(NS, b"x"), key.sign(NS, b"x"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[cfg(unix)]
#[test]
fn a_stale_world_readable_temp_file_does_not_leak_into_the_key_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    let stale = path.with_extension("tmp");
    std::fs::write(&stale, "left over by a crash").unwrap();
    std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();
    Keypair::from_seed([5; 32]).save(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        Keypair::load(&path).unwrap().peer_id(),
        Keypair::from_seed([5; 32]).peer_id()
    );
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    Keypair::from_seed([9; 32]).save(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        Keypair::load(&path),
        Err(KeyFileError::InsecurePermissions { mode: 0o644, .. })
    ));
}

#[test]
fn malformed_key_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.key");
    for contents in [
        "not a key\n",
        "meshwork-ed25519-secret-v1\nzz\n",
        "meshwork-ed25519-secret-v1\n",
        "meshwork-ed25519-secret-v1\n0909090909090909090909090909090909090909090909090909090909090909\nextra\n",
    ] {
        std::fs::write(&path, contents).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(
            matches!(Keypair::load(&path), Err(KeyFileError::Malformed { .. })),
            "{contents:?}"
        );
    }
    assert!(matches!(
        Keypair::load(&dir.path().join("missing")),
        Err(KeyFileError::Io { .. })
    ));
}

#[test]
fn debug_never_prints_the_secret() {
    let key = Keypair::from_seed([0xab; 32]);
    let debug = format!("{key:?}");
    assert!(!debug.contains("abab"), "{debug}");
    assert!(debug.contains(&key.peer_id().short()));
}

#[test]
fn generated_keys_differ_and_puzzle_keys_solve_the_puzzle() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let a = Keypair::generate(&mut rng);
    let b = Keypair::generate(&mut rng);
    assert_ne!(a.peer_id(), b.peer_id());
    let solved = Keypair::generate_with_puzzle(&mut rng, 10);
    assert!(puzzle::solves(&solved.peer_id(), 10));
    assert!(puzzle::difficulty_of(&solved.peer_id()) >= 10);
    // Most random keys do not solve 10 bits (expected share 1/1024).
    let unsolved = (0..64)
        .filter(|_| !puzzle::solves(&Keypair::generate(&mut rng).peer_id(), 10))
        .count();
    assert!(unsolved >= 60, "{unsolved}");
}
