//! `--keys`: key lookups and compaction throughput (writes keys.md and keys.json).
//!
//! Per engine and round, in a fresh directory removed afterwards:
//! * load: R records (default 10 M) of 100-byte payloads under D distinct
//!   16-byte keys (default 1 M; key `i` is `key-{2i:012}`), each key R/D times, in a
//!   seeded random order; timed up to and including one final sync
//!   (fsync or equivalent), no sync before it;
//! * get: L lookups (default 1 M) of uniformly random present keys, touching
//!   the value (its first byte is summed), then L lookups of absent keys
//!   (the odd numbers between loaded keys, never written: spread over the
//!   loaded key range, so no engine rules them out by range); ns per lookup;
//! * varvelog: both again after `Log::compact` (sealed segments rewritten to
//!   the newest record of each key), and that compaction's throughput against
//!   a bound measured in the same round: the same input files read with
//!   `std::fs` and as many bytes as the compaction wrote written through a
//!   `BufWriter` with one `sync_all` at the end;
//! * fjall: measured once its background flushes and compactions are idle,
//!   and again after `rotate_memtable_and_wait` + `major_compact`.
//!
//! Each round verifies that the sampled lookups return the newest record of
//! their key, and that no absent key is found.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{machine, median, Res};

/// The engines of the keys mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyEngine {
    Varvelog,
    Fjall,
    Redb,
}

impl KeyEngine {
    pub const ALL: [KeyEngine; 3] = [KeyEngine::Varvelog, KeyEngine::Fjall, KeyEngine::Redb];

    pub fn name(self) -> &'static str {
        match self {
            KeyEngine::Varvelog => "varvelog",
            KeyEngine::Fjall => "fjall 3",
            KeyEngine::Redb => "redb 5",
        }
    }

    pub fn parse(s: &str) -> Option<KeyEngine> {
        KeyEngine::ALL.into_iter().find(|e| e.name().split_whitespace().next() == Some(s) || e.name() == s)
    }

    fn notes(self) -> &'static str {
        match self {
            KeyEngine::Varvelog => {
                "Options::new() (64 MiB segments); load = Writer::append_entry(Entry::new(payload).key(key)) one call each, \
                 then Writer::sync (msync); get = Snapshot::get_key on one snapshot, once the background sealing of every rotated segment has \
                 finished (not timed); compaction = Log::compact(&CompactOptions::new())"
            }
            KeyEngine::Fjall => {
                "default Database and keyspace (32 MiB block cache, LZ4, leveled compaction); load = WriteBatch of 10,000 \
                 inserts, committed without persist, then one Database::persist(SyncAll); get = Keyspace::get. \
                 'as loaded' = once its background flushes and compactions are idle (the last memtable is still in memory); \
                 'after major compaction' = Keyspace::rotate_memtable_and_wait + Keyspace::major_compact \
                 (both #[doc(hidden)] in fjall 3), timed together"
            }
            KeyEngine::Redb => {
                "Database::create defaults (1 GiB cache), one table <&[u8], &[u8]>; load = write transactions of 10,000 inserts \
                 committed with Durability::None, the last one with Durability::Immediate (which makes all of them durable); \
                 get = Table::get in one read transaction; a B-tree, so one state only"
            }
        }
    }
}

pub fn parse_key_engine(s: &str) -> Result<KeyEngine, String> {
    let names: Vec<&str> = KeyEngine::ALL.iter().map(|e| e.name().split_whitespace().next().unwrap_or("")).collect();
    KeyEngine::parse(s.trim()).ok_or_else(|| format!("unknown engine {s:?}; one of {}", names.join(", ")))
}

/// What the keys mode is asked to do.
pub struct Params {
    pub records: u64,
    pub distinct: u64,
    pub lookups: u64,
    /// Most seconds of one pass of lookups.
    pub lookup_seconds: f64,
    pub rounds: u64,
    pub seed: u64,
    pub engines: Vec<KeyEngine>,
    pub dir: PathBuf,
    pub out: PathBuf,
}

