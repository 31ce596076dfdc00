//! Microbenchmarks of the core: building requests, parsing responses, retry decisions,
//! cache look-ups. `cargo bench -p pbi-embed-bench --bench core`.

use std::hint::black_box;
use std::time::SystemTime;

use criterion::{Criterion, criterion_group, criterion_main};
use pbi_embed_bench::micro::{self, Inputs, KINDS};

fn benches(c: &mut Criterion) {
    let inputs = Inputs::new();
    for kind in KINDS {
        c.bench_function(&format!("build/{kind}"), |b| {
            b.iter(|| micro::build(black_box(&inputs), kind))
        });
    }
    c.bench_function("parse/embed_token", |b| {
        b.iter(|| micro::parse_success_borrowed(black_box(&inputs)))
    });
    c.bench_function("parse/embed_token_owned", |b| {
        b.iter(|| micro::parse_success(black_box(&inputs)))
    });
    c.bench_function("parse/power_bi_error", |b| {
        b.iter(|| micro::parse_error(black_box(&inputs)))
    });
    c.bench_function("retry/classify_429", |b| {
        b.iter(|| micro::classify(black_box(&inputs)))
    });
    let now = SystemTime::now();
    c.bench_function("cache/key_and_lookup", |b| {
        b.iter(|| micro::cache_lookup(black_box(&inputs), now))
    });
    c.bench_function("cache/lookup", |b| {
        b.iter(|| micro::cache_get(black_box(&inputs), now))
    });
}

criterion_group!(core, benches);
criterion_main!(core);
