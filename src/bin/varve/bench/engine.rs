//! The workload on varvelog itself: append throughput and latency, tailing
//! readers, a concurrent scanner, a scan, durable group commit, reopen.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use varvelog::{Log, Options, SyncPolicy, Writer};

use super::clock::{histogram, ticks, Clock};
use super::readers::{follow, Follow};
use super::{join, progress, Durable, Lat, Rate, Res, SyncMode, Wait};

/// An open log and its writer, with the payload the workload appends.
pub struct Engine {
    log: Log,
    writer: Writer,
    payload: Vec<u8>,
    sync: SyncMode,
    clock: Clock,
}

/// What the tailing readers of one kind saw.
pub struct TailResult {
    /// How the readers waited.
    pub wait: Wait,
    /// Writer send time to reader observation, all readers merged.
    pub lat: Lat,
    /// Latency of the paced appends themselves while tailed.
    pub append_lat: Lat,
    /// Rate the writer achieved.
    pub rate: Rate,
    /// Samples where the reader's clock was behind the writer's (clamped to 0).
    pub clamped: u64,
}

/// The writer at full speed with tailing readers and scanners beside it.
pub struct MixedResult {
    /// The writer alone, in the same log, just before.
    pub alone: Rate,
    /// Writer throughput beside the readers.
    pub rate: Rate,
    /// Send-to-observe latency of the tailing readers (their lag at full speed).
    pub tail_lag: Lat,
    /// Records per second each scanner read, summed over scanners.
    pub scan: Rate,
}

/// Options for the bench log.
pub fn options(segment_bytes: u64, sync: SyncMode) -> Options {
    let policy = if sync == SyncMode::Always { SyncPolicy::Always } else { SyncPolicy::Never };
    Options::new().segment_bytes(segment_bytes).sync_policy(policy)
}

impl Engine {
    /// Opens (creates) the log in `dir` and takes its writer.
    pub fn open(dir: &Path, opts: Options, payload_bytes: usize, sync: SyncMode, clock: Clock) -> Res<Engine> {
        let log = Log::open(dir, opts)?;
        let writer = log.writer()?;
        // Let the background preparer finish the segments it prepares at open,
        // so the first phase measures the steady state, not process start-up.
        std::thread::sleep(Duration::from_millis(300));
        Ok(Engine { log, writer, payload: vec![0x5A; payload_bytes], sync, clock })
    }

