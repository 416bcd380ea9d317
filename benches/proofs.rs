//! Merkle proofs: what keeping the tree costs the writer, and what roots,
//! proofs and their verification cost.
//!
//! `cargo bench --bench proofs` (about a minute on an idle 2-core
//! machine, up to 2 when it is shared). Not criterion: the
//! append figure is a whole pass of many segments, and the two sides
//! alternate in one run so that each has a baseline from the same minutes
//! (docs/benchmarks.md, "Merkle proofs"). Logs are written under
//! `/dev/shm` (tmpfs: no write-back, so the figures are CPU), or under
//! `$PROOFS_BENCH_DIR` if set.
//!
//! 1. Sustained append. `APPEND_RECORDS` 100-byte payloads into a new log
//!    of the default 64 MiB segments (~1.2 GB of frames, 18 segments
//!    sealed), with `Options::proofs(true)` and `proofs(false)`, timed from
//!    the first append until `Log::close` returns (close waits for every
//!    queued seal, so the sealer's extra hashing is inside the time). The
//!    sides alternate, on/off in odd rounds and off/on in even ones. The
//!    CPU time of each of the log's threads over the same span is read
//!    from `/proc/self/task/*/schedstat` after close, a clone of the log
//!    keeping its threads alive until then, and so is how many of the
//!    rolled segments were sealed when the last append returned.
//! 2. Roots. A log of `PROVE_RECORDS` records (the default segments: 5
//!    sealed, the 6th live and about half full), with proofs on and off,
//!    the same records and timestamps: `Snapshot::root()` the first time
//!    it is asked (the live segment's nodes not built yet, so its records
//!    are hashed), then again after every 5 more appends, 205 times (the
//!    usual case: a root published as the log grows). With proofs off a
//!    root hashes most of the log, so only the first and one more are
//!    timed. Both logs must give the same root.
//! 3. Proofs (the log with proofs on): `prove_inclusion` of random seqs,
//!    `prove_consistency` from a random older size to the whole log, each
//!    for about a second; `verify_inclusion` and `verify_consistency` of
//!    200 such proofs in turn (pure CPU); and, for scale, `leaf_hash` of a
//!    100-byte record and `node_hash`.
//!
//! Every round's figures are printed, then a table of medians.

#[path = "common/mod.rs"]
mod common;
use common::median;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use varvelog::{
    leaf_hash, node_hash, verify_consistency, verify_inclusion, ConsistencyProof, Entry, Hash, InclusionProof, Log, Options, Root,
};

/// Payload bytes per record.
const PAYLOAD: usize = 100;
/// Payload + frame header, padded to 8 (no key).
const FRAMED: u64 = (32 + PAYLOAD as u64).next_multiple_of(8);
/// Records per append run: ~1.22 GB of frames, 18 segments of 64 MiB
/// rolled (and sealed) and a 19th left active.
const APPEND_RECORDS: u64 = 9_000_000;
/// Rounds of the append comparison (each: both sides), unless
/// `$PROOFS_BENCH_ROUNDS` says otherwise (0: skip it, as when profiling
/// the rest).
const ROUNDS: usize = 5;
/// Records of the log the roots and proofs are taken from: 5 segments of
/// 64 MiB sealed (493,417 records each), 243k records in the live one
/// (about half of it). Without kept nodes, a root hashes the records of
/// every perfect subtree of its frontier that ends in a sealed segment:
/// here the first 2^21 (the rest end in the live segment, whose nodes
/// readers keep once built).
const PROVE_RECORDS: u64 = 2_710_000;
/// Roots timed, each after `ROOT_EVERY` more appends: together they cover
/// every size modulo 1024 about once (below level 10 a root hashes
/// records, 0 to 1023 of them depending on the size).
const ROOTS: usize = 205;
const ROOT_EVERY: usize = 5;
/// Roots without kept nodes: the first, and one after `ROOT_EVERY` appends
/// (each hashes most of the log).
const ROOTS_OFF: usize = 2;
/// How long each proof generation figure runs.
const PROVE_FOR: Duration = Duration::from_secs(1);
/// Distinct proofs verified in turn.
const VERIFY_SET: usize = 200;
/// Verifications timed.
const VERIFIES: usize = 200_000;

