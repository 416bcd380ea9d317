//! A tailing reader on another thread follows the writer; prints the
//! writer-to-reader latency percentiles.
//!
//! ```text
//! cargo run --release --example tail -- [records] [interval_us] [spin|park]
//! ```
//! Defaults: 200 000 records of 100 bytes, one every 20 µs (50 000/s), a
//! busy-spinning tail. Each payload carries the time it was appended; the
//! tail subtracts it from the time it read the record.

use std::time::{Duration, Instant};

use varvelog::{Log, Options, WaitStrategy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let records: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(200_000);
    let interval = Duration::from_micros(args.next().map(|s| s.parse()).transpose()?.unwrap_or(20));
    let wait = match args.next().as_deref() {
        Some("park") => WaitStrategy::Park,
        _ => WaitStrategy::BusySpin,
    };
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path(), Options::new())?;
    // Opening starts preparing (fallocate + pre-fault) the next segments in
    // the background; let that finish so the figures are the steady state.
    std::thread::sleep(Duration::from_secs(1));
    let epoch = Instant::now();

    // The reader: a tail from the first record, on its own thread. Records
    // are borrowed from the mapping; nothing is copied.
    let mut tail = log.tail_from(0)?.wait_strategy(wait);
    let reader = std::thread::spawn(move || -> varvelog::Result<Vec<u64>> {
        let mut latencies_ns = Vec::with_capacity(records as usize);
        while (latencies_ns.len() as u64) < records {
            let Some(record) = tail.next_timeout(Duration::from_secs(10))? else { break };
            let now_ns = epoch.elapsed().as_nanos() as u64;
            let sent_ns = u64::from_le_bytes(record.payload()[..8].try_into().expect("8-byte stamp"));
            latencies_ns.push(now_ns.saturating_sub(sent_ns));
        }
        Ok(latencies_ns)
    });

    // The writer: appends at a steady pace, stamping each payload.
    let mut writer = log.writer()?;
    let mut payload = [0u8; 100];
    let mut next_at = Instant::now();
    for _ in 0..records {
        while Instant::now() < next_at {
            std::hint::spin_loop();
        }
        next_at += interval;
        payload[..8].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_le_bytes());
        writer.append(&payload)?;
    }

    let mut latencies_ns = reader.join().expect("reader thread")?;
    latencies_ns.sort_unstable();
    let pct = |p: f64| latencies_ns[((latencies_ns.len() as f64 * p) as usize).min(latencies_ns.len() - 1)];
    println!(
        "writer->tail latency ({wait:?}, {} records, one per {interval:?}): p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        latencies_ns.len(),
        pct(0.50),
        pct(0.99),
        pct(0.999),
        latencies_ns.last().copied().unwrap_or(0)
    );
    Ok(())
}
