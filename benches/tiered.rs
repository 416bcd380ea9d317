//! Tiered storage against a real S3-compatible server: moto on loopback,
//! started by the bench itself (`tests/support/s3.rs`; `moto_server` must be
//! on `PATH` or named by `MOTO_SERVER`).
//!
//! `cargo bench --features tiered --bench tiered` (30-40 s). Not
//! criterion: each figure is a whole pass over ~100 MiB, and the
//! sides alternate in one run so that each has a baseline from the same
//! minutes (docs/benchmarks.md, "Tiered storage").
//!
//! 1. Upload. One local log, written without tiering (8 MiB segments, 100 MiB
//!    of 100-byte payloads, every segment sealed), is uploaded in each
//!    round by four sides, each into a bucket of its own on a server reset
//!    just before (moto keeps objects in memory, and a side that follows
//!    others into a full server is slower), the order rotating by one each
//!    round so that every side takes every place equally often:
//!    - `varvelog`: the directory opened with `Options::tier`, timed from
//!      `Log::open` until `wait_uploaded` returns: each segment put, read
//!      back and hashed against the file, a manifest put (conditional) and
//!      its local copy (synced) per segment. The local copy (`<dir>/tier`)
//!      is removed between rounds so that the next round uploads again;
//!    - `put`: `ObjectStore::put` of the same files' bytes (read into memory
//!      beforehand), one after another on a current-thread runtime;
//!    - `put+get`: the same, each put followed by a GET of the object, the
//!      read-back varvelog does to check an upload;
//!    - `steps`: what varvelog's uploader does per segment, rebuilt from
//!      outside and timed step by step: blake3 of the bytes, put, GET,
//!      blake3 of the object, a conditional put of a manifest-sized body
//!      (it grows by 700 bytes a segment, as the JSON manifest does), and a
//!      local copy of it written, synced, renamed and the directory synced.
//!      Its total should come close to the `varvelog` side's; its steps say
//!      where that side's time goes.
//! 2. Reads. The log uploaded once more by varvelog (untimed), read through
//!    `ReadOnlyLog::open_remote_with` with a fresh cache directory each
//!    round: a full `snapshot().iter()` scan summing payload lengths, cold
//!    (every segment fetched, hashed and written to the cache) and then warm
//!    (a new snapshot of the same reader: every segment a cache hit), against
//!    the same scan of the local directory through `ReadOnlyLog::open`
//!    (page-cached files), the order alternating. The local reader is new
//!    each round and scans twice: its first scan maps the files (page
//!    faults), as the cold one does; its second is the warm one's bound.
//!
//! Every round's figures are printed, then a table of medians.

#[path = "../tests/support/s3.rs"]
mod s3;

#[path = "common/mod.rs"]
mod common;
use common::median;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use s3::S3Server;
use varvelog::{Log, Options, ReadOnlyLog, Snapshot, TierOptions};

/// Segment size of the log (and of each object).
const SEGMENT: u64 = 8 << 20;
/// Payload bytes per record.
const PAYLOAD: usize = 100;
/// Payload + frame header, padded to 8 (no key).
const FRAMED: u64 = (32 + PAYLOAD as u64).next_multiple_of(8);
/// Frames written: about this many bytes of segments.
const LOG_BYTES: u64 = 100 << 20;
/// Upload rounds (each: varvelog, put, put+get, steps, rotating): a
/// multiple of 4, so that each side takes each place as often.
const UPLOAD_ROUNDS: usize = 8;
/// Read rounds (each: cold + warm, local twice).
const READ_ROUNDS: usize = 7;
/// Bytes a manifest entry takes in varvelog's (pretty) JSON manifest, about.
const MANIFEST_ENTRY: usize = 700;
/// The prefix every side writes under.
const PREFIX: &str = "bench/log";
/// Bound on one side's upload.
const WAIT: Duration = Duration::from_secs(60);

/// A client of `endpoint`'s `bucket` (see `s3::client`).
fn store(endpoint: &str, bucket: &str) -> Arc<dyn ObjectStore> {
    s3::client(endpoint, bucket)
}