/// Where the logs go.
fn base_dir() -> PathBuf {
    match std::env::var_os("PROOFS_BENCH_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from("/dev/shm"),
    }
}

fn new_dir(base: &Path) -> tempfile::TempDir {
    tempfile::Builder::new().prefix("varvelog-proofs-bench").tempdir_in(base).expect("temp dir")
}

/// CPU time on each of this process's live threads, by thread id: (name, ns).
fn thread_cpu() -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return out };
    for t in tasks.flatten() {
        let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default().trim().to_string();
        let ns = std::fs::read_to_string(t.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse::<u64>().ok()))
            .unwrap_or(0);
        out.insert(tid, (comm, ns));
    }
    out
}

/// CPU seconds between two readings, by thread name (`main` for the bench's
/// own thread, the writer); threads started in between count from zero.
fn cpu_by_name(before: &HashMap<u32, (String, u64)>, after: &HashMap<u32, (String, u64)>) -> HashMap<String, f64> {
    let mut out: HashMap<String, f64> = HashMap::new();
    for (tid, (name, ns)) in after {
        let was = before.get(tid).map_or(0, |b| b.1);
        // `comm` keeps 15 bytes: `varvelog-prepare` reads `varvelog-prepar`.
        let name = match name.as_str() {
            _ if *tid == std::process::id() => "main".to_string(),
            "varvelog-prepar" => "varvelog-prepare".to_string(),
            _ => name.clone(),
        };
        *out.entry(name).or_default() += ns.saturating_sub(was) as f64 / 1e9;
    }
    out
}

/// One append run: (appends done, close returned, segments sealed / rolled
/// when the last append returned, CPU seconds by thread).
struct AppendRun {
    appended: Duration,
    closed: Duration,
    sealed_then: (u64, u64),
    cpu: HashMap<String, f64>,
}

fn append_run(base: &Path, proofs: bool) -> AppendRun {
    let dir = new_dir(base);
    let log = Log::open(dir.path(), Options::new().proofs(proofs)).expect("open log");
    let mut w = log.writer().expect("writer");
    // Let the preparer finish the segments it makes at open (as benches/common).
    std::thread::sleep(Duration::from_millis(200));
    let body = vec![0x5Au8; PAYLOAD];
    let keep = log.clone();
    let before = thread_cpu();
    let t0 = Instant::now();
    for _ in 0..APPEND_RECORDS {
        w.append(&body).expect("append");
    }
    let appended = t0.elapsed();
    let then = keep.stats();
    drop(w);
    log.close().expect("close");
    let closed = t0.elapsed();
    let after = thread_cpu();
    let stats = keep.stats();
    assert_eq!(stats.appends, APPEND_RECORDS);
    assert_eq!(stats.segments_sealed, stats.rotations, "every rolled segment sealed by close");
    if proofs {
        // The sealed segments kept their nodes: a root reads no record
        // before the live segment (spot check, outside the timing).
        let snap = keep.snapshot();
        let sealed_end = snap.segment_info().iter().filter(|s| s.sealed).map(|s| s.end_seq).max().unwrap_or(0);
        let t = Instant::now();
        snap.root_at(sealed_end).expect("root");
        assert!(t.elapsed() < Duration::from_millis(200), "a root over sealed segments took {:?}", t.elapsed());
    }
    drop(keep);
    drop(dir);
    AppendRun { appended, closed, sealed_then: (then.segments_sealed, then.rotations), cpu: cpu_by_name(&before, &after) }
}

