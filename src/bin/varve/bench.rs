//! `varve bench`: measures varvelog against the machine's limits in one run.
//!
//! Phases (progress on stderr, results on stdout):
//! 1. timer calibration; 2. physical bounds: memcpy of the same frames into a
//!    preallocated, pre-faulted file mapping, CRC32C over them, a cross-core
//!    atomic ping-pong, pwrite+fdatasync of the same bytes;
//! 3. varvelog: append throughput (no timer in the loop; rounds taking turns
//!    with a `File` + `BufWriter` floor of the same bytes, both also timed
//!    until their bytes are on the disk), append latency
//!    (every append timed), writer->tail latency with a paced writer and
//!    busy-spinning, parked and async (`TailStream`) readers in turn, the
//!    writer at full speed with tailing and scanning readers beside it, a
//!    checksummed scan of everything, durable group commit, close and reopen.
//!
//! Every latency sample is `end - start - timer overhead` (the median cost of
//! two back-to-back timer reads, measured in the same run and printed).
//!
//! On a machine shared with other work, spinning threads get preempted for
//! milliseconds and the latency tails show the neighbours, not the engine
//! (the report prints the load average). As root, `chrt -f 10 varve bench
//! --scanners 0` keeps ordinary processes from preempting the bench. With a
//! scanner under FIFO, the mixed phase's three spinning threads can starve the
//! writer on a two-core machine (use `chrt -r`, whose 100 ms round-robin
//! slices show up in the tails instead).

mod axis;
mod baseline;
mod clock;
mod engine;
mod machine;
mod plot;
mod producers;
mod readers;
mod report;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use varvelog::format::{frame_crc, FrameHeader, FRAME_HEADER_BYTES};
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::IntoBytes;

use baseline::FileKind;
use clock::Clock;

pub(crate) type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Options of `varve bench`. With none it runs the default workload in a
/// temporary directory.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Payload bytes per record, e.g. 100 or 4KiB (at least 8: tailing readers read the writer's send stamp from them).
    #[arg(long, default_value = "100", value_name = "SIZE", value_parser = crate::util::parse_bytes_usize)]
    pub payload_bytes: usize,
    /// Records per append phase (each sustained-throughput round, append latency, mixed).
    /// The default writes about 2 GiB (32 segments of 64 MiB) per phase.
    #[arg(long, default_value_t = 16_000_000)]
    pub records: u64,
    /// Records of the append latency phase (every append timed).
    #[arg(long, default_value_t = 4_000_000)]
    pub latency_records: u64,
    /// Rounds of the sustained-throughput phase, alternating the plain-file floor and the engine; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Records in all per visible multi-producer measurement (split over the threads).
    #[arg(long, default_value_t = 2_000_000)]
    pub producer_records: u64,
    /// Producer thread counts of the multi-producer phase (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2,8")]
    pub producer_threads: Vec<usize>,
    /// Tailing readers following the writer.
    #[arg(long, default_value_t = 1)]
    pub readers: usize,
    /// Scanning readers reading the whole log over and over while the writer runs at full speed.
    #[arg(long, default_value_t = 1)]
    pub scanners: usize,
    /// How tailing readers wait for new records (comma separated): the
    /// writer->tail phase runs each kind in turn, the mixed phase the first.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "park,spin,async")]
    pub wait: Vec<Wait>,
    /// Threads that spin on the CPU beside both sides of every sustained
    /// round (the floor's and the engine's alike), to measure under CPU
    /// contention.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub busy_threads: usize,
    /// Sync policy of the append phases: never, always (every append), or every-N (Writer::sync after every N appends).
    #[arg(long, default_value = "never", value_parser = parse_sync)]
    pub sync: SyncMode,
    /// Segment size, e.g. 64MiB (suffixes K, M, G, KiB, MiB, GiB; all binary).
    #[arg(long, default_value = "64MiB", value_name = "SIZE", value_parser = crate::util::parse_bytes)]
    pub segment_bytes: u64,
    /// Timestamp source for appends (Options::clock): tsc (the TSC anchored to CLOCK_REALTIME, the default), realtime (CLOCK_REALTIME) or coarse (CLOCK_REALTIME_COARSE).
    #[arg(long, value_enum, default_value_t = TimeSource::Tsc)]
    pub clock: TimeSource,
    /// Print the results as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also draw the results as an SVG image: latency percentile curves and
    /// each throughput beside its bound.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Directory (file system) to run in; a fresh subdirectory is made and removed afterwards.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Records the paced writer appends in the writer->tail latency phase
    /// [default: the smaller of --records and 500000].
    #[arg(long)]
    pub tail_records: Option<u64>,
    /// Rate (records/s) of the paced writer in the writer->tail latency phase.
    #[arg(long, default_value_t = 1_000_000)]
    pub tail_rate: u64,
    /// Seconds each durable (sync) measurement runs.
    #[arg(long, default_value_t = 0.5)]
    pub sync_seconds: f64,
    /// Longest time any append phase may run before it stops early.
    #[arg(long, default_value_t = 30.0)]
    pub max_phase_seconds: f64,
}

