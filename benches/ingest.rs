//! Sustained appends against the plain-file floor, and many producers
//! through `Ingest` against a `Mutex<Writer>`.
//!
//! `cargo bench --bench ingest`. The sustained group writes for 20 s per
//! side (several GiB, many segment rotations, logs recreated every GiB), so
//! it measures the steady rate rather than a burst into prepared segments.
//! `varve bench` reports the same comparisons, alternating, in one run.

use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use parking_lot::Mutex;
use varvelog::{Log, Options, SyncPolicy};

#[path = "common/mod.rs"]
mod common;
use common::{framed, Fresh};

/// 100-byte payloads: 136-byte frames.
const PAYLOAD: usize = 100;

fn sustained(c: &mut Criterion) {
    let mut g = c.benchmark_group("sustained");
    g.measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(1)).sample_size(10);
    g.throughput(Throughput::ElementsAndBytes { elements: 1, bytes: framed(PAYLOAD) });
    let payload = vec![0x5Au8; PAYLOAD];
    g.bench_function("varvelog", |b| {
        let mut fresh = Fresh::new(Options::new());
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                fresh.writer.append(&payload).expect("append");
            }
            let t = start.elapsed();
            fresh.account(iters * framed(PAYLOAD));
            t
        })
    });
    // The floor: the same framed bytes through File + BufWriter into a
    // growing file, no fsync; a new file every GiB, like the log.
    g.bench_function("file_bufwriter", |b| {
        let dir = tempfile::tempdir().expect("temp dir");
        let frame = vec![0x5Au8; framed(PAYLOAD) as usize];
        let mut file = 0u64;
        let mut written = u64::MAX;
        let mut w: Option<std::io::BufWriter<std::fs::File>> = None;
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                if written >= common::RESET_BYTES {
                    drop(w.take());
                    let _ = std::fs::remove_file(dir.path().join(format!("{}.bin", file.wrapping_sub(1))));
                    w = Some(std::io::BufWriter::new(std::fs::File::create(dir.path().join(format!("{file}.bin"))).expect("create")));
                    file += 1;
                    written = 0;
                }
                w.as_mut().expect("open file").write_all(&frame).expect("write");
                written += frame.len() as u64;
            }
            start.elapsed()
        })
    });
    g.finish();
}

fn producers(c: &mut Criterion) {
    let mut g = c.benchmark_group("producers");
    g.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500)).sample_size(10);
    g.throughput(Throughput::Elements(1));
    let payload = vec![0x5Au8; PAYLOAD];
    for threads in [1usize, 2, 8] {
        g.bench_with_input(BenchmarkId::new("ingest", threads), &threads, |b, &threads| {
            let mut fresh = FreshIngest::new();
            b.iter_custom(|iters| {
                let t = spread(threads, iters, |n| {
                    (0..n).for_each(|_| {
                        fresh.ingest.append(&payload).expect("append");
                    })
                });
                fresh.account(iters * framed(PAYLOAD));
                t
            })
        });
        g.bench_with_input(BenchmarkId::new("mutex_writer", threads), &threads, |b, &threads| {
            let mut fresh = Fresh::new(Options::new());
            b.iter_custom(|iters| {
                let t = {
                    let w = Mutex::new(&mut fresh.writer);
                    spread(threads, iters, |n| {
                        (0..n).for_each(|_| {
                            w.lock().append(&payload).expect("append");
                        })
                    })
                };
                fresh.account(iters * framed(PAYLOAD));
                t
            })
        });
    }
    // Durable appends from 8 threads: shared syncs against append + sync
    // under a mutex.
    let durable = || Options::new().sync_policy(SyncPolicy::Never).zero_fill(true);
    g.bench_function("durable_ingest/8", |b| {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = Log::open(dir.path(), durable()).expect("open");
        let ingest = log.ingest().expect("ingest");
        b.iter_custom(|iters| {
            spread(8, iters, |n| {
                (0..n).for_each(|_| {
                    ingest.append_durable(&payload).expect("append");
                })
            })
        })
    });
    g.bench_function("durable_mutex_writer/8", |b| {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = Log::open(dir.path(), durable()).expect("open");
        let w = Mutex::new(log.writer().expect("writer"));
        b.iter_custom(|iters| {
            spread(8, iters, |n| {
                for _ in 0..n {
                    let mut w = w.lock();
                    w.append(&payload).expect("append");
                    w.sync().expect("sync");
                }
            })
        })
    });
    g.finish();
}

/// [`Fresh`] for an `Ingest` handle: a log recreated every GiB written.
struct FreshIngest {
    _dir: tempfile::TempDir,
    ingest: varvelog::Ingest,
    written: u64,
}

impl FreshIngest {
    fn new() -> FreshIngest {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = Log::open(dir.path(), Options::new()).expect("open log");
        let ingest = log.ingest().expect("ingest");
        std::thread::sleep(Duration::from_millis(200));
        FreshIngest { _dir: dir, ingest, written: 0 }
    }

    fn account(&mut self, bytes: u64) {
        self.written += bytes;
        if self.written >= common::RESET_BYTES {
            *self = FreshIngest::new();
        }
    }
}

/// Runs `work(share)` on `threads` threads, `iters` in all; the wall time.
fn spread(threads: usize, iters: u64, work: impl Fn(u64) + Sync) -> Duration {
    let share = iters.div_ceil(threads as u64);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| work(share));
        }
    });
    start.elapsed()
}

criterion_group!(benches, sustained, producers);
criterion_main!(benches);
