//! Crash test of named consumers: SIGKILL of the consumer's process, and of
//! the writer's process under a consumer, at random moments.
//!
//! The promise under test ([`Consumer::commit`]): once a commit returned, no
//! crash of any process moves the consumer's committed position backwards,
//! and the position never passes a record the consumer was not handed, so
//! across crashes every record is received at least once.
//!
//! Records follow the model of `tests/common` (payload, key and timestamp
//! derived from the seq), so every reader checks contents without shared
//! state. Children are runs of this test binary (`--exact <name>`) with
//! `VARVELOG_CONSUMER_CHILD` set to the log directory; they report on stdout,
//! one flushed line per event, and exit by themselves after 30 s should
//! nobody kill them. `VARVELOG_CONSUMER_KILLS` (default 20) and
//! `VARVELOG_CONSUMER_SECS` (default 30) bound each test;
//! `VARVELOG_CONSUMER_SEED` replays one.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::child::Child;
use common::{append_model, check_model, key_for, payload_for, ts_for, Rng};
use varvelog::{Consumer, ConsumerOptions, Entry, Log, OwnedRecord, ReadOnlyLog, SyncPolicy};

const CHILD_ENV: &str = "VARVELOG_CONSUMER_CHILD";
const SEED_ENV: &str = "VARVELOG_CONSUMER_SEED";
/// Set for a consumer child that opens the log with `Log::open` (no other
/// process has it open then) instead of read-only.
const OWNER_ENV: &str = "VARVELOG_CONSUMER_OWNER";
const CONSUMER_TEST: &str = "consumer_sigkill_keeps_every_returned_commit_and_skips_nothing";
const WRITER_TEST: &str = "writer_sigkill_under_a_consumer_keeps_every_commit_and_skips_nothing";
const NAME: &str = "crash-test";
/// A child still alive after this exits by itself (its parent kills it
/// within a fraction of a second), so nothing outlives a broken parent.
const CHILD_LIFE: Duration = Duration::from_secs(30);
/// Longest wait for one step: a child's first report, a drain to the end.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Records written before the first round.
const FIRST_RECORDS: u64 = 200;
/// Records one writer (thread or child) appends at most, so the log stays small.
const LIFE_RECORDS: u64 = 2000;

/// Held by each test while it runs. The position file and the log's LOCK
/// are `flock`s, which belong to an open file description: a child being
/// spawned by one thread holds a copy of every descriptor of the process
/// until it execs, so a lock another thread just dropped stays held that
/// long, and reopening fails with `ConsumerBusy` or `Locked`. The tests
/// therefore do not run side by side, and within the writer test the
/// consumer's reopening never overlaps a spawn.
static SERIAL: Mutex<()> = Mutex::new(());

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn micros(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// The bounds of one test run, from the environment.
struct Run {
    kills: u32,
    budget: Duration,
    seed: u64,
}

impl Run {
    fn from_env(what: &str) -> Run {
        let kills = env_u64("VARVELOG_CONSUMER_KILLS").map_or(20, |n| n as u32);
        let budget = Duration::from_secs(env_u64("VARVELOG_CONSUMER_SECS").unwrap_or(30));
        let seed = env_u64(SEED_ENV).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7)
        });
        eprintln!("consumer crash test ({what}) seed {seed} (replay with {SEED_ENV}={seed})");
        Run { kills, budget, seed }
    }
}

/// One line on stdout, written and flushed at once: a line the parent
/// reads was complete before the child could go on.
fn say(line: String) {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{line}\n").as_bytes()).unwrap();
    out.flush().unwrap();
}

/// Starts a child's reports: ends the line the test harness began
/// (`test <name> ... `), so every report is a line of its own, and ends
/// the process after [`CHILD_LIFE`] if no one killed it.
fn child_start() {
    say(String::new());
    std::thread::spawn(|| {
        std::thread::sleep(CHILD_LIFE);
        eprintln!("child: not killed after {CHILD_LIFE:?}, exiting");
        std::process::exit(3);
    });
}

/// How one consumer's life commits: explicitly every `every` records (with
/// `commit` or `commit_sync`), or automatically through its options (by
/// count, sometimes also by time).
struct CommitStyle {
    every: u64,
    explicit: Option<bool>,
}