/// How a tailing reader waits.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Busy-spin: lowest latency, burns a core.
    Spin,
    /// Spin briefly, then park until the writer wakes the reader.
    Park,
    /// `Tail::into_stream`, polled by a minimal executor that parks its
    /// thread until the writer wakes the stream's task.
    Async,
}

impl BenchArgs {
    /// The kinds of tailing reader to run, each once, in the order given.
    pub fn waits(&self) -> Vec<Wait> {
        let mut kinds = Vec::new();
        for &w in &self.wait {
            if !kinds.contains(&w) {
                kinds.push(w);
            }
        }
        kinds
    }

    /// How the mixed phase's tailing readers wait: the first kind given.
    pub fn mixed_wait(&self) -> Wait {
        self.wait.first().copied().unwrap_or(Wait::Park)
    }
}

/// Where appends get their timestamps.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSource {
    /// `varvelog::Clock::Tsc` (the engine's default).
    Tsc,
    /// `varvelog::Clock::Realtime`.
    Realtime,
    /// `varvelog::Clock::RealtimeCoarse`.
    Coarse,
}

impl TimeSource {
    fn engine(self) -> varvelog::Clock {
        match self {
            TimeSource::Tsc => varvelog::Clock::Tsc,
            TimeSource::Realtime => varvelog::Clock::Realtime,
            TimeSource::Coarse => varvelog::Clock::RealtimeCoarse,
        }
    }
}

/// Sync policy of the append phases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// No syncs (the OS writes back on its own).
    Never,
    /// `SyncPolicy::Always`: every append synced before it returns.
    Always,
    /// `Writer::sync()` after every N appends.
    Every(u64),
}

impl std::fmt::Display for SyncMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncMode::Never => write!(f, "never"),
            SyncMode::Always => write!(f, "always"),
            SyncMode::Every(n) => write!(f, "every-{n}"),
        }
    }
}

fn parse_sync(s: &str) -> Result<SyncMode, String> {
    match s {
        "never" => Ok(SyncMode::Never),
        "always" => Ok(SyncMode::Always),
        _ => match s.strip_prefix("every-").map(str::parse::<u64>) {
            Some(Ok(n)) if n > 0 => Ok(SyncMode::Every(n)),
            _ => Err(format!("expected never, always or every-N (N > 0), got {s:?}")),
        },
    }
}

/// A throughput: `records` (of `payload` bytes each) in `secs`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rate {
    /// Records processed.
    pub records: u64,
    /// Payload bytes per record.
    pub payload: usize,
    /// Seconds taken.
    pub secs: f64,
}

impl Rate {
    fn new(records: u64, payload: usize, d: Duration) -> Rate {
        Rate { records, payload, secs: d.as_secs_f64() }
    }
    /// Two measurements of the same thing as one.
    fn plus(&self, other: &Rate) -> Rate {
        Rate { records: self.records + other.records, payload: self.payload, secs: self.secs + other.secs }
    }
    /// Records per second.
    pub fn per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            self.records as f64 / self.secs
        } else {
            0.0
        }
    }
    /// Payload megabytes (10^6) per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.per_sec() * self.payload as f64 / 1e6
    }
}