/// A log of `PROVE_RECORDS` records, open, with its writer.
fn prove_log(dir: &Path, proofs: bool) -> (Log, varvelog::Writer) {
    let log = Log::open(dir, Options::new().proofs(proofs)).expect("open log");
    let mut w = log.writer().expect("writer");
    let mut body = vec![0x5Au8; PAYLOAD];
    for i in 0..PROVE_RECORDS {
        // Timestamps given, so that both logs hold the same leaves.
        body[..8].copy_from_slice(&i.to_le_bytes());
        w.append_entry(Entry::new(&body).timestamp(1_000_000 + i)).expect("append");
    }
    // Wait for the seals: `close` of a clone syncs and waits for the seal
    // queue, and the log stays open.
    log.clone().close().expect("flush seals");
    (log, w)
}

/// Root latencies: (first, then `after_appends` more, each after
/// `ROOT_EVERY` appends).
fn roots(log: &Log, w: &mut varvelog::Writer, after_appends: usize) -> (Duration, Vec<Duration>) {
    let snap = log.snapshot();
    let t = Instant::now();
    let first = snap.root().expect("root");
    let first_t = t.elapsed();
    assert_eq!(first.size, snap.next_seq());
    let body = vec![0xA5u8; PAYLOAD];
    let mut again = Vec::new();
    for _ in 0..after_appends {
        for _ in 0..ROOT_EVERY {
            w.append(&body).expect("append");
        }
        let snap = log.snapshot();
        let t = Instant::now();
        std::hint::black_box(snap.root().expect("root"));
        again.push(t.elapsed());
    }
    (first_t, again)
}

/// Runs `f` until `PROVE_FOR` has passed: (calls, per second, each call's time).
fn per_second(mut f: impl FnMut()) -> (usize, f64, Vec<Duration>) {
    let mut each = Vec::new();
    let t0 = Instant::now();
    while t0.elapsed() < PROVE_FOR {
        let t = Instant::now();
        f();
        each.push(t.elapsed());
    }
    (each.len(), each.len() as f64 / t0.elapsed().as_secs_f64(), each)
}

