//! Crash test of tiered storage: a child process appends to a log tiered to
//! a real S3 server (moto) with a local policy that evicts almost every
//! sealed segment, so uploads, read-back checks, manifest writes and
//! evictions go on all the time; it is killed with SIGKILL at random
//! moments.
//!
//! The promise under test (`src/tiering/upload.rs`): a crash at any point
//! leaves each segment either local, or remote and confirmed (listed in the
//! local copy of the manifest, its object in the bucket matching the listed
//! `file_blake3`), and no acknowledged record is lost. After every kill the
//! parent checks the directory as the crash left it, then reopens the log
//! in-process with the same tier options and reads every record back
//! (evicted history through the store) and verifies it.
//!
//! The child is a run of this test binary (`--exact <name>`) with
//! `VARVELOG_TIER_CHILD` set to the log directory; it prints `ACK <n>` on
//! stdout (flushed) after each successful `sync()`, meaning every seq below
//! `n` is durable, and exits by itself after 30 s should nobody kill it.
//! `VARVELOG_TIER_KILLS` (default 12) and `VARVELOG_TIER_SECS` (default 60)
//! bound the run; `VARVELOG_TIER_SEED` replays one; `VARVELOG_TIER_KEEP`
//! (default 2) is how many segments' worth of bytes stay local;
//! `VARVELOG_TIER_DIR` names a new directory to put the log in (kept
//! afterwards, for a look) instead of a temporary one.
#![cfg(feature = "tiered")]

mod common;
#[path = "support/s3.rs"]
mod s3;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::child::Child;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use varvelog::{Entry, Log, Options, Retention, SyncPolicy, TierOptions};

const TEST_NAME: &str = "sigkill_during_tiering_leaves_every_segment_local_or_remote_and_confirmed";
/// The log directory; set for a child.
const CHILD_ENV: &str = "VARVELOG_TIER_CHILD";
const ENDPOINT_ENV: &str = "VARVELOG_TIER_ENDPOINT";
const BUCKET_ENV: &str = "VARVELOG_TIER_BUCKET";
const SEED_ENV: &str = "VARVELOG_TIER_SEED";

const SEGMENT: u64 = 64 << 10;
/// The log's folder in the bucket.
const PREFIX: &str = "c";
/// A child still alive after this exits by itself.
const CHILD_LIFE: Duration = Duration::from_secs(30);
/// Payload bytes one child appends at most (then it only lets the uploader
/// catch up), so the log, which the parent reads whole after every kill,
/// stays small.
const LIFE_BYTES: u64 = 6 * SEGMENT;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

/// A client of `endpoint`'s `bucket` (see `s3::client`).
fn store(endpoint: &str, bucket: &str) -> Arc<dyn ObjectStore> {
    s3::client(endpoint, bucket)
}

/// The options of every process that opens the log: uploads and evictions
/// all the time (everything but the newest ~2 segments leaves the disk).
/// `VARVELOG_TIER_KEEP` (default 2) sets how many segments' worth of bytes
/// stay local.
fn options(store: Arc<dyn ObjectStore>, policy: SyncPolicy) -> Options {
    let keep = env_u64("VARVELOG_TIER_KEEP").unwrap_or(2);
    let tier = TierOptions::new(store, PREFIX)
        .poll_interval(Duration::from_millis(5))
        .max_backoff(Duration::from_millis(200))
        .keep_local(Retention::new().max_total_bytes(keep * SEGMENT));
    Options::new().segment_bytes(SEGMENT).sync_policy(policy).tier(tier)
}

/// The payload of `seq`: its seq in text, then 100 to 899 bytes derived
/// from it.
fn payload(seq: u64) -> Vec<u8> {
    let mut r = fastrand::Rng::with_seed(seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5eed);
    let mut p = format!("seq {seq};").into_bytes();
    let len = r.usize(100..900);
    p.extend((0..len).map(|_| r.u8(..)));
    p
}