/// Latency percentiles in nanoseconds from an HDR histogram.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lat {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// 99.99th percentile.
    pub p9999: u64,
    /// Largest sample.
    pub max: u64,
    /// Mean.
    pub mean: f64,
    /// Samples of at least [`STALL_NS`] (waits for a prepared segment, page
    /// faults, preemption) and their total nanoseconds.
    pub stalls: (u64, u64),
    /// The latency at each of [`CURVE_QUANTILES`], for the plot's curves.
    pub curve: [u64; CURVE_QUANTILES.len()],
}

/// Quantiles a latency curve is drawn through (the last is the maximum).
pub const CURVE_QUANTILES: [f64; 15] =
    [0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99995, 0.99999, 0.999995, 0.999999, 1.0];

/// Samples this long or longer count as stalls.
pub const STALL_NS: u64 = 10_000;

impl Lat {
    fn of(h: &Histogram<u64>) -> Lat {
        if h.is_empty() {
            return Lat::default();
        }
        Lat {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
            mean: h.mean(),
            stalls: h
                .iter_recorded()
                .filter(|v| v.value_iterated_to() >= STALL_NS)
                .fold((0, 0), |(n, t), v| (n + v.count_at_value(), t + v.count_at_value() * v.value_iterated_to())),
            curve: CURVE_QUANTILES.map(|q| h.value_at_quantile(q)),
        }
    }
}

/// Durable throughput at one group size.
#[derive(Clone, Copy, Debug, Default)]
pub struct Durable {
    /// Records per sync.
    pub per_sync: u64,
    /// Records made durable per second.
    pub rate: Rate,
    /// Time of one group (its appends or write, plus the sync).
    pub sync_lat: Lat,
}

/// Everything one run measured.
pub struct Results {
    machine: String,
    /// When the run ended (UTC).
    date: String,
    dir: PathBuf,
    clock: Clock,
    frame_bytes: usize,
    memcpy: Rate,
    memcpy_lat: Lat,
    crc: Rate,
    ping_pong: Lat,
    pwrite: Vec<Durable>,
    pwrite_zeroed: Vec<Durable>,
    /// The `File` + `BufWriter` floor, one per sustained round.
    floor: Vec<Rate>,
    /// The same floor runs timed to the end of an `fdatasync` after the flush.
    floor_on_disk: Vec<Rate>,
    /// The engine's sustained appends, one per round (alternating with `floor`).
    append_rounds: Vec<Rate>,
    /// The same rounds timed to the end of `Log::close` (all on the disk).
    append_on_disk: Vec<Rate>,
    /// Median of `append_rounds`.
    append: Rate,
    producers: Vec<producers::ProducerRow>,
    append_lat: Lat,
    /// The writer->tail phase, one per kind of reader (empty if it did not run).
    tail: Vec<engine::TailResult>,
    mixed: Option<engine::MixedResult>,
    scan: Rate,
    durable: Vec<Durable>,
    close: Duration,
    open: Duration,
    open_files: Duration,
    open_report: varvelog::RecoveryReport,
    log_bytes: u64,
    elapsed: Duration,
    /// 1-minute load average before and after the run (other work on the machine).
    load: (Option<f64>, Option<f64>),
}

/// Runs the benchmark described by `args` and prints the results.
pub fn run(args: &BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let results = run_bench(args).map_err(|e| -> Box<dyn std::error::Error> { e })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report::json(args, &results))?);
    } else {
        print!("{}", report::tables(args, &results));
    }
    if let Some(path) = &args.plot {
        plot::draw(path, args, &results).map_err(|e| format!("--plot {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Runs `f` while `threads` other threads spin on the CPU.
fn beside_busy<T>(threads: usize, f: impl FnOnce() -> T) -> T {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            });
        }
        let out = f();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    })
}

