//! Appends 100-byte payloads, reads them back, and times a reopen.
//!
//! `cargo run --release --example append_open -- [records] [dir]`
//! prints append throughput, scan throughput and open time.

use std::time::Instant;

use varvelog::{Log, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let records: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10_000_000);
    let tmp;
    let dir = match args.next() {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let payload = [0x5Au8; 100];
    let prefault = std::env::var("VARVE_PREFAULT").map_or(true, |v| v != "0");
    let clock = if std::env::var_os("VARVE_COARSE_CLOCK").is_some() { varvelog::Clock::RealtimeCoarse } else { varvelog::Clock::Realtime };
    let log = Log::open(&dir, Options::new().prefault(prefault).clock(clock))?;
    let mut writer = log.writer()?;
    let start = Instant::now();
    let explicit_ts = std::env::var_os("VARVE_EXPLICIT_TS").is_some();
    for i in 0..records {
        if explicit_ts {
            writer.append_entry(varvelog::Entry::new(&payload).timestamp(i))?;
        } else {
            writer.append(&payload)?;
        }
    }
    let append = start.elapsed();
    writer.sync()?;
    let synced = start.elapsed();
    println!(
        "append: {records} x 100 B in {:.3} s = {:.2} M records/s ({:.0} MB/s); with final sync {:.3} s",
        append.as_secs_f64(),
        records as f64 / append.as_secs_f64() / 1e6,
        records as f64 * 100.0 / append.as_secs_f64() / 1e6,
        synced.as_secs_f64()
    );
    let snap = log.snapshot();
    let start = Instant::now();
    let mut n = 0u64;
    let mut bytes = 0usize;
    for r in snap.iter() {
        bytes += r?.payload().len();
        n += 1;
    }
    let scan = start.elapsed();
    assert_eq!(n, records);
    println!("scan (checksums verified): {:.2} M records/s ({bytes} payload bytes)", n as f64 / scan.as_secs_f64() / 1e6);
    drop(snap);
    drop(writer);
    drop(log);
    let start = Instant::now();
    let log = Log::open(&dir, Options::new())?;
    let open = start.elapsed();
    let r = log.recovery_report();
    println!(
        "open: {:.2} ms for {} segments ({} sealed), {} records, {} bytes discarded",
        open.as_secs_f64() * 1e3,
        r.segments,
        r.sealed_segments,
        r.records,
        r.bytes_discarded
    );
    Ok(())
}
