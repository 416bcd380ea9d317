//! Read benches: scan forwards and backwards (checksums verified), seek by
//! seq and by time, over a log of 1 M records of 100 bytes.
//!
//! `cargo bench --bench read`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use varvelog::{Log, Options};

#[path = "common/mod.rs"]
mod common;

const RECORDS: u64 = 1_000_000;
const PAYLOAD: usize = 100;

fn reads(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    common::fill(dir.path(), Options::new(), RECORDS, PAYLOAD);
    let log = Log::open(dir.path(), Options::new()).expect("open");
    let snap = log.snapshot();
    let last = snap.last_seq().expect("records");

    let mut g = c.benchmark_group("scan");
    g.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500)).sample_size(10);
    g.throughput(Throughput::ElementsAndBytes { elements: RECORDS, bytes: RECORDS * PAYLOAD as u64 });
    g.bench_function("forward", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for r in snap.iter() {
                n += r.expect("record").payload().len() as u64;
            }
            n
        })
    });
    g.bench_function("backward", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for r in snap.iter_rev_from(last) {
                n += r.expect("record").payload().len() as u64;
            }
            n
        })
    });
    g.finish();

    let mut g = c.benchmark_group("seek");
    g.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500)).sample_size(20);
    g.throughput(Throughput::Elements(1));
    // A fixed pseudo-random walk over the log, the same each run.
    let mut rng = fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15);
    let mut next = move || rng.u64(..RECORDS);
    g.bench_function("by_seq", |b| b.iter(|| snap.get(next()).expect("get").map(|r| r.seq())));
    g.bench_function("by_time", |b| {
        b.iter(|| {
            // Timestamps are 1_000_000 + 10 * seq (see common::fill).
            let ts = 1_000_000 + next() * 10 + 5;
            snap.seek_time(ts).next().map(|r| r.expect("record").seq())
        })
    });
    g.finish();
}

criterion_group!(benches, reads);
criterion_main!(benches);
