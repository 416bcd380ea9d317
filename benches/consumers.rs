//! Consumer benches: what a named consumer's commits cost against a plain,
//! uncommitted tail reading the same records, and what one commit costs.
//!
//! `cargo bench --bench consumers`. One log is built first and shared by
//! every case of the `read` group: 3,000,000 records of 100-byte payloads
//! in 64 MiB segments (6 sealed, the last one live; the writer stays open),
//! every sealed segment kept in the page cache. Each iteration of the
//! group reads all 3,000,000 records from seq 0 with `try_next` (the
//! `Iterator` case: `next`), across every segment into the live one, and
//! checks it got each seq in order. A consumer case opens a consumer of a
//! new name before each iteration and removes it after, outside the
//! timing, so every iteration starts from 0 with nothing committed, as a
//! new consumer does. A scan of the same records through `Snapshot::iter`
//! is there for reference.
//!
//! Criterion measures its cases one after another, so a machine whose
//! speed drifts between them (a shared VM) moves the ratios. The last part,
//! `interleaved`, is not a criterion measurement: on a log built the same
//! way, it reads in turn with the plain tail and with consumers without
//! commits, with `commit()` every 1,000 and with
//! `commit_every_records(1000)`, round after round (the order rotated each
//! round), and prints each consumer's median ratio to the tail in the same
//! round. It runs under `cargo bench` unless a filter is given that does
//! not name it. `docs/benchmarks.md` has the figures and their ratios.

use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use varvelog::{Consumer, ConsumerOptions, Log, Options, Tail};

const RECORDS: u64 = 3_000_000;
const PAYLOAD: usize = 100;
/// Records between two commits in the committing cases.
const COMMIT_EVERY: u64 = 1_000;

/// The shared log: built once, its writer kept open so the last segment
/// stays live.
struct Built {
    _dir: tempfile::TempDir,
    log: Log,
    _writer: varvelog::Writer,
}

