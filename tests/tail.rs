//! Tailing readers: follow the writer across rotations, wake promptly when
//! parked, start where asked, and report retention instead of skipping.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use varvelog::{Entry, Error, Log, Options, Retention, Tail, WaitStrategy};

const SEGMENT_BYTES: u64 = 64 * 1024;

fn opts() -> Options {
    Options::new().segment_bytes(SEGMENT_BYTES)
}

fn payload(seq: u64) -> Vec<u8> {
    // Varying lengths (16..=71 bytes) so frame offsets are irregular.
    let mut p = format!("record-{seq:08}-").into_bytes();
    p.resize(16 + (seq % 56) as usize, b'a' + (seq % 26) as u8);
    p
}

/// Reads `n` records from `tail`, checking seq and contents of each.
fn follow(mut tail: Tail, first: u64, n: u64) -> Vec<u64> {
    let mut seen = Vec::with_capacity(n as usize);
    while (seen.len() as u64) < n {
        let rec = tail.next_timeout(Duration::from_secs(20)).expect("tail read").expect("record within 20 s");
        let want = first + seen.len() as u64;
        assert_eq!(rec.seq(), want, "tail skipped or repeated");
        assert_eq!(rec.payload(), &payload(want)[..], "wrong contents at seq {want}");
        seen.push(rec.seq());
    }
    seen
}

#[test]
fn tail_on_another_thread_receives_every_record_in_order_across_rotations() {
    // Goal: a tail started before the writer sees exactly 0..N, in order,
    // with the right bytes, while the writer appends and rotates >= 5 times.
    // Method: 64 KiB segments, N records of 16-71 bytes (~25 segments),
    // appended in bursts with occasional pauses so the tail both catches up
    // (parks) and falls behind (reads across sealed segments).
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    const N: u64 = 20_000;
    let tail = log.tail_from(0).unwrap();
    let reader = thread::spawn(move || follow(tail, 0, N));
    let mut w = log.writer().unwrap();
    for seq in 0..N {
        assert_eq!(w.append(&payload(seq)).unwrap(), seq);
        if seq % 3000 == 0 {
            thread::sleep(Duration::from_millis(5));
        }
    }
    let seen = reader.join().unwrap();
    assert_eq!(seen, (0..N).collect::<Vec<_>>());
    let segments = log.snapshot().segment_count();
    assert!(segments >= 6, "expected >= 5 rotations, got {segments} segments");
}

#[test]
fn several_tails_at_once_each_receive_every_record() {
    // Goal: tails do not interfere: each of several concurrent tails (both
    // wait strategies, different start points) receives its whole range.
    // Method: four tails on their own threads, released together with the
    // writer by a barrier; compare each tail's seqs with the expected range.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    const N: u64 = 6_000;
    let mut w = log.writer().unwrap();
    for seq in 0..1000 {
        w.append(&payload(seq)).unwrap();
    }
    let barrier = Arc::new(Barrier::new(5));
    let specs = [(0, WaitStrategy::Park), (500, WaitStrategy::Park), (1000, WaitStrategy::Park), (0, WaitStrategy::BusySpin)];
    let readers: Vec<_> = specs
        .iter()
        .map(|&(from, wait)| {
            let tail = log.tail_from(from).unwrap().wait_strategy(wait);
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                (from, follow(tail, from, N - from))
            })
        })
        .collect();
    barrier.wait();
    for seq in 1000..N {
        w.append(&payload(seq)).unwrap();
    }
    for r in readers {
        let (from, seen) = r.join().unwrap();
        assert_eq!(seen, (from..N).collect::<Vec<_>>(), "tail from {from}");
    }
}

#[test]
fn parked_tail_wakes_within_bounded_time_after_one_append() {
    // Goal: the writer wakes a parked tail; it does not sleep out its timeout.
    // Method: a tail waits with a 10 s timeout; after 300 ms (long past the
    // spin phase, so it is parked) one record is appended. The tail must
    // return that record well under 1 s after the append. Without the
    // writer's wake-up it would return at the 10 s timeout with nothing.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    let mut w = log.writer().unwrap();
    for round in 0..3u64 {
        let mut tail = log.tail_from_end().unwrap().wait_strategy(WaitStrategy::Park);
        let waiter = thread::spawn(move || {
            let started = Instant::now();
            let got = tail.next_timeout(Duration::from_secs(10)).unwrap().map(|r| r.seq());
            (got, started.elapsed(), Instant::now())
        });
        thread::sleep(Duration::from_millis(300));
        let appended_at = Instant::now();
        let seq = w.append(b"wake up").unwrap();
        assert_eq!(seq, round);
        let (got, waited, returned_at) = waiter.join().unwrap();
        assert_eq!(got, Some(seq), "round {round}: tail timed out after {waited:?}");
        let latency = returned_at.duration_since(appended_at);
        assert!(latency < Duration::from_secs(1), "round {round}: woke {latency:?} after the append");
    }
}

