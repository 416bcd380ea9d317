//! Many threads append through one cloneable `Ingest` handle; the log's one
//! writer group-commits what they send. Prints throughput.
//!
//! ```text
//! cargo run --release --example multi_producer -- [producers] [records_per_producer] [blocking|tickets|durable]
//! ```
//! Defaults: 4 producers x 250 000 records of 100 bytes, blocking appends.
//! `tickets` keeps up to 256 appends in flight per producer; `durable`
//! waits for each record to be synced (group commit shares the syncs).

use std::time::Instant;

use varvelog::{Entry, IngestOptions, Log, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let producers: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(4);
    let per_producer: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(250_000);
    let mode = args.next().unwrap_or_else(|| "blocking".into());
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path(), Options::new())?;
    let ingest = log.ingest(IngestOptions::new())?;

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
                    "tickets" => {
                        let mut in_flight = std::collections::VecDeque::with_capacity(256);
                        for _ in 0..per_producer {
                            if in_flight.len() == 256 {
                                in_flight.pop_front().map(varvelog::Ticket::wait).transpose()?;
                            }
                            in_flight.push_back(ingest.submit(Entry::new(&payload))?);
                        }
                        for t in in_flight {
                            t.wait()?;
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
    ingest.close()?; // drains the queue, gives the writer back

    let total = producers * per_producer;
    assert_eq!(log.snapshot().len(), total);
    println!(
        "{producers} producers x {per_producer} records of 100 B ({mode}): {:.3} s, {:.0} records/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
