//! Many producer threads: [`varvelog::Ingest`] beside the plain answer, a
//! `parking_lot::Mutex<Writer>` every thread locks to append (and, durable,
//! to append and sync). Each pair is measured back to back in the same run,
//! each side in a fresh log.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use varvelog::{Log, Options, SyncPolicy};

use super::{Rate, Res};

/// One thread count, visible or durable: both sides' throughput.
#[derive(Clone, Copy, Debug)]
pub struct ProducerRow {
    /// Producer threads.
    pub threads: usize,
    /// Whether each append waited to be durable.
    pub durable: bool,
    /// Through one shared `Ingest`.
    pub ingest: Rate,
    /// Through a `Mutex<Writer>`.
    pub mutex: Rate,
}

/// Largest segment of the durable sides' logs.
const DURABLE_SEGMENT_BYTES: u64 = 8 << 20;

/// How the producers append.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Ingest,
    Mutex,
}

/// Visible appends: `records` in all, split over `threads` and over the
/// turns of both sides in one log; durable ones for `budget` per side, in
/// two runs of half of it each, each in a fresh log. Logs live in `dir`
/// and are removed afterwards.
pub fn compare(
    dir: &Path,
    segment_bytes: u64,
    payload_bytes: usize,
    threads: usize,
    durable: bool,
    records: u64,
    budget: Duration,
) -> Res<ProducerRow> {
    if !durable {
        return visible(dir, segment_bytes, payload_bytes, threads, records);
    }
    let rate = |side: Side| -> Res<Rate> {
        let path = dir.join(format!("producers-{threads}-durable-{}", side as u8));
        // Durable sides sync by hand (policy Never) on zero-filled segments,
        // as the single-writer durable phase does, of at most 8 MiB: a side
        // appends a few MB, and zero-filling and syncing 64 MiB segments at
        // open and close took longer than the side itself.
        let opts = Options::new().segment_bytes(segment_bytes.min(DURABLE_SEGMENT_BYTES)).sync_policy(SyncPolicy::Never).zero_fill(true);
        let log = Log::open(&path, opts)?;
        // Let the preparer finish the segments it prepares at open.
        std::thread::sleep(Duration::from_millis(100));
        let r = run_durable(&log, side, threads, payload_bytes, budget / 2)?;
        drop(log);
        std::fs::remove_dir_all(&path)?;
        Ok(r)
    };
    // A B B A, so that neither side always runs first or last; each side's
    // figure is the sum of its two runs.
    let a1 = rate(Side::Ingest)?;
    let b1 = rate(Side::Mutex)?;
    let b2 = rate(Side::Mutex)?;
    let a2 = rate(Side::Ingest)?;
    Ok(ProducerRow { threads, durable, ingest: a1.plus(&a2), mutex: b1.plus(&b2) })
}

/// Visible appends: both sides take turns appending into one log, in
/// `TURNS` turns each (A B B A A B B A ...), so that they meet the same
/// segments, page cache and memory; each side's figure sums its turns.
/// (Separate fresh logs per side made the ratio swing 0.6-1.5x with the
/// memory each side happened to get on this VM.)
fn visible(dir: &Path, segment_bytes: u64, payload_bytes: usize, threads: usize, records: u64) -> Res<ProducerRow> {
    const TURNS: u64 = 4;
    let path = dir.join(format!("producers-{threads}-visible"));
    let log = Log::open(&path, Options::new().segment_bytes(segment_bytes).sync_policy(SyncPolicy::Never))?;
    std::thread::sleep(Duration::from_millis(100));
    let per_turn = (records / TURNS / 2).max(threads as u64);
    // A discarded warm-up turn first: thread start-up, first segments.
    run_visible(&log, Side::Mutex, threads, payload_bytes, per_turn)?;
    let mut ingest = Rate::new(0, payload_bytes, Duration::ZERO);
    let mut mutex = ingest;
    for turn in 0..TURNS {
        let order = if turn % 2 == 0 { [Side::Ingest, Side::Mutex] } else { [Side::Mutex, Side::Ingest] };
        for side in order {
            let r = run_visible(&log, side, threads, payload_bytes, per_turn)?;
            match side {
                Side::Ingest => ingest = ingest.plus(&r),
                Side::Mutex => mutex = mutex.plus(&r),
            }
        }
    }
    drop(log);
    std::fs::remove_dir_all(&path)?;
    Ok(ProducerRow { threads, durable: false, ingest, mutex })
}

fn run_visible(log: &Log, side: Side, threads: usize, payload_bytes: usize, records: u64) -> Res<Rate> {
    let per = records / threads as u64;
    let payload = vec![0x5Au8; payload_bytes];
    let before = log.snapshot().len();
    let start = Instant::now();
    match side {
        Side::Ingest => {
            let ingest = log.ingest()?;
            std::thread::scope(|s| -> Res<()> {
                let hs: Vec<_> = (0..threads)
                    .map(|_| {
                        let ingest = ingest.clone();
                        let payload = &payload;
                        s.spawn(move || (0..per).try_for_each(|_| ingest.append(payload).map(drop)))
                    })
                    .collect();
                hs.into_iter().try_for_each(|h| super::join(h, "producer")?.map_err(Into::into))
            })?;
            ingest.close()?;
        }
        Side::Mutex => {
            let writer = Mutex::new(log.writer()?);
            std::thread::scope(|s| -> Res<()> {
                let hs: Vec<_> = (0..threads)
                    .map(|_| {
                        let (writer, payload) = (&writer, &payload);
                        s.spawn(move || (0..per).try_for_each(|_| writer.lock().append(payload).map(drop)))
                    })
                    .collect();
                hs.into_iter().try_for_each(|h| super::join(h, "producer")?.map_err(Into::into))
            })?;
        }
    }
    let elapsed = start.elapsed();
    let stored = log.snapshot().len() - before;
    if stored != per * threads as u64 {
        return Err(format!("{stored} records stored, {} appended", per * threads as u64).into());
    }
    Ok(Rate::new(stored, payload_bytes, elapsed))
}

fn run_durable(log: &Log, side: Side, threads: usize, payload_bytes: usize, budget: Duration) -> Res<Rate> {
    let payload = vec![0x5Au8; payload_bytes];
    let done = AtomicU64::new(0);
    let start = Instant::now();
    let ingest = if side == Side::Ingest { Some(log.ingest()?) } else { None };
    let writer = if side == Side::Mutex { Some(Mutex::new(log.writer()?)) } else { None };
    std::thread::scope(|s| -> Res<()> {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let (ingest, writer, payload, done) = (&ingest, &writer, &payload, &done);
                s.spawn(move || -> varvelog::Result<()> {
                    while start.elapsed() < budget {
                        match (ingest, writer) {
                            (Some(i), _) => drop(i.append_durable(payload)?),
                            (_, Some(w)) => {
                                let mut w = w.lock();
                                w.append(payload)?;
                                w.sync()?;
                            }
                            _ => unreachable!("one side is set"),
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        hs.into_iter().try_for_each(|h| super::join(h, "producer")?.map_err(Into::into))
    })?;
    let elapsed = start.elapsed();
    let n = done.load(Ordering::Relaxed);
    let durable = log.durable_seq().map_or(0, |s| s + 1);
    if durable < n {
        return Err(format!("{n} appends acknowledged durable, durable_seq covers {durable}").into());
    }
    Ok(Rate::new(n, payload_bytes, elapsed))
}