impl CommitStyle {
    fn pick(rng: &mut Rng) -> (CommitStyle, ConsumerOptions) {
        let every = 1 + rng.below(48);
        let mut opts = ConsumerOptions::new().sync_commits(rng.below(4) == 0);
        let explicit = match rng.below(4) {
            0 => Some(false),
            1 => Some(true),
            2 => {
                opts = opts.commit_every_records(every);
                None
            }
            _ => {
                opts = opts.commit_every_records(every).commit_every(micros(rng.below(3000)));
                None
            }
        };
        (CommitStyle { every, explicit }, opts)
    }

    /// Commits explicitly if this style does and `every` records were
    /// handed out since the last commit; the position committed, if any.
    fn commit(&self, c: &mut Consumer) -> Option<u64> {
        let sync = self.explicit?;
        // `Consumer::position`, not `Iterator::position` of `&mut Consumer`.
        if Consumer::position(c) - c.committed() < self.every {
            return None;
        }
        if sync { c.commit_sync() } else { c.commit() }.expect("commit");
        assert_eq!(c.committed(), Consumer::position(c), "a commit stores the position");
        Some(c.committed())
    }
}

/// Checks an owned record against the model, as [`check_model`] does a
/// borrowed one.
fn check_owned(r: &OwnedRecord, seq: u64) {
    assert_eq!(r.seq(), seq);
    assert_eq!(r.payload(), &payload_for(seq)[..], "payload of seq {seq}");
    let key = key_for(seq);
    assert_eq!(r.key(), (!key.is_empty()).then_some(&key[..]), "key of seq {seq}");
    assert_eq!(r.timestamp(), ts_for(seq), "timestamp of seq {seq}");
}

/// One read call of a kind picked at random (`next_timeout`, `wait`,
/// `poll`, or the owned-record iterator when something is published).
/// Checks every record handed out, which must go on from `next`, and
/// returns the seq of the last one. An automatic commit, if due, happens
/// inside the call and covers only records handed out before it.
fn read_some(c: &mut Consumer, rng: &mut Rng, next: u64) -> Option<u64> {
    let mut last: Option<u64> = None;
    let mut expect = || *last.insert(last.map_or(next, |l| l + 1));
    match rng.below(4) {
        0 => {
            if let Some(r) = c.next_timeout(micros(rng.below(5000))).expect("next_timeout") {
                check_model(&r, expect());
            }
        }
        k @ (1 | 2) => {
            let batch = if k == 1 { c.wait(micros(rng.below(5000))) } else { c.poll() }.expect("wait or poll");
            // Sometimes only part of the batch: the rest is handed out later.
            for r in batch.take(1 + rng.below(64) as usize) {
                check_model(&r.expect("a record of a batch"), expect());
            }
        }
        _ => {
            // The iterator blocks until a record comes: only when one is there.
            if c.lag() > 0 {
                let r = Iterator::next(c).expect("a consumer never ends").expect("an owned record");
                check_owned(&r, expect());
            }
        }
    }
    last
}

/// The consumer child: opens the consumer (through a `ReadOnlyLog`, or
/// owning the log), then reads, checks and commits until killed. Reports
/// `START <position>` once open, `R <first> <last>` after every read call
/// that handed out records (before anything can commit them), and
/// `C <position>` after every commit returned.
fn consumer_child(dir: &Path, seed: u64, owner: bool) {
    child_start();
    let mut rng = Rng::new(seed | 1);
    let (style, opts) = CommitStyle::pick(&mut rng);
    let opened = if owner {
        Log::open(dir, common::opts()).expect("child: open the log").consumer_with(NAME, opts)
    } else {
        ReadOnlyLog::open(dir).expect("child: open the log read-only").consumer_with(NAME, opts)
    };
    let mut c = opened.expect("child: open the consumer");
    let mut next = c.position();
    assert_eq!(c.committed(), next);
    say(format!("START {next}"));
    loop {
        let before = c.committed();
        let last = read_some(&mut c, &mut rng, next);
        if c.committed() != before {
            assert_eq!(c.committed(), next, "an automatic commit covers what earlier calls handed out");
            say(format!("C {next}"));
        }
        if let Some(last) = last {
            say(format!("R {next} {last}"));
            next = last + 1;
        }
        if let Some(p) = style.commit(&mut c) {
            say(format!("C {p}"));
        }
    }
}