    /// Waits (up to 60 s) until the background sealer has caught up with
    /// every rotation, then 300 ms for the preparer, so that a phase does not
    /// pay for the previous phase's background work. Returns the time waited.
    pub fn settle(&self) -> Duration {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            let s = self.log.stats();
            if s.segments_sealed >= s.rotations {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        start.elapsed()
    }

    #[inline]
    fn after_append(&mut self, i: u64) -> Res<()> {
        if let SyncMode::Every(n) = self.sync {
            if (i + 1).is_multiple_of(n) {
                self.writer.sync()?;
            }
        }
        Ok(())
    }

    /// Appends `records` payloads as fast as possible; no timer in the loop.
    pub fn append_throughput(&mut self, records: u64, max: Duration) -> Res<Rate> {
        self.appends(records, max, false)
    }

    /// Appends `records` payloads as fast as possible (or until `max`); with
    /// `stamp`, each payload first gets the send time in its first 8 bytes,
    /// for tailing readers.
    fn appends(&mut self, records: u64, max: Duration, stamp: bool) -> Res<Rate> {
        let start = Instant::now();
        let mut done = 0;
        for i in 0..records {
            if stamp {
                self.payload[..8].copy_from_slice(&ticks().to_le_bytes());
            }
            self.writer.append(&self.payload)?;
            self.after_append(i)?;
            done += 1;
            if i & 0x3_FFFF == 0x3_FFFF {
                progress(done, records);
                if start.elapsed() > max {
                    break;
                }
            }
        }
        Ok(Rate::new(done, self.payload.len(), start.elapsed()))
    }

    /// Appends `records` payloads timing each call.
    pub fn append_latency(&mut self, records: u64, max: Duration) -> Res<Lat> {
        let mut h = histogram()?;
        let start = Instant::now();
        for i in 0..records {
            let t0 = ticks();
            self.writer.append(&self.payload)?;
            let t1 = ticks();
            self.clock.record(&mut h, t0, t1);
            self.after_append(i)?;
            if i & 0x3_FFFF == 0x3_FFFF {
                progress(i + 1, records);
                if start.elapsed() > max {
                    break;
                }
            }
        }
        Ok(Lat::of(&h))
    }

    /// The writer appends `records` at `rate` per second, each payload carrying
    /// its send time; `readers` tailing readers measure send-to-observe latency.
    pub fn tail(&mut self, records: u64, rate: u64, readers: usize, wait: Wait) -> Res<TailResult> {
        let from = self.log.next_seq();
        let until = from + records;
        let clock = self.clock;
        let period = clock.ticks_for_ns(1e9 / rate.max(1) as f64);
        let stop = AtomicBool::new(false);
        let ready = AtomicUsize::new(0);
        let log = self.log.clone();
        let f = Follow { log: &log, from, until, clock: &clock, stop: &stop, ready: &ready };
        let mut append_h = histogram()?;
        let (results, wrote) = std::thread::scope(|s| -> Res<_> {
            let handles: Vec<_> = (0..readers).map(|_| s.spawn(|| follow(&f, wait))).collect();
            while ready.load(Ordering::Acquire) < readers {
                std::thread::yield_now();
            }
            let written = self.paced(records, period, &mut append_h);
            if written.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            let mut out = Vec::new();
            for h in handles {
                out.push(join(h, "tailing reader")?);
            }
            Ok((out, written))
        })?;
        let (n, elapsed) = wrote?;
        let mut lat = histogram()?;
        let mut clamped = 0;
        for r in results {
            let (h, c) = r?;
            lat.add(&h)?;
            clamped += c;
        }
        Ok(TailResult {
            wait,
            lat: Lat::of(&lat),
            append_lat: Lat::of(&append_h),
            rate: Rate::new(n, self.payload.len(), elapsed),
            clamped,
        })
    }

    /// The writer appends `records` at full speed (each payload carrying its
    /// send time) while `readers` tailing readers follow and `scanners`
    /// scanning readers read the whole log over and over. Just before, it
    /// appends as many alone, in the same log and the same way: the
    /// baseline, which differs from the mixed run only by the readers.
    pub fn mixed(&mut self, records: u64, readers: usize, scanners: usize, wait: Wait, max: Duration) -> Res<MixedResult> {
        let alone = self.appends(records, max, true)?;
        self.settle();
        let from = self.log.next_seq();
        let until = from + records;
        let clock = self.clock;
        let stop = AtomicBool::new(false);
        let ready = AtomicUsize::new(0);
        let log = self.log.clone();
        let f = Follow { log: &log, from, until, clock: &clock, stop: &stop, ready: &ready };
        let payload_len = self.payload.len();
        let (tails, scans, wrote) = std::thread::scope(|s| -> Res<_> {
            let tails: Vec<_> = (0..readers).map(|_| s.spawn(|| follow(&f, wait))).collect();
            let scans: Vec<_> = (0..scanners).map(|_| s.spawn(|| scanner(&log, &stop, &ready))).collect();
            while ready.load(Ordering::Acquire) < readers + scanners {
                std::thread::yield_now();
            }
            let written = self.appends(records, max, true);
            // Tailers stop at `until`; if the writer stopped early, tell them.
            if !matches!(written, Ok(r) if r.records == records) {
                stop.store(true, Ordering::Relaxed);
            }
            let mut t = Vec::new();
            for h in tails {
                t.push(join(h, "tailing reader")?);
            }
            stop.store(true, Ordering::Relaxed);
            let mut sc = Vec::new();
            for h in scans {
                sc.push(join(h, "scanning reader")?);
            }
            Ok((t, sc, written))
        })?;
        let rate = wrote?;
        let mut lag = histogram()?;
        for r in tails {
            lag.add(&r?.0)?;
        }
        let (mut scanned, mut secs) = (0u64, 0f64);
        for r in scans {
            let (k, d) = r?;
            scanned += k;
            secs = secs.max(d.as_secs_f64());
        }
        Ok(MixedResult { alone, rate, tail_lag: Lat::of(&lag), scan: Rate::new(scanned, payload_len, Duration::from_secs_f64(secs)) })
    }

    /// Appends `records` stamped payloads, one every `period` ticks, timing each append.
    fn paced(&mut self, records: u64, period: u64, h: &mut Histogram<u64>) -> Res<(u64, Duration)> {
        let start = Instant::now();
        let t_start = ticks();
        for i in 0..records {
            let target = t_start + i * period;
            while ticks() < target {
                std::hint::spin_loop();
            }
            let t0 = ticks();
            self.payload[..8].copy_from_slice(&t0.to_le_bytes());
            self.writer.append(&self.payload)?;
            let t1 = ticks();
            self.clock.record(h, t0, t1);
            self.after_append(i)?;
            if i & 0x3_FFFF == 0x3_FFFF {
                progress(i + 1, records);
            }
        }
        Ok((records, start.elapsed()))
    }

    /// Reads every record of the log once, checksums verified, checking
    /// that seqs are gap-free.
    pub fn scan(&self) -> Res<Rate> {
        let snap = self.log.snapshot();
        let mut expect = snap.first_seq().unwrap_or(0);
        let total = snap.len();
        let mut acc = 0u8;
        let start = Instant::now();
        for r in snap.iter() {
            let r = r?;
            if r.seq() != expect {
                return Err(format!("scan: expected seq {expect}, got {}", r.seq()).into());
            }
            acc ^= r.payload().first().copied().unwrap_or(0);
            expect += 1;
        }
        let elapsed = start.elapsed();
        std::hint::black_box(acc);
        let n = expect - snap.first_seq().unwrap_or(0);
        if n != total {
            return Err(format!("scan: read {n} of {total} records").into());
        }
        Ok(Rate::new(n, self.payload.len(), elapsed))
    }

    /// Closes the log (waiting for background sealing); returns how long that took.
    pub fn close(self) -> Duration {
        let start = Instant::now();
        drop(self.writer);
        drop(self.log);
        start.elapsed()
    }

    /// Closes with [`Log::close`]: every record on the disk and every
    /// rotated segment sealed. Returns the time that took.
    pub fn close_durably(self) -> Res<Duration> {
        let start = Instant::now();
        drop(self.writer);
        self.log.close()?;
        Ok(start.elapsed())
    }
}

/// Scans the whole log over and over until `stop`; returns records read and time.
fn scanner(log: &Log, stop: &AtomicBool, ready: &AtomicUsize) -> Res<(u64, Duration)> {
    ready.fetch_add(1, Ordering::Release);
    let start = Instant::now();
    let mut n = 0u64;
    let mut acc = 0u8;
    'outer: while !stop.load(Ordering::Relaxed) {
        let snap = log.snapshot();
        for r in snap.iter() {
            acc ^= r?.payload().first().copied().unwrap_or(0);
            n += 1;
            if n & 0xFFFF == 0 && stop.load(Ordering::Relaxed) {
                break 'outer;
            }
        }
    }
    std::hint::black_box(acc);
    Ok((n, start.elapsed()))
}