#[test]
fn try_next_never_blocks_and_next_timeout_times_out() {
    // Goal: with nothing published, try_next returns None at once and
    // next_timeout returns None after about its timeout (both strategies).
    // Method: time both calls on an empty log, then publish and read.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    for wait in [WaitStrategy::Park, WaitStrategy::BusySpin] {
        let mut tail = log.tail_from_end().unwrap().wait_strategy(wait);
        let t = Instant::now();
        assert!(tail.try_next().unwrap().is_none());
        assert!(tail.next_timeout(Duration::from_millis(50)).unwrap().is_none());
        let waited = t.elapsed();
        assert!(waited >= Duration::from_millis(50) && waited < Duration::from_secs(5), "{wait:?} waited {waited:?}");
    }
    let mut tail = log.tail_from(0).unwrap();
    log.writer().unwrap().append(b"x").unwrap();
    assert_eq!(tail.try_next().unwrap().unwrap().payload(), b"x");
    assert!(tail.try_next().unwrap().is_none());
    assert_eq!(tail.position(), 1);
}

#[test]
fn tails_start_at_end_at_seq_and_at_time() {
    // Goal: tail_from_end skips history, tail_from(seq) starts at seq (also in
    // the middle of a sealed segment), tail_from_time starts at the first
    // record with a timestamp >= t.
    // Method: 3000 records with timestamps 1000 + 10*seq over several
    // segments; check the first record each tail yields.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    let mut w = log.writer().unwrap();
    for seq in 0..3000u64 {
        w.append_entry(Entry::new(&payload(seq)).timestamp(1000 + 10 * seq)).unwrap();
    }
    let mut end = log.tail_from_end().unwrap();
    let mut mid = log.tail_from(1234).unwrap();
    let mut at_time = log.tail_from_time(1000 + 10 * 2500 - 5).unwrap();
    let mut future = log.tail_from_time(u64::MAX).unwrap();
    assert!(end.try_next().unwrap().is_none());
    assert_eq!(mid.try_next().unwrap().unwrap().seq(), 1234);
    assert_eq!(at_time.try_next().unwrap().unwrap().seq(), 2500);
    assert_eq!(future.position(), 3000);
    w.append_entry(Entry::new(&payload(3000)).timestamp(1)).unwrap();
    assert_eq!(end.try_next().unwrap().unwrap().seq(), 3000);
    assert_eq!(future.try_next().unwrap().unwrap().seq(), 3000);
    let owned = mid.try_next().unwrap().unwrap().to_owned_record();
    assert_eq!((owned.seq(), owned.payload()), (1235, &payload(1235)[..]));
}

#[test]
fn tail_behind_retention_gets_truncated_error_never_wrong_data() {
    // Goal: a tail whose next record was removed by retention gets
    // Error::Truncated { requested, first_available } and never wrong data;
    // seek() moves it on.
    // Method: fill ~8 segments, start a tail at 0 and read 10 records, run
    // retention that removes every sealed segment below seq 2000, then keep
    // reading: records still in the tail's old snapshot (its current
    // segment) are correct; at the next segment boundary it must get the
    // typed error. A new tail at 0 fails at once.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts()).unwrap();
    let mut w = log.writer().unwrap();
    for seq in 0..8000u64 {
        w.append(&payload(seq)).unwrap();
    }
    let mut tail = log.tail_from(0).unwrap();
    for seq in 0..10 {
        assert_eq!(tail.try_next().unwrap().unwrap().seq(), seq);
    }
    let first_available = retain_when_sealed(&log, Retention::new().min_seq(2000));
    assert!(first_available > 10 && first_available <= 2000, "first available {first_available}");
    let mut next = 10;
    let err = loop {
        match tail.try_next() {
            Ok(Some(r)) => {
                assert_eq!((r.seq(), r.payload()), (next, &payload(next)[..]));
                next += 1;
            }
            Ok(None) => panic!("tail ended at {next} without an error"),
            Err(e) => break e,
        }
    };
    match err {
        Error::Truncated { requested, first_available: f } => {
            assert_eq!(requested, next);
            assert_eq!(f, first_available);
        }
        other => panic!("expected Truncated, got {other}"),
    }
    assert!(next < first_available, "read {next} past the retention point");
    // The error persists until the tail is moved on.
    assert!(matches!(tail.try_next(), Err(Error::Truncated { .. })));
    tail.seek(first_available).unwrap();
    assert_eq!(tail.try_next().unwrap().unwrap().seq(), first_available);
    assert!(matches!(log.tail_from(0), Err(Error::Truncated { requested: 0, .. })));
}

/// Waits until every segment but the active one is sealed (sealing runs in
/// the background), then runs `policy`; returns the first seq left.
fn retain_when_sealed(log: &Log, policy: Retention) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = log.verify();
        assert!(v.is_ok(), "{:?}", v.problems);
        if v.sealed_segments + 1 == v.segments {
            break;
        }
        assert!(Instant::now() < deadline, "segments not sealed after 10 s");
        thread::sleep(Duration::from_millis(10));
    }
    let report = log.retain(&policy).unwrap();
    assert!(report.removed_segments() > 0);
    report.first_seq
}