fn quantile(xs: &[Duration], q: f64) -> Duration {
    let mut v = xs.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn list(xs: &[f64], digits: usize) -> String {
    xs.iter().map(|x| format!("{x:.digits$}")).collect::<Vec<_>>().join(" / ")
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let started = Instant::now();
    let base = base_dir();
    println!(
        "proofs: {APPEND_RECORDS} records of {PAYLOAD} bytes ({:.2} GB of frames) a run, 64 MiB segments, under {}",
        (APPEND_RECORDS * FRAMED) as f64 / 1e9,
        base.display()
    );

    // 1. Sustained append, on vs off.
    println!("\nsustained append, M records/s to close (to the last append); CPU seconds of the run by thread");
    println!(
        "{:<6} {:<8} {:>16} {:>16} {:>7}   CPU s: writer / seal / prepare, sealed/rolled at the last append",
        "round", "order", "on", "off", "on/off"
    );
    let (mut on, mut off, mut ratio) = (vec![], vec![], vec![]);
    let (mut on_app, mut off_app) = (vec![], vec![]);
    let mut cpu: [HashMap<String, Vec<f64>>; 2] = [HashMap::new(), HashMap::new()];
    let rate = |d: Duration| APPEND_RECORDS as f64 / 1e6 / d.as_secs_f64();
    let rounds = std::env::var("PROOFS_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(ROUNDS);
    for round in 0..rounds {
        let on_first = round % 2 == 0;
        let first = append_run(&base, on_first);
        let second = append_run(&base, !on_first);
        let (a, b) = if on_first { (first, second) } else { (second, first) };
        let cpu_cell = |r: &AppendRun| {
            let get = |k: &str| r.cpu.get(k).copied().unwrap_or(0.0);
            let (sealed, rolled) = r.sealed_then;
            format!("{:.2} / {:.2} / {:.2}, {sealed}/{rolled}", get("main"), get("varvelog-seal"), get("varvelog-prepare"))
        };
        println!(
            "{:<6} {:<8} {:>7.2} ({:>6.2}) {:>7.2} ({:>6.2}) {:>7.3}   on: {}   off: {}",
            round + 1,
            if on_first { "on, off" } else { "off, on" },
            rate(a.closed),
            rate(a.appended),
            rate(b.closed),
            rate(b.appended),
            rate(a.closed) / rate(b.closed),
            cpu_cell(&a),
            cpu_cell(&b)
        );
        on.push(rate(a.closed));
        off.push(rate(b.closed));
        on_app.push(rate(a.appended));
        off_app.push(rate(b.appended));
        ratio.push(rate(a.closed) / rate(b.closed));
        for (side, r) in [(0, &a), (1, &b)] {
            for (k, v) in &r.cpu {
                cpu[side].entry(k.clone()).or_default().push(*v);
            }
        }
    }

    // 2. Roots.
    let dir_on = new_dir(&base);
    let (log_on, mut w_on) = prove_log(dir_on.path(), true);
    let info = log_on.snapshot().segment_info();
    let (segments, per_segment, live) = (info.len(), info[0].records, info.last().map_or(0, |s| s.records));
    let (root_first_on, root_again_on) = roots(&log_on, &mut w_on, ROOTS);
    let dir_off = new_dir(&base);
    let (log_off, mut w_off) = prove_log(dir_off.path(), false);
    let (root_first_off, mut root_again_off) = roots(&log_off, &mut w_off, ROOTS_OFF - 1);
    root_again_off.insert(0, root_first_off);
    let same = log_on.snapshot().root_at(PROVE_RECORDS).expect("root") == log_off.snapshot().root_at(PROVE_RECORDS).expect("root");
    assert!(same, "the same records give the same root with and without kept nodes");
    drop((w_off, log_off, dir_off));

    // 3. Proofs and verification, on the log with proofs.
    let snap = log_on.snapshot();
    let n = snap.next_seq();
    let root = snap.root().expect("root");
    let mut rng = fastrand::Rng::with_seed(6962);
    let (incl_n, incl_rate, incl_each) = per_second(|| {
        std::hint::black_box(snap.prove_inclusion(rng.u64(0..n)).expect("inclusion proof"));
    });
    let (cons_n, cons_rate, cons_each) = per_second(|| {
        std::hint::black_box(snap.prove_consistency(rng.u64(1..n), n).expect("consistency proof"));
    });
    let incl_set: Vec<(Hash, InclusionProof)> = (0..VERIFY_SET)
        .map(|_| {
            let seq = rng.u64(0..n);
            let leaf = snap.get(seq).expect("get").expect("record").leaf_hash();
            (leaf, snap.prove_inclusion(seq).expect("inclusion proof"))
        })
        .collect();
    let cons_set: Vec<(Root, ConsistencyProof)> = (0..VERIFY_SET)
        .map(|_| {
            let old = rng.u64(1..n);
            (snap.root_at(old).expect("old root"), snap.prove_consistency(old, n).expect("consistency proof"))
        })
        .collect();
    let incl_path = median(&incl_set.iter().map(|p| p.1.path.len() as f64).collect::<Vec<_>>());
    let cons_path = median(&cons_set.iter().map(|p| p.1.path.len() as f64).collect::<Vec<_>>());
    let t = Instant::now();
    let mut ok = 0usize;
    for i in 0..VERIFIES {
        let (leaf, proof) = &incl_set[i % VERIFY_SET];
        ok += usize::from(verify_inclusion(std::hint::black_box(&root), leaf, proof));
    }
    let verify_incl = VERIFIES as f64 / t.elapsed().as_secs_f64();
    assert_eq!(ok, VERIFIES, "every inclusion proof verifies");
    let t = Instant::now();
    let mut ok = 0usize;
    for i in 0..VERIFIES {
        let (old, proof) = &cons_set[i % VERIFY_SET];
        ok += usize::from(verify_consistency(old, std::hint::black_box(&root), proof));
    }
    let verify_cons = VERIFIES as f64 / t.elapsed().as_secs_f64();
    assert_eq!(ok, VERIFIES, "every consistency proof verifies");
    let body = [0x5Au8; PAYLOAD];
    let t = Instant::now();
    let mut acc = [0u8; 32];
    for i in 0..1_000_000u64 {
        acc[0] ^= leaf_hash(std::hint::black_box(i), i, false, b"", &body)[0];
    }
    let leaf_ns = t.elapsed().as_secs_f64() * 1e9 / 1e6;
    let t = Instant::now();
    let mut h = acc;
    for _ in 0..1_000_000u64 {
        h = node_hash(std::hint::black_box(&h), &acc);
    }
    std::hint::black_box(h);
    let node_ns = t.elapsed().as_secs_f64() * 1e9 / 1e6;
    drop((snap, w_on, log_on, dir_on));

    // Summary.
    println!("\nsummary: medians [per round]");
    if !on.is_empty() {
        println!("  append, proofs on           {:>7.2} M rec/s  [{}]", median(&on), list(&on, 2));
        println!("         proofs off           {:>7.2} M rec/s  [{}]", median(&off), list(&off, 2));
        println!("         on/off               {:>7.3}×        [{}]", median(&ratio), list(&ratio, 3));
        println!("         to the last append   {:>7.2} on, {:.2} off M rec/s", median(&on_app), median(&off_app));
        for (side, name) in [(0, "on"), (1, "off")] {
            let get = |k: &str| median(cpu[side].get(k).map_or(&[0.0][..], |v| &v[..]));
            println!(
                "         CPU s, {name:<3}         writer {:.2}, varvelog-seal {:.2}, varvelog-prepare {:.2}",
                get("main"),
                get("varvelog-seal"),
                get("varvelog-prepare")
            );
        }
    }
    let dur = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    println!("  root(), {PROVE_RECORDS} records in {segments} segments ({per_segment} records each, {live} in the live one):");
    println!("         on, first            {:>10}", dur(root_first_on));
    println!(
        "         on, as the log grows {:>7.0} µs median, p90 {:.0} µs, max {:.0} µs ({ROOTS} roots, {ROOT_EVERY} appends apart)",
        us(quantile(&root_again_on, 0.5)),
        us(quantile(&root_again_on, 0.9)),
        us(quantile(&root_again_on, 1.0))
    );
    println!(
        "         off                  {:>10} first, then {}",
        dur(root_again_off[0]),
        root_again_off[1..].iter().map(|d| dur(*d)).collect::<Vec<_>>().join(" / ")
    );
    println!(
        "  prove_inclusion              {incl_rate:>7.0} /s   ({incl_n} random seqs; median {:.0} µs, p99 {:.0} µs; path {incl_path} hashes)",
        us(quantile(&incl_each, 0.5)),
        us(quantile(&incl_each, 0.99))
    );
    println!(
        "  prove_consistency            {cons_rate:>7.0} /s   ({cons_n} random old sizes to {n}; median {:.0} µs, p99 {:.0} µs; path {cons_path} hashes)",
        us(quantile(&cons_each, 0.5)),
        us(quantile(&cons_each, 0.99))
    );
    println!("  verify_inclusion             {verify_incl:>7.0} /s   ({:.2} µs each)", 1e6 / verify_incl);
    println!("  verify_consistency           {verify_cons:>7.0} /s   ({:.2} µs each)", 1e6 / verify_cons);
    println!("  leaf_hash (100-byte payload) {leaf_ns:>7.0} ns;  node_hash {node_ns:.0} ns");
    println!("  took {:.1} s", started.elapsed().as_secs_f64());
}
