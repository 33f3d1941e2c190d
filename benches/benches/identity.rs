//! Identity: sign, verify, batch verify, blake3 — ours next to the raw crate calls.
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::unwrap_used)] // a benchmark should stop loudly if its own setup is wrong

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::Signer;
use meshwork_identity::{BatchVerifier, Hash, Keypair, Namespace, Signature};
use rand_core::SeedableRng;

const NS: Namespace = Namespace::new(b"meshwork/bench/1");

/// The bytes our wrapper signs for `msg`, so the raw calls get inputs of the same length.
fn domain_bytes(msg: &[u8]) -> Vec<u8> {
    let mut out = b"meshwork-sig-v1".to_vec();
    out.push(NS.as_bytes().len() as u8);
    out.extend_from_slice(NS.as_bytes());
    out.extend_from_slice(msg);
    out
}

fn sign_and_verify(c: &mut Criterion) {
    let key = Keypair::from_seed([1; 32]);
    let raw_key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
    let msg = [7u8; 128];
    let signed = domain_bytes(&msg);

    let mut group = c.benchmark_group("sign");
    group.bench_function("ours", |b| b.iter(|| key.sign(NS, black_box(&msg))));
    group.bench_function("raw", |b| b.iter(|| raw_key.sign(black_box(&signed))));
    group.finish();

    let sig = key.sign(NS, &msg);
    let peer = key.peer_id();
    let raw_sig = ed25519_consensus::Signature::from(*sig.as_bytes());
    let mut group = c.benchmark_group("verify");
    group.bench_function("ours", |b| {
        b.iter(|| peer.verify(NS, black_box(&msg), black_box(&sig)))
    });
    // The raw call starts from the same 32 key bytes a peer sends us.
    group.bench_function("raw", |b| {
        b.iter(|| {
            let vk = ed25519_consensus::VerificationKey::try_from(*black_box(peer.as_bytes())).unwrap();
            vk.verify(&raw_sig, black_box(&signed))
        })
    });
    group.finish();
}

fn batch_verify(c: &mut Criterion) {
    for n in [64usize, 1024] {
        let keys: Vec<Keypair> = (0..n)
            .map(|i| Keypair::from_seed(blake3::hash(&i.to_le_bytes()).into()))
            .collect();
        let msgs: Vec<[u8; 64]> = (0..n).map(|i| [i as u8; 64]).collect();
        let sigs: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(NS, m)).collect();
        let signed: Vec<Vec<u8>> = msgs.iter().map(|m| domain_bytes(m)).collect();

        let mut group = c.benchmark_group(format!("batch_verify_{n}"));
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("ours", n), |b| {
            b.iter(|| {
                let mut batch = BatchVerifier::with_capacity(n);
                for ((k, m), s) in keys.iter().zip(&msgs).zip(&sigs) {
                    batch.push(&k.peer_id(), NS, m, s);
                }
                batch.verify().unwrap()
            })
        });
        group.bench_function(BenchmarkId::new("raw", n), |b| {
            b.iter(|| {
                let mut batch = ed25519_consensus::batch::Verifier::new();
                for ((k, m), s) in keys.iter().zip(&signed).zip(&sigs) {
                    let vk = ed25519_consensus::VerificationKeyBytes::from(k.peer_id().to_bytes());
                    batch.queue((vk, ed25519_consensus::Signature::from(*s.as_bytes()), m));
                }
                batch.verify(rand_chacha::ChaCha20Rng::seed_from_u64(1)).unwrap()
            })
        });
        group.finish();
    }
}

fn hashing(c: &mut Criterion) {
    for (name, len) in [("blake3_1mib", 1 << 20), ("blake3_80b", 80)] {
        let data = vec![0x5a_u8; len];
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function("ours", |b| b.iter(|| Hash::digest(black_box(&data))));
        group.bench_function("raw", |b| b.iter(|| blake3::hash(black_box(&data))));
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = sign_and_verify, batch_verify, hashing
}
criterion_main!(benches);
