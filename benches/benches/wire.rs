//! Wire: encode and decode one 300-byte message as a frame — ours next to postcard's own calls.
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::unwrap_used)] // a benchmark should stop loudly if its own setup is wrong

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use meshwork_wire::{BoundedBytes, frame};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Bounded {
    topic: u32,
    seq: u64,
    body: BoundedBytes<512>,
}

fn frame_round_trip(c: &mut Criterion) {
    // 287 body bytes + 2 (length) + 1 (topic) + 10 (u64::MAX as a varint) = 300 bytes encoded.
    // The raw side runs postcard's own calls on the same value, so the ratio is the cost of our framing,
    // bound checks, trailing-byte and canonical-encoding checks.
    let msg = Bounded {
        topic: 3,
        seq: u64::MAX,
        body: vec![0x42u8; 287].try_into().unwrap(),
    };
    assert_eq!(postcard::to_stdvec(&msg).unwrap().len(), 300);

    let mut group = c.benchmark_group("frame_300b");
    group.bench_function("ours", |b| {
        b.iter(|| {
            let bytes = frame::encode(black_box(&msg), 1024).unwrap();
            frame::decode::<Bounded>(black_box(&bytes), 1024).unwrap()
        })
    });
    group.bench_function("raw", |b| {
        b.iter(|| {
            let bytes = postcard::to_stdvec(black_box(&msg)).unwrap();
            postcard::from_bytes::<Bounded>(black_box(&bytes)).unwrap()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = frame_round_trip
}
criterion_main!(benches);
