//! Simulator: events per second of the discrete-event engine — ours (a whole flood through `Sim`, protocol
//! and link model included) next to raw (the same number of push/pop pairs on a bare `BinaryHeap`, the
//! floor of any event-queue engine). Throughput is reported in events.
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::unwrap_used)] // a benchmark should stop loudly if its own setup is wrong

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use meshwork_sim::flood::{Flood, FloodCommand};
use meshwork_sim::{LinkConfig, NodeId, Sim, SimConfig, Stop, topology};

const NODES: usize = 2000;
const DEGREE: usize = 8;
const MESSAGES: u64 = 4;

/// A simulation with the overlay built, ready to flood.
fn setup() -> Sim<Flood> {
    let link = LinkConfig::constant(Duration::from_millis(50)).with_jitter(Duration::from_millis(10));
    let mut sim = Sim::new(SimConfig::new(1).with_link(link));
    sim.add_nodes(NODES, |_| Flood::new()).unwrap();
    topology::connect_random_regular(&mut sim, DEGREE).unwrap();
    sim.run_until(sim.now(), |_, _, _| {});
    for id in 0..MESSAGES {
        let origin = NodeId(u32::try_from(id).unwrap() * 97);
        sim.command(origin, FloodCommand::publish(id, vec![1; 64]).unwrap())
            .unwrap();
    }
    sim
}

fn flood(sim: &mut Sim<Flood>) -> u64 {
    let outcome = sim.run_for(u64::MAX, |_, _, event| {
        black_box(event);
    });
    assert_eq!(outcome.stop, Stop::Idle);
    outcome.events
}

fn engine(c: &mut Criterion) {
    let events = flood(&mut setup());
    let mut group = c.benchmark_group("sim_flood_2000");
    group.throughput(Throughput::Elements(events));
    group.bench_function("ours", |b| {
        b.iter_batched(setup, |mut sim| flood(&mut sim), BatchSize::LargeInput)
    });
    group.bench_function("raw", |b| {
        b.iter(|| {
            // Keep the heap about as full as the flood keeps it: each pop schedules one later event.
            let mut heap: BinaryHeap<Reverse<(u64, u64, u32)>> =
                (0..20_000u64).map(|i| Reverse((i, i, 0))).collect();
            for seq in 20_000..20_000 + events {
                let Reverse((time, _, slot)) = heap.pop().unwrap();
                heap.push(Reverse((time + 50_000_000 + seq % 10_000_000, seq, slot)));
            }
            black_box(heap.len())
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    targets = engine
}
criterion_main!(benches);
