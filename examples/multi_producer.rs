//! Many threads append through one cloneable `Ingest` handle, each into the
//! log's one writer; durable appends share syncs. Prints throughput.
//!
//! ```text
//! cargo run --release --example multi_producer -- [producers] [records_per_producer] [visible|durable]
//! ```
//! Defaults: 4 producers x 250 000 records of 100 bytes, visible appends.
//! `durable` waits for each record to be synced (group commit shares the
//! syncs between producers).

use std::time::Instant;

use varvelog::{Log, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let producers: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(4);
    let per_producer: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(250_000);
    let mode = args.next().unwrap_or_else(|| "visible".into());
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path(), Options::new())?;
    let ingest = log.ingest()?;

    let started = Instant::now();
    let threads: Vec<_> = (0..producers)
        .map(|p| {
            // Each producer gets its own clone of the handle.
            let ingest = ingest.clone();
            let mode = mode.clone();
            std::thread::spawn(move || -> varvelog::Result<()> {
                let mut payload = [0u8; 100];
                payload[0] = p as u8;
                match mode.as_str() {
                    "durable" => {
                        for _ in 0..per_producer {
                            ingest.append_durable(&payload)?; // returns once synced
                        }
                    }
                    _ => {
                        for _ in 0..per_producer {
                            ingest.append(&payload)?; // returns the seq once visible
                        }
                    }
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("producer thread")?;
    }
    let elapsed = started.elapsed();
    ingest.close()?; // gives the writer back to the log

    let total = producers * per_producer;
    assert_eq!(log.snapshot().len(), total);
    println!(
        "{producers} producers x {per_producer} records of 100 B ({mode}): {:.3} s, {:.0} records/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
