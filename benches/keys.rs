//! Key benches: the cost a key adds to an append (the live key table and
//! the key section's reserve), lookups by key present and absent across
//! sealed segments (before and after compaction), and compaction itself.
//!
//! `cargo bench --bench keys`. The lookup log is 2,000,000 records of
//! 100-byte payloads over 200,000 keys in 16 MiB segments (~17 segments);
//! the peer harness (`benches/peers`, `keys` mode) runs the 10 M-record
//! comparison with fjall and redb.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use varvelog::{CompactOptions, Entry, Log, Options};

#[path = "common/mod.rs"]
mod common;
use common::{framed, Fresh};

const RECORDS: u64 = 2_000_000;
const KEYS: u64 = 200_000;

fn key(i: u64) -> [u8; 16] {
    let mut k = *b"key-000000000000";
    let digits = format!("{i:012}");
    k[4..].copy_from_slice(digits.as_bytes());
    k
}

fn append_with_and_without_a_key(c: &mut Criterion) {
    let mut g = c.benchmark_group("keys/append");
    g.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500)).sample_size(20);
    let payload = [0x5Au8; 100];
    for keyed in [false, true] {
        let mut fresh = Fresh::new(Options::new());
        let mut i = 0u64;
        g.throughput(Throughput::Elements(1));
        let name = if keyed { "16-byte key" } else { "no key" };
        g.bench_with_input(BenchmarkId::from_parameter(name), &keyed, |b, &keyed| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    i += 1;
                    let k = key(i % 1_000_000);
                    let e = if keyed { Entry::new(&payload).key(&k) } else { Entry::new(&payload) };
                    fresh.writer.append_entry(e).expect("append");
                }
                let t = start.elapsed();
                fresh.account(iters * framed(116));
                t
            })
        });
    }
    g.finish();
}

fn lookups(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = Log::open(dir.path(), Options::new().segment_bytes(16 << 20)).expect("open");
    let mut w = log.writer().expect("writer");
    let mut rng = fastrand::Rng::with_seed(7);
    let payload = [0x5Au8; 100];
    for _ in 0..RECORDS {
        w.append_entry(Entry::new(&payload).key(&key(rng.u64(..KEYS)))).expect("append");
    }
    w.sync().expect("sync");
    // Let the sealer seal every rotated segment and build the log's key
    // filter (there is no call that waits for it).
    std::thread::sleep(Duration::from_secs(3));
    let mut g = c.benchmark_group("keys/get");
    g.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500)).sample_size(20);
    g.throughput(Throughput::Elements(1));
    for state in ["as written", "compacted"] {
        if state == "compacted" {
            log.compact(&CompactOptions::new()).expect("compact");
        }
        let snap = log.snapshot();
        for present in [true, false] {
            let id = BenchmarkId::new(state, if present { "present" } else { "absent" });
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    let mut found = 0u64;
                    for _ in 0..iters {
                        let i = rng.u64(..KEYS);
                        let k = if present { key(i) } else { key(KEYS + i) };
                        found += snap.get_key(&k).expect("get").map_or(0, |r| u64::from(r.payload()[0]));
                    }
                    let t = start.elapsed();
                    assert_eq!(found > 0, present);
                    t
                })
            });
        }
    }
    g.finish();
}

fn compaction(c: &mut Criterion) {
    let mut g = c.benchmark_group("keys/compact");
    g.sample_size(10).measurement_time(Duration::from_secs(10)).warm_up_time(Duration::from_millis(100));
    let payload = [0x5Au8; 100];
    let records = 500_000u64;
    g.throughput(Throughput::Bytes(records * framed(116)));
    g.bench_function("500k records, 50k keys", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("temp dir");
                let log = Log::open(dir.path(), Options::new().segment_bytes(4 << 20)).expect("open");
                let mut w = log.writer().expect("writer");
                for i in 0..records {
                    w.append_entry(Entry::new(&payload).key(&key(i % 50_000))).expect("append");
                }
                w.sync().expect("sync");
                let start = Instant::now();
                log.compact(&CompactOptions::new()).expect("compact");
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, append_with_and_without_a_key, lookups, compaction);
criterion_main!(benches);