fn run_bench(args: &BenchArgs) -> Res<Results> {
    let tail_records = args.tail_records.unwrap_or(args.records.min(500_000));
    if args.payload_bytes < 8 && (args.readers > 0 || tail_records > 0) {
        return Err("--payload-bytes must be at least 8 when tailing readers run (the writer's send stamp goes in the payload); use --readers 0 --tail-records 0 for smaller payloads".into());
    }
    if args.records == 0 || args.rounds == 0 {
        return Err("--records and --rounds must be at least 1".into());
    }
    if args.producer_threads.contains(&0) {
        return Err("--producer-threads must all be at least 1".into());
    }
    if !(args.sync_seconds > 0.0 && args.max_phase_seconds > 0.0) {
        return Err("--sync-seconds and --max-phase-seconds must be positive".into());
    }
    let begun = Instant::now();
    let load_before = machine::load_average();
    let work = WorkDir::new(args.dir.as_deref())?;
    let max = Duration::from_secs_f64(args.max_phase_seconds);
    let budget = Duration::from_secs_f64(args.sync_seconds);
    let steps = 12;
    let mut step = 0;
    let mut phase_began = Instant::now();
    let mut phase = |what: &str| {
        end_progress();
        if step > 0 {
            eprintln!("        (took {:.1} s)", phase_began.elapsed().as_secs_f64());
        }
        step += 1;
        phase_began = Instant::now();
        eprintln!("[{step:2}/{steps}] {what}");
    };

    phase("calibrating the timer");
    let clock = Clock::calibrate();
    eprintln!("        {}", clock.describe());
    let frame = sample_frame(args.payload_bytes)?;
    let frame_len = FRAME_HEADER_BYTES as usize + args.payload_bytes;

    phase(&format!(
        "bound: memcpy of {} frames of {} B into a pre-faulted mapping; CRC32C over them",
        args.records.min(4_000_000),
        frame.len()
    ));
    // A rate, not a sustained run: a quarter of a phase is plenty.
    let mem_records = args.records.min(4_000_000);
    let mem = baseline::memory(&work.path("memcpy.bin"), &frame, frame_len, mem_records, args.payload_bytes, &clock)?;
    phase("bound: cross-core atomic ping-pong");
    let ping_pong = baseline::ping_pong(&clock, args.records.clamp(10_000, 2_000_000), Duration::from_secs(1))?;
    phase("bound: pwrite + fdatasync, 1 and 100 frames per sync, growing file and pre-zeroed file");
    let mut pwrite = Vec::new();
    let mut pwrite_zeroed = Vec::new();
    for per in [1, 100] {
        pwrite.push(baseline::pwrite_sync(
            &work.path(&format!("pwrite-{per}.bin")),
            &frame,
            per,
            budget,
            args.payload_bytes,
            FileKind::Growing,
        )?);
        let path = work.path(&format!("pwrite-zeroed-{per}.bin"));
        pwrite_zeroed.push(baseline::pwrite_sync(&path, &frame, per, budget, args.payload_bytes, FileKind::PreZeroed)?);
    }

    let log_dir = work.path("log");
    let opts = engine::options(args.segment_bytes, args.sync).clock(args.clock.engine());
    phase(&format!(
        "sustained appends, {} rounds of {} records ({:.2} GiB): File + BufWriter floor and varvelog taking turns to go first, no timer in the loop",
        args.rounds,
        args.records,
        (args.records * frame.len() as u64) as f64 / (1u64 << 30) as f64
    ));
    // Both sides start each round alike: nothing dirty in the page cache
    // (syncfs), and the memory the other side just freed to reuse (each
    // round's file or log is removed after it). A log kept growing across
    // rounds would leave the floor only fresh memory, which this VM faults
    // in from the host at ~1 us a page.
    //
    // Which side goes first alternates from round to round (floor, engine;
    // engine, floor; ...), so that each side follows the other as often as
    // itself: a side that follows the floor gets the 2 GiB the floor's
    // file freed in large blocks, which this VM hands back to its host and
    // then faults in again, where memory the engine freed is taken again
    // cheaply (measured: the engine ran at 7.1 and 7.7 M records/s after
    // itself, 5.6-7.1 M after the floor; the floor alike after either).
    //
    // Each side is also timed to the end of what puts all its bytes on the
    // disk (the floor's fdatasync, the engine's `Log::close`), so the report
    // shows both: the floor's 2 GiB fit in the page cache's dirty limit, so
    // without a sync it never waits for the disk, where the engine's sealer
    // writes each full segment to the disk as it goes.
    let mut floor = Vec::new();
    let mut floor_on_disk = Vec::new();
    let mut append_rounds = Vec::new();
    let mut append_on_disk = Vec::new();
    for r in 0..args.rounds {
        for engine_side in if r % 2 == 0 { [false, true] } else { [true, false] } {
            syncfs(work.root())?;
            if !engine_side {
                let (visible, on_disk) = beside_busy(args.busy_threads, || {
                    baseline::bufwriter(&work.path("floor.bin"), &frame, args.records, args.payload_bytes)
                })?;
                floor.push(visible);
                floor_on_disk.push(on_disk);
                continue;
            }
            let dir = work.path(&format!("sustained-{r}"));
            let mut round = engine::Engine::open(&dir, opts.clone(), args.payload_bytes, args.sync, clock)?;
            let (appended, closed) = beside_busy(args.busy_threads, || {
                let appended = round.append_throughput(args.records, max)?;
                Res::Ok((appended, round.close_durably()?))
            })?;
            append_rounds.push(appended);
            append_on_disk.push(Rate { secs: appended.secs + closed.as_secs_f64(), ..appended });
            std::fs::remove_dir_all(&dir)?;
        }
    }
    let append = median(&append_rounds);
    // The log the latency, tail, mixed and scan phases share keeps all its
    // sealed segments in the page cache, so the scan phases read memory
    // (their bounds are memory bounds) and the mixed phase's scanner
    // competes with the writer for CPU, not for the disk.
    let opts = opts.cached_sealed_segments(usize::MAX);
    let mut eng = engine::Engine::open(&log_dir, opts, args.payload_bytes, args.sync, clock)?;
    phase(&format!("varvelog: append latency, {} records, every append timed", args.latency_records));
    let append_lat = eng.append_latency(args.latency_records.max(1), max)?;
    settle(&eng);
    let mut tail = Vec::new();
    if args.readers > 0 && tail_records > 0 {
        let kinds = args.waits();
        phase(&format!(
            "varvelog: writer->tail latency, {} records paced at {}/s for each of {} kind(s) of {} reader(s) in turn",
            tail_records,
            args.tail_rate,
            kinds.len(),
            args.readers
        ));
        for (i, &wait) in kinds.iter().enumerate() {
            if i > 0 {
                settle(&eng);
            }
            eprintln!("        {} reader(s)", report::wait_name(wait));
            tail.push(eng.tail(tail_records, args.tail_rate, args.readers, wait)?);
        }
    } else {
        phase("varvelog: writer->tail latency skipped (--readers 0 or --tail-records 0)");
    }
    settle(&eng);
    let mixed = if args.readers + args.scanners > 0 {
        phase(&format!(
            "varvelog: {} records at full speed alone, then as many with {} tailing and {} scanning reader(s)",
            args.records, args.readers, args.scanners
        ));
        Some(eng.mixed(args.records, args.readers, args.scanners, args.mixed_wait(), max)?)
    } else {
        phase("varvelog: mixed phase skipped (no readers)");
        None
    };
    settle(&eng);
    phase("varvelog: scan of the whole log, checksums verified");
    let scan = eng.scan()?;
    let close = eng.close();

    phase("varvelog: durable group commit, 1 and 100 appends per Writer::sync");
    let durable = vec![
        engine::durable(&work.path("durable-1"), args.segment_bytes, args.payload_bytes, 1, budget)?,
        engine::durable(&work.path("durable-100"), args.segment_bytes, args.payload_bytes, 100, budget)?,
    ];
    phase(&format!(
        "many producers ({:?} threads): Ingest vs Mutex<Writer>, {} visible appends each, durable for {:.1} s each",
        args.producer_threads, args.producer_records, args.sync_seconds
    ));
    let mut producer_rows = Vec::new();
    for durable in [false, true] {
        for &threads in &args.producer_threads {
            let row =
                producers::compare(work.root(), args.segment_bytes, args.payload_bytes, threads, durable, args.producer_records, budget)?;
            producer_rows.push(row);
        }
    }
    phase("varvelog: reopen (recovery) of the log; bound: open + mmap of its files");
    let (open, open_report, log_bytes) = engine::reopen(&log_dir, engine::options(args.segment_bytes, SyncMode::Never))?;
    let open_files = baseline::open_files(&log_dir)?;
    end_progress();
    eprintln!("        (took {:.1} s)", phase_began.elapsed().as_secs_f64());

    let results = Results {
        machine: machine::describe(work.root()),
        date: machine::date_utc(),
        dir: work.root().to_path_buf(),
        clock,
        frame_bytes: frame.len(),
        memcpy: mem.memcpy,
        memcpy_lat: mem.memcpy_lat,
        crc: mem.crc,
        ping_pong,
        pwrite,
        pwrite_zeroed,
        floor,
        floor_on_disk,
        append_rounds,
        append_on_disk,
        append,
        producers: producer_rows,
        append_lat,
        tail,
        mixed,
        scan,
        durable,
        close,
        open,
        open_files,
        open_report,
        log_bytes,
        elapsed: begun.elapsed(),
        load: (load_before, machine::load_average()),
    };
    end_progress();
    drop(work);
    Ok(results)
}