const KEY_LEN: usize = 16;
const PAYLOAD_LEN: usize = 100;
/// Records per fjall WriteBatch and per redb write transaction.
const GROUP: usize = 10_000;
/// Present lookups checked for returning the newest record of their key (not timed).
const VERIFY: usize = 10_000;

type Key = [u8; KEY_LEN];

fn key(id: u64) -> Key {
    let mut k = [0u8; KEY_LEN];
    k.copy_from_slice(format!("key-{id:012}").as_bytes());
    k
}

/// The data of one run, the same for every engine and round.
struct Workload {
    /// Key `i` (i < D).
    keys: Vec<Key>,
    /// Key id of record `j`: `j % D` for j < R, shuffled.
    order: Vec<u32>,
    /// Index of the last record of each key.
    last: Vec<u32>,
    /// Incompressible filler for payloads.
    pool: Vec<u8>,
    present_ids: Vec<u32>,
    present: Vec<Key>,
    absent: Vec<Key>,
    /// Most time of one pass of lookups.
    budget: Duration,
}

impl Workload {
    fn new(p: &Params) -> Workload {
        let mut rng = fastrand::Rng::with_seed(p.seed);
        // Loaded keys are the even numbers; absent ones the odd numbers in
        // between, so they sort among the loaded keys.
        let keys: Vec<Key> = (0..p.distinct).map(|i| key(2 * i)).collect();
        let mut order: Vec<u32> = (0..p.records).map(|j| (j % p.distinct) as u32).collect();
        rng.shuffle(&mut order);
        let mut last = vec![0u32; p.distinct as usize];
        for (j, &k) in order.iter().enumerate() {
            last[k as usize] = j as u32;
        }
        let pool: Vec<u8> = (0..64 << 10).map(|_| rng.u8(..)).collect();
        let present_ids: Vec<u32> = (0..p.lookups).map(|_| rng.u64(0..p.distinct) as u32).collect();
        let present = present_ids.iter().map(|&i| keys[i as usize]).collect();
        let absent = (0..p.lookups).map(|_| key(2 * rng.u64(0..p.distinct) + 1)).collect();
        Workload { keys, order, last, pool, present_ids, present, absent, budget: Duration::from_secs_f64(p.lookup_seconds) }
    }

    /// Record `j`'s payload: `j` (u64 LE), then 92 bytes of the random pool.
    #[inline]
    fn payload(&self, j: usize, buf: &mut [u8; PAYLOAD_LEN]) {
        buf[..8].copy_from_slice(&(j as u64).to_le_bytes());
        let off = (j.wrapping_mul(2_654_435_761)) % (self.pool.len() - PAYLOAD_LEN);
        buf[8..].copy_from_slice(&self.pool[off..off + PAYLOAD_LEN - 8]);
    }

    /// Checks that the first `present` present keys return the newest
    /// record of their key (by the record index in its first 8 bytes) and
    /// that the first `absent` absent keys are absent.
    fn verify(&self, what: &str, present: usize, absent: usize, mut get: impl FnMut(&[u8]) -> Res<Option<u64>>) -> Res<()> {
        for (k, &id) in self.present.iter().zip(&self.present_ids).take(present) {
            let want = u64::from(self.last[id as usize]);
            match get(k)? {
                Some(j) if j == want => {}
                got => {
                    let k = String::from_utf8_lossy(k);
                    return Err(format!("{what}: {k} returned record {got:?}, expected the newest, {want}").into());
                }
            }
        }
        for k in self.absent.iter().take(absent) {
            if get(k)?.is_some() {
                return Err(format!("{what}: absent key {} found", String::from_utf8_lossy(k)).into());
            }
        }
        Ok(())
    }
}

fn record_index(v: &[u8]) -> Res<u64> {
    let b: [u8; 8] = v.get(..8).and_then(|b| b.try_into().ok()).ok_or("value shorter than 8 bytes")?;
    Ok(u64::from_le_bytes(b))
}