fn tier(store: Arc<dyn ObjectStore>) -> TierOptions {
    TierOptions::new(store, PREFIX).poll_interval(Duration::from_millis(10))
}

/// A sealed segment file: its name and bytes.
struct SegmentFile {
    name: String,
    bytes: Bytes,
}

/// Writes the log: `LOG_BYTES` of frames, the last segment rolled so that
/// every one is sealed; returns the records written.
fn fill(dir: &Path) -> u64 {
    let log = Log::open(dir, Options::new().segment_bytes(SEGMENT)).expect("open log");
    let mut w = log.writer().expect("writer");
    let body = vec![0x5Au8; PAYLOAD];
    let records = LOG_BYTES / FRAMED;
    for _ in 0..records {
        w.append(&body).expect("append");
    }
    w.roll().expect("roll");
    drop(w);
    log.close().expect("close");
    records
}

/// The sealed segment files of the log in `dir`, oldest first.
fn sealed_files(dir: &Path) -> Vec<SegmentFile> {
    let ro = ReadOnlyLog::open(dir).expect("open read-only");
    let files: Vec<SegmentFile> = ro
        .snapshot()
        .segment_info()
        .into_iter()
        .filter(|s| s.sealed && !s.remote)
        .map(|s| SegmentFile {
            name: s.path.file_name().expect("file name").to_string_lossy().into_owned(),
            bytes: Bytes::from(std::fs::read(&s.path).expect("read segment")),
        })
        .collect();
    assert!(!files.is_empty(), "no sealed segments in {}", dir.display());
    files
}

/// The `varvelog` side: opens `dir` tiered to `store`, waits for every
/// sealed segment to be uploaded and confirmed. Returns the time from open
/// to confirmation.
fn upload_varvelog(dir: &Path, store: Arc<dyn ObjectStore>, files: &[SegmentFile], read_back: bool) -> Duration {
    // Without its local manifest copy the log uploads everything again.
    remove_tier_dir(dir);
    let t0 = Instant::now();
    let log = Log::open(dir, Options::new().segment_bytes(SEGMENT).tier(tier(store).read_back_uploads(read_back))).expect("open tiered");
    log.wait_uploaded(WAIT).expect("uploads");
    let took = t0.elapsed();
    let stats = log.tier_stats().expect("tiered");
    let bytes: u64 = files.iter().map(|f| f.bytes.len() as u64).sum();
    assert_eq!((stats.uploaded_segments, stats.uploaded_bytes), (files.len() as u64, bytes), "{stats:?}");
    if stats.upload_errors > 0 {
        eprintln!("  note: {} failed attempts (retried): {:?}", stats.upload_errors, stats.last_error);
    }
    log.close().expect("close");
    remove_tier_dir(dir);
    took
}

fn remove_tier_dir(dir: &Path) {
    match std::fs::remove_dir_all(dir.join("tier")) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("remove {}/tier: {e}", dir.display()),
    }
}

/// The raw sides: each file put under the prefix, one after another, and
/// with `read_back` each object read back after its put.
fn upload_raw(store: Arc<dyn ObjectStore>, files: &[SegmentFile], read_back: bool) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let t0 = Instant::now();
        for f in files {
            let path = ObjectPath::from(format!("{PREFIX}/segments/{}", f.name));
            store.put(&path, PutPayload::from(f.bytes.clone())).await.expect("put");
            if read_back {
                let back = store.get(&path).await.expect("get").bytes().await.expect("get body");
                assert_eq!(back.len(), f.bytes.len());
            }
        }
        t0.elapsed()
    })
}

/// The time of each step of the `steps` side, summed over the segments.
#[derive(Clone, Copy, Default)]
struct Steps {
    hash: Duration,
    put: Duration,
    get: Duration,
    manifest_put: Duration,
    local_copy: Duration,
}

impl Steps {
    fn total(&self) -> Duration {
        self.hash + self.put + self.get + self.manifest_put + self.local_copy
    }
}

