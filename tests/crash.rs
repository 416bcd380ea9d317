//! Crash test: a child process appends and syncs, and is killed with SIGKILL
//! at random moments; after every kill the log must reopen with every record
//! the child acknowledged as durable, in order, byte for byte, nothing
//! invented, no batch torn, and appending must continue.
//!
//! The test re-executes its own binary (`--exact <name>`) with
//! `VARVELOG_CRASH_CHILD` set; the child prints `ACK <n>` on stdout (flushed)
//! after each successful `sync()`, meaning every seq below `n` is durable.
//! `VARVELOG_CRASH_KILLS` (default 60) and `VARVELOG_CRASH_SECS` (default 60)
//! bound the run.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::Rng;
use varvelog::{Entry, Log, Options, SyncPolicy};

const CHILD_ENV: &str = "VARVELOG_CRASH_CHILD";
const TEST_NAME: &str = "sigkill_at_random_moments_loses_no_acknowledged_record";

/// The payload of `seq`: derived from the seq, variable length (up to ~1 KiB so
/// 64 KiB segments rotate often), then the last seq of its batch.
fn payload(seq: u64, batch_last: u64) -> Vec<u8> {
    let mut r = Rng::new(seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let len = if seq.is_multiple_of(97) { 900 + r.below(200) } else { r.below(120) } as usize;
    let mut p: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
    p.extend_from_slice(&batch_last.to_le_bytes());
    p
}

/// The key of `seq` (every third record has one).
fn key(seq: u64) -> Vec<u8> {
    if seq.is_multiple_of(3) {
        format!("k{seq}").into_bytes()
    } else {
        Vec::new()
    }
}

fn options() -> Options {
    Options::new().segment_bytes(64 * 1024)
}

/// Checks the reopened log: a gap-free prefix from seq 0, every record equal to
/// what was written (so nothing invented), no torn batch, at least `acked`
/// records. Returns the number of records.
fn check_log(log: &Log, acked: u64, context: &str) -> u64 {
    let snap = log.snapshot();
    let mut expect = 0u64;
    let mut batch_last = 0u64;
    for r in snap.iter() {
        let r = r.unwrap_or_else(|e| panic!("{context}: reading seq {expect}: {e}"));
        assert_eq!(r.seq(), expect, "{context}: gap or repeat");
        let p = r.payload();
        let (body, tail) = p.split_at(p.len().checked_sub(8).unwrap_or_else(|| panic!("{context}: seq {expect} payload too short")));
        batch_last = u64::from_le_bytes(tail.try_into().unwrap());
        assert_eq!(p, payload(expect, batch_last).as_slice(), "{context}: seq {expect} payload differs ({} body bytes)", body.len());
        assert_eq!(r.key().unwrap_or(b""), key(expect).as_slice(), "{context}: seq {expect} key differs");
        assert!(batch_last >= expect, "{context}: seq {expect} names batch end {batch_last}");
        expect += 1;
    }
    assert!(
        expect == 0 || batch_last == expect - 1,
        "{context}: torn batch: log ends at seq {} inside a batch ending at {batch_last}",
        expect - 1
    );
    assert!(expect >= acked, "{context}: {acked} records acknowledged durable, only {expect} recovered");
    expect
}

/// The child: appends single records and batches forever under a random sync
/// policy, acknowledging on stdout what is durable. Stops by itself after 30 s.
fn child(dir: &Path, seed: u64) {
    let mut rng = Rng::new(seed | 1);
    // Who syncs: the child itself every few appends, every append, or the
    // background flusher (whose progress `durable_seq` reports).
    let policy = match rng.below(3) {
        0 => SyncPolicy::Never,
        1 => SyncPolicy::Always,
        _ => SyncPolicy::Background { bytes: Some(8192), interval: Duration::from_millis(2) },
    };
    let log = Log::open(dir, options().sync_policy(policy)).expect("child open");
    let mut w = log.writer().expect("child writer");
    let out = std::io::stdout();
    let started = Instant::now();
    let first = w.next_seq();
    while started.elapsed() < Duration::from_secs(30) {
        // At most ~3000 records a life, so the log (which the parent reads
        // whole after every kill) stays small; then only acknowledge.
        let burst = if w.next_seq() - first < 3000 { 1 + rng.below(8) } else { 0 };
        if burst == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        for _ in 0..burst {
            let seq = w.next_seq();
            let n = if rng.below(4) == 0 { 2 + rng.below(5) } else { 1 };
            let last = seq + n - 1;
            let bodies: Vec<(Vec<u8>, Vec<u8>)> = (seq..=last).map(|s| (payload(s, last), key(s))).collect();
            if n == 1 {
                assert_eq!(w.append_entry(Entry::new(&bodies[0].0).key(&bodies[0].1)).expect("append"), seq);
            } else {
                let entries: Vec<Entry<'_>> = bodies.iter().map(|(p, k)| Entry::new(p).key(k)).collect();
                assert_eq!(w.append_batch(&entries).expect("batch"), seq..last + 1);
            }
        }
        let durable = match policy {
            SyncPolicy::Never => {
                w.sync().expect("sync");
                w.next_seq()
            }
            _ => log.durable_seq().map_or(0, |s| s + 1),
        };
        let mut o = out.lock();
        writeln!(o, "ACK {durable}").unwrap();
        o.flush().unwrap();
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_record() {
    // Goal: crash consistency against process death. Method: a child appends
    // records (content derived from seq, some in batches) with periodic syncs
    // and reports each acknowledged-durable position; the parent SIGKILLs it at
    // a random moment (sometimes during its open/recovery), reopens the log and
    // checks every acknowledged record is there unchanged, the records form a
    // gap-free prefix with no torn batch and nothing invented, and that a new
    // record can be appended and read back. Repeated >= 50 times.
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let seed = std::env::var("VARVELOG_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
        child(Path::new(&dir), seed);
        return;
    }
    let kills: u32 = std::env::var("VARVELOG_CRASH_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let budget = Duration::from_secs(std::env::var("VARVELOG_CRASH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60));
    let seed = std::env::var("VARVELOG_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7));
    eprintln!("crash test seed {seed} (replay with VARVELOG_CRASH_SEED={seed})");
    let mut rng = Rng::new(seed | 1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let started = Instant::now();
    let (mut acked, mut done, mut total_written) = (0u64, 0u32, 0u64);
    while done < kills && started.elapsed() < budget {
        // One kill in eight lands before the first acknowledgement (during
        // open and recovery); the rest at a random moment after it.
        let envs = [(CHILD_ENV, dir.display().to_string()), ("VARVELOG_CRASH_SEED", rng.next().to_string())];
        let early = rng.below(8) == 0;
        let killed = common::run_and_kill(TEST_NAME, &envs, early, Duration::from_micros(rng.below(40_000)));
        if killed.exited_by_itself {
            panic!("child exited by itself before the kill");
        }
        for n in killed.acks {
            // A child reopening the log reports what it recovered as durable.
            assert!(n >= acked, "kill {done} (seed {seed}): the child found {n} durable records, {acked} were acknowledged");
            acked = n;
        }
        done += 1;
        if !dir.exists() {
            continue; // killed before it created the log
        }
        let log = Log::open(&dir, options()).unwrap_or_else(|e| panic!("kill {done}: reopen failed: {e}"));
        let n = check_log(&log, acked, &format!("kill {done} (seed {seed})"));
        total_written = total_written.max(n);
        // Appending continues where the recovered prefix ends.
        let mut w = log.writer().unwrap();
        let p = payload(n, n);
        assert_eq!(w.append_entry(Entry::new(&p).key(&key(n))).unwrap(), n);
        w.sync().unwrap();
        acked = n + 1;
        drop(w);
        drop(log);
    }
    eprintln!("{done} kills in {:?}, {total_written} records, {acked} acknowledged", started.elapsed());
    assert!(done >= kills.min(50), "only {done} kills fit in the time budget");
    let log = Log::open(&dir, options()).unwrap();
    check_log(&log, acked, "final");
}