fn build() -> Built {
    let dir = tempfile::tempdir().expect("temp dir");
    // Every sealed segment stays in the page cache, so every case reads
    // memory rather than whatever the disk gives at that moment.
    let opts = Options::new().segment_bytes(64 << 20).cached_sealed_segments(usize::MAX);
    let log = Log::open(dir.path(), opts).expect("open");
    let mut writer = log.writer().expect("writer");
    let payload = [0x5Au8; PAYLOAD];
    for _ in 0..RECORDS {
        writer.append(&payload).expect("append");
    }
    // Let the sealer finish every rotated segment, so no case shares the
    // cores with it.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let s = log.stats();
        if s.segments_sealed >= s.rotations {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let s = log.stats();
    let segments = log.snapshot().segment_count();
    assert!(segments >= 2 && s.segments_sealed as usize + 1 == segments, "{segments} segments, {} sealed", s.segments_sealed);
    eprintln!("consumers bench log: {RECORDS} records in {segments} segments, the last one live");
    Built { _dir: dir, log, _writer: writer }
}

/// What each case reads: every seq in order, and a byte of each payload
/// (so the payload is touched).
#[derive(Default)]
struct Seen {
    next: u64,
    acc: u64,
}

impl Seen {
    #[inline]
    fn see(&mut self, seq: u64, payload: &[u8]) {
        assert_eq!(seq, self.next, "a case skipped or repeated a record");
        self.next += 1;
        self.acc += u64::from(payload[PAYLOAD - 1]);
    }

    fn check(self) {
        assert_eq!(self.next, RECORDS, "a case read fewer records than the log holds");
        std::hint::black_box(self.acc);
    }
}

/// How a consumer case commits.
#[derive(Clone, Copy)]
enum Commit {
    Never,
    Every,
    EverySync,
    /// `ConsumerOptions::commit_every_records`.
    Automatic,
}

/// Reads every record with `tail.try_next`.
fn read_tail(tail: &mut Tail) {
    tail.seek(0).expect("seek");
    let mut seen = Seen::default();
    while let Some(r) = tail.try_next().expect("read") {
        seen.see(r.seq(), r.payload());
    }
    seen.check();
}

/// Reads every record through `Iterator::next` (owned records).
fn read_owned(tail: &mut Tail) {
    tail.seek(0).expect("seek");
    let mut seen = Seen::default();
    for _ in 0..RECORDS {
        let r = tail.next().expect("a tail never ends").expect("read");
        seen.see(r.seq(), r.payload());
    }
    seen.check();
}

/// Reads every record with `consumer.try_next`, committing as `commit` says.
fn read_consumer(c: &mut Consumer, commit: Commit) {
    let mut seen = Seen::default();
    while let Some(r) = c.try_next().expect("read") {
        seen.see(r.seq(), r.payload());
        if seen.next.is_multiple_of(COMMIT_EVERY) {
            match commit {
                Commit::Every => c.commit().expect("commit"),
                Commit::EverySync => c.commit_sync().expect("commit"),
                Commit::Never | Commit::Automatic => {}
            }
        }
    }
    seen.check();
}

/// A consumer of a name no iteration used before.
fn fresh_consumer(log: &Log, k: &mut u64, commit: Commit) -> Consumer {
    *k += 1;
    let opts = match commit {
        Commit::Automatic => ConsumerOptions::new().commit_every_records(COMMIT_EVERY),
        _ => ConsumerOptions::new(),
    };
    let c = log.consumer_with(&format!("bench-{k}"), opts).expect("consumer");
    assert_eq!(c.position(), 0);
    c
}

fn read(c: &mut Criterion) {
    let built = build();
    let log = &built.log;
    let mut g = c.benchmark_group("consumers/read 3M");
    // An iteration reads 3 M records (a quarter of a second): flat
    // sampling, 20 samples of one or two iterations each.
    g.sampling_mode(SamplingMode::Flat).sample_size(20).measurement_time(Duration::from_secs(6)).warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(RECORDS));
    let mut tail = log.tail_from(0).expect("tail");
    let mut tail_case = |g: &mut BenchmarkGroup<'_, WallTime>, name: &str, read: fn(&mut Tail)| {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    read(&mut tail);
                }
                start.elapsed()
            })
        });
    };
    // Criterion measures the cases one after another, not interleaved: the
    // plain tail runs first and again last, so that a machine whose speed
    // drifted during the run shows it.
    tail_case(&mut g, "tail, try_next (uncommitted)", read_tail);
    tail_case(&mut g, "tail, Iterator (OwnedRecord)", read_owned);
    // For reference: the same records through a snapshot's iterator.
    g.bench_function("snapshot, iter (a scan, for reference)", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let mut seen = Seen::default();
                for r in log.snapshot().iter() {
                    let r = r.expect("read");
                    seen.see(r.seq(), r.payload());
                }
                seen.check();
            }
            start.elapsed()
        })
    });
    let mut k = 0u64;
    let cases = [
        ("consumer, no commit", Commit::Never),
        ("consumer, commit() every 1000", Commit::Every),
        ("consumer, commit_every_records(1000)", Commit::Automatic),
        ("consumer, commit_sync() every 1000", Commit::EverySync),
    ];
    for (name, commit) in cases {
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut c = fresh_consumer(log, &mut k, commit);
                    let start = Instant::now();
                    read_consumer(&mut c, commit);
                    total += start.elapsed();
                    let committed = c.committed();
                    let name = c.name().to_string();
                    drop(c);
                    // The automatic commit of the last 1,000 happens when the
                    // loop asks for a record past the end.
                    let expect = if matches!(commit, Commit::Never) { 0 } else { RECORDS };
                    assert_eq!(committed, expect, "{name}");
                    log.remove_consumer(&name).expect("remove consumer");
                }
                total
            })
        });
    }
    tail_case(&mut g, "tail, try_next (uncommitted), again last", read_tail);
    g.finish();
}