/// The `steps` side: varvelog's upload pass rebuilt from outside, each step
/// timed; the local copies go to `local`.
fn upload_steps(store: Arc<dyn ObjectStore>, files: &[SegmentFile], local: &Path) -> (Duration, Steps) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let manifest = ObjectPath::from(format!("{PREFIX}/manifest.json"));
    let (tmp, copy) = (local.join("manifest.json.tmp"), local.join("manifest.json"));
    rt.block_on(async {
        let mut s = Steps::default();
        let mut etag: Option<String> = None;
        let t0 = Instant::now();
        for (i, f) in files.iter().enumerate() {
            let path = ObjectPath::from(format!("{PREFIX}/segments/{}", f.name));
            let t = Instant::now();
            let hash = blake3::hash(&f.bytes);
            s.hash += t.elapsed();
            let t = Instant::now();
            store.put(&path, PutPayload::from(f.bytes.clone())).await.expect("put");
            s.put += t.elapsed();
            let t = Instant::now();
            let back = store.get(&path).await.expect("get").bytes().await.expect("get body");
            s.get += t.elapsed();
            let t = Instant::now();
            assert_eq!(blake3::hash(&back), hash, "object read back");
            s.hash += t.elapsed();
            let body = vec![b' '; MANIFEST_ENTRY * (i + 1)];
            let mode = match etag.take() {
                Some(e_tag) => PutMode::Update(UpdateVersion { e_tag: Some(e_tag), version: None }),
                None => PutMode::Create,
            };
            let t = Instant::now();
            let put = store.put_opts(&manifest, PutPayload::from(body.clone()), PutOptions { mode, ..PutOptions::default() });
            etag = put.await.expect("manifest put").e_tag;
            s.manifest_put += t.elapsed();
            let t = Instant::now();
            write_synced(&tmp, &body);
            std::fs::rename(&tmp, &copy).expect("rename");
            std::fs::File::open(local).and_then(|d| d.sync_all()).expect("sync dir");
            s.local_copy += t.elapsed();
        }
        (t0.elapsed(), s)
    })
}

fn write_synced(path: &Path, body: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("create");
    f.write_all(body).expect("write");
    f.sync_all().expect("fsync");
}

/// Scans `snap` from the start: (records, payload bytes).
fn scan(snap: &Snapshot) -> (u64, u64) {
    let (mut n, mut bytes) = (0u64, 0u64);
    for r in snap.iter() {
        bytes += r.expect("record").payload().len() as u64;
        n += 1;
    }
    (n, bytes)
}

/// A cold and a warm scan of the bucket through a reader with a fresh
/// cache: (open, cold scan, warm scan).
fn read_remote(store: Arc<dyn ObjectStore>, records: u64, segments: u64) -> (Duration, Duration, Duration) {
    let cache = tempfile::tempdir().expect("cache dir");
    let t0 = Instant::now();
    let ro = ReadOnlyLog::open_remote_with(tier(store).cache_dir(cache.path())).expect("open remote");
    let opened = t0.elapsed();
    let t1 = Instant::now();
    let cold = scan(&ro.snapshot());
    let cold_t = t1.elapsed();
    let t2 = Instant::now();
    let warm = scan(&ro.snapshot());
    let warm_t = t2.elapsed();
    assert_eq!((cold.0, warm.0), (records, records), "records read");
    let stats = ro.tier_stats().expect("remote");
    assert_eq!(stats.fetched_segments, segments, "every segment fetched once: {stats:?}");
    (opened, cold_t, warm_t)
}

/// Two scans of the local files through a new reader: (first, again).
fn read_local(dir: &Path, records: u64) -> (Duration, Duration) {
    let ro = ReadOnlyLog::open(dir).expect("open read-only");
    let t0 = Instant::now();
    let (n, _) = scan(&ro.snapshot());
    let first = t0.elapsed();
    let t1 = Instant::now();
    let (m, _) = scan(&ro.snapshot());
    let again = t1.elapsed();
    assert_eq!((n, m), (records, records), "records read");
    (first, again)
}

fn mb_s(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / 1e6 / t.as_secs_f64()
}

