//! A log tiered to an object store, and a reader of the store alone.
//!
//! `cargo run --features tiered --example tiered -- s3://bucket/prefix`
//! (credentials and endpoint from the AWS_* variables); without an argument
//! the "store" is a local directory, so it runs anywhere.
use std::time::Duration;
use varvelog::{Log, Options, ReadOnlyLog, Retention, TierOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scratch = tempfile::tempdir()?;
    let url = match std::env::args().nth(1) {
        Some(url) => url,
        None => format!("file://{}/bucket/logs/orders", scratch.path().display()),
    };
    let tier = TierOptions::from_url(&url)?
        .keep_local(Retention::new().max_total_bytes(1 << 20)) // keep the newest 1 MiB on disk
        .cache_bytes(4 << 20); // and at most 4 MiB of fetched history
    let log = Log::open(scratch.path().join("log"), Options::new().segment_bytes(256 << 10).tier(tier))?;
    let mut writer = log.writer()?;
    for i in 0..20_000u32 {
        writer.append(format!("order {i}").as_bytes())?;
    }
    writer.roll()?; // seal the active segment now, so that it is uploaded now
    log.wait_uploaded(Duration::from_secs(60))?;
    let stats = log.tier_stats().unwrap_or_default();
    println!("uploaded {} segments, {} left the disk", stats.uploaded_segments, stats.evicted_segments);

    // Evicted history reads as before: fetched into the cache, then mapped.
    let first = log.snapshot().get(0)?.map(|r| r.payload().to_vec());
    println!("first record: {:?}", first.map(String::from_utf8));

    // Anywhere else, from the store alone.
    let remote = ReadOnlyLog::open_remote(&url)?;
    println!("the store holds {} records", remote.snapshot().len());
    Ok(())
}