/// Appends model records in this process until stopped (or for
/// [`CHILD_LIFE`], or [`LIFE_RECORDS`] records), then closes the log.
struct WriterThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<u64>>,
}

impl WriterThread {
    fn start(dir: &Path, seed: u64) -> WriterThread {
        let log = Log::open(dir, common::opts()).expect("writer: open the log");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut rng = Rng::new(seed | 1);
            let mut w = log.writer().expect("writer");
            let (first, started) = (w.next_seq(), Instant::now());
            while !flag.load(Ordering::Relaxed) && started.elapsed() < CHILD_LIFE && w.next_seq() - first < LIFE_RECORDS {
                for _ in 0..1 + rng.below(16) {
                    let seq = w.next_seq();
                    append_model(&mut w, seq);
                }
                if rng.below(4) == 0 {
                    w.sync().expect("writer: sync");
                }
                std::thread::sleep(micros(rng.below(2000)));
            }
            let n = w.next_seq();
            drop(w);
            log.close().expect("writer: close");
            n
        });
        WriterThread { stop, handle: Some(handle) }
    }

    /// Stops the thread; the log's next seq.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self.handle.take().unwrap();
        match join_within(handle, STEP_TIMEOUT) {
            Some(Ok(next_seq)) => next_seq,
            Some(Err(e)) => std::panic::resume_unwind(e),
            None => panic!("the writer thread did not stop within {STEP_TIMEOUT:?}"),
        }
    }
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = join_within(h, STEP_TIMEOUT);
        }
    }
}

/// What the test knows about the consumer between its deaths.
#[derive(Default)]
struct Known {
    /// Where the consumer resumes: its committed position, read after the
    /// last kill.
    position: u64,
    /// Every seq below this one was received by some child.
    covered: u64,
    commits: u64,
    /// Kills that landed after a commit was stored, before it was reported.
    commits_in_flight: u64,
    redelivered: u64,
    /// Kills before the consumer was open.
    early: u64,
}

impl Known {
    /// Checks a killed child's reports and the reopened consumer against
    /// each other and against what the test knew before the round.
    fn round(&mut self, dir: &Path, lines: &[String], context: &str) {
        let mut started = false;
        // The seq the child receives next, and the last commit that returned.
        let (mut next, mut committed) = (self.position, self.position);
        for line in lines {
            let words: Vec<&str> = line.split(' ').collect();
            let num =
                |i: usize| -> u64 { words.get(i).and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("{context}: bad report {line:?}")) };
            match words[0] {
                "START" => {
                    let at = num(1);
                    assert_eq!(at, self.position, "{context}: the consumer resumed at {at}, its committed position was {}", self.position);
                    started = true;
                }
                "R" => {
                    let (first, last) = (num(1), num(2));
                    assert!(started && first == next && first <= last, "{context}: received {first}..={last}, expected {next} next");
                    next = last + 1;
                }
                "C" => {
                    let at = num(1);
                    assert!(at >= committed, "{context}: commit {at} returned after commit {committed}");
                    assert!(at <= next, "{context}: commit {at} returned, but seq {next} was never received");
                    committed = at;
                    self.commits += 1;
                }
                _ => {} // the test harness's own lines
            }
        }
        let log = ReadOnlyLog::open(dir).unwrap_or_else(|e| panic!("{context}: open read-only: {e}"));
        // The stored position, as read without opening the consumer (which
        // would not resume past the log's end).
        let stored = log.consumers().unwrap().into_iter().find(|i| i.name == NAME).and_then(|i| i.position).unwrap_or(0);
        assert!(stored >= committed, "{context}: the stored position is {stored}, but a commit of {committed} had returned");
        assert!(stored <= next, "{context}: the stored position is {stored}, past seq {next}, which was never received");
        let c = log.consumer(NAME).unwrap_or_else(|e| panic!("{context}: reopen the consumer: {e}"));
        let p = c.position();
        assert_eq!(p, stored, "{context}: the consumer resumes elsewhere than its stored position");
        // The round read on from where the last one resumed: nothing between is skipped.
        assert!(self.position <= self.covered, "{context}: resumed at {}, seqs from {} were never received", self.position, self.covered);
        self.covered = self.covered.max(next);
        self.commits_in_flight += u64::from(p > committed);
        self.redelivered += next - p;
        self.early += u64::from(!started);
        self.position = p;
    }
}