fn key(seq: u64) -> Vec<u8> {
    format!("k{}", seq % 37).into_bytes()
}

/// One line on stdout, written and flushed at once.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{line}\n").as_bytes()).unwrap();
    out.flush().unwrap();
}

/// The child: appends keyed records in bursts (some as batches) under a
/// random sync policy, `sync()`s after each burst and acknowledges what is
/// then durable.
fn child(dir: &Path, seed: u64) {
    // End the line the harness began (`test <name> ... `).
    say("");
    std::thread::spawn(|| {
        std::thread::sleep(CHILD_LIFE);
        eprintln!("child: not killed after {CHILD_LIFE:?}, exiting");
        std::process::exit(3);
    });
    let endpoint = std::env::var(ENDPOINT_ENV).expect("endpoint");
    let bucket = std::env::var(BUCKET_ENV).expect("bucket");
    let mut rng = fastrand::Rng::with_seed(seed);
    let policy = match rng.u8(..3) {
        0 => SyncPolicy::Never,
        1 => SyncPolicy::Always,
        _ => SyncPolicy::Background { bytes: Some(16 << 10), interval: Duration::from_millis(2) },
    };
    let log = Log::open(dir, options(store(&endpoint, &bucket), policy)).expect("child: open");
    let mut w = log.writer().expect("child: writer");
    let mut bytes = 0u64;
    loop {
        if bytes >= LIFE_BYTES {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        for _ in 0..rng.u32(1..=8) {
            let seq = w.next_seq();
            let n = if rng.u8(..4) == 0 { rng.u64(2..=6) } else { 1 };
            let bodies: Vec<(Vec<u8>, Vec<u8>)> = (seq..seq + n).map(|s| (payload(s), key(s))).collect();
            bytes += bodies.iter().map(|(p, _)| p.len() as u64).sum::<u64>();
            if n == 1 {
                assert_eq!(w.append_entry(Entry::new(&bodies[0].0).key(&bodies[0].1)).expect("child: append"), seq);
            } else {
                let entries: Vec<Entry<'_>> = bodies.iter().map(|(p, k)| Entry::new(p).key(k)).collect();
                assert_eq!(w.append_batch(&entries).expect("child: batch"), seq..seq + n);
            }
        }
        w.sync().expect("child: sync");
        say(&format!("ACK {}", w.next_seq()));
        if rng.bool() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Blocking reads of the bucket, for the checks.
struct Bucket {
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Runtime,
    /// Objects (key, listed `file_blake3`) already read and matched. Each
    /// reopened log then reads them all again through the store, and the
    /// fetch checks the same hash, so they are not read twice per round.
    confirmed: RefCell<HashSet<(String, String)>>,
}

impl Bucket {
    fn new(store: Arc<dyn ObjectStore>) -> Bucket {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Bucket { store, rt, confirmed: RefCell::default() }
    }

    /// The object `key`, or `None` if there is none.
    fn get(&self, key: &str) -> Option<bytes::Bytes> {
        let path = ObjectPath::from(key);
        match self.rt.block_on(async { self.store.get(&path).await?.bytes().await }) {
            Ok(b) => Some(b),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => panic!("get {key}: {e}"),
        }
    }

    /// Checks that `e`'s object is in the bucket, whole, and matches it.
    fn confirm(&self, e: &Listed, context: &str) {
        if !self.confirmed.borrow_mut().insert((e.key.clone(), e.blake3.clone())) {
            return;
        }
        let body = self
            .get(&e.key)
            .unwrap_or_else(|| panic!("{context}: segment at seq {} is listed but its object {} is missing", e.base, e.key));
        assert_eq!(body.len() as u64, e.bytes, "{context}: object {} has the wrong length", e.key);
        assert_eq!(blake3::hash(&body).to_hex().as_str(), e.blake3, "{context}: object {} does not match the listed file_blake3", e.key);
    }
}

/// A manifest entry, as the checks need it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Listed {
    base: u64,
    end: u64,
    bytes: u64,
    key: String,
    prev_digest: String,
    digest: String,
    blake3: String,
}

#[derive(Debug, Default)]
struct Manifest {
    generation: u64,
    segments: Vec<Listed>,
}

impl Manifest {
    fn parse(bytes: &[u8], source: &str) -> Manifest {
        let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{source}: not JSON: {e}"));
        let u = |s: &serde_json::Value, f: &str| s[f].as_u64().unwrap_or_else(|| panic!("{source}: {f} is not a number in {s}"));
        let t =
            |s: &serde_json::Value, f: &str| s[f].as_str().unwrap_or_else(|| panic!("{source}: {f} is not a string in {s}")).to_string();
        let segments: Vec<Listed> = v["segments"]
            .as_array()
            .unwrap_or_else(|| panic!("{source}: no segments array"))
            .iter()
            .map(|s| Listed {
                base: u(s, "base_seq"),
                end: u(s, "end_seq"),
                bytes: u(s, "bytes"),
                key: t(s, "key"),
                prev_digest: t(s, "prev_digest"),
                digest: t(s, "digest"),
                blake3: t(s, "file_blake3"),
            })
            .collect();
        // No retention or compaction here: the listed segments start at 0
        // and follow each other.
        if let Some(first) = segments.first() {
            assert_eq!(first.base, 0, "{source}: the first listed segment starts at seq {}", first.base);
        }
        for p in segments.windows(2) {
            assert_eq!(p[0].end, p[1].base, "{source}: listed segments leave a gap");
            assert_eq!(
                p[1].prev_digest, p[0].digest,
                "{source} (generation {}): the segment at seq {} does not link to the digest of the one before",
                v["generation"], p[1].base
            );
        }
        Manifest { generation: u(&v, "generation"), segments }
    }

    /// The local copy in `dir`, or an empty one if there is none yet.
    fn local(dir: &Path) -> Manifest {
        let path = dir.join("tier").join("manifest.json");
        match std::fs::read(&path) {
            Ok(b) => Manifest::parse(&b, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
            Err(e) => panic!("read {}: {e}", path.display()),
        }
    }

    fn entry(&self, base: u64) -> Option<&Listed> {
        self.segments.iter().find(|e| e.base == base)
    }
}

/// Base seqs of the segment files in `dir`.
fn local_segments(dir: &Path) -> Vec<u64> {
    let mut bases: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let digits = name.strip_suffix(".seg")?;
            (digits.len() == 20).then(|| digits.parse().ok()).flatten()
        })
        .collect();
    bases.sort_unstable();
    bases
}

/// What the directory held right after a kill.
struct AfterKill {
    generation: u64,
    /// Segments only in the store (base seqs).
    remote: Vec<u64>,
}

/// Check (b) on the directory as the crash left it, before anything opens
/// it: every seq below the first local segment file is in a segment the
/// local manifest lists, whose object is in the bucket and matches; and the
/// bucket's manifest is the local copy's generation or the next one (a
/// crash between the two writes), confirming every segment the local copy
/// lists.
fn check_dir(dir: &Path, bucket: &Bucket, acked: u64, context: &str) -> AfterKill {
    let local = local_segments(dir);
    let m = Manifest::local(dir);
    if acked > 0 {
        assert!(!local.is_empty(), "{context}: no segment file left, {acked} records acknowledged");
    }
    let first_local = local.first().copied().unwrap_or(u64::MAX);
    // What opening puts before the local files (`tiering::attach`).
    let remote: Vec<&Listed> = m.segments.iter().take_while(|e| e.end <= first_local).collect();
    if let Some(&first) = local.first() {
        let covered = remote.last().map_or(0, |e| e.end);
        assert_eq!(
            covered, first,
            "{context}: seqs {covered}..{first} are neither in a local segment file nor in a segment the local manifest (generation {}) lists; local files start at {first}, listed: {:?}",
            m.generation,
            m.segments.iter().map(|e| e.base..e.end).collect::<Vec<_>>()
        );
    }
    for e in &remote {
        bucket.confirm(e, context);
    }
    if let Some(body) = bucket.get(&format!("{PREFIX}/manifest.json")) {
        let theirs = Manifest::parse(&body, &format!("{context}: the bucket's manifest"));
        assert!(
            theirs.generation == m.generation || theirs.generation == m.generation + 1,
            "{context}: the bucket's manifest is at generation {}, the local copy at {}",
            theirs.generation,
            m.generation
        );
        for e in &m.segments {
            assert_eq!(
                theirs.entry(e.base),
                Some(e),
                "{context}: the bucket's manifest does not list the local copy's segment at seq {}",
                e.base
            );
        }
    } else {
        assert!(m.segments.is_empty(), "{context}: a local manifest (generation {}) and none in the bucket", m.generation);
    }
    AfterKill { generation: m.generation, remote: remote.iter().map(|e| e.base).collect() }
}

/// Checks (a), (b) and (c) on the reopened log: every record from seq 0
/// (at least `acked` of them) reads back with its payload and key, through
/// the iterator and by point reads; each segment in view is local (its file
/// exists) or remote and confirmed; `verify` finds nothing wrong. Returns
/// the records and the remote segments in view.
fn check_log(log: &Log, bucket: &Bucket, after: &AfterKill, acked: u64, rng: &mut fastrand::Rng, context: &str) -> (u64, usize) {
    let snap = log.snapshot();
    let info = snap.segment_info();
    // The log's own uploader may have evicted more since it opened, and
    // its local manifest only grows: read it after the snapshot.
    let m = Manifest::local(log.dir());
    let remote: BTreeSet<u64> = info.iter().filter(|s| s.remote).map(|s| s.base_seq).collect();
    for base in &after.remote {
        assert!(remote.contains(base), "{context}: the segment at seq {base} was remote after the kill, and is not in the reopened log");
    }
    for s in &info {
        if s.remote || !s.path.exists() {
            // Evicted after `m` was read: listed in a newer local copy.
            let e = m.entry(s.base_seq).cloned().or_else(|| Manifest::local(log.dir()).entry(s.base_seq).cloned());
            let e = e.unwrap_or_else(|| {
                panic!("{context}: segment at seq {} is not local ({}) and not in the local manifest", s.base_seq, s.path.display())
            });
            assert_eq!((e.base, e.end), (s.base_seq, s.end_seq), "{context}: the manifest lists another segment at seq {}", s.base_seq);
            bucket.confirm(&e, context);
        }
    }
    assert_eq!(snap.first_seq().unwrap_or(0), 0, "{context}: the log does not start at seq 0");
    let mut expect = 0u64;
    for r in snap.iter() {
        let r = r.unwrap_or_else(|e| panic!("{context}: reading seq {expect}: {e}"));
        assert_eq!(r.seq(), expect, "{context}: gap or repeat");
        assert!(r.payload() == payload(expect).as_slice(), "{context}: seq {expect}: wrong payload");
        assert_eq!(r.key(), Some(key(expect).as_slice()), "{context}: seq {expect}: wrong key");
        expect += 1;
    }
    assert!(expect >= acked, "{context}: {acked} records acknowledged durable, {expect} read back");
    for _ in 0..20.min(expect) {
        let seq = rng.u64(..expect);
        let r =
            snap.get(seq).unwrap_or_else(|e| panic!("{context}: get({seq}): {e}")).unwrap_or_else(|| panic!("{context}: get({seq}): none"));
        assert!(r.payload() == payload(seq).as_slice(), "{context}: get({seq}): wrong payload");
    }
    let report = log.verify();
    assert!(report.is_ok(), "{context}: verify: {:?}; opening found {:?}", report.problems, log.recovery_report());
    (expect, remote.len())
}

#[test]
fn sigkill_during_tiering_leaves_every_segment_local_or_remote_and_confirmed() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir), env_u64(SEED_ENV).unwrap_or(1));
        return;
    }
    let kills = env_u64("VARVELOG_TIER_KILLS").unwrap_or(12);
    let budget = Duration::from_secs(env_u64("VARVELOG_TIER_SECS").unwrap_or(60));
    let seed = env_u64(SEED_ENV)
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7));
    eprintln!("tier crash test seed {seed} (replay with {SEED_ENV}={seed})");
    let mut rng = fastrand::Rng::with_seed(seed);
    let server = s3::S3Server::shared();
    let bucket_name = server.new_bucket();
    let endpoint = server.endpoint();
    let store = store(&endpoint, &bucket_name);
    let bucket = Bucket::new(store.clone());
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = std::env::var_os("VARVELOG_TIER_DIR").map_or_else(|| tmp.path().join("log"), PathBuf::from);

    let started = Instant::now();
    let (mut done, mut acked, mut records) = (0u64, 0u64, 0u64);
    // The local manifest's generation when each child started, the most
    // seen, kills during whose life it grew, kills after which some
    // segments were only remote, and the most remote segments seen.
    let (mut generation, mut max_generation, mut grew, mut evicted_kills, mut max_remote) = (0u64, 0u64, 0u64, 0u64, 0usize);
    while done < kills && started.elapsed() < budget {
        let context = format!("kill {} (seed {seed})", done + 1);
        let envs = [
            (CHILD_ENV, dir.display().to_string()),
            (ENDPOINT_ENV, endpoint.clone()),
            (BUCKET_ENV, bucket_name.clone()),
            (SEED_ENV, rng.u64(..).to_string()),
        ];
        let after = Duration::from_millis(rng.u64(50..=600));
        let spawned = Instant::now();
        let child = Child::spawn(TEST_NAME, &envs, &[]);
        std::thread::sleep(after.saturating_sub(spawned.elapsed()));
        let ended = child.kill();
        ended.assert_killed(&context);
        let acks = ended.acks();
        for n in acks {
            assert!(n >= acked, "{context}: the child acknowledged {n} after {acked} had been");
            acked = n;
        }
        done += 1;
        if !dir.exists() {
            continue; // killed before it created the log
        }
        let state = check_dir(&dir, &bucket, acked, &context);
        if state.generation > generation {
            grew += 1;
        }
        max_generation = max_generation.max(state.generation);
        if !state.remote.is_empty() {
            evicted_kills += 1;
        }
        let log = Log::open(&dir, options(store.clone(), SyncPolicy::Never)).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
        let (n, remote) = check_log(&log, &bucket, &state, acked, &mut rng, &context);
        records = n;
        max_remote = max_remote.max(remote);
        log.close().unwrap_or_else(|e| panic!("{context}: close: {e}"));
        generation = Manifest::local(&dir).generation;
        max_generation = max_generation.max(generation);
    }
    let took = started.elapsed();
    eprintln!(
        "tier crash: {done} kills in {:.1} s, seed {seed}, max generation {max_generation}, \
         generation grew in {grew} child lives, {evicted_kills} kills left evicted segments (at most {max_remote} remote), \
         {records} records, {acked} acknowledged",
        took.as_secs_f64()
    );
    assert!(done >= kills.min(3), "only {done} kills fit in {budget:?}");
    assert!(acked > 0, "no child acknowledged anything");
    assert!(grew > 0 && max_generation > 0, "no child wrote a manifest before its kill");
    assert!(evicted_kills > 0 && max_remote > 0, "no kill left an evicted segment behind");

    // Last, with no crash: everything uploads and still reads back.
    let log = Log::open(&dir, options(store.clone(), SyncPolicy::Never)).expect("final reopen");
    log.wait_uploaded(Duration::from_secs(60)).expect("final uploads");
    let state = AfterKill { generation: 0, remote: Vec::new() };
    check_log(&log, &bucket, &state, acked, &mut rng, "final");
    log.close().expect("final close");
}