/// Looks the keys up in order until all are done or `budget` has passed
/// (checked every 256 lookups); returns ns per lookup, lookups done and
/// how many were found.
fn time_gets(keys: &[Key], budget: Duration, mut get: impl FnMut(&[u8]) -> Res<Option<u8>>) -> Res<(f64, u64, u64)> {
    let mut found = 0u64;
    let mut sum = 0u64;
    let mut done = 0u64;
    let start = Instant::now();
    for chunk in keys.chunks(256) {
        for k in chunk {
            if let Some(b) = get(k)? {
                found += 1;
                sum += u64::from(b);
            }
        }
        done += chunk.len() as u64;
        if start.elapsed() >= budget {
            break;
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / done.max(1) as f64;
    std::hint::black_box(sum);
    Ok((ns, done, found))
}

/// Lookups of one state: ns per lookup and lookups done, present and absent keys.
#[derive(Clone, Copy, Debug)]
struct Gets {
    present_ns: f64,
    present_n: u64,
    absent_ns: f64,
    absent_n: u64,
}

/// Times present and absent lookups, checking that every present key is
/// found and no absent one is; then (not timed) that up to VERIFY of the
/// present keys looked up return the newest record of their key.
fn gets(
    w: &Workload,
    what: &str,
    mut get: impl FnMut(&[u8]) -> Res<Option<u8>>,
    index: impl FnMut(&[u8]) -> Res<Option<u64>>,
) -> Res<Gets> {
    let (present_ns, present_n, found) = time_gets(&w.present, w.budget, &mut get)?;
    if found != present_n {
        return Err(format!("{what}: {found} of {present_n} present keys found").into());
    }
    let (absent_ns, absent_n, found) = time_gets(&w.absent, w.budget, &mut get)?;
    if found != 0 {
        return Err(format!("{what}: {found} absent keys found").into());
    }
    w.verify(what, VERIFY.min(present_n as usize), 0, index)?;
    Ok(Gets { present_ns, present_n, absent_ns, absent_n })
}

/// Bytes of the files under `dir` (their lengths).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// One state of an engine's data, measured.
#[derive(Clone, Debug)]
struct State {
    name: String,
    on_disk: u64,
    gets: Gets,
    /// Time of the step that produced this state (compaction, settling).
    step: Option<(&'static str, f64)>,
}

/// varvelog's compaction against the read-and-rewrite bound.
#[derive(Clone, Copy, Debug, Default)]
struct Compaction {
    /// Bytes of the rewritten segments before and after (CompactReport).
    bytes_in: u64,
    bytes_out: u64,
    segments_sealed: u64,
    segments_rewritten: u64,
    segments_relinked: u64,
    records_removed: u64,
    secs: f64,
    bound_secs: f64,
}

#[derive(Clone, Debug, Default)]
struct Round {
    load_secs: f64,
    states: Vec<State>,
    compaction: Option<Compaction>,
}

fn run_round(engine: KeyEngine, dir: &Path, w: &Workload) -> Res<Round> {
    std::fs::create_dir_all(dir)?;
    match engine {
        KeyEngine::Varvelog => run_varvelog(dir, w),
        KeyEngine::Fjall => run_fjall(dir, w),
        KeyEngine::Redb => run_redb(dir, w),
    }
}

// ---------------------------------------------------------------- varvelog

fn run_varvelog(dir: &Path, w: &Workload) -> Res<Round> {
    let data = dir.join("log");
    let log = varvelog::Log::open(&data, varvelog::Options::new())?;
    let mut writer = log.writer()?;
    let mut buf = [0u8; PAYLOAD_LEN];
    let start = Instant::now();
    for (j, &k) in w.order.iter().enumerate() {
        w.payload(j, &mut buf);
        writer.append_entry(varvelog::Entry::new(&buf).key(&w.keys[k as usize]))?;
    }
    writer.sync()?;
    let load_secs = start.elapsed().as_secs_f64();
    drop(writer);

    // Rotated segments are sealed in the background: wait until every
    // segment but the active one is sealed (not timed; like fjall's idle
    // wait), so that the lookups run alone and compaction sees them all.
    let waited = Instant::now();
    let sealed = loop {
        let info = log.snapshot().segment_info();
        let n = info.len().saturating_sub(1);
        if info[..n].iter().all(|s| s.sealed) {
            break info.into_iter().filter(|s| s.sealed).collect::<Vec<_>>();
        }
        if waited.elapsed() > Duration::from_secs(300) {
            return Err(format!(
                "varvelog: {} rotated segments still not sealed after 300 s",
                info[..n].iter().filter(|s| !s.sealed).count()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let sealing = waited.elapsed().as_secs_f64();

    let mut states = Vec::new();
    {
        let snap = log.snapshot();
        let get = |k: &[u8]| -> Res<Option<u8>> { Ok(snap.get_key(k)?.map(|r| r.payload()[0])) };
        let index = |k: &[u8]| snap.get_key(k)?.map(|r| record_index(r.payload())).transpose();
        let gets = gets(w, "varvelog", get, index)?;
        states.push(State {
            name: format!("as loaded ({} segments)", snap.segment_count()),
            on_disk: dir_bytes(&data),
            gets,
            step: Some(("all sealed after", sealing)),
        });
    }

    // Hard links keep the input files for the bound: compaction renames
    // each rewritten segment's new file over the old one.
    let inputs_dir = dir.join("bound-inputs");
    std::fs::create_dir_all(&inputs_dir)?;
    let mut links = Vec::new();
    for s in &sealed {
        let link = inputs_dir.join(s.path.file_name().ok_or("segment without a file name")?);
        std::fs::hard_link(&s.path, &link)?;
        links.push((s.path.clone(), link));
    }

    let start = Instant::now();
    let report = log.compact(&varvelog::CompactOptions::new())?;
    let secs = start.elapsed().as_secs_f64();

    {
        let snap = log.snapshot();
        let get = |k: &[u8]| -> Res<Option<u8>> { Ok(snap.get_key(k)?.map(|r| r.payload()[0])) };
        let index = |k: &[u8]| snap.get_key(k)?.map(|r| record_index(r.payload())).transpose();
        let gets = gets(w, "varvelog after compact", get, index)?;
        states.push(State {
            name: format!("after compact ({} segments)", snap.segment_count()),
            on_disk: dir_bytes(&data),
            gets,
            step: Some(("compact", secs)),
        });
    }
    drop(log);

    // The bound reads the files compaction rewrote (the old inodes, by the
    // links) and writes as many bytes as compaction wrote.
    use std::os::unix::fs::MetadataExt;
    let mut inputs = Vec::new();
    for (path, link) in &links {
        if std::fs::metadata(path)?.ino() != std::fs::metadata(link)?.ino() {
            inputs.push(link.clone());
        }
    }
    let linked_bytes: u64 = inputs.iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).sum();
    if inputs.len() != report.segments_rewritten || linked_bytes != report.bytes_before {
        return Err(format!(
            "varvelog: compact reports {} segments / {} bytes rewritten, the files say {} / {linked_bytes}",
            report.segments_rewritten,
            report.bytes_before,
            inputs.len()
        )
        .into());
    }
    let bound_secs = read_and_rewrite(&inputs, report.bytes_after, &dir.join("bound-output"))?;
    std::fs::remove_dir_all(&inputs_dir)?;
    let compaction = Compaction {
        bytes_in: report.bytes_before,
        bytes_out: report.bytes_after,
        segments_sealed: sealed.len() as u64,
        segments_rewritten: report.segments_rewritten as u64,
        segments_relinked: report.segments_relinked as u64,
        records_removed: report.records_removed,
        secs,
        bound_secs,
    };
    Ok(Round { load_secs, states, compaction: Some(compaction) })
}

/// The bound: reads `inputs` sequentially with std::fs and writes the first
/// `bytes_out` bytes read to `out` through a BufWriter, one sync_all at the
/// end; returns the seconds taken.
fn read_and_rewrite(inputs: &[PathBuf], bytes_out: u64, out: &Path) -> Res<f64> {
    let start = Instant::now();
    let mut w = BufWriter::with_capacity(1 << 20, File::create(out)?);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = bytes_out;
    for p in inputs {
        let mut f = File::open(p)?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            let m = (n as u64).min(left) as usize;
            w.write_all(&buf[..m])?;
            left -= m as u64;
        }
    }
    buf.fill(0);
    while left > 0 {
        let m = (buf.len() as u64).min(left) as usize;
        w.write_all(&buf[..m])?;
        left -= m as u64;
    }
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    let secs = start.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(out)?;
    Ok(secs)
}

// ------------------------------------------------------------------- fjall

/// Waits until fjall has no queued flush and no running compaction, five
/// polls 20 ms apart in a row; returns the time waited.
fn fjall_settle(db: &fjall::Database) -> f64 {
    let start = Instant::now();
    let mut quiet = 0;
    while quiet < 5 && start.elapsed() < Duration::from_secs(600) {
        if db.outstanding_flushes() == 0 && db.active_compactions() == 0 {
            quiet += 1;
        } else {
            quiet = 0;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed().as_secs_f64()
}

fn run_fjall(dir: &Path, w: &Workload) -> Res<Round> {
    let data = dir.join("fjall");
    let db = fjall::Database::builder(&data).open()?;
    let ks = db.keyspace("kv", fjall::KeyspaceCreateOptions::default)?;
    let mut buf = [0u8; PAYLOAD_LEN];
    let start = Instant::now();
    for (g, group) in w.order.chunks(GROUP).enumerate() {
        let mut batch = db.batch();
        for (i, &k) in group.iter().enumerate() {
            w.payload(g * GROUP + i, &mut buf);
            batch.insert(&ks, &w.keys[k as usize][..], &buf[..]);
        }
        batch.commit()?;
    }
    db.persist(fjall::PersistMode::SyncAll)?;
    let load_secs = start.elapsed().as_secs_f64();

    let mut states = Vec::new();
    let measure = |name: String, step: Option<(&'static str, f64)>| -> Res<State> {
        let get = |k: &[u8]| -> Res<Option<u8>> { Ok(ks.get(k)?.map(|v| v[0])) };
        let gets = gets(w, "fjall", get, |k| ks.get(k)?.map(|v| record_index(&v)).transpose())?;
        Ok(State { name, on_disk: dir_bytes(&data), gets, step })
    };
    let settle = fjall_settle(&db);
    states.push(measure(format!("as loaded, background idle ({} tables)", ks.table_count()), Some(("background idle after", settle)))?);
    let start = Instant::now();
    ks.rotate_memtable_and_wait()?;
    ks.major_compact()?;
    let major = start.elapsed().as_secs_f64();
    fjall_settle(&db);
    states.push(measure(format!("after major compaction ({} tables)", ks.table_count()), Some(("rotate + major_compact", major)))?);
    Ok(Round { load_secs, states, compaction: None })
}

// -------------------------------------------------------------------- redb

const TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("kv");

fn run_redb(dir: &Path, w: &Workload) -> Res<Round> {
    use redb::{ReadableDatabase, ReadableTable};
    let data = dir.join("redb");
    std::fs::create_dir_all(&data)?;
    let db = redb::Database::create(data.join("kv.redb"))?;
    let mut buf = [0u8; PAYLOAD_LEN];
    let groups = w.order.len().div_ceil(GROUP);
    let start = Instant::now();
    for (g, group) in w.order.chunks(GROUP).enumerate() {
        let mut tx = db.begin_write()?;
        let last = g + 1 == groups;
        tx.set_durability(if last { redb::Durability::Immediate } else { redb::Durability::None })?;
        {
            let mut t = tx.open_table(TABLE)?;
            for (i, &k) in group.iter().enumerate() {
                w.payload(g * GROUP + i, &mut buf);
                t.insert(&w.keys[k as usize][..], &buf[..])?;
            }
        }
        tx.commit()?;
    }
    let load_secs = start.elapsed().as_secs_f64();

    let rtx = db.begin_read()?;
    let t = rtx.open_table(TABLE)?;
    let get = |k: &[u8]| -> Res<Option<u8>> { Ok(t.get(k)?.map(|v| v.value()[0])) };
    let gets = gets(w, "redb", get, |k| t.get(k)?.map(|v| record_index(v.value())).transpose())?;
    let state = State { name: "as loaded".into(), on_disk: dir_bytes(&data), gets, step: None };
    Ok(Round { load_secs, states: vec![state], compaction: None })
}

// ------------------------------------------------------------------ report

type Spread = Option<(f64, f64, f64)>;

fn stat(rounds: &[Round], f: impl Fn(&Round) -> Option<f64>) -> Spread {
    median(rounds.iter().filter_map(f).collect())
}

/// `median (±half spread %)` with `fmt` applied to the median.
fn with_spread(s: Spread, fmt: impl Fn(f64) -> String) -> String {
    match s {
        None => "-".into(),
        Some((m, lo, hi)) => {
            let half = if m > 0.0 { (hi - lo) / m * 50.0 } else { 0.0 };
            format!("{} (±{half:.0}%)", fmt(m))
        }
    }
}

fn fmt_bytes(b: f64) -> String {
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", b / (1u64 << 20) as f64)
    }
}

fn mib_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64 / secs
}

fn json_spread(s: Spread) -> Value {
    s.map_or(Value::Null, |(m, lo, hi)| json!({"median": m, "min": lo, "max": hi}))
}

pub fn run(p: &Params) -> Res<()> {
    if p.distinct == 0 || p.records < p.distinct || p.records > u64::from(u32::MAX) || p.distinct > 100_000_000_000 {
        return Err(
            "--keys-records must be at least --keys-distinct (at least 1), and at most 2^32 - 1; --keys-distinct at most 10^11".into()
        );
    }
    let load_before = machine::load_average();
    eprintln!("keys: preparing {} records over {} keys, {} lookups each ...", p.records, p.distinct, p.lookups);
    let w = Workload::new(p);
    let root = p.dir.join(format!("varvelog-peers-keys-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    let results = crate::run_rounds(&p.engines, p.rounds, &root, "keys round", 10, |e| e.name(), |e, dir| run_round(e, dir, &w));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&p.out)?;

    let machine = machine::describe(&p.dir);
    let date = machine::date_utc();
    let load_after = machine::load_average();
    let mut md = String::new();
    md.push_str(&format!(
        "Machine: {machine}; {date}. {} records of {PAYLOAD_LEN} B under {} distinct {KEY_LEN}-byte keys (each key {} times, \
         seeded random order, seed {}), {} lookups per row; {} rounds in alternating order, each engine in a fresh directory on {}; \
         median (± half the min-max spread, in % of the median). 1-minute load average {} before, {} after the run.\n\n",
        p.records,
        p.distinct,
        p.records / p.distinct,
        p.seed,
        p.lookups,
        p.rounds,
        p.dir.display(),
        load_before.map_or("?".into(), |l| format!("{l:.2}")),
        load_after.map_or("?".into(), |l| format!("{l:.2}")),
    ));
    md.push_str("| engine | state | load, records/s | on disk | get, present key | get, absent key | step before this state |\n");
    md.push_str("|---|---|---:|---:|---:|---:|---|\n");
    let mut json_engines = Vec::new();
    for (engine, rounds, errors) in &results {
        if rounds.is_empty() {
            md.push_str(&format!("| {} | failed: {} ||||||\n", engine.name(), errors.first().map_or("", |s| s.as_str())));
            json_engines.push(json!({"engine": engine.name(), "how": engine.notes(), "errors": errors}));
            continue;
        }
        let load = stat(rounds, |r| Some(p.records as f64 / r.load_secs));
        let nstates = rounds.iter().map(|r| r.states.len()).min().unwrap_or(0);
        let mut json_states = Vec::new();
        for s in 0..nstates {
            let name = &rounds[0].states[s].name;
            let disk = stat(rounds, |r| Some(r.states[s].on_disk as f64));
            let present = stat(rounds, |r| Some(r.states[s].gets.present_ns));
            let absent = stat(rounds, |r| Some(r.states[s].gets.absent_ns));
            // Fewest lookups done in a round, when the time budget cut a pass short.
            let fewest = |f: fn(&Gets) -> u64| rounds.iter().map(|r| f(&r.states[s].gets)).min().unwrap_or(0);
            let (present_n, absent_n) = (fewest(|g| g.present_n), fewest(|g| g.absent_n));
            let cut = |n: u64| if n < p.lookups { format!(" [{n} lookups]") } else { String::new() };
            let step = stat(rounds, |r| r.states[s].step.map(|x| x.1));
            let step_name = rounds[0].states[s].step.map(|x| x.0);
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                if s == 0 { engine.name() } else { "" },
                name,
                if s == 0 { with_spread(load, |v| format!("{:.2} M", v / 1e6)) } else { String::new() },
                disk.map_or("-".into(), |d| fmt_bytes(d.0)),
                with_spread(present, crate::fmt_ns) + &cut(present_n),
                with_spread(absent, crate::fmt_ns) + &cut(absent_n),
                step_name.map_or("-".into(), |n| format!("{n}: {}", with_spread(step, |v| format!("{v:.2} s")))),
            ));
            json_states.push(json!({
                "state": name, "on_disk_bytes": json_spread(disk), "get_present_ns": json_spread(present),
                "get_absent_ns": json_spread(absent), "fewest_present_lookups": present_n, "fewest_absent_lookups": absent_n,
                "step": step_name, "step_secs": json_spread(step),
            }));
        }
        let rj: Vec<Value> = rounds
            .iter()
            .map(|r| {
                json!({
                    "load_secs": r.load_secs,
                    "states": r.states.iter().map(|s| json!({"state": s.name, "on_disk_bytes": s.on_disk,
                        "get_present_ns": s.gets.present_ns, "get_present_lookups": s.gets.present_n,
                        "get_absent_ns": s.gets.absent_ns, "get_absent_lookups": s.gets.absent_n,
                        "step": s.step.map(|x| x.0), "step_secs": s.step.map(|x| x.1)})).collect::<Vec<_>>(),
                    "compaction": r.compaction.map(|c| json!({"bytes_in": c.bytes_in, "bytes_out": c.bytes_out,
                        "segments_sealed": c.segments_sealed, "segments_rewritten": c.segments_rewritten,
                        "segments_relinked": c.segments_relinked, "records_removed": c.records_removed,
                        "secs": c.secs, "bound_secs": c.bound_secs})),
                })
            })
            .collect();
        json_engines.push(json!({
            "engine": engine.name(), "how": engine.notes(), "errors": errors, "rounds": rj,
            "median": {"load_records_per_sec": json_spread(load), "states": json_states},
        }));
    }

    // Compaction throughput, varvelog only.
    let mut json_compaction = Value::Null;
    let compacted = |r: &Round| r.compaction.is_some_and(|c| c.segments_rewritten > 0);
    if let Some((_, rounds, _)) = results.iter().find(|(e, r, _)| *e == KeyEngine::Varvelog && !r.is_empty() && r.iter().all(compacted)) {
        let c = |f: fn(&Compaction) -> f64| stat(rounds, |r| r.compaction.as_ref().map(f));
        let bytes_in = c(|c| c.bytes_in as f64);
        let bytes_out = c(|c| c.bytes_out as f64);
        let vv_secs = c(|c| c.secs);
        let bound_secs = c(|c| c.bound_secs);
        let vv_read = c(|c| mib_s(c.bytes_in, c.secs));
        let vv_write = c(|c| mib_s(c.bytes_out, c.secs));
        let b_read = c(|c| mib_s(c.bytes_in, c.bound_secs));
        let b_write = c(|c| mib_s(c.bytes_out, c.bound_secs));
        let ratio = c(|c| c.bound_secs / c.secs);
        let first = rounds[0].compaction.unwrap_or_default();
        md.push_str(&format!(
            "\nCompaction throughput: varvelog's `Log::compact(&CompactOptions::new())` of the loaded log, {} of {} sealed \
             segments rewritten ({} relinked), {} records removed; read = `CompactReport::bytes_before` ({}), written = \
             `bytes_after` ({}), medians. Compaction decides what goes from the segments' key tables (sorted key hashes), \
             then per rewritten segment checks and copies the frames it keeps, writes the new file, fdatasyncs it, renames it \
             over the segment and fsyncs the directory. The bound: the same input files (the replaced inodes, kept by hard links) read \
             sequentially with `std::fs::File::read` (1 MiB buffer), and as many bytes as compaction wrote written to one new \
             file through a 1 MiB `BufWriter`, one `sync_all` at the end. Ratio = bound time / compact time (the same bytes, \
             so varvelog's throughput over the bound's), per round.\n\n",
            first.segments_rewritten,
            first.segments_sealed,
            first.segments_relinked,
            first.records_removed,
            bytes_in.map_or("-".into(), |b| fmt_bytes(b.0)),
            bytes_out.map_or("-".into(), |b| fmt_bytes(b.0)),
        ));
        md.push_str("| | time | read, MiB/s | written, MiB/s |\n|---|---:|---:|---:|\n");
        let sec = |v: f64| format!("{v:.2} s");
        let rate = |v: f64| format!("{v:.0}");
        md.push_str(&format!(
            "| varvelog compact | {} | {} | {} |\n",
            with_spread(vv_secs, sec),
            with_spread(vv_read, rate),
            with_spread(vv_write, rate)
        ));
        md.push_str(&format!(
            "| bound: std::fs read + BufWriter write + sync_all | {} | {} | {} |\n",
            with_spread(bound_secs, sec),
            with_spread(b_read, rate),
            with_spread(b_write, rate)
        ));
        md.push_str(&format!("| varvelog / bound (throughput) | {} | | |\n", with_spread(ratio, |v| format!("{v:.2}"))));
        json_compaction = json!({
            "bytes_in": json_spread(bytes_in), "bytes_out": json_spread(bytes_out),
            "varvelog_secs": json_spread(vv_secs), "bound_secs": json_spread(bound_secs),
            "varvelog_read_mib_per_sec": json_spread(vv_read), "varvelog_written_mib_per_sec": json_spread(vv_write),
            "bound_read_mib_per_sec": json_spread(b_read), "bound_written_mib_per_sec": json_spread(b_write),
            "ratio_varvelog_over_bound": json_spread(ratio),
        });
    }

    md.push_str("\nHow each engine is driven:\n\n");
    for (engine, _, _) in &results {
        md.push_str(&format!("- **{}**: {}\n", engine.name(), engine.notes()));
    }
    md.push_str(&format!(
        "\nLoad = records/s from the first write to the end of the final sync. get = ns per lookup over {} keys drawn uniformly \
         (seeded) from the loaded keys (the even numbers below {}), the value's first byte summed; absent keys are the odd \
         numbers below {}: never written, and spread over the loaded key range. A pass of lookups stops after {} s: [n lookups] = the fewest a round did when it stopped early (a prefix \
         of the same random sequence). Each state is checked: every present key looked up found, up to {} of them \
         returning the newest record of their key, no absent key found. On disk = the lengths of the engine's files when the state was measured (varvelog: with its \
         active and spare segments at their preallocated size; fjall: with its journal, and tables replaced by a compaction \
         until fjall deletes them; redb: pages freed by the Durability::None commits stay in the file).\n",
        p.lookups,
        2 * p.distinct,
        2 * p.distinct,
        p.lookup_seconds,
        VERIFY.min(p.lookups as usize),
    ));
    let doc = json!({
        "machine": machine, "date": date, "records": p.records, "distinct_keys": p.distinct, "lookups": p.lookups,
        "lookup_seconds": p.lookup_seconds, "rounds": p.rounds, "seed": p.seed, "payload_bytes": PAYLOAD_LEN, "key_bytes": KEY_LEN,
        "load_average_before": load_before, "load_average_after": load_after,
        "engines": json_engines, "compaction": json_compaction,
    });
    std::fs::write(p.out.join("keys.md"), &md)?;
    std::fs::write(p.out.join("keys.json"), serde_json::to_string_pretty(&doc)?)?;
    print!("{md}");
    eprintln!("wrote {}/keys.md, keys.json", p.out.display());
    Ok(())
}
