use varvelog::{Log, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path(), Options::new())?;
    let ingest = log.ingest()?;
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let ingest = ingest.clone();
            std::thread::spawn(move || -> varvelog::Result<()> {
                for i in 0..1000u32 {
                    let payload = [p as u8, (i % 256) as u8];
                    if i % 100 == 99 {
                        ingest.append_durable(&payload)?; // returns the seq once synced
                    } else {
                        ingest.append(&payload)?; // returns the seq once visible
                    }
                }
                Ok(())
            })
        })
        .collect();
    for p in producers {
        p.join().expect("producer thread")?;
    }
    ingest.close()?; // gives the writer back to the log
    Ok(())
}
