//! Retention: keep a log within an age, a size or a first seq, on demand or
//! in the background, while readers holding older snapshots finish undisturbed.
//!
//! `cargo run --release --example retention`

use std::time::Duration;

use varvelog::{Entry, Log, Options, Retention};

const HOUR_US: u64 = 3_600_000_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // Small segments so that this example makes many of them.
    let log = Log::open(dir.path(), Options::new().segment_bytes(256 * 1024))?;
    let mut writer = log.writer()?;

    // A day of hourly batches, stamped in the past: 24 h ago .. now.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_micros() as u64;
    let payload = [b'x'; 200];
    for hour in 0..24u64 {
        let ts = now - (24 - hour) * HOUR_US;
        for _ in 0..2_000 {
            writer.append_entry(Entry::new(&payload).timestamp(ts))?;
        }
    }
    writer.sync()?;
    wait_until_sealed(&log);
    show("written", &log);

    // A reader takes a snapshot before retention runs...
    let old = log.snapshot();

    // ...by age: drop segments whose newest record is older than 12 hours.
    let r = log.retain(&Retention::new().max_age(Duration::from_secs(12 * 3600)))?;
    println!("max_age 12h       removed {} segments, {} records, {} bytes", r.removed_segments(), r.removed_records, r.removed_bytes);
    show("after age", &log);

    // ...by size: keep at most 2 MiB of segment files.
    let r = log.retain(&Retention::new().max_total_bytes(2 << 20))?;
    println!("max_total 2 MiB   removed {} segments, {} records", r.removed_segments(), r.removed_records);
    show("after size", &log);

    // ...by seq: everything below a seq a consumer has acknowledged.
    let acked = log.snapshot().first_seq().unwrap_or(0) + 3_000;
    let r = log.retain(&Retention::new().min_seq(acked))?;
    println!("min_seq {acked:<9} removed {} segments, {} records", r.removed_segments(), r.removed_records);
    show("after seq", &log);

    // The old snapshot still reads every record it saw: the files are
    // unlinked, but its mappings keep them alive.
    let still_readable = old.iter().filter(|r| r.is_ok()).count();
    println!("old snapshot still reads {still_readable} of {} records", old.len());

    // A record retention removed is a typed error, never wrong data.
    if let Err(e) = log.snapshot().get(0) {
        println!("get(0) now: {e}");
    }

    // In the background: a pass every 50 ms, until the task is dropped.
    let task = log.retain_every(Retention::new().max_total_bytes(1 << 20), Duration::from_millis(50))?;
    for _ in 0..10_000 {
        writer.append(&payload)?;
    }
    std::thread::sleep(Duration::from_millis(200));
    println!("background task: {} passes, {} segments removed", task.passes(), task.removed_segments());
    show("after background", &log);
    let s = log.stats();
    println!("stats: {} segments / {} bytes removed by retention", s.retention_segments_removed, s.retention_bytes_removed);
    Ok(())
}

fn show(what: &str, log: &Log) {
    let snap = log.snapshot();
    let bytes: u64 = snap.segment_info().iter().map(|s| s.file_bytes).sum();
    println!(
        "{what:<17} {} segments, {} records (seq {} ..), {:.1} MiB on disk",
        snap.segment_count(),
        snap.len(),
        snap.first_seq().unwrap_or(0),
        bytes as f64 / (1 << 20) as f64
    );
}

/// Sealing runs in the background; retention only removes sealed segments.
fn wait_until_sealed(log: &Log) {
    for _ in 0..1000 {
        let s = log.stats();
        if s.segments_sealed == s.rotations {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