/// One commit alone: a record read (so the position moved), then the
/// commit. The `read` group's "consumer, no commit" gives a record's cost
/// to subtract.
fn commit(c: &mut Criterion) {
    let built = build_small();
    let log = &built.log;
    let mut g = c.benchmark_group("consumers/commit");
    g.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500)).sample_size(20);
    g.throughput(Throughput::Elements(1));
    for sync in [false, true] {
        let name = if sync { "read 1 + commit_sync()" } else { "read 1 + commit()" };
        let mut consumer = log.consumer(if sync { "commit-sync" } else { "commit" }).expect("consumer");
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    if consumer.try_next().expect("read").is_none() {
                        consumer.seek(0).expect("seek");
                        consumer.try_next().expect("read").expect("a record");
                    }
                    if sync {
                        consumer.commit_sync().expect("commit");
                    } else {
                        consumer.commit().expect("commit");
                    }
                }
                start.elapsed()
            })
        });
    }
    g.finish();
}

/// A log of 100,000 records for the commit group, which reads one record
/// per commit and wraps around at the end.
fn build_small() -> Built {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = Log::open(dir.path(), Options::new()).expect("open");
    let mut writer = log.writer().expect("writer");
    let payload = [0x5Au8; PAYLOAD];
    for _ in 0..100_000 {
        writer.append(&payload).expect("append");
    }
    Built { _dir: dir, log, _writer: writer }
}

/// Rounds of the interleaved comparison.
const ROUNDS: usize = 15;

/// Whether this run should do the interleaved comparison: under `cargo
/// bench` (not `cargo test --benches`, which runs each case once), with no
/// filter or one naming it.
fn interleaved_wanted() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    args.iter().any(|a| a == "--bench") && (filters.is_empty() || filters.iter().any(|f| f.contains("interleaved")))
}

/// The plain tail and consumers without commits and committing every 1,000
/// records (by hand and automatically) each read the whole log once per
/// round, starting one later in the order each round; prints each
/// consumer's throughput as a ratio to the tail's in the same round.
fn interleaved(_: &mut Criterion) {
    if !interleaved_wanted() {
        return;
    }
    let built = build();
    let log = &built.log;
    let mut tail = log.tail_from(0).expect("tail");
    let mut k = 0u64;
    // `None`: the plain tail.
    let arms = [
        ("tail", None),
        ("consumer, no commit", Some(Commit::Never)),
        ("consumer, commit() every 1000", Some(Commit::Every)),
        ("consumer, commit_every_records(1000)", Some(Commit::Automatic)),
    ];
    let mut secs = vec![[0f64; 4]; ROUNDS];
    for (round, times) in secs.iter_mut().enumerate() {
        for j in 0..arms.len() {
            let i = (round + j) % arms.len();
            let Some(commit) = arms[i].1 else {
                let start = Instant::now();
                read_tail(&mut tail);
                times[i] = start.elapsed().as_secs_f64();
                continue;
            };
            let mut c = fresh_consumer(log, &mut k, commit);
            let start = Instant::now();
            read_consumer(&mut c, commit);
            times[i] = start.elapsed().as_secs_f64();
            let name = c.name().to_string();
            drop(c);
            log.remove_consumer(&name).expect("remove consumer");
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "consumers/interleaved: {ROUNDS} rounds of 3M records each, the order rotated every round; tail median {:.1} ms",
        median(secs.iter().map(|t| t[0] * 1e3).collect())
    );
    for (i, (name, _)) in arms.iter().enumerate().skip(1) {
        let r: Vec<f64> = secs.iter().map(|t| t[0] / t[i]).collect();
        let (lo, hi) = (r.iter().copied().fold(f64::MAX, f64::min), r.iter().copied().fold(0.0, f64::max));
        println!("  {name}: {:.3}x the tail's throughput in the same round (median; rounds {lo:.3} to {hi:.3})", median(r));
    }
}

criterion_group!(benches, read, commit, interleaved);
criterion_main!(benches);