#[test]
fn consumer_sigkill_keeps_every_returned_commit_and_skips_nothing() {
    // Goal: a SIGKILL of a consumer's process never loses a commit that
    // returned and never commits past a record it was not handed. Method: a
    // writer thread appends model records (in some rounds none runs, in some
    // the child itself opens the log with `Log::open`); a child consumer
    // reads with every read call and commit style, reporting each record
    // received before anything can commit it and each commit after it
    // returned, and is killed at a random moment (some during its open).
    // After each kill the reopened consumer must resume between the last
    // reported commit and one past the last received record; the next
    // child must resume exactly there; in the end every seq written was
    // received.
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        consumer_child(Path::new(&dir), env_u64(SEED_ENV).unwrap_or(1), std::env::var_os(OWNER_ENV).is_some());
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let run = Run::from_env("consumer killed");
    let mut rng = Rng::new(run.seed ^ 0xC0);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    common::write_model_log(&dir, FIRST_RECORDS);
    let (started, mut done, mut written) = (Instant::now(), 0u32, FIRST_RECORDS);
    let mut known = Known::default();
    while done < run.kills && started.elapsed() < run.budget {
        // 0..=2: a writer thread appends meanwhile; 3: nothing writes;
        // 4: nothing writes and the child owns the log.
        let mode = rng.below(5);
        let writer = (mode <= 2).then(|| WriterThread::start(&dir, rng.next()));
        let mut envs = vec![(CHILD_ENV, dir.display().to_string()), (SEED_ENV, rng.next().to_string())];
        if mode == 4 {
            envs.push((OWNER_ENV, "1".to_string()));
        }
        let context = format!("kill {} (seed {}, mode {mode})", done + 1, run.seed);
        let mut child = Child::spawn(CONSUMER_TEST, &envs, &[OWNER_ENV]);
        // One kill in eight lands while the child opens; the rest at a
        // random moment after its consumer is open.
        if rng.below(8) == 0 {
            std::thread::sleep(micros(rng.below(3000)));
        } else {
            assert!(
                child.wait_until(STEP_TIMEOUT, |l| l.starts_with("START ")),
                "{context}: the child did not open its consumer within {STEP_TIMEOUT:?}"
            );
            std::thread::sleep(micros(rng.below(100_000)));
        }
        let ended = child.kill();
        ended.assert_killed(&context);
        if let Some(w) = writer {
            written = w.stop();
        }
        done += 1;
        known.round(&dir, &ended.lines, &context);
    }
    // The last consumer reads what is left: the whole log was received.
    let log = ReadOnlyLog::open(&dir).unwrap();
    assert_eq!(log.snapshot().next_seq(), written, "records in the log");
    let mut c = log.consumer(NAME).unwrap();
    assert_eq!(c.position(), known.position, "final reopen");
    assert!(known.position <= known.covered, "resumed at {}, seqs from {} were never received", known.position, known.covered);
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut next = c.position();
    while next < written {
        assert!(Instant::now() < deadline, "the final drain is stuck at {next} of {written}");
        if let Some(r) = c.next_timeout(Duration::from_millis(100)).unwrap() {
            check_model(&r, next);
            next += 1;
        }
    }
    assert!(c.try_next().unwrap().is_none(), "a record past the log's end");
    c.commit_sync().unwrap();
    eprintln!(
        "consumer crash: {done} kills in {:.1} s (consumer killed; {written} records, {} commits reported, {} stored but not yet \
         reported at the kill, {} records redelivered, {} kills during open)",
        started.elapsed().as_secs_f64(),
        known.commits,
        known.commits_in_flight,
        known.redelivered,
        known.early
    );
    assert!(done >= run.kills.min(10), "only {done} kills fit in the time budget");
}

