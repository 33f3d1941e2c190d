//! Criterion benchmarks for meshwork. Every benchmark group measures our code (`ours`) next to the raw crate
//! call it wraps (`raw`) in the same run, so results are read as ratios, not absolute numbers.
//!
//! Run one group with `cargo bench -p meshwork-benches --bench identity`, then print the ratios of the
//! medians with `python3 benches/ratios.py`.
