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

/// Visible appends: `records` in all, split over `threads`; durable ones
/// for `budget` per side, in two runs of half of it each. Logs live in `dir` and are removed after each side.
pub fn compare(
    dir: &Path,
    segment_bytes: u64,
    payload_bytes: usize,
    threads: usize,
    durable: bool,
    records: u64,
    budget: Duration,
) -> Res<ProducerRow> {
    let rate = |side: Side| -> Res<Rate> {
        let path = dir.join(format!("producers-{threads}-{durable}-{}", side as u8));
        // Durable sides sync by hand (policy Never) on zero-filled segments,
        // as the single-writer durable phase does, of at most 8 MiB: a side
        // appends a few MB, and zero-filling and syncing 64 MiB segments at
        // open and close took longer than the side itself.
        let segment_bytes = if durable { segment_bytes.min(DURABLE_SEGMENT_BYTES) } else { segment_bytes };
        let opts = Options::new().segment_bytes(segment_bytes).sync_policy(SyncPolicy::Never).zero_fill(durable);
        let log = Log::open(&path, opts)?;
        // Let the preparer finish the segments it prepares at open.
        std::thread::sleep(Duration::from_millis(100));
        let r = if durable {
            run_durable(&log, side, threads, payload_bytes, budget / 2)?
        } else {
            run_visible(&log, side, threads, payload_bytes, records)?
        };
        drop(log);
        std::fs::remove_dir_all(&path)?;
        Ok(r)
    };
    // A B B A (visible ones after a discarded warm-up), so that every run follows
    // the removal of another run's log (memory just freed is cheaper to
    // reuse on this VM than fresh memory) and neither side always runs
    // first or last; each side's figure is the sum of its two runs.
    if !durable {
        rate(Side::Mutex)?;
    }
    let a1 = rate(Side::Ingest)?;
    let b1 = rate(Side::Mutex)?;
    let b2 = rate(Side::Mutex)?;
    let a2 = rate(Side::Ingest)?;
    Ok(ProducerRow { threads, durable, ingest: a1.plus(&a2), mutex: b1.plus(&b2) })
}

fn run_visible(log: &Log, side: Side, threads: usize, payload_bytes: usize, records: u64) -> Res<Rate> {
    let per = records / threads as u64;
    let payload = vec![0x5Au8; payload_bytes];
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
    let stored = log.snapshot().len();
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