/// Writes back everything dirty on the file system holding `dir`.
fn syncfs(dir: &Path) -> Res<()> {
    let d = std::fs::File::open(dir)?;
    rustix::fs::syncfs(&d)?;
    Ok(())
}

/// The median round by records per second.
fn median(rounds: &[Rate]) -> Rate {
    let mut v = rounds.to_vec();
    v.sort_by(|a, b| a.per_sec().total_cmp(&b.per_sec()));
    v[v.len() / 2]
}

/// A real varvelog frame (header, `payload` bytes, padding), as the writer
/// would lay it down: the baselines copy and checksum exactly these bytes.
fn sample_frame(payload: usize) -> Res<Vec<u8>> {
    let body = vec![0x5Au8; payload];
    let len = FRAME_HEADER_BYTES as usize + payload;
    let mut h = FrameHeader {
        len: U32::new(u32::try_from(len)?),
        crc: U32::new(0),
        seq: U64::new(1),
        timestamp_us: U64::new(1_700_000_000_000_000),
        prev_len: U32::new(0),
        key_len: U16::new(0),
        flags: 0,
        reserved: 0,
    };
    h.crc = U32::new(frame_crc(&h, &body, &[]));
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(&body);
    out.resize(len.next_multiple_of(8), 0);
    Ok(out)
}