/// Durable group commit: `per_sync` appends then `Writer::sync`, repeated for
/// `budget` (at least 3 syncs), in a fresh log in `dir`.
pub fn durable(dir: &Path, segment_bytes: u64, payload_bytes: usize, per_sync: u64, budget: Duration) -> Res<Durable> {
    // Zero-filled segments (on by default under a syncing policy; this
    // phase syncs by hand under `Never`, so it asks for them).
    let log = Log::open(dir, options(segment_bytes, SyncMode::Never).zero_fill(true))?;
    let mut writer = log.writer()?;
    std::thread::sleep(Duration::from_millis(300));
    let payload = vec![0x5Au8; payload_bytes];
    let mut h = histogram()?;
    let mut syncs = 0u64;
    let start = Instant::now();
    while syncs < 3 || start.elapsed() < budget {
        let t0 = Instant::now();
        for _ in 0..per_sync {
            writer.append(&payload)?;
        }
        writer.sync()?;
        h.saturating_record(t0.elapsed().as_nanos() as u64);
        syncs += 1;
    }
    let elapsed = start.elapsed();
    let durable = log.durable_seq().map_or(0, |s| s + 1);
    if durable != syncs * per_sync {
        return Err(format!("durable_seq says {durable} records durable, expected {}", syncs * per_sync).into());
    }
    Ok(Durable { per_sync, rate: Rate::new(syncs * per_sync, payload_bytes, elapsed), sync_lat: Lat::of(&h) })
}

/// Reopens the log in `dir`; returns the time `Log::open` took, the
/// recovery report's figures and the log's size in bytes.
pub fn reopen(dir: &Path, opts: Options) -> Res<(Duration, varvelog::RecoveryReport, u64)> {
    let start = Instant::now();
    let log = Log::open(dir, opts)?;
    let elapsed = start.elapsed();
    let report = log.recovery_report().clone();
    drop(log);
    let mut bytes = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.path().extension().is_some_and(|x| x == "seg") {
            bytes += e.metadata()?.len();
        }
    }
    Ok((elapsed, report, bytes))
}