/// The writer child: opens the log (recovering it), reports `OPEN <next
/// seq>`, then appends model records, singly and in batches, under a random
/// sync policy, reporting `ACK <n>` whenever every seq below `n` is durable.
fn writer_child(dir: &Path, seed: u64) {
    child_start();
    let mut rng = Rng::new(seed | 1);
    let policy = match rng.below(3) {
        0 => SyncPolicy::Never,
        1 => SyncPolicy::Always,
        _ => SyncPolicy::Background { bytes: Some(8192), interval: Duration::from_millis(2) },
    };
    let log = Log::open(dir, common::opts().sync_policy(policy)).expect("writer child: open");
    let mut w = log.writer().expect("writer child: writer");
    let first = w.next_seq();
    say(format!("OPEN {first}"));
    loop {
        if w.next_seq() - first >= LIFE_RECORDS {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        for _ in 0..1 + rng.below(8) {
            let seq = w.next_seq();
            if rng.below(4) == 0 {
                let end = seq + 2 + rng.below(5);
                let bodies: Vec<(Vec<u8>, Vec<u8>)> = (seq..end).map(|s| (payload_for(s), key_for(s))).collect();
                let entries: Vec<Entry<'_>> =
                    bodies.iter().zip(seq..).map(|((p, k), s)| Entry::new(p).key(k).timestamp(ts_for(s))).collect();
                assert_eq!(w.append_batch(&entries).expect("writer child: batch"), seq..end);
            } else {
                append_model(&mut w, seq);
            }
        }
        let durable = match policy {
            SyncPolicy::Never => {
                w.sync().expect("writer child: sync");
                w.next_seq()
            }
            _ => log.durable_seq().map_or(0, |s| s + 1),
        };
        say(format!("ACK {durable}"));
        std::thread::sleep(micros(rng.below(1000)));
    }
}

/// What the consumer thread of the writer test shares with the test.
#[derive(Default)]
struct Progress {
    /// The last commit that returned.
    committed: u64,
    /// One past the last seq the consumer received.
    received: u64,
    /// Set by the test at the end: read up to this seq, commit and stop.
    drain_to: Option<u64>,
    commits: u64,
    reopens: u64,
    redelivered: u64,
}

/// The consumer thread of the writer test: follows the log through
/// `ReadOnlyLog`s across the writer's deaths, in consumer lives of random
/// length and commit style, each resuming exactly at the last commit.
/// Returns the seq below which every seq was received. `spawning` is held
/// by the test while it spawns a child, and here from closing a consumer
/// to opening the next (see [`SERIAL`]).
fn follow(dir: PathBuf, seed: u64, shared: (Arc<Mutex<Progress>>, Arc<Mutex<()>>), stop: Arc<AtomicBool>, deadline: Instant) -> u64 {
    let (progress, spawning) = shared;
    let mut rng = Rng::new(seed | 1);
    let mut log = ReadOnlyLog::open(&dir).expect("consumer: open read-only");
    let mut covered = 0;
    let lock = || progress.lock().unwrap_or_else(|p| p.into_inner());
    let mut no_spawn = Some(spawning.lock().unwrap_or_else(|p| p.into_inner()));
    loop {
        let (style, opts) = CommitStyle::pick(&mut rng);
        let mut c = log.consumer_with(NAME, opts).expect("consumer: open");
        drop(no_spawn.take());
        let committed = lock().committed;
        assert_eq!(c.position(), committed, "a reopened consumer resumes at its last commit");
        assert!(committed <= covered, "resumed at {committed}, seqs from {covered} were never received");
        let mut next = committed;
        let life = rng.below(1000);
        while next - committed <= life {
            assert!(Instant::now() < deadline, "the consumer thread ran out of time at seq {next}");
            if stop.load(Ordering::Relaxed) {
                return covered;
            }
            if lock().drain_to.is_some_and(|end| next >= end) {
                c.commit_sync().expect("consumer: final commit");
                assert!(c.try_next().expect("consumer: read past the end").is_none(), "a record past the log's end");
                lock().committed = next;
                return covered;
            }
            let before = c.committed();
            let last = read_some(&mut c, &mut rng, next);
            let mut p = lock();
            if c.committed() != before {
                assert!(c.committed() >= p.committed, "commits go forward");
                p.committed = c.committed();
                p.commits += 1;
            }
            if let Some(last) = last {
                next = last + 1;
                covered = covered.max(next);
                p.received = p.received.max(next);
            }
            drop(p);
            if let Some(at) = style.commit(&mut c) {
                let mut p = lock();
                p.committed = at;
                p.commits += 1;
            }
        }
        no_spawn = Some(spawning.lock().unwrap_or_else(|p| p.into_inner()));
        drop(c);
        let mut p = lock();
        p.reopens += 1;
        p.redelivered += next - p.committed;
        drop(p);
        if rng.below(3) == 0 {
            log = ReadOnlyLog::open(&dir).expect("consumer: reopen read-only");
        }
    }
}

/// Waits up to `timeout` for a thread; `None` if it is still running (it
/// is then left behind: the test fails rather than hangs).
fn join_within<T>(handle: JoinHandle<T>, timeout: Duration) -> Option<std::thread::Result<T>> {
    let deadline = Instant::now() + timeout;
    while !handle.is_finished() {
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Some(handle.join())
}

/// The writer test's consumer thread; dropped (a failing test), it is
/// stopped and waited for before the log's directory goes.
struct Follower {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<u64>>,
}

impl Follower {
    fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Waits for the thread to end by itself, passing on its panic.
    fn join(mut self) -> u64 {
        let handle = self.handle.take().unwrap();
        match join_within(handle, 2 * STEP_TIMEOUT) {
            Some(Ok(covered)) => covered,
            Some(Err(e)) => std::panic::resume_unwind(e),
            None => panic!("the consumer thread did not finish within {:?}", 2 * STEP_TIMEOUT),
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = join_within(h, STEP_TIMEOUT);
        }
    }
}

#[test]
fn writer_sigkill_under_a_consumer_keeps_every_commit_and_skips_nothing() {
    // Goal: a SIGKILL of the writer's process, and the recovery after it,
    // never move a consumer's committed position backwards, never cut a
    // record the consumer received, and never make it skip one. Method: a
    // child appends and syncs, acknowledging what is durable, and is killed
    // at a random moment (some during its open and recovery); a consumer
    // thread of this process follows the log read-only across the deaths,
    // checking every record, committing in every style and reopening
    // itself at random (each reopen must resume exactly at its last
    // commit). After each kill the test sometimes recovers the log itself
    // and appends a record (else the next child recovers it), and checks:
    // every acknowledged record and every record the consumer received is
    // still there, and the stored position lies between the last commit
    // that returned and the last record received. In the end the consumer
    // reads to the end, and every seq in the log was received.
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        writer_child(Path::new(&dir), env_u64(SEED_ENV).unwrap_or(1));
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let run = Run::from_env("writer killed");
    let mut rng = Rng::new(run.seed ^ 0x3A);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    common::write_model_log(&dir, FIRST_RECORDS);
    let started = Instant::now();
    let progress = Arc::new(Mutex::new(Progress::default()));
    let spawning = Arc::new(Mutex::new(()));
    let stop = Arc::new(AtomicBool::new(false));
    let follower = {
        let (dir, shared, flag) = (dir.clone(), (progress.clone(), spawning.clone()), stop.clone());
        let (seed, deadline) = (rng.next(), started + run.budget + 3 * STEP_TIMEOUT);
        Follower { stop, handle: Some(std::thread::spawn(move || follow(dir, seed, shared, flag, deadline))) }
    };
    let lock = || progress.lock().unwrap_or_else(|p| p.into_inner());
    let (mut done, mut acked, mut stored, mut recoveries, mut early) = (0u32, FIRST_RECORDS, 0u64, 0u32, 0u32);
    while done < run.kills && started.elapsed() < run.budget && !follower.is_finished() {
        let context = format!("kill {} (seed {})", done + 1, run.seed);
        // Everything the consumer received so far was published by a
        // writer that is dead now: the next open must keep all of it.
        let seen = lock().received;
        let envs = [(CHILD_ENV, dir.display().to_string()), (SEED_ENV, rng.next().to_string())];
        let no_reopen = spawning.lock().unwrap_or_else(|p| p.into_inner());
        let mut child = Child::spawn(WRITER_TEST, &envs, &[OWNER_ENV]);
        drop(no_reopen);
        if rng.below(8) == 0 {
            std::thread::sleep(micros(rng.below(5000)));
        } else {
            assert!(
                child.wait_until(STEP_TIMEOUT, |l| l.starts_with("OPEN ")),
                "{context}: the writer did not open the log within {STEP_TIMEOUT:?}"
            );
            std::thread::sleep(micros(rng.below(150_000)));
        }
        let ended = child.kill();
        ended.assert_killed(&context);
        done += 1;
        early += u32::from(!ended.lines.iter().any(|l| l.starts_with("OPEN ")));
        for line in &ended.lines {
            let (tag, n) = line.split_once(' ').and_then(|(t, n)| Some((t, n.parse::<u64>().ok()?))).unwrap_or(("", 0));
            match tag {
                "OPEN" => {
                    assert!(n >= acked, "{context}: the writer recovered {n} records, {acked} were acknowledged durable");
                    assert!(n >= seen, "{context}: the writer recovered {n} records, the consumer had received {seen}");
                }
                "ACK" => {
                    assert!(n >= acked, "{context}: acknowledged {n} after {acked}");
                    acked = n;
                }
                _ => {}
            }
        }
        if rng.below(2) == 0 {
            // Recover here, and go on writing from this process.
            let seen = lock().received;
            let log = Log::open(&dir, common::opts()).unwrap_or_else(|e| panic!("{context}: recovery: {e}"));
            let n = log.next_seq();
            assert!(n >= acked, "{context}: recovered {n} records, {acked} were acknowledged durable");
            assert!(n >= seen, "{context}: recovered {n} records, the consumer had received {seen}");
            let mut w = log.writer().unwrap();
            append_model(&mut w, n);
            w.sync().unwrap();
            drop(w);
            log.close().unwrap();
            acked = n + 1;
            recoveries += 1;
        }
        // The stored position: not behind the last commit that returned,
        // not past the last record received, never backwards.
        let low = lock().committed;
        let listed = ReadOnlyLog::open(&dir).unwrap().consumers().unwrap().into_iter().find(|i| i.name == NAME).and_then(|i| i.position);
        let (listed, high) = (listed.unwrap_or(0), lock().received);
        assert!(low <= listed && listed <= high, "{context}: stored position {listed}, last commit {low}, received up to {high}");
        assert!(listed >= stored, "{context}: the stored position went back from {stored} to {listed}");
        stored = listed;
    }
    if follower.is_finished() {
        // Only a failure ends it early: report that failure.
        let covered = follower.join();
        panic!("the consumer thread stopped early, at {covered}");
    }
    // A final recovery; then the consumer reads to the end.
    let log = Log::open(&dir, common::opts()).unwrap();
    let total = log.next_seq();
    assert!(total >= acked.max(lock().received), "final recovery: {total} records");
    common::check_model_log(&log, total);
    log.close().unwrap();
    lock().drain_to = Some(total);
    let covered = follower.join();
    assert_eq!(covered, total, "seqs received by the consumer");
    let listed = ReadOnlyLog::open(&dir).unwrap().consumers().unwrap().into_iter().find(|i| i.name == NAME).and_then(|i| i.position);
    assert_eq!(listed, Some(total), "the final commit");
    let p = lock();
    eprintln!(
        "consumer crash: {done} kills in {:.1} s (writer killed; {total} records, {} commits, {} consumer reopens, {} records \
         redelivered, {recoveries} recoveries by the test, {early} kills during open)",
        started.elapsed().as_secs_f64(),
        p.commits,
        p.reopens,
        p.redelivered
    );
    assert!(done >= run.kills.min(10), "only {done} kills fit in the time budget");
}