/// The bar of the phase running now, if it has reported progress.
static PROGRESS: std::sync::Mutex<Option<crate::progress::Progress>> = std::sync::Mutex::new(None);

/// Lets the engine's background work from the last phase finish, saying so.
fn settle(eng: &engine::Engine) {
    end_progress();
    let waited = eng.settle();
    eprintln!("        (waited {:.2} s for background sealing and preparation)", waited.as_secs_f64());
}

/// Shows `done` of `total` records on the current phase's progress bar
/// (drawn only when stderr is a terminal).
pub(crate) fn progress(done: u64, total: u64) {
    let mut bar = PROGRESS.lock().unwrap_or_else(|p| p.into_inner());
    bar.get_or_insert_with(|| crate::progress::Progress::new("       ", crate::progress::Unit::Records, false, false)).update(done, total);
}

/// Ends the current phase's progress bar, if one is showing.
fn end_progress() {
    if let Some(bar) = PROGRESS.lock().unwrap_or_else(|p| p.into_inner()).take() {
        bar.finish();
    }
}

/// Joins a scoped thread, turning a panic into an error.
pub(crate) fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>, what: &str) -> Res<T> {
    h.join().map_err(|_| format!("{what} thread panicked").into())
}

/// A fresh directory for one run, removed (with everything in it) on drop.
struct WorkDir {
    root: PathBuf,
}

