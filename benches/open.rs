//! Open/recovery benches: `Log::open` of a cleanly closed log by size
//! (sealed segments are trusted by footer; the active one is scanned).
//!
//! `cargo bench --bench open`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use varvelog::{Log, Options};

#[path = "common/mod.rs"]
mod common;

fn open_by_size(c: &mut Criterion) {
    let mut g = c.benchmark_group("open");
    g.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500)).sample_size(10);
    for mib in [16u64, 256, 1024] {
        let dir = tempfile::tempdir().expect("temp dir");
        let records = (mib << 20) / common::framed(100);
        common::fill(dir.path(), Options::new(), records, 100);
        g.throughput(Throughput::ElementsAndBytes { elements: records, bytes: mib << 20 });
        g.bench_with_input(BenchmarkId::new("MiB", mib), &mib, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let log = Log::open(dir.path(), Options::new()).expect("open");
                    total += start.elapsed();
                    drop(log); // closing (joining the background threads) is not timed
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, open_by_size);
criterion_main!(benches);