fn list(xs: &[f64], digits: usize) -> String {
    xs.iter().map(|x| format!("{x:.digits$}")).collect::<Vec<_>>().join(" / ")
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Varvelog,
    /// `TierOptions::read_back_uploads(false)`.
    Unchecked,
    Put,
    PutGet,
    Steps,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Varvelog => "varvelog",
            Side::Unchecked => "no read-back",
            Side::Put => "put",
            Side::PutGet => "put+get",
            Side::Steps => "steps",
        }
    }
}

fn main() {
    let started = Instant::now();
    let server = S3Server::start();
    let endpoint = server.endpoint();
    let work = tempfile::tempdir().expect("temp dir");
    let dir: PathBuf = work.path().join("log");
    let copies = work.path().join("manifest-copies");
    std::fs::create_dir_all(&copies).expect("create dir");
    let records = fill(&dir);
    let files = sealed_files(&dir);
    let bytes: u64 = files.iter().map(|f| f.bytes.len() as u64).sum();
    let segments = files.len() as u64;
    println!(
        "tiered: {segments} sealed segments of {} MiB, {:.1} MB, {records} records of {PAYLOAD} bytes; moto at {endpoint}",
        SEGMENT >> 20,
        bytes as f64 / 1e6
    );

    println!("\nupload, MB/s ({UPLOAD_ROUNDS} rounds; each side a new bucket on a server reset before it)");
    println!(
        "{:<6} {:<44} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>6} {:>6}  steps: hash / put / get / manifest put / local copy, ms",
        "round", "order", "varvelog", "no rb", "put", "put+get", "steps", "v/put", "v/p+g", "v/stp", "nrb/p"
    );
    let (mut v, mut p, mut pg, mut st) = (vec![], vec![], vec![], vec![]);
    let (mut r_put, mut r_pg, mut r_st) = (vec![], vec![], vec![]);
    let (mut nrb, mut r_nrb) = (vec![], vec![]);
    let mut phases: Vec<Steps> = vec![];
    for round in 0..UPLOAD_ROUNDS {
        let mut order = [Side::Varvelog, Side::Unchecked, Side::Put, Side::PutGet, Side::Steps];
        order.rotate_left(round % 5);
        let mut t = [Duration::ZERO; 5];
        let mut steps = Steps::default();
        for side in order {
            server.reset();
            let s = store(&endpoint, &server.new_bucket());
            match side {
                Side::Varvelog => t[0] = upload_varvelog(&dir, s, &files, true),
                Side::Unchecked => t[4] = upload_varvelog(&dir, s, &files, false),
                Side::Put => t[1] = upload_raw(s, &files, false),
                Side::PutGet => t[2] = upload_raw(s, &files, true),
                Side::Steps => (t[3], steps) = upload_steps(s, &files, &copies),
            }
        }
        let [a, b, b2, b3, u] = t.map(|t| mb_s(bytes, t));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{:<6} {:<44} {a:>8.1} {u:>8.1} {b:>8.1} {b2:>8.1} {b3:>8.1} {:>6.2} {:>6.2} {:>6.2} {:>6.2}  {:.0} / {:.0} / {:.0} / {:.0} / {:.0}",
            round + 1,
            order.iter().map(|s| s.name()).collect::<Vec<_>>().join(", "),
            a / b,
            a / b2,
            a / b3,
            u / b,
            ms(steps.hash),
            ms(steps.put),
            ms(steps.get),
            ms(steps.manifest_put),
            ms(steps.local_copy)
        );
        v.push(a);
        p.push(b);
        pg.push(b2);
        st.push(b3);
        r_put.push(a / b);
        r_pg.push(a / b2);
        r_st.push(a / b3);
        nrb.push(u);
        r_nrb.push(u / b);
        phases.push(steps);
    }

    println!(
        "\nreads of {records} records, {:.1} MB of segments ({READ_ROUNDS} rounds; M records/s and MB/s of segment bytes)",
        bytes as f64 / 1e6
    );
    println!("{:<6} {:<14} {:>15} {:>15} {:>15} {:>15}  remote open", "round", "order", "cold", "warm", "local", "local again");
    server.reset();
    let bucket = server.new_bucket();
    upload_varvelog(&dir, store(&endpoint, &bucket), &files, true);
    // A new client for each reader: a client's pooled connections belong to
    // the runtime of the reader (or log) that opened them.
    let remote = || store(&endpoint, &bucket);
    let (mut cold, mut warm, mut local, mut again) = (vec![], vec![], vec![], vec![]);
    let (mut cold_r, mut warm_r) = (vec![], vec![]);
    let rate = |t: Duration| records as f64 / 1e6 / t.as_secs_f64();
    let cell = |t: Duration| format!("{:.2} M, {:.0}", rate(t), mb_s(bytes, t));
    for round in 0..READ_ROUNDS {
        let remote_first = round % 2 == 0;
        let first = remote_first.then(|| read_remote(remote(), records, segments));
        let (l, l2) = read_local(&dir, records);
        let (open, c, w) = first.unwrap_or_else(|| read_remote(remote(), records, segments));
        println!(
            "{:<6} {:<14} {:>15} {:>15} {:>15} {:>15}  {:.1} ms",
            round + 1,
            if remote_first { "remote, local" } else { "local, remote" },
            cell(c),
            cell(w),
            cell(l),
            cell(l2),
            open.as_secs_f64() * 1e3
        );
        cold.push(rate(c));
        warm.push(rate(w));
        local.push(rate(l));
        again.push(rate(l2));
        cold_r.push(rate(c) / rate(l));
        warm_r.push(rate(w) / rate(l2));
    }
    drop(server);

    let t0 = Instant::now();
    for f in &files {
        std::hint::black_box(blake3::hash(&f.bytes));
    }
    let blake3_t = t0.elapsed();

    let to_mb = |m_rec: f64| m_rec * bytes as f64 / records as f64;
    println!("\nsummary: medians [per round]");
    let row = |what: &str, xs: &[f64]| println!("  {what:<26} {:>7.1} MB/s  [{}]", median(xs), list(xs, 1));
    row("upload  varvelog", &v);
    row("        no read-back", &nrb);
    row("        put", &p);
    row("        put+get", &pg);
    row("        steps", &st);
    let ratio = |what: &str, xs: &[f64]| println!("  {what:<26} {:>7.2}×      [{}]", median(xs), list(xs, 2));
    ratio("        varvelog/put", &r_put);
    ratio("        varvelog/put+get", &r_pg);
    ratio("        varvelog/steps", &r_st);
    ratio("        no read-back/put", &r_nrb);
    let total = median(&phases.iter().map(|s| s.total().as_secs_f64()).collect::<Vec<_>>());
    let step = |what: &str, f: fn(&Steps) -> Duration| {
        let xs: Vec<f64> = phases.iter().map(|s| f(s).as_secs_f64()).collect();
        println!("  {what:<26} {:>7.0} ms    {:>4.0}% of the steps' total", median(&xs) * 1e3, 100.0 * median(&xs) / total);
    };
    step("        steps: put", |s| s.put);
    step("               get", |s| s.get);
    step("               blake3 ×2", |s| s.hash);
    step("               manifest put", |s| s.manifest_put);
    step("               local copy", |s| s.local_copy);
    println!("  {:<26} {:>7.0} ms    (blake3 once, alone: {:.0} MB/s)", "        total", total * 1e3, mb_s(bytes, blake3_t));
    let read = |what: &str, xs: &[f64]| {
        println!("  {what:<26} {:>7.2} M rec/s, {:>5.0} MB/s  [{}]", median(xs), to_mb(median(xs)), list(xs, 2));
    };
    read("read    cold", &cold);
    read("        warm", &warm);
    read("        local", &local);
    read("        local again", &again);
    println!("  {:<26} {:>7.3}×      [{}]", "        cold/local", median(&cold_r), list(&cold_r, 3));
    println!("  {:<26} {:>7.2}×      [{}]", "        warm/local again", median(&warm_r), list(&warm_r, 2));
    println!("  took {:.1} s", started.elapsed().as_secs_f64());
}