impl WorkDir {
    fn new(parent: Option<&Path>) -> Res<WorkDir> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        if !parent.is_dir() {
            return Err(format!("--dir {}: not an existing directory", parent.display()).into());
        }
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let root = parent.join(format!("varve-bench-{}-{stamp}", std::process::id()));
        std::fs::create_dir(&root)?;
        Ok(WorkDir { root })
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            eprintln!("varve bench: could not remove {}: {e}", self.root.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn args(extra: &[&str]) -> BenchArgs {
        T::parse_from(std::iter::once("bench").chain(extra.iter().copied())).args
    }

    #[test]
    fn sizes_and_sync_modes_parse_and_bad_ones_are_refused() {
        // Goal: the option parsers accept the documented forms and refuse the rest.
        assert_eq!(crate::util::parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(crate::util::parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(crate::util::parse_bytes("4096"), Ok(4096));
        assert!(["12XB", "", "99999999999999G"].iter().all(|s| crate::util::parse_bytes(s).is_err()));
        assert_eq!(parse_sync("never"), Ok(SyncMode::Never));
        assert_eq!(parse_sync("always"), Ok(SyncMode::Always));
        assert_eq!(parse_sync("every-100"), Ok(SyncMode::Every(100)));
        assert!(parse_sync("every-0").is_err() && parse_sync("every-").is_err() && parse_sync("sometimes").is_err());
    }

    #[test]
    fn sample_frame_is_a_valid_varvelog_frame() {
        // Goal: the baselines copy and checksum real frames. Method: decode the
        // sample with the engine's own decoder, checksum verified.
        let f = sample_frame(100).unwrap();
        assert_eq!(f.len(), 136);
        let d = varvelog::format::decode_frame(&f, 0, true).unwrap();
        assert_eq!((d.payload.len(), d.padded_len), (100, 136));
    }

    #[test]
    fn wait_kinds_default_to_all_three_and_the_mixed_phase_takes_the_first() {
        // Goal: `--wait` keeps its single-kind form (which also picks the
        // mixed phase's readers) and runs each listed kind once.
        // By default the mixed phase's reader parks: a reader that waits
        // without holding a core, as most applications' readers do.
        let all = args(&[]);
        assert_eq!((all.waits(), all.mixed_wait()), (vec![Wait::Park, Wait::Spin, Wait::Async], Wait::Park));
        let spin = args(&["--wait", "spin"]);
        assert_eq!((spin.waits(), spin.mixed_wait()), (vec![Wait::Spin], Wait::Spin));
        let twice = args(&["--wait", "async,spin,async"]);
        assert_eq!((twice.waits(), twice.mixed_wait()), (vec![Wait::Async, Wait::Spin], Wait::Async));
    }

    #[test]
    fn busy_threads_spin_only_while_the_measured_side_runs() {
        // Goal: `--busy-threads` loads the CPU during the measured call and
        // stops with it. Method: while the call runs, this process has
        // `threads` more threads than after it returns, and its result comes back.
        let count = || std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0);
        let before = count();
        let during = super::beside_busy(3, || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            count()
        });
        assert!(during >= before + 3, "{during} threads during, {before} before");
        assert_eq!(args(&["--busy-threads", "2"]).busy_threads, 2);
        assert_eq!(args(&[]).busy_threads, 0);
    }

    #[test]
    fn stalls_count_only_samples_of_at_least_ten_microseconds() {
        // Goal: the stall figure in the report sums exactly the slow samples.
        let mut h = clock::histogram().unwrap();
        for v in [50, 80, 9_000, 20_000, 40_000] {
            h.record(v).unwrap();
        }
        let l = Lat::of(&h);
        assert_eq!(l.count, 5);
        assert_eq!(l.stalls.0, 2);
        assert!((59_000..=61_000).contains(&l.stalls.1), "{:?}", l.stalls);
    }

    /// Checks the report of `r` and its plot; returns the text report.
    fn check_report(a: &BenchArgs, r: &Results, dir: &Path) -> String {
        let text = report::tables(a, r);
        for line in text.lines() {
            assert!(line.chars().count() <= usize::from(report::WIDTH), "line wider than {} columns: {line:?}", report::WIDTH);
        }
        let json = report::json(a, r);
        assert!(json.get("goals").is_none() && !text.to_lowercase().contains("goal"), "the report has no goals section");
        assert!(json["date"].is_string() && json["machine"].is_string());
        let svg = dir.join("bench.svg");
        plot::draw(&svg, a, r).unwrap();
        let body = std::fs::read_to_string(&svg).unwrap();
        assert!(body.starts_with("<svg") && body.contains(&r.date), "plot without the caption's date");
        assert!(body.len() < 200_000, "plot of {} bytes", body.len());
        text
    }

    #[test]
    fn tiny_bench_runs_every_phase_and_cleans_up() {
        // Goal: `varve bench` works end to end without panics and removes its
        // directory. Method: a tiny workload (small records, 64 KiB segments so
        // rotation happens, short sync budgets) in a temporary parent dir.
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().to_str().unwrap();
        let mut a = args(&[
            "--records",
            "3000",
            "--latency-records",
            "3000",
            "--tail-records",
            "500",
            "--tail-rate",
            "100000",
            "--sync-seconds",
            "0.01",
            "--segment-bytes",
            "64KiB",
            "--producer-records",
            "2000",
            "--producer-threads",
            "1,3",
            "--dir",
            dir,
            "--json",
        ]);
        let mut results = run_bench(&a).unwrap();
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0, "bench directory left behind");
        let text = check_report(&a, &results, parent.path());
        // Every kind of tailing reader ran, each reading every record, and
        // each has its row.
        let kinds: Vec<Wait> = results.tail.iter().map(|t| t.wait).collect();
        assert_eq!(kinds, [Wait::Park, Wait::Spin, Wait::Async]);
        assert!(results.tail.iter().all(|t| t.lat.count == 500 && t.rate.records == 500));
        for row in ["writer->tail, spin", "writer->tail, park", "writer->tail, async"] {
            assert!(text.contains(row), "no row {row:?}:\n{text}");
        }
        // The writer beside readers is compared with the writer alone in the
        // same log, which appended as many records just before.
        assert!(text.lines().any(|l| l.contains("append beside") && l.contains("the writer alone, same log")), "{text}");
        let mixed = results.mixed.as_ref().unwrap();
        assert!(mixed.alone.records == 3000 && mixed.alone.secs > 0.0, "{:?}", mixed.alone);
        // Every sustained round is also timed until its bytes are on the
        // disk, which takes at least as long as the round itself.
        assert_eq!((results.floor_on_disk.len(), results.append_on_disk.len()), (a.rounds, a.rounds));
        for (quick, on_disk) in
            results.floor.iter().zip(&results.floor_on_disk).chain(results.append_rounds.iter().zip(&results.append_on_disk))
        {
            assert!(on_disk.records == quick.records && on_disk.secs >= quick.secs, "{quick:?} then {on_disk:?}");
        }
        assert!(text.contains("File+BufWriter, then fdatasync"), "{text}");
        // Phases that did not run are shown as not measured, not dropped.
        (results.tail, results.mixed, a.readers, a.scanners) = (Vec::new(), None, 0, 0);
        let text = check_report(&a, &results, parent.path());
        // Mixed (throughput), writer->tail and tail lag (latency): rows of
        // n/a. (Names wrap inside their cells, so count rows, not phrases.)
        assert!(text.lines().filter(|l| l.contains(" n/a ")).count() >= 3 && text.contains("not measured"), "{text}");
        let svg = std::fs::read_to_string(parent.path().join("bench.svg")).unwrap();
        assert!(svg.contains("n/a (no readers)") && svg.contains("writer-&gt;tail: n/a"), "the plot must say what was not measured");
        let bad = args(&["--payload-bytes", "4", "--dir", dir]);
        assert!(run_bench(&bad).is_err(), "a payload too small for the send stamp must be refused");
    }
}
