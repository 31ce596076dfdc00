//! Benchmarks of pbi-embed. `scripts/bench` runs them all and writes `BENCHMARKS.md`.

pub mod bare;
pub mod micro;
