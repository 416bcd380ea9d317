//! Append benches: by payload size, with concurrent tailing readers, and in batches.
//!
//! `cargo bench --bench append`. Each measurement is kept short (1-2 s);
//! logs are recreated every GiB written so the disk never fills.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use varvelog::{Log, Options};

#[path = "common/mod.rs"]
mod common;
use common::{framed, Fresh};

fn by_payload_size(c: &mut Criterion) {
    let mut g = c.benchmark_group("append/payload");
    g.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500)).sample_size(20);
    for size in [16usize, 100, 256, 1024, 4096, 16 << 10, 64 << 10] {
        let mut fresh = Fresh::new(Options::new());
        let payload = vec![0x5Au8; size];
        g.throughput(Throughput::ElementsAndBytes { elements: 1, bytes: size as u64 });
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    fresh.writer.append(&payload).expect("append");
                }
                let t = start.elapsed();
                fresh.account(iters * framed(size));
                t
            })
        });
    }
    g.finish();
}

/// Busy-spinning tailing readers (`Log::tail_from_end`) that read every new record until stopped.
struct Readers {
    stop: Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<u64>>,
}

impl Readers {
    fn start(log: &Log, n: usize) -> Readers {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..n)
            .map(|_| {
                let (log, stop) = (log.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut seen = 0u64;
                    let Ok(tail) = log.tail_from_end() else { return 0 };
                    let mut tail = tail.wait_strategy(varvelog::WaitStrategy::BusySpin);
                    while !stop.load(Ordering::Relaxed) {
                        match tail.next_timeout(Duration::from_millis(10)) {
                            Ok(Some(r)) => seen += r.payload().len() as u64,
                            Ok(None) => {}
                            Err(_) => return seen,
                        }
                    }
                    seen
                })
            })
            .collect();
        Readers { stop, handles }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles {
            let _ = h.join();
        }
    }
}

fn with_readers(c: &mut Criterion) {
    let mut g = c.benchmark_group("append/readers");
    g.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500)).sample_size(20);
    g.throughput(Throughput::ElementsAndBytes { elements: 1, bytes: 100 });
    let payload = [0x5Au8; 100];
    for n in [0usize, 1, 2] {
        let mut fresh = Fresh::new(Options::new());
        let mut readers = Some(Readers::start(&fresh.log, n));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    fresh.writer.append(&payload).expect("append");
                }
                let t = start.elapsed();
                if fresh.would_reset(iters * framed(100)) {
                    // Recreate the log with fresh readers, outside the timing.
                    if let Some(r) = readers.take() {
                        r.stop();
                    }
                    fresh.account(iters * framed(100));
                    readers = Some(Readers::start(&fresh.log, n));
                } else {
                    fresh.account(iters * framed(100));
                }
                t
            })
        });
        if let Some(r) = readers.take() {
            r.stop();
        }
    }
    g.finish();
}

fn batches(c: &mut Criterion) {
    let mut g = c.benchmark_group("append/batch");
    g.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500)).sample_size(20);
    let payload = [0x5Au8; 100];
    for n in [1usize, 10, 100, 1000] {
        let mut fresh = Fresh::new(Options::new());
        let batch: Vec<&[u8]> = vec![&payload[..]; n];
        g.throughput(Throughput::ElementsAndBytes { elements: n as u64, bytes: (n * 100) as u64 });
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    fresh.writer.append_batch(batch.iter().copied()).expect("append_batch");
                }
                let t = start.elapsed();
                fresh.account(iters * n as u64 * framed(100));
                t
            })
        });
    }
    g.finish();
}

criterion_group!(benches, by_payload_size, with_readers, batches);
criterion_main!(benches);
